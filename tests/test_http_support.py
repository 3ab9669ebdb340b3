"""Helpers for the black-box HTTP contract tests (tests/test_http_*.py); no tests here.

httpx normalises what it sends (dot segments, backslashes, percent-encoding),
so hostile requests go through `raw_request`, which writes the exact bytes of a
request to a socket and reads back the status line, headers and body.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import EXAMPLE_SITE
from tests.server import REPO, SERVESTATIC, ServerProcess

MANIFEST = ".servestatic-manifest.json"


def copy_site(target: Path) -> Path:
    """A private copy of examples/site without build output (as the `site` fixture makes)."""
    shutil.copytree(EXAMPLE_SITE, target, symlinks=True,
                    ignore=shutil.ignore_patterns("*.br", "*.gz", "*.zst", MANIFEST))
    return target


def run_compress(root: Path, env: dict[str, str] | None = None) -> None:
    """`servestatic compress ROOT` with extra environment (SOURCE_DATE_EPOCH, say)."""
    subprocess.run([*SERVESTATIC, "compress", str(root)], check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def manifest_entry(root: Path, relative: str) -> dict:
    return json.loads((root / MANIFEST).read_text(encoding="utf-8"))["files"][relative]


@contextmanager
def serving(root: Path | None, env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    """A running server that must still exit 0 on SIGTERM when the tests are done."""
    server = ServerProcess(root, env=env).start()
    try:
        yield server
    finally:
        code = server.stop()
    assert code == 0, f"servestatic exited with {code}:\n{server.log()}"


def client(server: ServerProcess) -> httpx.Client:
    # No default Accept-Encoding: the tests say exactly what they send.
    return httpx.Client(base_url=server.url, headers={"Accept-Encoding": "identity"}, timeout=10)


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return ", ".join(values) if values else None


def raw_request(server: ServerProcess, target: bytes | str, method: str = "GET",
                headers: dict[str, str] | None = None, raw: bytes | None = None,
                body: bytes = b"") -> RawResponse:
    """Send exactly one request as written (request-target not normalised), read the answer.

    `raw` replaces the whole request when even the header block must be hand-made.
    """
    if isinstance(target, str):
        target = target.encode("latin-1")
    if raw is None:
        lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1"]
        lines += [f"{name}: {value}".encode("latin-1") for name, value in (headers or {}).items()]
        if body:
            lines.append(b"Content-Length: %d" % len(body))
        lines.append(b"Connection: close")
        raw = b"\r\n".join(lines) + b"\r\n\r\n" + body
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(raw)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    data = b"".join(chunks)
    head, _, answer = data.partition(b"\r\n\r\n")
    if not head:
        raise AssertionError(f"no response to {raw[:200]!r}")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    _version, status, reason = [*status_line.split(" ", 2), ""][:3]
    pairs = [line.split(":", 1) for line in header_lines]
    parsed = RawResponse(int(status), reason, [(name.strip(), value.strip()) for name, value in pairs],
                         answer)
    length = parsed.header("Content-Length")
    if length is not None and method != "HEAD":
        assert len(answer) == int(length), f"body of {len(answer)} bytes, Content-Length {length}"
    return parsed
