"""Releases: the one version and its copies, the changelog, the hosted pipeline's
workflow files (actionlint, zizmor), and scripts/release end to end against a
throwaway local registry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import servestatic
from servestatic.platform import versions
from tests.helmchart import objects
from tests.support import EXAMPLE_SITE, REPO, needs, needs_tool, wait_for
from tests.support.server import free_port
from tests.support.site import copy_site

WORKFLOWS = REPO / ".github" / "workflows"
TOOLS = REPO / ".cache" / "release" / "bin"
VENV_BIN = REPO / ".venv" / "bin"


def release_tool(name: str) -> Path:
    """A tool scripts/install/release-tools.sh installs, or skip (fail under CI=true)."""
    for place in (TOOLS / name, VENV_BIN / name):
        if place.exists():
            return place
    needs(False, f"{name} is not installed (scripts/install/release-tools.sh installs it)")
    raise AssertionError("unreachable")


# --- one version ---------------------------------------------------------------


def test_every_copy_of_the_version_agrees() -> None:
    assert versions.disagreements(REPO) == []
    carried = versions.carried_versions(REPO)
    assert carried["buildpack/buildpack.toml"] == servestatic.__version__
    assert carried["Chart.yaml version"] == carried["Chart.yaml appVersion"] == servestatic.__version__


def test_a_forgotten_copy_is_reported(tmp_path: Path) -> None:
    copies = ("Dockerfile", "Dockerfile.onbuild", "buildpack/buildpack.toml", "helm/servestatic/Chart.yaml")
    for name in copies:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, tmp_path / name)
    chart = tmp_path / "helm/servestatic/Chart.yaml"
    chart.write_text(re.sub(r"(?m)^appVersion: .*$", 'appVersion: "9.9.9"', chart.read_text()))
    assert versions.disagreements(tmp_path) == [
        f"Chart.yaml appVersion says 9.9.9, expected {servestatic.__version__} "
        f"(servestatic.__version__ {servestatic.__version__})"
    ]


def test_the_package_metadata_carries_the_version() -> None:
    import importlib.metadata

    assert importlib.metadata.version("servestatic-origin") == servestatic.__version__


def test_changelog_is_keep_a_changelog_and_names_the_version() -> None:
    text = (REPO / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog\n")
    assert "keepachangelog.com" in text
    headings = re.findall(r"(?m)^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text)
    assert headings[0] == ("Unreleased", "")
    released = [name for name, _ in headings[1:]]
    assert servestatic.__version__ in released
    for name in [name for name, _ in headings]:  # every heading has its link at the bottom
        assert re.search(rf"(?m)^\[{re.escape(name)}\]: https://", text), name


# --- the hosted pipeline --------------------------------------------------------

SEVERITIES = ["Unknown", "Informational", "Low", "Medium", "High"]
BAD_WORKFLOW = """\
on: push
jobs:
  a:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.head_commit.message }}"
"""


def zizmor_findings(*paths: Path) -> list[tuple[str, str]]:
    """zizmor's findings (audit, severity), offline, every persona's: the auditor sees most."""
    zizmor = release_tool("zizmor")
    result = subprocess.run([zizmor, "--offline", "--persona", "auditor", "--format", "json", *paths],
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode in (0, 11, 12, 13, 14), result.stderr[-2000:]  # 1x: findings at severity x
    return [(found["ident"], found["determinations"]["severity"]) for found in json.loads(result.stdout)]


def test_workflows_exist_and_run_the_project_scripts() -> None:
    ci = (WORKFLOWS / "ci.yml").read_text()
    release = (WORKFLOWS / "release.yml").read_text()
    assert ".ci/run" in ci and "scripts/test" in (REPO / ".ci/run").read_text()
    assert "scripts/release" in release
    assert re.search(r'(?m)^    tags:\n      - "v\*"$', release)
    for text in (ci, release):
        assert re.search(r"(?m)^permissions: \{\}$", text)  # nothing by default; each job asks
        for action in re.findall(r"uses: (\S+)", text):
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", action), action


def test_workflows_pass_actionlint(tmp_path: Path) -> None:
    actionlint = release_tool("actionlint")
    result = subprocess.run([actionlint, "-no-color"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    (tmp_path / "bad.yml").write_text(BAD_WORKFLOW.replace("runs-on: ubuntu-24.04", "runs-on: [}"))
    assert subprocess.run([actionlint, tmp_path / "bad.yml"], capture_output=True).returncode == 1


def test_workflows_have_no_zizmor_finding_above_low(tmp_path: Path) -> None:
    found = zizmor_findings(*sorted(WORKFLOWS.glob("*.yml")))
    assert [item for item in found if SEVERITIES.index(item[1]) > SEVERITIES.index("Low")] == []
    # The check can fail: an unpinned action and a template injection are found.
    (tmp_path / "bad.yml").write_text(BAD_WORKFLOW)
    bad = dict(zizmor_findings(tmp_path / "bad.yml"))
    assert bad["template-injection"] == "High"
    assert bad["unpinned-uses"] == "High"


# --- scripts/release, end to end against a local registry ---------------------------


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A `crane registry serve` of the test's own, so the pushed artifacts outlive the release."""
    crane = release_tool("crane")
    log = tmp_path_factory.mktemp("registry") / "log"
    with log.open("w") as out:
        server = subprocess.Popen([crane, "registry", "serve", "--address", "127.0.0.1:0"],
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        port = wait_for(lambda: re.search(r"serving on port (\d+)", log.read_text()), 10,
                        lambda: f"crane registry serve to listen: {log.read_text()}").group(1)
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def scripts_release(dist: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    """scripts/release --allow-dirty (the tests run on working trees), files into `dist`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SERVESTATIC_RELEASE_")}
    return subprocess.run([REPO / "scripts/release", "--allow-dirty", "--dist", dist], cwd=REPO,
                          env={**env, **environ}, capture_output=True, text=True, timeout=1200)


def needs_emulation() -> None:
    """arm64 binaries run here (scripts/install/qemu.sh registers qemu-aarch64), or skip."""
    registered = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
    needs(registered.exists() and "enabled" in registered.read_text(),
          "qemu-aarch64 is not registered with binfmt_misc (scripts/install/qemu.sh does it)")


def key_pair(directory: Path, password: str) -> Path:
    """A cosign key pair in `directory` (cosign.key, cosign.pub); returns the private key's path."""
    made = subprocess.run([release_tool("cosign"), "generate-key-pair"], cwd=directory, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "COSIGN_PASSWORD": password})
    assert made.returncode == 0, made.stderr
    return directory / "cosign.key"


@pytest.fixture(scope="module")
def released(registry: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """scripts/release against the test's registry, signing with a key given in the environment."""
    needs_tool("podman")
    needs_emulation()
    for name in ("crane", "oras", "cosign"):
        release_tool(name)
    needs((REPO / ".cache/cnb/bin/pack").exists(), "pack is not installed (scripts/install/lifecycle.sh)")
    dist = tmp_path_factory.mktemp("dist")
    key = key_pair(tmp_path_factory.mktemp("key"), "release-test")
    result = scripts_release(dist, SERVESTATIC_RELEASE_REGISTRY=f"{registry}/servestatic",
                             SERVESTATIC_RELEASE_COSIGN_KEY=str(key), COSIGN_PASSWORD="release-test")
    assert result.returncode == 0, result.stderr[-4000:]
    return dist, json.loads((dist / "release.json").read_text())


def by_kind(listing: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [artifact for artifact in listing["artifacts"] if artifact["kind"] == kind]


def crane_json(*args: str) -> dict[str, Any]:
    result = subprocess.run([release_tool("crane"), *args, "--insecure"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def run_tool(name: str, *args: str | Path, **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([release_tool(name), *args], capture_output=True, text=True, timeout=120, **options)


ARCHES = ["amd64", "arm64"]


def test_release_lists_every_artifact_and_its_checksum(released: tuple[Path, dict[str, Any]],
                                                      registry: str) -> None:
    dist, listing = released
    version = servestatic.__version__
    assert listing["version"] == version
    per_image = ["image", "sbom", "sbom", "sbom-referrer", "sbom-referrer"]
    per_variant = per_image * len(ARCHES) + ["index", "signature"]
    assert [artifact["kind"] for artifact in listing["artifacts"]] == [
        "wheel", "sdist", *per_variant, *per_variant, "buildpack", "buildpack", "buildpack", "chart",
        "provenance"]
    files = [item for kind in ("wheel", "sdist", "sbom", "buildpack", "provenance")
             for item in by_kind(listing, kind) if not item["reference"].startswith(registry)]
    for artifact in by_kind(listing, "wheel") + by_kind(listing, "sdist"):
        assert version in artifact["name"]
    for artifact in files:
        assert "sha256:" + hashlib.sha256((dist / artifact["reference"]).read_bytes()).hexdigest() \
            == artifact["digest"]
    checked = subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=dist,
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert sorted(line.split()[1] for line in (dist / "SHA256SUMS").read_text().splitlines()) == sorted(
        [f"chart/servestatic-{version}.tgz"] + [artifact["reference"] for artifact in files])
    pushed = [item for item in listing["artifacts"] if item not in files]
    for artifact in pushed:
        assert registry in artifact["reference"]
        assert artifact["reference"].endswith("@" + artifact["digest"])
    for artifact in pushed:  # each digest is what the registry serves for it
        assert run_tool("crane", "digest", artifact["reference"].removeprefix("oci://"), "--insecure"
                        ).stdout.strip() == artifact["digest"]


def test_images_form_one_index_per_variant_with_both_platforms(released: tuple[Path, dict[str, Any]],
                                                               registry: str) -> None:
    _, listing = released
    version = servestatic.__version__
    short = versions.image_tag(version)
    indexes = by_kind(listing, "index")
    images = by_kind(listing, "image")
    assert [index["tags"] for index in indexes] == [[version, short],
                                                    [f"{version}-onbuild", f"{short}-onbuild"]]
    assert [image["platform"] for image in images] == ["linux/amd64", "linux/arm64"] * 2
    for number, index in enumerate(indexes):
        manifest = crane_json("manifest", index["reference"])
        assert manifest["mediaType"] == "application/vnd.oci.image.index.v1+json"
        platforms = {f"{entry['platform']['os']}/{entry['platform']['architecture']}": entry["digest"]
                     for entry in manifest["manifests"]}
        mine = images[2 * number:2 * number + 2]
        assert platforms == {image["platform"]: image["digest"] for image in mine}
        for tag in index["tags"]:  # every tag names the index
            assert run_tool("crane", "digest", f"{registry}/servestatic/base:{tag}", "--insecure"
                            ).stdout.strip() == index["digest"]
        for image in mine:
            config = crane_json("config", image["reference"])
            assert f"{config['os']}/{config['architecture']}" == image["platform"]
            labels = config["config"]["Labels"]
            assert labels["org.opencontainers.image.version"] == version
            assert labels["org.opencontainers.image.revision"] == listing["revision"]
            assert config["config"]["Healthcheck"]["Test"][0] == "CMD"  # docker format kept it


def answered_200(url: str) -> httpx.Response | None:
    try:
        response = httpx.get(url, headers={"Accept-Encoding": "br"}, timeout=2)
    except httpx.TransportError:
        return None
    return response if response.status_code == 200 else None


def assert_serves_the_site(image_id: str, platform: str, site: Path) -> None:
    """Run the image for `platform` (emulated for arm64) on the example site, and ask it for /."""
    port = free_port()
    name = f"servestatic-release-{platform.replace('/', '-')}-{port}"
    started = subprocess.run(["podman", "run", "--detach", "--name", name, "--platform", platform,
                              "--publish", f"127.0.0.1:{port}:8000", "--volume", f"{site}:/srv/www",
                              image_id],
                             capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr

    def logs() -> str:
        shown = subprocess.run(["podman", "logs", name], capture_output=True, text=True, timeout=60)
        return f"the {platform} container to answer / with 200:\n" + shown.stdout + shown.stderr

    try:  # emulated, gunicorn starts and brotli compresses the site slowly: a long deadline
        response = wait_for(lambda: answered_200(f"http://127.0.0.1:{port}/"), 120, logs)
        assert response.headers["content-encoding"] == "br"  # the platform's brotli wheel works
        assert response.text == (EXAMPLE_SITE / "index.html").read_text()
        machine = subprocess.run(["podman", "exec", name, "python3", "-c",
                                  "import platform; print(platform.machine())"],
                                 capture_output=True, text=True, timeout=60)
        assert machine.stdout.strip() == {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}[platform]
    finally:
        subprocess.run(["podman", "rm", "--force", "--time", "0", name], capture_output=True, timeout=60)


@contextlib.contextmanager
def pulled(reference: str, platform: str) -> Iterator[str]:
    """`reference` pulled from the throwaway registry for `platform`: its image id. The name is
    removed after, since the registry's port changes every run: no stale name stays in podman's store."""
    pull = subprocess.run(["podman", "pull", "--tls-verify=false", "--platform", platform, reference],
                          capture_output=True, text=True, timeout=300)
    assert pull.returncode == 0, pull.stderr
    try:
        yield pull.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["podman", "rmi", "--force", reference], capture_output=True, timeout=60)


def test_each_platform_pulls_from_the_index_and_the_arm64_one_serves_the_site(
        released: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    _, listing = released
    index = by_kind(listing, "index")[0]["reference"]
    expected = {image["platform"]: image["digest"] for image in by_kind(listing, "image")[:2]}
    site = copy_site(tmp_path / "site")
    for path in [site, *site.rglob("*")]:  # compressed at start by the container's user
        path.chmod(0o777 if path.is_dir() else 0o666)
    for platform, digest in expected.items():
        with pulled(index, platform) as image_id:
            digests = subprocess.run(["podman", "image", "inspect", "--format", "{{json .RepoDigests}}",
                                      image_id], capture_output=True, text=True, timeout=60).stdout
            assert digest in digests, (platform, digests)
            said = subprocess.run(["podman", "run", "--rm", "--platform", platform, image_id, "version"],
                                  capture_output=True, text=True, timeout=120)
            assert said.stdout.strip() == servestatic.__version__, said.stdout + said.stderr
            if platform == "linux/arm64":
                assert_serves_the_site(image_id, platform, site)


def test_each_index_and_image_is_signed_and_verifies(released: tuple[Path, dict[str, Any]],
                                                     tmp_path: Path) -> None:
    dist, listing = released
    signatures = by_kind(listing, "signature")
    assert len(signatures) == len(by_kind(listing, "index")) == 2
    for index, signature in zip(by_kind(listing, "index"), signatures, strict=True):
        assert signature["name"] == f"cosign signature of {index['reference']}"
        hexdigest = index["digest"].removeprefix("sha256:")
        assert f":sha256-{hexdigest}.sig@" in signature["reference"]
        for reference in (index["reference"], *[image["reference"] for image in by_kind(listing, "image")]):
            verified = run_tool("cosign", "verify", "--allow-http-registry", "--key", dist / "cosign.pub",
                                "--insecure-ignore-tlog=true", reference)
            assert verified.returncode == 0, verified.stderr
            payload = json.loads(verified.stdout)[0]
            assert payload["critical"]["image"]["docker-manifest-digest"] == reference.rpartition("@")[2]
    # The check can fail: another key does not verify the index.
    other = key_pair(tmp_path, "other")
    refused = run_tool("cosign", "verify", "--allow-http-registry", "--key", other.with_suffix(".pub"),
                       "--insecure-ignore-tlog=true", by_kind(listing, "index")[0]["reference"])
    assert refused.returncode != 0
    assert "no matching signatures" in refused.stderr


def test_the_sboms_are_attached_to_each_image_as_referrers(released: tuple[Path, dict[str, Any]],
                                                          tmp_path: Path) -> None:
    dist, listing = released
    attached = by_kind(listing, "sbom-referrer")
    for image in by_kind(listing, "image"):
        discovered = run_tool("oras", "discover", "--plain-http", "--format", "json", image["reference"])
        assert discovered.returncode == 0, discovered.stderr
        found = json.loads(discovered.stdout)
        referrers = found.get("referrers") or found.get("manifests")
        mine = [item for item in attached if item["name"].endswith(" attached to " + image["reference"])]
        kinds = ["application/vnd.cyclonedx+json", "application/spdx+json"]
        assert sorted((item["artifactType"], item["digest"]) for item in referrers) == sorted(
            zip(kinds, [item["digest"] for item in mine], strict=True))
        files = [item for item in by_kind(listing, "sbom")
                 if item["name"].endswith(" of " + image["reference"])]
        for referrer, document in zip(mine, files, strict=True):  # what the registry holds is the file
            out = tmp_path / referrer["digest"].removeprefix("sha256:")
            pulled = run_tool("oras", "pull", "--plain-http", "--output", out, referrer["reference"])
            assert pulled.returncode == 0, pulled.stderr
            name = Path(document["reference"]).name
            assert (out / name).read_bytes() == (dist / document["reference"]).read_bytes()


def oci_layout(archive: Any) -> dict[str, Any]:
    """The JSON files of an OCI layout tarball by name (pack writes them as /index.json, ...)."""
    found: dict[str, Any] = {}
    for member in archive.getmembers():
        if member.isfile() and member.size < 1_000_000:
            text = archive.extractfile(member).read()
            try:
                found[member.name.lstrip("/")] = json.loads(text)
            except ValueError:  # a layer, or oci-layout's neighbours that are not JSON
                found[member.name.lstrip("/")] = None
    return found


def test_the_buildpack_is_an_index_for_both_platforms_and_cnb_files(released: tuple[Path, dict[str, Any]],
                                                                    registry: str) -> None:
    import tarfile

    dist, listing = released
    version = servestatic.__version__
    index, *files = by_kind(listing, "buildpack")
    assert index["reference"].startswith(f"{registry}/servestatic/buildpack@")
    assert index["tags"] == [version]
    manifest = crane_json("manifest", index["reference"])
    assert sorted(f"{entry['platform']['os']}/{entry['platform']['architecture']}"
                  for entry in manifest["manifests"]) == ["linux/amd64", "linux/arm64"]
    assert sorted(item["platform"] for item in files) == ["linux/amd64", "linux/arm64"]
    for entry in manifest["manifests"]:
        config = crane_json("config", f"{registry}/servestatic/buildpack@{entry['digest']}")
        assert config["architecture"] == entry["platform"]["architecture"]
        layers = json.loads(config["config"]["Labels"]["io.buildpacks.buildpack.layers"])
        assert list(layers["servestatic/static-origin"]) == [version]
    for item in files:
        with tarfile.open(dist / item["reference"]) as cnb:  # an OCI layout of the buildpack image
            layout = oci_layout(cnb)
            assert "oci-layout" in layout
            (image,) = layout["index.json"]["manifests"]
            manifest = layout["blobs/sha256/" + image["digest"].removeprefix("sha256:")]
            config = layout["blobs/sha256/" + manifest["config"]["digest"].removeprefix("sha256:")]
            assert f"linux/{config['architecture']}" == item["platform"]


def debian_packages_in(image: dict[str, Any]) -> dict[str, str]:
    """What dpkg says it installed in a released image (pulled from the registry; an arm64
    one runs under emulation): name -> version."""
    platform = image["platform"]
    with pulled(image["reference"], platform) as image_id:
        dpkg = subprocess.run(["podman", "run", "--rm", "--platform", platform, "--entrypoint", "dpkg-query",
                               image_id, "-W", "-f", "${db:Status-Status} ${Package} ${Version}\n"],
                              capture_output=True, text=True, timeout=120)
    assert dpkg.returncode == 0, dpkg.stderr
    installed = {name: version for status, name, version in
                 (line.split(" ", 2) for line in dpkg.stdout.splitlines()) if status == "installed"}
    assert "libssl3" in installed and len(installed) > 50, installed
    return installed


def test_each_image_has_an_sbom_naming_its_installed_packages(released: tuple[Path, dict[str, Any]]) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    dist, listing = released
    images = by_kind(listing, "image")
    sboms = by_kind(listing, "sbom")
    assert len(sboms) == 2 * len(images)
    # What pip installed in the base image, asked of the image itself.
    installed = subprocess.run(
        ["podman", "run", "--rm", "--entrypoint", "/opt/servestatic/bin/python", "localhost/servestatic/base:"
         + servestatic.__version__, "-m", "pip", "list", "--format", "json"],
        capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0, installed.stderr
    versions_in_image = {item["name"].lower(): item["version"] for item in json.loads(installed.stdout)}
    assert versions_in_image["servestatic-origin"] == servestatic.__version__
    for image in images:
        documents = [item for item in sboms if item["name"].endswith(" of " + image["reference"])]
        assert [item["reference"].rsplit(".", 2)[-2] for item in documents] == ["cdx", "spdx"]
        cdx_text = (dist / documents[0]["reference"]).read_text()
        assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(cdx_text) is None
        cdx = json.loads(cdx_text)
        assert cdx["metadata"]["component"]["name"] == image["reference"]
        spdx = json.loads((dist / documents[1]["reference"]).read_text())
        debian = [item for item in cdx["components"] if item["purl"].startswith("pkg:deb/debian/")]
        assert {item["name"]: item["version"] for item in debian} == debian_packages_in(image)
        architecture = image["platform"].removeprefix("linux/")
        assert {item["purl"].split("?arch=")[1].split("&")[0] for item in debian} == {architecture, "all"}
        # The base's python3 is Debian's, so dpkg's list names it and it is not listed again.
        assert [item["purl"] for item in cdx["components"] if item["purl"].startswith("pkg:generic/")] == []
        assert len(spdx["packages"]) == len(cdx["components"])
        for name in ("gunicorn", "brotli", "servestatic-origin"):
            listed = {item["name"].lower(): item["version"] for item in cdx["components"]}
            assert listed[name] == versions_in_image[name], name
            assert {item["name"].lower(): item["versionInfo"] for item in spdx["packages"]}[name] \
                == versions_in_image[name]


def test_provenance_names_every_artifact_the_revision_and_the_command(
        released: tuple[Path, dict[str, Any]]) -> None:
    dist, listing = released
    (entry,) = by_kind(listing, "provenance")
    statement = json.loads((dist / entry["reference"]).read_text())
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    subjects = {item["name"]: "sha256:" + item["digest"]["sha256"] for item in statement["subject"]}
    assert subjects == {artifact["reference"]: artifact["digest"] for artifact in listing["artifacts"]
                        if artifact["kind"] != "provenance"}
    definition = statement["predicate"]["buildDefinition"]
    assert definition["resolvedDependencies"][0]["digest"] == {"gitCommit": listing["revision"]}
    assert definition["externalParameters"]["command"][0] == "scripts/release"
    assert definition["externalParameters"]["version"] == servestatic.__version__


def test_chart_pulls_by_its_oci_reference_and_renders(released: tuple[Path, dict[str, Any]],
                                                      tmp_path: Path) -> None:
    import helm_python

    dist, listing = released
    (chart,) = by_kind(listing, "chart")
    reference, _, digest = chart["reference"].partition("@")
    name, _, version = reference.rpartition(":")
    assert version == servestatic.__version__
    assert digest == chart["digest"]
    helm_python.pull(name, version=version, destination=tmp_path, plain_http=True)
    archive = tmp_path / f"servestatic-{version}.tgz"
    assert archive.read_bytes() == (dist / "chart" / archive.name).read_bytes()  # what was released
    manifest = crane_json("manifest", chart["reference"].removeprefix("oci://"))
    assert manifest["config"]["mediaType"] == "application/vnd.cncf.helm.config.v1+json"
    with helm_python.Chart.load(archive) as pulled:
        rendered = pulled.render({}, name="web", namespace="sites")
    deployment = next(item for item in objects(rendered) if item["kind"] == "Deployment")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"servestatic/base:{versions.image_tag(version)}"


def test_release_without_a_registry_pushes_to_a_throwaway_one(tmp_path: Path) -> None:
    needs_tool("podman")
    release_tool("crane")
    result = scripts_release(tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    listing = json.loads((tmp_path / "release.json").read_text())
    address = listing["registry"]
    assert re.fullmatch(r"127\.0\.0\.1:\d+/servestatic", address)
    assert "a throwaway registry on 127.0.0.1" in result.stderr
    # With no key in the environment, a dry run signs with a key of its own and verifies it.
    assert len(by_kind(listing, "signature")) == 2
    assert (tmp_path / "cosign.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    with pytest.raises(httpx.ConnectError):  # gone with the release
        httpx.get(f"http://{address.split('/')[0]}/v2/", timeout=5)


def test_release_will_not_empty_a_directory_it_did_not_write(tmp_path: Path) -> None:
    from servestatic.platform import release

    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    registry = release.Registry("127.0.0.1:1/servestatic", plain_http=True)
    with pytest.raises(release.ReleaseError, match=r"holds files but no release\.json"):
        release.release(REPO, tmp_path, registry, "0" * 40, False, {})
    assert keep.read_text() == "mine"


def test_release_to_a_named_registry_refuses_to_go_unsigned(tmp_path: Path) -> None:
    from servestatic.platform import signing

    with pytest.raises(signing.ReleaseError, match="nothing to sign with"):
        signing.signer_from_environment({}, registry_is_throwaway=False, scratch=tmp_path, dist=tmp_path)
    with pytest.raises(signing.ReleaseError, match="GITHUB_WORKFLOW_REF"):
        signing.signer_from_environment({"SERVESTATIC_RELEASE_KEYLESS": "1"}, False, tmp_path, tmp_path)
    workflow = "o/r/.github/workflows/release.yml@refs/tags/v1"  # as GitHub Actions sets it
    keyless = signing.signer_from_environment(
        {"SERVESTATIC_RELEASE_KEYLESS": "1", "GITHUB_WORKFLOW_REF": workflow}, False, tmp_path, tmp_path)
    assert keyless.identity == f"https://github.com/{workflow}"
    assert keyless.key is None


def test_release_refuses_a_tag_that_is_not_the_version(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "servestatic.platform.release", "--allow-dirty",
                             "--dist", tmp_path], cwd=REPO, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "SERVESTATIC_RELEASE_TAG": "v9.9.9"})
    assert result.returncode == 1
    assert f"tag v9.9.9 is not v{servestatic.__version__}" in result.stderr
    assert not (tmp_path / "release.json").exists()


def test_the_buildpack_images_arm64_entry_detects_and_builds_the_django_example_under_emulation(
        released: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """The released buildpack image, pulled for linux/arm64 from its index, run by the arm64
    lifecycle in the arm64 root (scripts/image-base.sh arm64) under qemu, as the unprivileged
    user, against examples/django: detect passes, build installs arm64 wheels into the launch
    layer, runs collectstatic and compresses both mounts."""
    import pwd
    import tarfile
    import tempfile

    from tests.support.cnb import (
        BP_ID,
        BP_LAYERS,
        CNB_USER,
        CPYTHON,
        LIFECYCLE_ARM64,
        PY_ID,
        PY_VERSION,
        Emulated,
        Workspace,
        compress_summaries,
        totals,
    )

    needs((LIFECYCLE_ARM64 / "builder").exists(),
          "the arm64 lifecycle is not built (scripts/install/lifecycle.sh)")
    user = pwd.getpwnam(CNB_USER)
    image = subprocess.run([REPO / "scripts/image-base.sh", "arm64"], capture_output=True, text=True,
                           timeout=900, cwd=REPO, check=True).stdout.strip()
    wheelhouse = subprocess.run([REPO / "scripts/wheelhouse.sh", "3.11", "arm64"], capture_output=True,
                                text=True, timeout=900, cwd=REPO, check=True).stdout.strip()
    index = by_kind(released[1], "buildpack")[0]["reference"]
    exported = tmp_path / "buildpack-arm64.tar"
    result = run_tool("crane", "export", "--insecure", "--platform", "linux/arm64", index, exported)
    assert result.returncode == 0, result.stderr
    root = Path(tempfile.mkdtemp(prefix="servestatic-cnb-arm64-"))  # readable by the cnb user
    try:
        with tarfile.open(exported) as flat:
            flat.extractall(root / "image", filter="tar")
        store = root / "image" / "cnb" / "buildpacks"
        assert (store / BP_LAYERS / servestatic.__version__ / "buildpack.toml").is_file()
        shutil.copytree(CPYTHON, store / PY_ID.replace("/", "_") / PY_VERSION)
        workspace = Workspace(root / "build", user, store,
                              group=[(PY_ID, PY_VERSION), (BP_ID, servestatic.__version__)],
                              emulated=Emulated("linux/arm64", image, LIFECYCLE_ARM64)).setup()
        shutil.copytree(REPO / wheelhouse, workspace.root / "wheelhouse")
        shutil.copytree(REPO / "examples" / "django", workspace.app, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("staticfiles", "__pycache__", "*.sqlite3"))
        workspace.set_env("BP_CPYTHON_FIND_LINKS", os.fspath(workspace.root / "wheelhouse"))
        workspace.set_env("BP_SERVESTATIC_MOUNTS", "/static/=staticfiles,/=public")
        workspace.set_env("BP_SERVESTATIC_APP", "mysite.wsgi:application")
        workspace.detect()
        assert workspace.group_ids() == [PY_ID, BP_ID]
        output = workspace.build().stdout
        assert "servestatic: installing servestatic and gunicorn on CPython 3.11" in output
        assert "(aarch64)" in output, output
        assert "servestatic: running python manage.py collectstatic --noinput" in output
        static, public = compress_summaries(output)
        assert totals(static, "reused") > 0 and static["errors"] == [], static
        assert totals(public, "compressed") > 0 and public["errors"] == [], public
        assert (workspace.app / "staticfiles" / ".servestatic-manifest.json").is_file()
        layer = workspace.layers / BP_LAYERS
        assert workspace.layer_toml("servestatic")["types"]["launch"] is True
        assert (layer / "launch.toml").is_file()
        (brotli,) = (layer / "servestatic").rglob("_brotli.*.so")
        header = brotli.read_bytes()[:20]
        assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 183  # EM_AARCH64
    finally:
        shutil.rmtree(root, ignore_errors=True)
