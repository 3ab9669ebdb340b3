"""What each probe proves, against a real gunicorn: the health path that the server
runs, the readiness path that it has something to serve, the app's own health path
(asked through servestatic) that the app works; and `servestatic healthcheck`, which the
image's HEALTHCHECK runs, asks the last two."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import REPO
from tests.support.cli import compress
from tests.support.server import serving

ECHO = "tests.apps.echo:application"
FAILING = "tests.apps.failing:application"


def healthcheck(port: int, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "servestatic", "healthcheck"], capture_output=True,
                          text=True, timeout=60, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO), "PORT": str(port), **env})


@pytest.mark.parametrize("fast_path", ["true", "false"])
def test_a_server_with_nothing_to_serve_is_live_but_not_ready(tmp_path: Path, fast_path: str) -> None:
    """servestatic/base run as it is: an empty root, no app."""
    empty = tmp_path / "www"
    empty.mkdir()
    with serving(empty, {"SERVESTATIC_FAST_PATH": fast_path}) as server:
        assert httpx.get(server.url + "/healthz").status_code == 200
        ready = httpx.get(server.url + "/readyz")
        assert (ready.status_code, ready.text) == (503, "nothing to serve\n")
        assert ready.headers["cache-control"] == "no-store"
        assert httpx.head(server.url + "/readyz").status_code == 503
        checked = healthcheck(server.port)
        assert checked.returncode == 1
        assert checked.stderr.strip() == f"servestatic: error: 0.0.0.0:{server.port}/readyz answered 503"


def test_a_site_or_an_app_makes_a_server_ready(site: Path, tmp_path: Path) -> None:
    compress(site)
    with serving(site, {"SERVESTATIC_READY_PATH": "/-/ready"}) as server:
        assert httpx.get(server.url + "/-/ready").text == "ok\n"
        assert httpx.get(server.url + "/readyz").status_code == 404  # moved: an ordinary miss
        assert healthcheck(server.port, SERVESTATIC_READY_PATH="/-/ready").returncode == 0
    empty = tmp_path / "www"
    empty.mkdir()
    with serving(empty, {"SERVESTATIC_APP": ECHO}) as server:
        assert httpx.get(server.url + "/readyz").status_code == 200
        # The probe paths never reach the app; every other path does.
        assert httpx.get(server.url + "/healthz").text == "ok\n"
        assert httpx.get(server.url + "/health/").json()["app"] == "echo"


def test_the_app_health_path_sees_a_broken_app(site: Path) -> None:
    """An app that imports but fails every request: servestatic's paths stay 200, so
    liveness does not restart the pod, and the app's health path through servestatic
    says what readiness and the HEALTHCHECK must see."""
    compress(site)
    env = {"SERVESTATIC_APP": FAILING, "SERVESTATIC_APP_HEALTH_PATH": "/health/"}
    with serving(site, env) as server:
        assert httpx.get(server.url + "/healthz").status_code == 200
        assert httpx.get(server.url + "/readyz").status_code == 200
        assert httpx.get(server.url + "/health/").status_code == 500
        checked = healthcheck(server.port, **env)
        assert checked.returncode == 1
        assert checked.stderr.strip() == f"servestatic: error: 0.0.0.0:{server.port}/health/ answered 500"
    env["SERVESTATIC_APP"] = ECHO
    with serving(site, env) as server:
        checked = healthcheck(server.port, **env)
        assert checked.returncode == 0, checked.stderr


def test_an_app_health_path_the_site_answers_stops_start_up_with_one_line(site: Path) -> None:
    """A static file at the app's health path would answer readiness itself: a broken app
    would never be seen, so start-up refuses it."""
    compress(site)
    result = subprocess.run([sys.executable, "-m", "servestatic", "serve", str(site)], capture_output=True,
                            text=True, timeout=60, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO), "SERVESTATIC_APP": ECHO,
                                 "SERVESTATIC_APP_HEALTH_PATH": "/robots.txt"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "servestatic: error: SERVESTATIC_APP_HEALTH_PATH: /robots.txt is answered by servestatic (a file, "
        "a redirect or the SPA index there), not by the app; give a path only the app serves"]
