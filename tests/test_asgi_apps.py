"""ASGI apps behind servestatic: a plain ASGI callable named with no other hint, FastAPI,
and how an app's kind is told (SERVESTATIC_APP_INTERFACE).

tests/apps/plain_asgi.py uses what a real ASGI server gives an app: lifespan in
every worker, bodies streamed in, streamed responses, WebSockets, the scope's
addresses, exceptions. Django through its ASGI handler is in test_django_example.py.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.support import REPO
from tests.support.cli import SERVESTATIC, compress
from tests.support.http import raw_request, read_response
from tests.support.server import ServerProcess, serving, worker_pids

PLAIN = "tests.apps.plain_asgi:app"
FASTAPI_PROJECT = REPO / "examples" / "fastapi"




def wait_for_files(directory: Path, prefix: str, count: int, timeout: float = 10) -> list[str]:
    """Marker files the app's lifespan writes, polled with a deadline."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        names = sorted(name for name in os.listdir(directory) if name.startswith(prefix))
        if len(names) >= count or time.monotonic() > deadline:
            return names
        time.sleep(0.02)  # poll interval, not a readiness guess


@pytest.fixture(scope="module")
def markers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("markers")


@pytest.fixture(scope="module")
def plain(root: Path, markers: Path) -> Iterator[ServerProcess]:
    env = {"SERVESTATIC_APP": PLAIN, "PLAIN_ASGI_MARKERS": str(markers), "WEB_CONCURRENCY": "2"}
    server = ServerProcess(root, env=env, workers=2).start()
    try:
        yield server
    finally:
        assert server.stop() == 0, server.log()


def test_lifespan_starts_in_every_worker_and_stops_at_sigterm(root: Path, tmp_path: Path) -> None:
    env = {"SERVESTATIC_APP": PLAIN, "PLAIN_ASGI_MARKERS": str(tmp_path)}
    with serving(root, {**env, "WEB_CONCURRENCY": "2"}) as server:
        server_workers = wait_for_files(tmp_path, "startup-", 2)
        assert len(server_workers) == 2  # one startup per worker, each before it served
        assert raw_request(server, "/hello").status == 200
    pids = {name.split("-")[1] for name in server_workers}
    assert {name.split("-")[1] for name in wait_for_files(tmp_path, "shutdown-", 2)} == pids


def test_a_failed_lifespan_startup_stops_the_server_with_the_app_s_message(root: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "SERVESTATIC_APP": PLAIN,
           "PLAIN_ASGI_FAIL_STARTUP": "database unreachable", "SERVESTATIC_BIND": "127.0.0.1:0"}
    result = subprocess.run([*SERVESTATIC, "serve", str(root)], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "database unreachable" in result.stdout + result.stderr


def test_the_scope_carries_query_raw_path_headers_and_addresses(plain: ServerProcess) -> None:
    response = raw_request(plain, "/scope?a=1&b=%C3%A9", headers={"X-Custom": "yes", "Accept": "*/*"})
    scope = json.loads(response.body)
    assert scope["path"] == "/scope"
    assert scope["raw_path"] == "/scope"
    assert scope["query_string"] == "a=1&b=%C3%A9"
    assert ["x-custom", "yes"] in scope["headers"]
    assert scope["client"][0] == "127.0.0.1"
    assert scope["server"] == ["127.0.0.1", plain.port]
    assert scope["http_version"] == "1.1"
    assert scope["scheme"] == "http"


def test_a_large_request_body_streams_in(plain: ServerProcess) -> None:
    body = os.urandom(3 * 1024 * 1024)
    response = httpx.post(plain.url + "/upload", content=body, timeout=30)
    received = response.json()
    assert received["bytes"] == len(body)
    assert received["pieces"] > 1  # it arrived in pieces, not as one buffer


def test_a_chunked_request_body_streams_in(plain: ServerProcess) -> None:
    def pieces() -> Iterator[bytes]:
        for _ in range(20):
            yield b"x" * 10_000

    assert httpx.post(plain.url + "/upload", content=pieces(), timeout=30).json()["bytes"] == 200_000


def test_a_streamed_response_arrives_chunked(plain: ServerProcess) -> None:
    response = raw_request(plain, "/stream?n=5")
    assert response.status == 200
    assert response.header("Transfer-Encoding") == "chunked"
    assert httpx.get(plain.url + "/stream?n=5").text == "".join(f"chunk {i}\n" for i in range(5))


def test_an_exception_gives_a_500_and_the_worker_lives_on(plain: ServerProcess) -> None:
    workers = worker_pids(plain)
    with httpx.Client(base_url=plain.url) as client:
        for _ in range(3):
            assert client.get("/boom").status_code == 500
        late = raw_request(plain, "/boom-late")  # headers already sent: the connection is cut
        assert late.status == 200 and b"partial" in late.body
        assert not late.body.endswith(b"0\r\n\r\n")  # no last chunk: the client sees it is cut short
        assert client.get("/scope").status_code == 200
    assert worker_pids(plain) == workers  # no worker died and was replaced
    assert "boom on purpose" in plain.log()


def test_websockets_reach_the_app(plain: ServerProcess) -> None:
    with connect(f"ws://127.0.0.1:{plain.port}/ws", open_timeout=10) as websocket:
        websocket.send("hello")
        assert websocket.recv(timeout=10) == "HELLO"
        websocket.send("again")
        assert websocket.recv(timeout=10) == "AGAIN"


def test_http_1_0_and_keep_alive(plain: ServerProcess) -> None:
    old = raw_request(plain, "/hello", raw=b"GET /hello HTTP/1.0\r\n\r\n")
    assert old.status == 200 and json.loads(old.body)["path"] == "/hello"
    with socket.create_connection(("127.0.0.1", plain.port), timeout=10) as client:
        for _ in range(3):  # app, static, app on one connection
            for target in (b"/hello", b"/robots.txt"):
                client.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
                head, _ = read_response(client)
                assert head.startswith(b"HTTP/1.1 200 ")


def test_static_hits_never_reach_the_asgi_app(plain: ServerProcess) -> None:
    response = httpx.get(plain.url + "/css/print.css", headers={"Accept-Encoding": "br"})
    assert response.headers["content-encoding"] == "br"
    assert "etag" in response.headers
    assert httpx.get(plain.url + "/healthz").text == "ok\n"
    assert httpx.post(plain.url + "/css/print.css").status_code == 405


# --- telling WSGI from ASGI


@pytest.mark.parametrize(("app", "interface", "says"), [
    ("tests.apps.echo_asgi:app", "wsgi", "SERVESTATIC_APP_INTERFACE=wsgi"),
    ("tests.apps.echo:application", "asgi", "SERVESTATIC_APP_INTERFACE=asgi"),
    ("tests.apps.not_an_app:sync_three", "auto", "not a WSGI app"),
    ("tests.apps.not_an_app:number", "auto", "not callable"),
])
def test_an_app_of_the_wrong_kind_stops_start_up_with_one_line(root: Path, app: str, interface: str,
                                                               says: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "SERVESTATIC_APP": app,
           "SERVESTATIC_APP_INTERFACE": interface, "SERVESTATIC_BIND": "127.0.0.1:0"}
    result = subprocess.run([*SERVESTATIC, "serve", str(root)], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("servestatic: error: SERVESTATIC_APP")
    assert says in lines[0]


def test_a_forced_interface_is_used(root: Path) -> None:
    # A class instance whose __call__ is a coroutine function is found by itself;
    # forcing asgi on it changes nothing, and the app answers.
    env = {"SERVESTATIC_APP": "tests.apps.not_an_app:instance", "SERVESTATIC_APP_INTERFACE": "asgi"}
    with serving(root, env) as server:
        assert httpx.get(server.url + "/x").json() == {"app": "instance"}
    with serving(root, {"SERVESTATIC_APP": "tests.apps.not_an_app:instance"}) as server:
        assert httpx.get(server.url + "/x").json() == {"app": "instance"}


# --- the FastAPI example


@pytest.fixture(scope="module")
def fastapi_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    project = tmp_path_factory.mktemp("fastapi") / "project"
    shutil.copytree(FASTAPI_PROJECT, project, ignore=shutil.ignore_patterns(
        "*.br", "*.gz", ".servestatic-manifest.json", "__pycache__"))
    compress(project / "static")
    server = ServerProcess(project / "static", cwd=project, env={
        "SERVESTATIC_PREFIX": "/static/", "SERVESTATIC_APP": "main:app"})
    with server:
        yield server


def test_fastapi_pages_and_api_come_from_fastapi(fastapi_server: ServerProcess) -> None:
    home = httpx.get(fastapi_server.url + "/")
    assert home.status_code == 200 and "FastAPI behind servestatic" in home.text
    assert "etag" not in home.headers
    item = httpx.get(fastapi_server.url + "/api/items/7?q=hello").json()
    assert item == {"item_id": 7, "q": "hello", "started": 1}  # lifespan ran before the request
    echo = httpx.post(fastapi_server.url + "/api/echo", content=b"x" * 100_000,
                      headers={"Content-Type": "application/octet-stream"}).json()
    assert echo == {"bytes": 100_000, "content_type": "application/octet-stream"}
    assert httpx.get(fastapi_server.url + "/api/countdown").text == "3\n2\n1\n"
    assert httpx.get(fastapi_server.url + "/api/items/x").status_code == 422
    assert httpx.get(fastapi_server.url + "/static/missing.css").status_code == 404  # FastAPI's 404
    with connect(f"ws://127.0.0.1:{fastapi_server.port}/ws", open_timeout=10) as websocket:
        websocket.send("cdn")
        assert websocket.recv(timeout=10) == "CDN"


def test_fastapi_static_files_come_from_servestatic(fastapi_server: ServerProcess) -> None:
    response = httpx.get(fastapi_server.url + "/static/css/app.3f2a9c1b7d4e.css",
                         headers={"Accept-Encoding": "br"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "br"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    again = httpx.get(fastapi_server.url + "/static/css/app.3f2a9c1b7d4e.css",
                      headers={"Accept-Encoding": "br", "If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    script = httpx.get(fastapi_server.url + "/static/js/app-Bq7x2LmN.js", headers={"Accept-Encoding": "gzip"})
    assert script.headers["content-encoding"] == "gzip"
    assert script.headers["cache-control"] == "public, max-age=31536000, immutable"

