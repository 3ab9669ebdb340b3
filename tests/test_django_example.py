"""The Django example: collectstatic output served by servestatic, views by Django."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import REPO
from tests.support.cli import compress
from tests.support.django import assert_static_files_come_from_servestatic, assert_views_come_from_django
from tests.support.server import ServerProcess

DJANGO_PROJECT = REPO / "examples" / "django"


@pytest.fixture(scope="module")
def django_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    static_root = tmp_path_factory.mktemp("django") / "staticfiles"
    env = {**os.environ, "DJANGO_STATIC_ROOT": str(static_root)}
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=DJANGO_PROJECT,
                   env=env, check=True, capture_output=True)
    compress(static_root)
    server = ServerProcess(static_root, cwd=DJANGO_PROJECT, env={
        "DJANGO_STATIC_ROOT": str(static_root),
        "SERVESTATIC_PREFIX": "/static/",
        "SERVESTATIC_APP": "mysite.wsgi:application",
    })
    with server:
        yield server


def test_views_come_from_django(django_server: ServerProcess) -> None:
    assert_views_come_from_django(django_server.url)


def test_collectstatic_output_comes_from_servestatic(django_server: ServerProcess) -> None:
    assert_static_files_come_from_servestatic(django_server.url)


def test_static_misses_and_other_paths_reach_django(django_server: ServerProcess) -> None:
    # Not a static file: Django answers (its own 404), not servestatic's page.
    response = httpx.get(django_server.url + "/static/hello/missing.css")
    assert response.status_code == 404
    assert "servestatic" not in response.text.lower()
    assert httpx.post(django_server.url + "/hello/").status_code == 200


def test_health_never_reaches_django(django_server: ServerProcess) -> None:
    response = httpx.get(django_server.url + "/healthz")
    assert response.status_code == 200
    assert response.text == "ok\n"


def test_unimportable_app_stops_startup_with_one_line(site: Path, tmp_path: Path) -> None:
    compress(site)
    result = subprocess.run(
        [sys.executable, "-m", "servestatic", "serve", str(site)],
        env={**os.environ, "PYTHONPATH": str(REPO), "SERVESTATIC_APP": "nosuchmodule.wsgi:application",
             "SERVESTATIC_BIND": "127.0.0.1:0"},
        capture_output=True, text=True, timeout=30, cwd=tmp_path,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "servestatic: error: SERVESTATIC_APP=nosuchmodule.wsgi:application: cannot import "
        "'nosuchmodule.wsgi': ModuleNotFoundError: No module named 'nosuchmodule'"
    ]
