"""Releases: the one version and its copies, the changelog, the hosted pipeline's
workflow files (actionlint, zizmor), and scripts/release end to end against a
throwaway local registry.
"""

from __future__ import annotations

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
from tests.support import REPO, needs, needs_tool, wait_for

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


@pytest.fixture(scope="module")
def released(registry: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    needs_tool("podman")
    release_tool("crane")
    dist = tmp_path_factory.mktemp("dist")
    result = scripts_release(dist, SERVESTATIC_RELEASE_REGISTRY=f"{registry}/servestatic")
    assert result.returncode == 0, result.stderr[-4000:]
    return dist, json.loads((dist / "release.json").read_text())


def by_kind(listing: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [artifact for artifact in listing["artifacts"] if artifact["kind"] == kind]


def crane_json(*args: str) -> dict[str, Any]:
    result = subprocess.run([release_tool("crane"), *args, "--insecure"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_release_lists_every_artifact_and_its_checksum(released: tuple[Path, dict[str, Any]],
                                                      registry: str) -> None:
    dist, listing = released
    version = servestatic.__version__
    assert listing["version"] == version
    assert [artifact["kind"] for artifact in listing["artifacts"]] == [
        "wheel", "sdist", "image", "sbom", "sbom", "image", "sbom", "sbom", "chart", "provenance"]
    files = [item for kind in ("wheel", "sdist", "sbom", "provenance") for item in by_kind(listing, kind)]
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
    for artifact in by_kind(listing, "image") + by_kind(listing, "chart"):
        assert registry in artifact["reference"]
        assert artifact["reference"].endswith("@" + artifact["digest"])


def test_images_pull_by_digest_run_and_carry_the_version(released: tuple[Path, dict[str, Any]],
                                                         registry: str) -> None:
    _, listing = released
    version = servestatic.__version__
    images = by_kind(listing, "image")
    short = versions.image_tag(version)
    assert [image["tags"] for image in images] == [[version, short],
                                                  [f"{version}-onbuild", f"{short}-onbuild"]]
    for image in images:
        assert image["platform"] == "linux/amd64"
        config = crane_json("config", image["reference"])
        assert (config["os"], config["architecture"]) == ("linux", "amd64")
        labels = config["config"]["Labels"]
        assert labels["org.opencontainers.image.version"] == version
        assert labels["org.opencontainers.image.revision"] == listing["revision"]
        for tag in image["tags"]:  # every tag names the listed digest
            digest = subprocess.run([release_tool("crane"), "digest", f"{registry}/servestatic/base:{tag}",
                                     "--insecure"], capture_output=True, text=True, timeout=60)
            assert digest.stdout.strip() == image["digest"], digest.stderr
    base = images[0]["reference"]
    pulled = subprocess.run(["podman", "pull", "--tls-verify=false", base], capture_output=True, text=True,
                            timeout=300)
    assert pulled.returncode == 0, pulled.stderr
    try:
        said = subprocess.run(["podman", "run", "--rm", base, "version"], capture_output=True, text=True,
                              timeout=120)
        assert said.stdout.strip() == version, said.stdout + said.stderr
    finally:  # the registry's port changes every run: keep no stale name in podman's store
        subprocess.run(["podman", "rmi", base], capture_output=True, timeout=60)


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


def test_release_refuses_a_tag_that_is_not_the_version(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "servestatic.platform.release", "--allow-dirty",
                             "--dist", tmp_path], cwd=REPO, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "SERVESTATIC_RELEASE_TAG": "v9.9.9"})
    assert result.returncode == 1
    assert f"tag v9.9.9 is not v{servestatic.__version__}" in result.stderr
    assert not (tmp_path / "release.json").exists()
