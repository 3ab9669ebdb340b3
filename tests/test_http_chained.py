"""Chaining to the user's WSGI or ASGI app (SERVESTATIC_APP), and `servestatic.wsgi:application`
under the plain gunicorn CLI.

tests/apps/echo.py answers with what it received, so the tests see exactly which
requests reach the user's app and that they arrive unchanged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.cli import SERVESTATIC
from tests.support.http import RawResponse, raw_request
from tests.support.server import ServerProcess, WsgiFront, serving

ECHO = "tests.apps.echo:application"
# The same echo, as a WSGI app and as a plain ASGI app; the chaining tests run with each.
ECHOES = {"wsgi": ECHO, "asgi": "tests.apps.echo_asgi:app"}


def echoed(response: RawResponse) -> dict | None:
    """What the echo app received, or None when the answer did not come from it."""
    if response.header("X-Echo") != "yes":
        return None
    return json.loads(response.body)


@pytest.fixture(scope="module", params=sorted(ECHOES))
def chained(root: Path, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with serving(root, {"SERVESTATIC_APP": ECHOES[request.param]}) as running:
        yield running


@pytest.fixture(scope="module", params=sorted(ECHOES))
def chained_prefix(root: Path, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    env = {"SERVESTATIC_APP": ECHOES[request.param], "SERVESTATIC_PREFIX": "/static/"}
    with serving(root, env) as running:
        yield running


# --- misses reach the app unchanged


@pytest.mark.parametrize(("method", "target", "path", "query"), [
    ("GET", "/hello/", "/hello/", ""),
    ("GET", "/api/items?page=2&sort=-name", "/api/items", "page=2&sort=-name"),
    ("HEAD", "/hello/", "/hello/", ""),
    ("DELETE", "/api/items/7", "/api/items/7", ""),
    ("GET", "/caf%C3%A9?q=%C3%A9", "/café", "q=%C3%A9"),
    ("GET", "/missing.css", "/missing.css", ""),  # a miss goes to the app, not the 404 page
])
def test_misses_reach_the_app_unchanged(chained: ServerProcess, method: str, target: str, path: str,
                                        query: str) -> None:
    response = raw_request(chained, target, method)
    assert response.status == 200
    assert response.header("X-Echo") == "yes"
    if method == "HEAD":
        assert response.body == b""
        return
    received = echoed(response)
    assert received["method"] == method
    assert received["path"] == path
    assert received["query"] == query


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_a_request_body_reaches_the_app(chained: ServerProcess, method: str) -> None:
    body = '{"name": "café"}'
    response = raw_request(chained, "/api/items?x=1", method,
                           {"Content-Type": "application/json; charset=utf-8"}, body=body.encode())
    received = echoed(response)
    assert received == {"app": "echo", "method": method, "script_name": "", "path": "/api/items",
                        "query": "x=1", "body": body, "content_type": "application/json; charset=utf-8"}


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/css/print.css", 200), ("HEAD", "/css/print.css", 200), ("GET", "/", 200),
    ("GET", "/docs/", 200), ("GET", "/docs", 301), ("POST", "/css/print.css", 405),
    ("PUT", "/index.html", 405), ("DELETE", "/index.html", 405),
    ("GET", "/healthz", 200), ("HEAD", "/healthz", 200), ("POST", "/healthz", 405),
])
def test_static_hits_and_health_never_reach_the_app(chained: ServerProcess, method: str, path: str,
                                                    status: int) -> None:
    response = raw_request(chained, path, method, {"Accept-Encoding": "br"})
    assert response.status == status
    assert response.header("X-Echo") is None


def test_preflight_for_a_static_path_never_reaches_the_app(chained: ServerProcess) -> None:
    response = raw_request(chained, "/css/print.css", "OPTIONS",
                           {"Origin": "https://a.example", "Access-Control-Request-Method": "GET"})
    assert response.status == 204
    assert response.header("X-Echo") is None


def test_with_a_prefix_only_files_under_it_are_static(chained_prefix: ServerProcess, root: Path) -> None:
    hit = raw_request(chained_prefix, "/static/css/print.css")
    assert hit.status == 200
    assert hit.body == (root / "css/print.css").read_bytes()
    assert hit.header("X-Echo") is None
    for target, path in (("/css/print.css", "/css/print.css"), ("/static/missing.css", "/static/missing.css"),
                         ("/", "/"), ("/static/.env", "/static/.env")):
        received = echoed(raw_request(chained_prefix, target))
        assert received is not None and received["path"] == path
    assert echoed(raw_request(chained_prefix, "/static/.env"))["path"] == "/static/.env"
    assert raw_request(chained_prefix, "/healthz").header("X-Echo") is None


# --- an app that cannot be imported stops start-up


@pytest.mark.parametrize(("app", "says"), [
    ("tests.apps.no_such_module:application", "no_such_module"),
    ("tests.apps.echo:no_such_attribute", "no_such_attribute"),
    ("tests.apps.broken:application", "broken on purpose"),
    ("tests.apps.echo:json", "not callable"),
])
def test_an_app_that_cannot_be_imported_stops_start_up(root: Path, app: str, says: str) -> None:
    result = subprocess.run([*SERVESTATIC, "serve", str(root), "--bind", "127.0.0.1:0"],
                            capture_output=True, text=True, timeout=60, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO), "SERVESTATIC_APP": app})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("servestatic: error: SERVESTATIC_APP")
    assert says in lines[0]


# --- servestatic.wsgi:application under the gunicorn CLI


COMPARED = [
    ("GET", "/index.html", {}), ("GET", "/index.html", {"Accept-Encoding": "br, gzip"}),
    ("HEAD", "/js/analytics.js", {"Accept-Encoding": "gzip"}),
    ("GET", "/fonts/open-sans-700.woff2", {"Range": "bytes=100-199"}),
    ("GET", "/fonts/open-sans-700.woff2", {"Range": "bytes=99999-"}),
    ("GET", "/css/print.css", {"If-None-Match": "*"}),
    ("GET", "/docs?x=1", {}), ("GET", "/docs/", {}), ("GET", "/nope.css", {}), ("GET", "/api/x?y=2", {}),
    ("POST", "/css/print.css", {}), ("GET", "/.env", {}), ("GET", "/%2e%2e/.env", {}),
    ("GET", "/healthz", {}), ("GET", "/data/r%C3%A9sum%C3%A9.txt", {}),
    ("GET", "/js/analytics.js", {"Accept-Encoding": "identity;q=0"}),
]


def test_gunicorn_cli_serves_the_same_answers(root: Path, chained: ServerProcess) -> None:
    cli = WsgiFront(root, {"SERVESTATIC_APP": ECHO}).start()
    try:
        for method, path, headers in COMPARED:
            ours = raw_request(chained, path, method, headers)
            theirs = raw_request(cli, path, method, headers)
            skip = {"date", "connection", "server"}
            assert theirs.status == ours.status, (method, path)
            # Names compared without case: the ASGI path sends them in lower case.
            assert [(k.lower(), v) for k, v in theirs.headers if k.lower() not in skip] == [
                (k.lower(), v) for k, v in ours.headers if k.lower() not in skip], (method, path)
            assert theirs.body == ours.body, (method, path)
    finally:
        code = cli.stop()
    assert code == 0, cli.log()


class WsgirefServer(ServerProcess):
    """servestatic.wsgi:application under the standard library's wsgiref server (no sendfile)."""

    def __init__(self, root: Path):
        super().__init__(None, env={"SERVESTATIC_ROOT": str(root)})
        code = ("import sys; from wsgiref.simple_server import make_server; "
                "from servestatic.wsgi import application; "
                "make_server('127.0.0.1', int(sys.argv[1]), application).serve_forever()")
        self.args = [sys.executable, "-c", code, str(self.port)]
        self.cwd = REPO


def test_another_wsgi_server_gets_exact_ranges_and_files(root: Path) -> None:
    """Without gunicorn's sendfile the app must send exactly the range, not the rest of the file."""
    font = (root / "fonts/open-sans-700.woff2").read_bytes()
    server = WsgirefServer(root).start()
    try:
        for first, last in ((0, 0), (100, 199), (40000, 44987), (44000, 99999)):
            response = raw_request(server, "/fonts/open-sans-700.woff2",
                                   headers={"Range": f"bytes={first}-{last}"})
            assert response.status == 206
            assert response.body == font[first:last + 1]
        whole = raw_request(server, "/fonts/open-sans-700.woff2")
        assert whole.status == 200 and whole.body == font
        br = raw_request(server, "/js/analytics.js", headers={"Accept-Encoding": "br"})
        assert br.body == (root / "js/analytics.js.br").read_bytes()
        assert raw_request(server, "/.env").status == 404
    finally:
        server.stop()
