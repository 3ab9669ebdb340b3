"""The release's images: servestatic/base and its onbuild variant, built per architecture,
pushed, and assembled into one OCI image index per variant.

Built the way the image tests build them (scripts/image-base.sh's debootstrapped root,
scripts/wheelhouse.sh's wheels, ``--network none``), once per architecture: the host's
natively, the others under emulation (qemu-user-static through binfmt_misc, registered by
scripts/install/qemu.sh). release.py decides what is pushed where and lists it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from servestatic.platform.oci import Registry, ReleaseError, crane, crane_json, run

# The architectures of the images (Debian's names, which are also OCI's); the host's is
# built natively, the others under emulation (scripts/install/qemu.sh).
IMAGE_ARCHES = ("amd64", "arm64")
INDEX_PLATFORM = ",".join(f"linux/{arch}" for arch in IMAGE_ARCHES)


def local_tag(version: str, suffix: str, arch: str) -> str:
    """The local name of one built image: the host's keeps the plain tag the image tests use."""
    return f"localhost/servestatic/base:{version}{suffix}{'' if arch == host_arch() else '-' + arch}"


def host_arch() -> str:
    return run("dpkg", "--print-architecture", capture=True).strip()


def build_images(repo: Path, version: str, revision: str) -> dict[str, dict[str, str]]:
    """Build the base image and its onbuild variant for each of IMAGE_ARCHES; returns
    {suffix: {arch: local tag}} (suffix "" or "-onbuild").

    The base root and the wheelhouse come from the same scripts the image tests use, for
    each architecture, so a release builds what the tests ran (no registry or index inside
    the build). The image's architecture is checked after the build: podman's layer cache
    has been seen to hand back the host's image for another --platform.
    """
    built: dict[str, dict[str, str]] = {"": {}, "-onbuild": {}}
    for arch in IMAGE_ARCHES:
        platform = f"linux/{arch}"
        base_root = run(repo / "scripts/image-base.sh", arch, capture=True).strip()
        python = run("podman", "run", "--rm", "--platform", platform, base_root, "python3", "-c",
                     "import sys; print('%d.%d' % sys.version_info[:2])", capture=True).strip()
        wheelhouse = run(repo / "scripts/wheelhouse.sh", python, arch, capture=True).strip()
        wheelhouse = str((repo / wheelhouse).resolve())
        base, onbuild = local_tag(version, "", arch), local_tag(version, "-onbuild", arch)
        common = ("podman", "build", "--format", "docker", "--network", "none", "--platform", platform)
        run(*common, "--file", repo / "Dockerfile", "--tag", base,
            "--volume", f"{wheelhouse}:/wheelhouse:ro",
            "--build-arg", "PIP_NO_INDEX=1", "--build-arg", "PIP_FIND_LINKS=/wheelhouse",
            "--build-arg", f"BASE_IMAGE={base_root}", "--build-arg", f"VERSION={version}",
            "--build-arg", f"REVISION={revision}", repo)
        run(*common, "--file", repo / "Dockerfile.onbuild", "--tag", onbuild, "--build-arg", f"BASE={base}",
            repo)
        for image in (base, onbuild):
            made = run("podman", "image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", image,
                       capture=True).strip()
            if made != platform:
                raise ReleaseError(f"{image} was built for {made}, not {platform}")
        built[""][arch], built["-onbuild"][arch] = base, onbuild
    return built


def push_image(local: str, registry: Registry, tags: Sequence[str], scratch: Path) -> tuple[str, str]:
    """Push one image under each tag; returns (reference by digest, digest), the digest read
    back from the registry so that release.json names what the registry serves."""
    repository = registry.image("base")
    tls = f"--tls-verify={'false' if registry.plain_http else 'true'}"
    digests = set()
    for tag in tags:
        digest_file = scratch / f"digest-{tag}"
        run("podman", "push", tls, "--digestfile", digest_file, local, f"docker://{repository}:{tag}")
        pushed = digest_file.read_text().strip()
        served = crane("digest", f"{repository}:{tag}", registry=registry)
        if served != pushed:
            raise ReleaseError(f"{repository}:{tag}: pushed {pushed}, the registry serves {served}")
        digests.add(served)
    if len(digests) != 1:
        raise ReleaseError(f"{repository}: the tags {list(tags)} point at different digests {digests}")
    digest = digests.pop()
    return f"{repository}@{digest}", digest


def push_index(images: dict[str, str], registry: Registry, tags: Sequence[str]) -> tuple[str, str]:
    """One OCI image index over the per-platform images ({arch: reference by digest}), pushed
    under each tag; returns (reference by digest, digest). crane fills each entry's platform
    from the image's config, and the index is read back to check that it lists exactly these."""
    repository = registry.image("base")
    manifests = [flag for reference in images.values() for flag in ("-m", reference)]
    crane("index", "append", *manifests, "-t", f"{repository}:{tags[0]}", registry=registry)
    digest = crane("digest", f"{repository}:{tags[0]}", registry=registry)
    for tag in tags[1:]:
        crane("tag", f"{repository}@{digest}", tag, registry=registry)
    for tag in tags:
        served = crane("digest", f"{repository}:{tag}", registry=registry)
        if served != digest:
            raise ReleaseError(f"{repository}:{tag} serves {served}, not the index {digest}")
    index = crane_json("manifest", f"{repository}@{digest}", registry=registry)
    listed = {entry["platform"]["architecture"]: f"{repository}@{entry['digest']}"
              for entry in index["manifests"]}
    if index.get("mediaType") != "application/vnd.oci.image.index.v1+json" or listed != images:
        raise ReleaseError(f"{repository}@{digest} lists {listed}, not {images}")
    return f"{repository}@{digest}", digest


# Run inside an image: the SBOM of its servestatic venv, by the same code that writes the
# buildpack layer's (servestatic/platform/sbom.py), from the metadata pip installed, of
# the Debian packages of its base, from dpkg's status file, and of the interpreter when
# dpkg did not install it (a base built from the official python images).
_SBOM_IN_IMAGE = """
import glob, json, platform, sys
from pathlib import Path
from servestatic.platform import sbom
site = Path(glob.glob("/opt/servestatic/lib/python3*/site-packages")[0])
packages = sbom.installed_packages(site, []) + sbom.debian_packages(
    Path("/var/lib/dpkg/status").read_text(), Path("/etc/os-release").read_text()
) + sbom.unpackaged_python(sys.executable, platform.python_version(), Path("/var/lib/dpkg/info"))
print(json.dumps({"cdx": sbom.cyclonedx(sys.argv[1], packages), "spdx": sbom.spdx(sys.argv[1], packages)}))
"""


def sbom_documents(local: str, subject: str, platform: str) -> dict:
    """{"cdx": ..., "spdx": ...}: the SBOMs of one image's venv, made inside the image (an arm64
    one under emulation) by servestatic/platform/sbom.py, with `subject` naming the image."""
    output = run("podman", "run", "--rm", "--network", "none", "--platform", platform,
                 "--entrypoint", "/opt/servestatic/bin/python", local, "-c", _SBOM_IN_IMAGE, subject,
                 capture=True)
    return json.loads(output)
