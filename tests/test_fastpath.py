"""The worker's fast path answers exactly what the WSGI path answers.

Differential: the same raw requests go to a server with the fast path and to
one without (SERVESTATIC_FAST_PATH=false); status line, headers (but Date) and
body must be byte-for-byte the same. A debug log line proves the fast path
really answered, and the requests it must leave to gunicorn are checked too.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import compress
from tests.support.server import ServerProcess
from tests.support.site import copy_site

FILES = [
    "/", "/index.html", "/docs/", "/css/site.0123456789ab.css", "/css/print.css",
    "/assets/app-3fA9c1bd.js", "/assets/app-3fA9c1bd.js.map", "/fonts/open-sans-700.woff2",
    "/img/banner.png", "/img/logo.svg", "/data/r%C3%A9sum%C3%A9.txt", "/data/feed.json",
    "/.well-known/security.txt", "/site.webmanifest", "/healthz",
]
HEADER_SETS: list[list[str]] = [
    [],
    ["Accept-Encoding: br, gzip"],
    ["Accept-Encoding: gzip;q=1, br;q=0"],
    ["Accept-Encoding: identity;q=0"],
    ["Accept-Encoding: br", "If-None-Match: {etag}"],
    ["If-None-Match: W/{etag}, \"other\""],
    ["If-None-Match: *"],
    ["If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT"],
    ["If-Match: \"nope\""],
    ["Range: bytes=0-0"],
    ["Range: bytes=-7", "Accept-Encoding: gzip"],
    ["Range: bytes=10-"],
    ["Range: bytes=999999-"],
    ["Range: bytes=0-1,3-4"],
    ["Range: bytes=0-3", "If-Range: {etag}"],
    ["Range: bytes=0-3", "If-Range: \"stale\""],
    ["Origin: https://a.example", "Accept-Encoding: br"],
    ["Connection: close"],
]


def exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(request)
        chunks = []
        while chunk := client.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def without_date(response: bytes) -> bytes:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.startswith(b"Date: ")]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def etag_of(port: int, path: str) -> str:
    response = exchange(port, f"HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    for line in response.split(b"\r\n"):
        if line.lower().startswith(b"etag: "):
            return line[6:].decode()
    return '"none"'


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    site = copy_site(tmp_path_factory.mktemp("fastpath") / "site")
    compress(site)
    common = {"SERVESTATIC_CORS": "https://a.example", "SERVESTATIC_LOG_LEVEL": "debug"}
    with ServerProcess(site, env=common) as fast, \
            ServerProcess(site, env={**common, "SERVESTATIC_FAST_PATH": "false"}) as slow:
        yield fast, slow


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_fast_path_and_wsgi_path_answer_byte_for_byte_alike(
    servers: tuple[ServerProcess, ServerProcess], method: str
) -> None:
    fast, slow = servers
    compared = 0
    for path, header_set in itertools.product(FILES, HEADER_SETS):
        etag = etag_of(slow.port, path)
        lines = [line.replace("{etag}", etag) for line in header_set]
        if not any(line.startswith("Connection:") for line in lines):
            lines.append("Connection: close")
        request = "\r\n".join([f"{method} {path} HTTP/1.1", "Host: example.test", *lines]) + "\r\n\r\n"
        expected = without_date(exchange(slow.port, request.encode()))
        actual = without_date(exchange(fast.port, request.encode()))
        assert actual == expected, f"{request!r}\nfast: {actual[:600]!r}\nwsgi: {expected[:600]!r}"
        compared += 1
    assert compared == len(FILES) * len(HEADER_SETS)
    assert f"fast path: {method} /css/site.0123456789ab.css 200 OK" in fast.log()
    assert f"fast path: {method} /healthz 200 OK" in fast.log()
    assert "fast path:" not in slow.log()


def test_keep_alive_and_http_1_0_behave_as_gunicorn(servers: tuple[ServerProcess, ServerProcess]) -> None:
    fast, slow = servers
    two = (b"GET /robots.txt HTTP/1.1\r\nHost: x\r\n\r\n")
    for server in (fast, slow):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
            for _ in range(3):  # three requests, one after the other, on one connection
                client.sendall(two)
                response = b""
                while b"Allow: /" not in response:
                    chunk = client.recv(65536)
                    assert chunk, "connection closed before the answer ended"
                    response += chunk
                assert response.startswith(b"HTTP/1.1 200 OK\r\n")
                assert b"Connection: keep-alive\r\n" in response
    old = b"GET /robots.txt HTTP/1.0\r\n\r\n"
    assert without_date(exchange(fast.port, old)) == without_date(exchange(slow.port, old))
    assert exchange(fast.port, old).startswith(b"HTTP/1.0 200 OK\r\n")


@pytest.mark.parametrize("request_bytes", [
    b"POST /robots.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
    b"GET /robots.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    b"0\r\n\r\n",
    b"GET /robots.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
    b"GET /robots.txt HTTP/1.1\r\nConnection: close\r\n\r\n",
    b"GET /robots.txt HTTP/1.1\r\nHost: x\r\nX_Under: 1\r\nConnection: close\r\n\r\n",
    b"GET /robots.txt HTTP/1.1\r\nHost: x\r\nBad\x01Value: 1\r\nConnection: close\r\n\r\n",
    b"GET http://x/robots.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /robots.txt HTTP/1.1\r\nHost: x\r\n Folded: 1\r\nConnection: close\r\n\r\n",
    b"GET /nothing-here HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
])
def test_what_the_fast_path_leaves_to_gunicorn_is_answered_as_before(
    servers: tuple[ServerProcess, ServerProcess], request_bytes: bytes
) -> None:
    fast, slow = servers
    expected = without_date(exchange(slow.port, request_bytes))
    actual = without_date(exchange(fast.port, request_bytes))
    assert actual.split(b"\r\n", 1)[0] == expected.split(b"\r\n", 1)[0]
    assert actual == expected


def test_fast_path_is_on_by_default_and_logs_through_gunicorn(site: Path) -> None:
    compress(site)
    env = {"SERVESTATIC_ACCESS_LOG": "json", "SERVESTATIC_LOG_LEVEL": "debug"}
    with ServerProcess(site, env=env) as server:
        response = exchange(server.port, b"GET /robots.txt?x=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: t\"q\r\n"
                                          b"Connection: close\r\n\r\n")
        assert response.startswith(b"HTTP/1.1 200 OK")
    log = server.log()
    assert "fast path: GET /robots.txt?x=1 200 OK" in log
    import json

    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(line["path"] == "/robots.txt" and line["query"] == "x=1" and line["status"] == 200
               and line["user_agent"] == 't"q' and line["bytes"] == 23 for line in lines), lines
