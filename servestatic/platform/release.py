"""A release: every artifact of one version, built, pushed, checked and listed.

``scripts/release`` runs this module (``python -m servestatic.platform.release``).
It builds, from the tree at ``servestatic.__version__``:

* the wheel and sdist (``python -m build``), checked with ``twine check`` and the
  wheel installed in a fresh venv, where ``servestatic version`` must answer;
* ``servestatic/base`` and its onbuild variant for linux/amd64 and linux/arm64 (arm64
  under emulation), built the way the image tests build them (a debootstrapped base, a
  wheelhouse, ``--network none``), each pair assembled into one OCI image index (images.py);
* an SBOM (CycloneDX and SPDX) of each image's Python packages, as files and attached
  to the image in the registry as OCI referrers (referrers.py);
* cosign signatures over each index, verified from the registry (signing.py);
* the buildpack as a multi-platform image (``pack buildpack package --publish``) and as
  ``.cnb`` files;
* the Helm chart as a ``.tgz``, pushed as an OCI artifact;
* an in-toto provenance statement over all of them (unsigned);

pushes the images, the buildpack and the chart to ``SERVESTATIC_RELEASE_REGISTRY``
(``host[/namespace]``) or, with none, to a throwaway ``crane registry serve`` on
127.0.0.1, reads every digest back from the registry, and writes ``dist/SHA256SUMS``
and ``dist/release.json``.
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

from servestatic.platform import images, referrers, signing, versions
from servestatic.platform.cnbpackage import declared_targets
from servestatic.platform.oci import PACK, REGISTRY_TOOLS, Registry, ReleaseError, crane, crane_json, run


@dataclass
class Artifact:
    """One line of dist/release.json: what was published, where, and its digest."""

    name: str
    kind: str  # wheel, sdist, image, index, sbom, sbom-referrer, signature, buildpack, chart, provenance
    reference: str  # a path relative to dist/ for files, a registry reference for the rest
    digest: str  # sha256:<hex>, of the file or of the manifest in the registry
    platform: str  # linux/ARCH for an image, both (comma-separated) for an index, "any" for the rest
    tags: list[str] = field(default_factory=list)


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


def image_sboms(local: str, subject: str, stem: str, dist: Path, platform: str) -> list[Artifact]:
    """CycloneDX and SPDX documents of the Python packages in one image, as files under
    dist/sbom/ named for the image; `subject` (the pushed reference by digest) names the image.
    An arm64 image answers under emulation (images.sbom_documents)."""
    documents = images.sbom_documents(local, subject, platform)
    out = dist / "sbom"
    out.mkdir(exist_ok=True)
    artifacts = []
    for kind, suffix in (("cdx", ".cdx.json"), ("spdx", ".spdx.json")):
        path = out / (stem + suffix)
        path.write_text(json.dumps(documents[kind], indent=2) + "\n")
        artifacts.append(Artifact(f"SBOM ({'CycloneDX' if kind == 'cdx' else 'SPDX'}) of {subject}",
                                  "sbom", str(path.relative_to(dist)), file_digest(path), platform))
    return artifacts


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


def buildpack_artifacts(repo: Path, dist: Path, registry: Registry, version: str) -> list[Artifact]:
    """The buildpack, packaged by pack: one image per target of buildpack.toml under one index,
    pushed as ``REGISTRY/buildpack:X.Y.Z``, and one ``.cnb`` file per target (pack writes
    ``servestatic-linux-ARCH.cnb`` when buildpack.toml declares targets).

    The buildpack is scripts and wheels for every target (buildpack/package downloads them),
    so no emulation is needed: each target's image differs only in its config.
    """
    buildpack = repo / "buildpack"
    run(buildpack / "package")
    targets = [flag for os_, arch in declared_targets(buildpack) for flag in ("--target", f"{os_}/{arch}")]
    repository = registry.image("buildpack")
    run(PACK, "buildpack", "package", f"{repository}:{version}", "--path", buildpack, "--publish", *targets)
    digest = crane("digest", f"{repository}:{version}", registry=registry)
    index = crane_json("manifest", f"{repository}@{digest}", registry=registry)
    platforms = [f"{entry['platform']['os']}/{entry['platform']['architecture']}"
                 for entry in index["manifests"]]
    artifacts = [Artifact("servestatic buildpack (image index)", "buildpack", f"{repository}@{digest}",
                          digest, ",".join(platforms), [version])]
    out = dist / "buildpack"
    out.mkdir()
    run(PACK, "buildpack", "package", out / "servestatic.cnb", "--format", "file", "--path", buildpack)
    for path in sorted(out.glob("*.cnb")):
        platform = path.stem.removeprefix("servestatic-").replace("-", "/")
        artifacts.append(Artifact(f"servestatic buildpack ({platform}, .cnb)", "buildpack",
                                  str(path.relative_to(dist)), file_digest(path), platform))
    if sorted(item.platform for item in artifacts[1:]) != sorted(platforms):
        raise ReleaseError(f"the .cnb files {[path.name for path in out.iterdir()]} do not match "
                           f"the index's {platforms}")
    return artifacts


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


def release_images(repo: Path, dist: Path, registry: Registry, version: str, revision: str,
                   signer: signing.Signer) -> list[Artifact]:
    """Build, push, index, describe (SBOMs as files and referrers) and sign both images."""
    local_images = images.build_images(repo, version, revision)
    short = versions.image_tag(version)
    artifacts: list[Artifact] = []
    with tempfile.TemporaryDirectory(prefix="servestatic-release-") as scratch:
        for suffix, per_arch in local_images.items():
            name = "servestatic/base" + (" (onbuild)" if suffix else "")
            pushed: dict[str, str] = {}
            for arch, local in per_arch.items():
                platform, tag = f"linux/{arch}", f"{version}{suffix}-{arch}"
                reference, digest = images.push_image(local, registry, [tag], Path(scratch))
                pushed[arch] = reference
                artifacts.append(Artifact(f"{name}, {platform}", "image", reference, digest, platform, [tag]))
                sboms = image_sboms(local, reference, f"base{suffix}-{arch}", dist, platform)
                artifacts += sboms
                for sbom in sboms:
                    attached, attached_digest = referrers.attach(reference, dist / sbom.reference, registry)
                    artifacts.append(Artifact(f"{sbom.name.split(' of ')[0]} attached to {reference}",
                                              "sbom-referrer", attached, attached_digest, platform))
            tags = [version + suffix, short + suffix]
            index, index_digest = images.push_index(pushed, registry, tags)
            artifacts.append(Artifact(f"{name} (image index)", "index", index, index_digest,
                                      images.INDEX_PLATFORM, tags))
            signing.sign(index, signer, registry)
            for reference in (index, *pushed.values()):  # --recursive signed each image too
                signing.verify(reference, signer, registry)
            signature = signing.signature_reference(index, registry)
            signature_digest = crane("digest", signature, registry=registry)
            artifacts.append(Artifact(f"cosign signature of {index}", "signature",
                                      f"{signature}@{signature_digest}", signature_digest,
                                      images.INDEX_PLATFORM))
    return artifacts


def release(repo: Path, dist: Path, registry: Registry, revision: str, dirty: bool,
            environ: dict[str, str], throwaway: bool = False) -> Path:
    """Build, push and check every artifact; returns the path of release.json."""
    version = versions.declared_version()
    if dist.exists() and any(dist.iterdir()) and not (dist / "release.json").exists():
        # Emptied first, so only a directory an earlier release wrote (or an empty one) is taken.
        raise ReleaseError(f"{dist} holds files but no release.json: not emptying it")
    shutil.rmtree(dist, ignore_errors=True)
    dist.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="servestatic-release-keys-") as keys:
        # Before anything is built: a release that could not be signed stops here.
        signer = signing.signer_from_environment(environ, throwaway, Path(keys), dist)
        artifacts = python_artifacts(repo, dist, version)
        log_in(registry, environ)
        artifacts += release_images(repo, dist, registry, version, revision, signer)
    artifacts += buildpack_artifacts(repo, dist, registry, version)
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
                listing = release(repo, options.dist.resolve(), local, revision, dirty, environ,
                                  throwaway=True)
    except ReleaseError as error:
        print(f"scripts/release: {error}", file=sys.stderr)
        return 1
    print(listing)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
