"""A release: every artifact of one version, built, pushed, checked and listed.

``scripts/release`` runs this module (``python -m servestatic.platform.release``).
It builds, from the tree at ``servestatic.__version__``:

* the wheel and sdist (``python -m build``), checked with ``twine check`` and the
  wheel installed in a fresh venv, where ``servestatic version`` must answer;
* ``servestatic/base`` and its onbuild variant for linux/amd64, built the way the
  image tests build them (a debootstrapped base, a wheelhouse, ``--network none``);
* an SBOM (CycloneDX and SPDX) of each image's Python packages, as files;
* the Helm chart as a ``.tgz``, pushed as an OCI artifact;
* an in-toto provenance statement over all of them (unsigned);

pushes the images and the chart to ``SERVESTATIC_RELEASE_REGISTRY`` (``host[/namespace]``)
or, with none, to a throwaway ``crane registry serve`` on 127.0.0.1, reads every
digest back from the registry, and writes ``dist/SHA256SUMS`` and ``dist/release.json``.
Logic lives here rather than in the shell script so that it is typed, tested and
readable in one place, like the rest of the project's platform code.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from servestatic.platform import versions

IMAGE_PLATFORM = "linux/amd64"
REGISTRY_TOOLS = Path(".cache/release/bin")


class ReleaseError(Exception):
    """A release cannot go on; the message says why, in one line."""


@dataclass
class Artifact:
    """One line of dist/release.json: what was published, where, and its digest."""

    name: str
    kind: str  # wheel, sdist, image, sbom, chart, provenance
    reference: str  # a path relative to dist/ for files, a registry reference for the rest
    digest: str  # sha256:<hex>, of the file or of the manifest in the registry
    platform: str  # linux/amd64 for images, "any" for pure-Python files and the chart
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Registry:
    """Where to push: ``host[/namespace]``, and whether it speaks plain HTTP (a local one)."""

    address: str
    plain_http: bool

    def image(self, name: str) -> str:
        return f"{self.address}/{name}"


def run(*command: str | Path, capture: bool = False, input_text: str | None = None) -> str:
    """Run one step, echoing it, and stop the release with its output when it fails."""
    printable = " ".join(str(part) for part in command)
    print(f"release: {printable}", file=sys.stderr, flush=True)
    result = subprocess.run([str(part) for part in command], text=True, input=input_text,
                            stdout=subprocess.PIPE if capture else None,
                            stderr=subprocess.PIPE if capture else None)
    if result.returncode != 0:
        output = ((result.stdout or "") + (result.stderr or ""))[-3000:]
        raise ReleaseError(f"{printable} exited {result.returncode}\n{output}")
    return result.stdout or ""


def file_digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def check_tree(repo: Path, allow_dirty: bool, tag: str | None) -> tuple[str, bool]:
    """The revision to release, refusing disagreeing versions, a wrong tag, or (unless
    allowed) uncommitted changes; returns (revision, dirty)."""
    wrong = versions.disagreements(repo)
    if wrong:
        raise ReleaseError("the version's copies disagree: " + "; ".join(wrong))
    version = versions.declared_version()
    if tag and tag != f"v{version}":
        raise ReleaseError(f"tag {tag} is not v{version} (servestatic.__version__)")
    revision = run("git", "-C", repo, "rev-parse", "HEAD", capture=True).strip()
    dirty = bool(run("git", "-C", repo, "status", "--porcelain", capture=True).strip())
    if dirty and not allow_dirty:
        raise ReleaseError("the tree has uncommitted changes (--allow-dirty to release it anyway)")
    return revision, dirty


def python_artifacts(repo: Path, dist: Path, version: str) -> list[Artifact]:
    """Wheel and sdist, checked by twine, the wheel installed in a fresh venv and run."""
    out = dist / "python"
    run(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", out, repo)
    files = sorted(out.iterdir())
    run(sys.executable, "-m", "twine", "check", "--strict", *files)
    wheels = [path for path in files if path.suffix == ".whl"]
    sdists = [path for path in files if path.name.endswith(".tar.gz")]
    if len(wheels) != 1 or len(sdists) != 1:
        raise ReleaseError(f"expected one wheel and one sdist in {out}, found {[p.name for p in files]}")
    with tempfile.TemporaryDirectory(prefix="servestatic-release-venv-") as scratch:
        venv = Path(scratch) / "venv"
        run(sys.executable, "-m", "venv", venv)
        run(venv / "bin/python", "-m", "pip", "install", "--quiet", wheels[0])
        answered = run(venv / "bin/servestatic", "version", capture=True).strip()
        if answered != version:
            raise ReleaseError(f"the installed wheel says version {answered}, not {version}")
    return [Artifact(path.name, kind, str(path.relative_to(dist)), file_digest(path), "any")
            for path, kind in ((wheels[0], "wheel"), (sdists[0], "sdist"))]


def build_images(repo: Path, version: str, revision: str) -> dict[str, str]:
    """Build the base image and its onbuild variant; returns {name: local tag}.

    The base root and the wheelhouse come from the same scripts the image tests use,
    so a release builds what the tests ran (no registry or index inside the build).
    """
    base_root = run(repo / "scripts/image-base.sh", capture=True).strip()
    python = run("podman", "run", "--rm", base_root, "python3", "-c",
                 "import sys; print('%d.%d' % sys.version_info[:2])", capture=True).strip()
    wheelhouse = (repo / run(repo / "scripts/wheelhouse.sh", python, capture=True).strip()).resolve()
    base = f"localhost/servestatic/base:{version}"
    onbuild = f"localhost/servestatic/base:{version}-onbuild"
    common = ("podman", "build", "--format", "docker", "--network", "none", "--platform", IMAGE_PLATFORM)
    run(*common, "--file", repo / "Dockerfile", "--tag", base,
        "--volume", f"{wheelhouse}:/wheelhouse:ro",
        "--build-arg", "PIP_NO_INDEX=1", "--build-arg", "PIP_FIND_LINKS=/wheelhouse",
        "--build-arg", f"BASE_IMAGE={base_root}", "--build-arg", f"VERSION={version}",
        "--build-arg", f"REVISION={revision}", repo)
    run(*common, "--file", repo / "Dockerfile.onbuild", "--tag", onbuild, "--build-arg", f"BASE={base}", repo)
    return {"servestatic/base": base, "servestatic/base (onbuild)": onbuild}


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


# Run inside an image: the SBOM of its servestatic venv, by the same code that writes the
# buildpack layer's (servestatic/platform/sbom.py), from the metadata pip installed.
_SBOM_IN_IMAGE = """
import glob, json, sys
from pathlib import Path
from servestatic.platform import sbom
site = Path(glob.glob("/opt/servestatic/lib/python3*/site-packages")[0])
packages = sbom.installed_packages(site, [])
print(json.dumps({"cdx": sbom.cyclonedx(sys.argv[1], packages), "spdx": sbom.spdx(sys.argv[1], packages)}))
"""


def image_sboms(local: str, subject: str, stem: str, dist: Path) -> list[Artifact]:
    """CycloneDX and SPDX documents of the Python packages in one image, as files under
    dist/sbom/ named for the image; `subject` (the pushed reference by digest) names the image."""
    output = run("podman", "run", "--rm", "--network", "none", "--entrypoint", "/opt/servestatic/bin/python",
                 local, "-c", _SBOM_IN_IMAGE, subject, capture=True)
    documents = json.loads(output)
    out = dist / "sbom"
    out.mkdir(exist_ok=True)
    artifacts = []
    for kind, suffix in (("cdx", ".cdx.json"), ("spdx", ".spdx.json")):
        path = out / (stem + suffix)
        path.write_text(json.dumps(documents[kind], indent=2) + "\n")
        artifacts.append(Artifact(f"SBOM ({'CycloneDX' if kind == 'cdx' else 'SPDX'}) of {subject}",
                                  "sbom", str(path.relative_to(dist)), file_digest(path), IMAGE_PLATFORM))
    return artifacts


def crane(*args: str, registry: Registry) -> str:
    insecure = ["--insecure"] if registry.plain_http else []
    return run(REGISTRY_TOOLS / "crane", *args, *insecure, capture=True).strip()


def push_chart(repo: Path, dist: Path, registry: Registry, version: str) -> Artifact:
    """Package the chart, push it as an OCI artifact, pull it back and compare."""
    import helm_python  # a test extra, like the chart tests; only a release needs it here

    archive = Path(helm_python.package(repo / "helm/servestatic", destination=dist / "chart"))
    remote = f"oci://{registry.address}/charts"
    pushed = helm_python.push(archive, remote, plain_http=registry.plain_http)
    print(f"release: pushed chart {archive.name} to {remote}: {pushed}", file=sys.stderr)
    reference = f"{registry.address}/charts/servestatic"
    digest = crane("digest", f"{reference}:{version}", registry=registry)
    with tempfile.TemporaryDirectory(prefix="servestatic-release-chart-") as scratch:
        helm_python.pull(f"oci://{reference}", version=version, destination=scratch,
                         plain_http=registry.plain_http)
        pulled = Path(scratch) / archive.name
        if file_digest(pulled) != file_digest(archive):
            raise ReleaseError(f"the chart pulled from {reference}:{version} is not the one pushed")
    return Artifact("servestatic (Helm chart)", "chart", f"oci://{reference}:{version}@{digest}", digest,
                    "any", [version])


@contextlib.contextmanager
def throwaway_registry(scratch: Path) -> Iterator[Registry]:
    """``crane registry serve`` on a free port of 127.0.0.1, stopped when the release ends."""
    log = scratch / "registry.log"
    with log.open("w") as out:
        server = subprocess.Popen([str(REGISTRY_TOOLS / "crane"), "registry", "serve", "--address",
                                   "127.0.0.1:0"],  # in memory: --disk answers podman's
                                  # chunked uploads with 500 (crane 0.20.2)
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        port = None
        while port is None:  # it logs its port once it listens; no fixed wait
            found = re.search(r"serving on port (\d+)", log.read_text())
            if found:
                port = found.group(1)
            elif server.poll() is not None:
                raise ReleaseError(f"crane registry serve exited: {log.read_text()[-1000:]}")
            else:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    server.wait(timeout=0.05)
        print(f"release: no SERVESTATIC_RELEASE_REGISTRY: a throwaway registry on 127.0.0.1:{port}",
              file=sys.stderr)
        yield Registry(f"127.0.0.1:{port}/servestatic", plain_http=True)
    finally:
        server.terminate()
        server.wait(timeout=10)


def registry_from_environment(environ: dict[str, str]) -> Registry | None:
    """SERVESTATIC_RELEASE_REGISTRY (host[/namespace]); plain HTTP only for a loopback address."""
    address = environ.get("SERVESTATIC_RELEASE_REGISTRY", "").strip().rstrip("/")
    if not address:
        return None
    host = address.split("/")[0]
    return Registry(address, plain_http=host.startswith(("127.0.0.1:", "localhost:")))


def log_in(registry: Registry, environ: dict[str, str]) -> None:
    """Log podman and crane in when the environment carries credentials (the pipeline's secrets)."""
    username = environ.get("SERVESTATIC_RELEASE_USERNAME")
    password = environ.get("SERVESTATIC_RELEASE_PASSWORD")
    if not (username and password):
        return
    host = registry.address.split("/")[0]
    run("podman", "login", "--username", username, "--password-stdin", host, input_text=password)
    run(REGISTRY_TOOLS / "crane", "auth", "login", host, "--username", username, "--password-stdin",
        input_text=password)


def provenance(artifacts: list[Artifact], version: str, revision: str, dirty: bool, command: list[str],
               environ: dict[str, str]) -> dict:
    """An in-toto Statement (SLSA provenance v1 predicate) over every artifact: the source
    revision and the command that built them. Unsigned: it records, it does not attest."""
    builder = "local"
    if environ.get("GITHUB_RUN_ID"):
        builder = (f"{environ.get('GITHUB_SERVER_URL', 'https://github.com')}/"
                   f"{environ.get('GITHUB_REPOSITORY', '')}/actions/runs/{environ['GITHUB_RUN_ID']}")
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": item.reference, "digest": {"sha256": item.digest.removeprefix("sha256:")}}
                    for item in artifacts],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://github.com/servestatic/servestatic/blob/main/docs/release.md",
                "externalParameters": {"command": command, "version": version, "dirty": dirty},
                "resolvedDependencies": [{"uri": "git+https://github.com/servestatic/servestatic",
                                          "digest": {"gitCommit": revision}}],
            },
            "runDetails": {"builder": {"id": builder}},
        },
    }


def write_listing(dist: Path, version: str, revision: str, dirty: bool, registry: Registry,
                  artifacts: list[Artifact]) -> None:
    """dist/SHA256SUMS over the files under dist/, and dist/release.json over everything."""
    files = sorted(path for path in dist.rglob("*") if path.is_file() and path.parent != dist)
    (dist / "SHA256SUMS").write_text("".join(
        f"{file_digest(path).removeprefix('sha256:')}  {path.relative_to(dist)}\n" for path in files))
    listing = {"version": version, "revision": revision, "dirty": dirty, "registry": registry.address,
               "artifacts": [asdict(artifact) for artifact in artifacts]}
    (dist / "release.json").write_text(json.dumps(listing, indent=2) + "\n")


def release(repo: Path, dist: Path, registry: Registry, revision: str, dirty: bool,
            environ: dict[str, str]) -> Path:
    """Build, push and check every artifact; returns the path of release.json."""
    version = versions.declared_version()
    if dist.exists() and any(dist.iterdir()) and not (dist / "release.json").exists():
        # Emptied first, so only a directory an earlier release wrote (or an empty one) is taken.
        raise ReleaseError(f"{dist} holds files but no release.json: not emptying it")
    shutil.rmtree(dist, ignore_errors=True)
    dist.mkdir(parents=True)
    artifacts = python_artifacts(repo, dist, version)
    local_images = build_images(repo, version, revision)
    log_in(registry, environ)
    short = versions.image_tag(version)
    with tempfile.TemporaryDirectory(prefix="servestatic-release-") as scratch:
        for name, local in local_images.items():
            suffix = "-onbuild" if "onbuild" in name else ""
            tags = [version + suffix, short + suffix]
            reference, digest = push_image(local, registry, tags, Path(scratch))
            artifacts.append(Artifact(name, "image", reference, digest, IMAGE_PLATFORM, tags))
            artifacts += image_sboms(local, reference, "base" + suffix, dist)
    artifacts.append(push_chart(repo, dist, registry, version))
    statement = dist / "provenance" / "release.intoto.json"
    statement.parent.mkdir()
    command = ["scripts/release", *sys.argv[1:]]
    statement.write_text(json.dumps(provenance(artifacts, version, revision, dirty, command, environ),
                                    indent=2) + "\n")
    artifacts.append(Artifact("provenance (in-toto, SLSA v1)", "provenance",
                              str(statement.relative_to(dist)), file_digest(statement), "any"))
    write_listing(dist, version, revision, dirty, registry, artifacts)
    return dist / "release.json"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/release", description=__doc__.split("\n\n")[0])
    parser.add_argument("--allow-dirty", action="store_true",
                        help="release a tree with uncommitted changes (marked dirty in release.json)")
    parser.add_argument("--dist", type=Path, default=Path("dist"),
                        help="where the files and release.json go (emptied first; default dist/)")
    options = parser.parse_args(argv)
    repo = Path.cwd()
    environ = dict(os.environ)
    try:
        revision, dirty = check_tree(repo, options.allow_dirty, environ.get("SERVESTATIC_RELEASE_TAG"))
        registry = registry_from_environment(environ)
        if registry is not None:
            listing = release(repo, options.dist.resolve(), registry, revision, dirty, environ)
        else:
            with tempfile.TemporaryDirectory(prefix="servestatic-registry-") as scratch, \
                    throwaway_registry(Path(scratch)) as local:
                listing = release(repo, options.dist.resolve(), local, revision, dirty, environ)
    except ReleaseError as error:
        print(f"scripts/release: {error}", file=sys.stderr)
        return 1
    print(listing)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
