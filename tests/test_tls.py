"""Large bodies over TLS, against a real `servestatic serve` with gunicorn's --certfile/--keyfile.

Without TLS the worker sends a large file straight to the socket (server/filesend.py);
under TLS the bytes must go through the transport, and the worker sends them with
`loop.sendfile` piece by piece (server/connection.py `_send_file`, SENDFILE_PIECE), each
piece within the stall timeout. That path is tested here over a real TLS connection:
bodies whole (a range and pipelined requests included), and a client that stops
reading dropped after SERVESTATIC_TIMEOUT while others are served.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import wait_for
from tests.support.cli import compress
from tests.support.server import ServerProcess
from tests.support.tls import self_signed_certificate
from tests.test_resilience import server_side_open

BIG = 6 * 1024 * 1024 + 123  # several SENDFILE_PIECEs and an odd tail


class TLSServer:
    def __init__(self, server: ServerProcess, cert: Path, site: Path):
        self.server = server
        self.cert = cert
        self.site = site

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def connect(self, rcvbuf: int | None = None) -> ssl.SSLSocket:
        raw = socket.socket()
        if rcvbuf is not None:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        raw.settimeout(15)
        raw.connect(("127.0.0.1", self.server.port))
        return self.context().wrap_socket(raw, server_hostname="127.0.0.1")


@pytest.fixture
def tls(site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TLSServer]:
    cert, key = self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # httpx, also the readiness probe, trusts it
    (site / "big.zip").write_bytes(os.urandom(BIG))  # .zip: not compressed
    (site / "stall.zip").write_bytes(os.urandom(64 * 1024 * 1024))
    (site / "mid.bin").write_bytes(os.urandom(100 * 1024 + 7))
    compress(site)
    server = ServerProcess(site, env={"GUNICORN_CMD_ARGS": f"--certfile {cert} --keyfile {key}",
                                      "SERVESTATIC_TIMEOUT": "2"})
    server.url = server.url.replace("http://", "https://")
    with server:
        yield TLSServer(server, cert, site)


def read_answer(sock: ssl.SSLSocket, buffer: bytes) -> tuple[bytes, bytes, bytes]:
    """One answer with a Content-Length from `sock`: (head, body, what follows it)."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(1 << 20)
        assert chunk, "closed before the head ended"
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(rest) < length:
        chunk = sock.recv(1 << 20)
        assert chunk, f"closed after {len(rest)} of {length} body bytes"
        rest += chunk
    return head, rest[:length], rest[length:]


def test_large_bodies_over_tls_arrive_whole(tls: TLSServer) -> None:
    big = (tls.site / "big.zip").read_bytes()
    mid = (tls.site / "mid.bin").read_bytes()
    with httpx.Client(base_url=tls.server.url, headers={"Accept-Encoding": "identity"}) as client:
        assert client.get("/big.zip").content == big
        assert client.get("/mid.bin").content == mid
        ranged = client.get("/big.zip", headers={"Range": "bytes=1000-4000000"})
        assert ranged.status_code == 206
        assert ranged.content == big[1000:4000001]
    # Pipelined: two large answers and a small one behind them, in order, on one connection.
    with tls.connect() as sock:
        sock.sendall(b"GET /big.zip HTTP/1.1\r\nHost: t\r\n\r\n"
                     b"GET /mid.bin HTTP/1.1\r\nHost: t\r\n\r\n"
                     b"GET /robots.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        head, body, rest = read_answer(sock, b"")
        assert head.startswith(b"HTTP/1.1 200 ") and body == big
        head, body, rest = read_answer(sock, rest)
        assert head.startswith(b"HTTP/1.1 200 ") and body == mid
        head, body, rest = read_answer(sock, rest)
        assert head.startswith(b"HTTP/1.1 200 ") and body == (tls.site / "robots.txt").read_bytes()


def test_a_tls_client_that_stops_reading_is_dropped_after_the_timeout(tls: TLSServer) -> None:
    with tls.connect(rcvbuf=4096) as stall:
        stall.sendall(b"GET /stall.zip HTTP/1.1\r\nHost: t\r\n\r\n")
        assert stall.recv(1024).startswith(b"HTTP/1.1 200 ")  # it has started; now never read again
        stalled_at = time.monotonic()
        with httpx.Client(base_url=tls.server.url) as client:
            page = client.get("/index.html", timeout=15)
            assert page.status_code == 200 and page.content == (tls.site / "index.html").read_bytes()
        client_port = stall.getsockname()[1]
        wait_for(lambda: not server_side_open(tls.server.port, client_port), 20,
                 "the stalled TLS reader to be dropped")
        dropped = time.monotonic() - stalled_at
        with httpx.Client(base_url=tls.server.url) as client:
            assert client.get("/index.html").status_code == 200
    print(f"\nstalled TLS reader dropped after {dropped:.2f} s (timeout 2 s)")
    assert 1.5 <= dropped <= 10
