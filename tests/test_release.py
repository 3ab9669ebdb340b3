"""Releases: the one version and its copies, the changelog, the hosted pipeline's
workflow files (actionlint, zizmor), and scripts/release end to end against a
throwaway local registry.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import servestatic
from servestatic.platform import versions
from tests.support import REPO, needs

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
