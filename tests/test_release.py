"""Releases: the one version and its copies, the changelog, the hosted pipeline's
workflow files (actionlint, zizmor), and scripts/release end to end against a
throwaway local registry.
"""

from __future__ import annotations

import re
import shutil
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
