"""Raw HTTP for the black-box contract tests.

httpx normalises what it sends (dot segments, backslashes, percent-encoding),
so hostile requests go through `raw_request`, which writes the exact bytes of a
request to a socket and reads back the status line, headers and body.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from tests.support.server import ServerProcess


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


def read_response(client: socket.socket) -> tuple[bytes, bytes]:
    """One response (head, body) with a Content-Length body from a kept-alive connection,
    leaving the connection ready for the next."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += client.recv(65536)
    return head, body
