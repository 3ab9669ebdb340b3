"""Fixtures shared by the test modules; helpers they import are in tests/support/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cli import compress
from tests.support.server import ServerProcess, client, serving
from tests.support.site import copy_site


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A private copy of examples/site, without any build output from earlier runs."""
    return copy_site(tmp_path / "site")


# For black-box HTTP test modules: `root`, a compressed copy of the example site
# (a module overrides it to prepare a site of its own), one server on it, and one
# keep-alive client, each for the whole module.


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = copy_site(tmp_path_factory.mktemp("root") / "site")
    compress(site)
    return site


# Every static answer has two ways out of the worker: the event loop's own
# (the default) and gunicorn's ASGI protocol through servestatic.fronts.asgifront (the
# way requests for the app go, and every static request with the fast path
# off). The HTTP contract modules run against both.
ANSWER_PATHS = {"loop": {}, "asgi": {"SERVESTATIC_FAST_PATH": "false"}}


@pytest.fixture(scope="module", params=sorted(ANSWER_PATHS))
def server(root: Path, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with serving(root, ANSWER_PATHS[request.param]) as running:
        yield running


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with client(server) as session:
        yield session
