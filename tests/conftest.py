"""Shared test helpers: the skip-or-fail rule for missing tools, and paths."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_SITE = REPO / "examples" / "site"
if TYPE_CHECKING:
    from tests.server import ServerProcess

IN_CI = os.environ.get("CI", "").lower() == "true"


def needs(condition: bool, reason: str) -> None:
    """Skip a test whose tool is missing; under CI=true a missing tool is a failure.

    The project's own scripts install every tool a test needs, so in CI a skip
    would only hide a broken install step.
    """
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true and this test cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def needs_tool(name: str) -> str:
    """The path of an executable on PATH, or skip/fail as `needs` does."""
    path = shutil.which(name)
    needs(path is not None, f"{name} is not installed (scripts/install/ installs it)")
    assert path is not None
    return path


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A private copy of examples/site, without any build output from earlier runs."""
    target = tmp_path / "site"
    shutil.copytree(
        EXAMPLE_SITE,
        target,
        symlinks=True,
        ignore=shutil.ignore_patterns("*.br", "*.gz", "*.zst", ".servestatic-manifest.json"),
    )
    return target


# For black-box HTTP test modules: `root`, a compressed copy of the example site
# (a module overrides it to prepare a site of its own), one server on it, and one
# keep-alive client, each for the whole module.


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.server import compress
    from tests.test_http_support import copy_site

    site = copy_site(tmp_path_factory.mktemp("root") / "site")
    compress(site)
    return site


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[ServerProcess]:
    from tests.test_http_support import serving

    with serving(root) as running:
        yield running


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    from tests.test_http_support import client

    with client(server) as session:
        yield session
