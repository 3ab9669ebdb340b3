"""Static hits answered in the worker's event loop get exactly what the ASGI path gives them.

Differential: the same raw requests go to a server that answers static hits in
its loop and to one that does not (SERVESTATIC_FAST_PATH=false: every request
through gunicorn's ASGI protocol and servestatic.fronts.asgifront). Status line, every
header but Date, Server and Connection, in order, and the body must be the
same. Header names are compared without case: the loop sends the table's
`Content-Type`, ASGI sends lower case, which also proves which path answered.
The requests the loop must leave to gunicorn are checked too.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import wait_for
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


def normalized(response: bytes) -> tuple[bytes, list[tuple[bytes, bytes]], bytes]:
    """Version and status code (reason phrases differ: RFC 9110's vs Python's), headers
    (lower-case names, without Date, Server, Connection), body."""
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *lines = head.split(b"\r\n")
    status = b" ".join(status_line.split(b" ")[:2])
    headers = []
    for line in lines:
        name, _, value = line.partition(b":")
        if name.lower() not in (b"date", b"server", b"connection"):
            headers.append((name.lower(), value.strip()))
    return status, headers, body


def header_names(response: bytes) -> list[bytes]:
    return [line.partition(b":")[0] for line in response.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]]


def etag_of(port: int, path: str) -> str:
    response = exchange(port, f"HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    for line in response.split(b"\r\n"):
        if line.lower().startswith(b"etag: "):
            return line[6:].decode()
    return '"none"'


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    site = copy_site(tmp_path_factory.mktemp("looppath") / "site")
    compress(site)
    common = {"SERVESTATIC_CORS": "https://a.example"}
    with ServerProcess(site, env=common) as loop, \
            ServerProcess(site, env={**common, "SERVESTATIC_FAST_PATH": "false"}) as asgi:
        yield loop, asgi


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_the_loop_and_the_asgi_path_answer_alike(
    servers: tuple[ServerProcess, ServerProcess], method: str
) -> None:
    loop, asgi = servers
    compared = 0
    for path, header_set in itertools.product(FILES, HEADER_SETS):
        etag = etag_of(asgi.port, path)
        lines = [line.replace("{etag}", etag) for line in header_set]
        if not any(line.startswith("Connection:") for line in lines):
            lines.append("Connection: close")
        request = "\r\n".join([f"{method} {path} HTTP/1.1", "Host: example.test", *lines]) + "\r\n\r\n"
        expected = exchange(asgi.port, request.encode())
        actual = exchange(loop.port, request.encode())
        assert normalized(actual) == normalized(expected), \
            f"{request!r}\nloop: {actual[:600]!r}\nasgi: {expected[:600]!r}"
        if path != "/healthz":  # which path answered: the loop keeps the table's names' case
            assert b"ETag" in header_names(actual) or b"Content-Length" in header_names(actual), actual
            assert all(name == name.lower() for name in header_names(expected)
                       if name not in (b"Server", b"Date", b"Connection"))  # gunicorn's own
        compared += 1
    assert compared == len(FILES) * len(HEADER_SETS)


def robots_answer(client: socket.socket, request: bytes) -> bytes:
    """Send a request for /robots.txt on a kept-alive connection; its whole answer."""
    client.sendall(request)
    response = b""
    while not response.endswith(b"Allow: /\n"):
        chunk = client.recv(65536)
        assert chunk, "connection closed before the answer ended"
        response += chunk
    return response


def test_keep_alive_and_http_1_0_behave_as_gunicorn(servers: tuple[ServerProcess, ServerProcess]) -> None:
    for server in servers:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
            for _ in range(3):  # three requests, one after the other, on one connection
                response = robots_answer(client, b"GET /robots.txt HTTP/1.1\r\nHost: x\r\n\r\n")
                assert response.startswith(b"HTTP/1.1 200 OK\r\n")
                assert b"onnection: close" not in response
    loop, asgi = servers
    for old in (b"GET /robots.txt HTTP/1.0\r\n\r\n",
                b"GET /robots.txt HTTP/1.0\r\nConnection: close\r\n\r\n"):
        assert normalized(exchange(loop.port, old)) == normalized(exchange(asgi.port, old))
        assert exchange(loop.port, old).startswith(b"HTTP/1.0 200 OK\r\n")
    # HTTP/1.0 keep-alive: asked for, granted, and said so (a 1.0 client needs the header).
    with socket.create_connection(("127.0.0.1", loop.port), timeout=10) as client:
        for _ in range(2):
            response = robots_answer(client, b"GET /robots.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            assert b"Connection: keep-alive\r\n" in response


def test_pipelined_requests_are_answered_in_order(servers: tuple[ServerProcess, ServerProcess]) -> None:
    """Several requests in one packet: static hits, a large body, a miss and a 405, in order."""
    loop, _ = servers
    requests = (b"GET /robots.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /fonts/open-sans-700.woff2 HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /nothing-here HTTP/1.1\r\nHost: x\r\n\r\n"
                b"POST /robots.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
                b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    response = exchange(loop.port, requests)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", response)  # a status line follows a body directly
    assert statuses == [b"200", b"200", b"404", b"405", b"200"]
    assert response.endswith(b"ok\n")


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
    b"GET /robots.txt HTTP/1.1\r\nHost: x\r\nHost: y\r\nConnection: close\r\n\r\n",
    b"GET /nothing-here HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
])
def test_what_the_loop_leaves_to_gunicorn_is_answered_alike(
    servers: tuple[ServerProcess, ServerProcess], request_bytes: bytes
) -> None:
    loop, asgi = servers
    assert normalized(exchange(loop.port, request_bytes)) == normalized(exchange(asgi.port, request_bytes))


def test_the_loop_path_is_on_by_default_and_logs_each_request(site: Path) -> None:
    compress(site)
    with ServerProcess(site, env={"SERVESTATIC_ACCESS_LOG": "json"}) as server:
        response = exchange(server.port, b"GET /robots.txt?x=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: t\"q\r\n"
                                          b"Connection: close\r\n\r\n")
        assert response.startswith(b"HTTP/1.1 200 OK")
        assert b"\r\nContent-Type: " in response  # the loop's answer, not ASGI's lower case
        for target in (b'/robots.txt?a="b\\c', b'/missing%22\\%01?q'):  # the loop's, then ASGI's
            exchange(server.port, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        text = server.stop() == 0 and server.log()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert any(line["path"] == "/robots.txt" and line["query"] == "x=1" and line["status"] == 200
               and line["user_agent"] == 't"q' and line["bytes"] == 23 and line["method"] == "GET"
               and line["protocol"] == "HTTP/1.1" for line in lines), lines
    assert any(line["query"] == 'a="b\\c' and line["status"] == 200 for line in lines), lines
    assert any(line["path"] == '/missing"\\\x01' and line["status"] == 404 for line in lines), lines


def test_the_text_access_log_is_gunicorn_s_format_for_both_paths(site: Path) -> None:
    compress(site)
    with ServerProcess(site, env={"SERVESTATIC_ACCESS_LOG": "text"}) as server:
        exchange(server.port, b"GET /robots.txt?x=1 HTTP/1.1\r\nHost: x\r\nReferer: http://r/\r\n"
                              b"User-Agent: ua\r\nConnection: close\r\n\r\n")
        exchange(server.port, b"DELETE /robots.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        exchange(server.port, b"PUT /robots.txt?y=2 HTTP/1.0\r\nReferer: http://q/\r\nUser-Agent: u a\r\n"
                              b"Content-Length: 0\r\n\r\n")
        server.stop()
    pattern = (r'127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] '
               r'"GET /robots\.txt\?x=1 HTTP/1\.1" 200 23 "http://r/" "ua"')
    log = server.log()
    assert re.search(pattern, log), log
    assert re.search(r'"DELETE /robots\.txt HTTP/1\.1" 405 23 "-" "-"', log), log
    assert re.search(r'"PUT /robots\.txt\?y=2 HTTP/1\.0" 405 23 "http://q/" "u a"', log), log


def test_access_log_lines_are_written_while_serving_not_only_at_exit(site: Path) -> None:
    """Lines are batched (accesslog.LineWriter), but a quiet server writes them within
    FLUSH_AFTER seconds of the request, and the last ones when the worker exits."""
    from servestatic.server.accesslog import FLUSH_AFTER

    compress(site)
    with ServerProcess(site, env={"SERVESTATIC_ACCESS_LOG": "text"}) as server:
        exchange(server.port, b"GET /robots.txt?first HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answered = time.monotonic()
        wait_for(lambda: "GET /robots.txt?first " in server.log(), FLUSH_AFTER + 2,
                 lambda: f"the first line in the log:\n{server.log()}")
        waited = time.monotonic() - answered
        exchange(server.port, b"GET /robots.txt?last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert server.stop() == 0
    assert "GET /robots.txt?last " in server.log()
    print(f"\nthe line was in the log {waited * 1000:.0f} ms after the answer")


def test_a_large_body_is_not_held_back_by_the_cork(tmp_path: Path) -> None:
    """A body over the inline limit goes out by sendfile with the socket corked (TCP_CORK,
    server/connection.py `_cork`), so that its head leaves with it. The cork must come off
    once the body is out: left on, the kernel holds the last partial segment for 200 ms
    before sending it. Twenty answers of an odd size one after another on one connection
    each arrive whole, the median in well under those 200 ms."""
    site = copy_site(tmp_path / "site")
    (site / "odd.bin").write_bytes(bytes(range(256)) * 400 + b"1234567")  # 102,407 bytes
    compress(site)
    request = b"GET /odd.bin HTTP/1.1\r\nHost: t\r\nAccept-Encoding: identity\r\n\r\n"
    expected = (site / "odd.bin").read_bytes()
    with ServerProcess(site) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
        latencies = []
        for _ in range(20):
            started = time.perf_counter()
            client.sendall(request)
            response = b""
            while b"\r\n\r\n" not in response or len(response.partition(b"\r\n\r\n")[2]) < len(expected):
                chunk = client.recv(1 << 20)
                assert chunk, "closed before the body ended"
                response += chunk
            latencies.append(time.perf_counter() - started)
            assert response.partition(b"\r\n\r\n")[2] == expected
    latencies.sort()
    assert latencies[10] < 0.1, f"median {latencies[10] * 1000:.0f} ms: the cork held the last segment"
