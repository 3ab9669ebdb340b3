"""The worker's fast path: a static hit answered straight from the request head.

gunicorn spends most of a small static response on machinery a table lookup
does not need: its request parser, the WSGI environ, the Response object that
re-validates every header, and its header formatting. For a plain GET or HEAD
whose path is in the table, the worker hands the buffered request head to
`FastPath.serve`, which parses just enough of it, asks `StaticApp.answer` (the
same code the WSGI path uses, so the contract cannot differ) and writes the
precomputed header block and the file with one `sendall` or a `sendfile`.

Anything unusual falls back to gunicorn untouched, before a byte is written:
another method, a request body, `Expect`, `Upgrade`, a header gunicorn would
refuse or map, a pipelined second request, a miss. gunicorn then answers it,
4xx included, exactly as it would without this module.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from datetime import timedelta
from email.utils import formatdate
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote_to_bytes

from servestatic.app import Answer, StaticApp
from servestatic.metrics import HEALTH, STATIC, observe

# Small bodies go out with the header block in one send; larger ones by sendfile.
INLINE_BODY = 64 * 1024
_TARGET = re.compile(rb"/[\x21-\x22\x24-\x7e]*")  # origin-form, no '#', no spaces or controls
_NAME = re.compile(rb"[!#$%&'*+.^`|~0-9A-Za-z-]+")  # a token without '_' (gunicorn drops those)
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# Request headers after which gunicorn, not us, must decide what happens.
_FALL_BACK = frozenset({"HTTP_TRANSFER_ENCODING", "HTTP_EXPECT", "HTTP_UPGRADE", "HTTP_HTTP2_SETTINGS",
                        "HTTP_TE", "HTTP_TRAILER"})
_VERSIONS = {b"HTTP/1.1": (1, 1), b"HTTP/1.0": (1, 0)}
_METHODS = {b"GET": "GET", b"HEAD": "HEAD"}


class Request:
    """The little of a request the fast path needs, and what an access log line shows."""

    __slots__ = ("environ", "headers", "keep_alive", "method", "path", "query", "uri", "version")

    def __init__(self, method: str, uri: str, path: str, query: str, version: tuple[int, int],
                 headers: list[tuple[str, str]], environ: dict[str, Any], keep_alive: bool):
        self.method = method
        self.uri = uri
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.environ = environ
        self.keep_alive = keep_alive


def parse_head(data: bytes, max_line: int, max_fields: int, max_field_size: int,
               wanted: Callable[[str], bool] = lambda path: True) -> Request | None:
    """Parse one complete request head, or None when gunicorn should handle the request.

    `data` must be exactly one head: anything after the blank line (a body, a
    pipelined request) means None, as does any form the fast path does not take.
    `wanted(path)` is asked before the header fields are parsed, so a request
    the fast path would not answer anyway (a miss for the user's app) costs
    only its request line.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0 or end + 4 != len(data):
        return None
    lines = data[:end].split(b"\r\n")
    request_line = lines[0]
    if max_line and len(request_line) > max_line:
        return None
    parts = request_line.split(b" ")
    if len(parts) != 3:
        return None
    method = _METHODS.get(parts[0])
    version = _VERSIONS.get(parts[2])
    target = parts[1]
    if method is None or version is None or not _TARGET.fullmatch(target):
        return None
    raw_path, _, raw_query = target.partition(b"?")
    path = (unquote_to_bytes(raw_path) if b"%" in raw_path else raw_path).decode("latin-1")
    if not wanted(path) or len(lines) - 1 > max_fields:
        return None
    environ: dict[str, Any] = {"REQUEST_METHOD": method}
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _NAME.fullmatch(name) or (max_field_size and len(line) > max_field_size):
            return None
        value = value.strip(b" \t")
        if _BAD_VALUE.search(value):
            return None
        text = value.decode("latin-1")
        upper = name.decode("ascii").upper()
        key = "HTTP_" + upper.replace("-", "_")
        if key in _FALL_BACK or (key == "HTTP_CONTENT_LENGTH" and value != b"0"):
            return None
        headers.append((upper, text))
        previous = environ.get(key)
        environ[key] = text if previous is None else previous + "," + text
    if version == (1, 1) and "HTTP_HOST" not in environ:
        return None  # gunicorn's answer to that is its own business
    connection = environ.get("HTTP_CONNECTION", "").lower()
    tokens = {token.strip(" \t") for token in connection.split(",")} if connection else set()
    if "upgrade" in tokens:
        return None
    keep_alive = "close" not in tokens if version == (1, 1) else "keep-alive" in tokens
    return Request(method, target.decode("latin-1"), path, raw_query.decode("latin-1"), version,
                   headers, environ, keep_alive)


class FastPath:
    """Answers static hits for one worker; see the module docstring."""

    def __init__(self, app: StaticApp, worker: Any):
        self.app = app
        self.worker = worker
        cfg = worker.cfg
        self.max_line = cfg.limit_request_line
        self.max_fields = cfg.limit_request_fields
        self.max_field_size = cfg.limit_request_field_size
        self._second = 0
        self._date = b""
        paths, health = app.table.paths, app.health_key
        # Static paths and the health endpoint; all else is gunicorn's (and the app's).
        self.wanted = lambda path: path in paths or path == health

    def date_line(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._date = f"Date: {formatdate(now, usegmt=True)}\r\n".encode("ascii")
        return self._date

    def serve(self, conn: Any, data: bytes) -> bool | None:
        """Answer the request in `data` on conn's socket.

        Returns whether to keep the connection alive, or None (having written
        nothing) when gunicorn must handle the request instead.
        """
        request = parse_head(data, self.max_line, self.max_fields, self.max_field_size, self.wanted)
        if request is None:
            return None
        app = self.app
        started = time.monotonic()
        environ = request.environ
        environ["PATH_INFO"] = request.path
        try:
            static_file = app.files.get(request.path) or app.table.lookup(request.path)
            if static_file is not None:
                answer = app.answer(static_file, environ)
            else:
                answer = app.health(request.method)
        except Exception:
            return None  # gunicorn runs the WSGI path and answers the error its own way
        worker = self.worker
        worker.nr += 1
        keep_alive = request.keep_alive and worker.alive and bool(worker.cfg.keepalive)
        if worker.nr >= worker.max_requests:
            if worker.alive:
                worker.log.info("Autorestarting worker after current request.")
                worker.alive = False
            keep_alive = False
        elif keep_alive and len(worker.keepalived_conns) >= worker.max_keepalived:
            keep_alive = False
        worker.log.debug("fast path: %s %s %s", request.method, request.uri, answer.status)
        sent = 0
        try:
            sent = self.send(conn.sock, request, answer, keep_alive)
        finally:
            if answer.stream is not None:
                answer.stream.close()
            if worker.log.access_log_enabled:
                self.log_access(conn, request, answer, sent, time.monotonic() - started)
            coding = answer.representation.coding if answer.representation else ""
            observe(HEALTH if static_file is None else STATIC, answer.status, sent, coding,
                    time.monotonic() - started)
        return keep_alive

    def send(self, sock: Any, request: Request, answer: Answer, keep_alive: bool) -> int:
        """Write the answer; returns the body bytes sent."""
        status_line = b"HTTP/1.1 " if request.version == (1, 1) else b"HTTP/1.0 "
        head = b"".join((
            status_line, answer.status.encode("ascii"), b"\r\nServer: gunicorn\r\n", self.date_line(),
            b"Connection: keep-alive\r\n" if keep_alive else b"Connection: close\r\n",
            header_block(answer), b"\r\n",
        ))
        stream = answer.stream
        if stream is None:
            body = answer.body or b""
            sock.sendall(head + body)
            return len(body)
        if answer.length <= INLINE_BODY:
            body = os.pread(stream.fileno(), answer.length, answer.first)
            sock.sendall(head + body)
            return len(body)
        sock.sendall(head)
        return sock.sendfile(stream, answer.first, answer.length)

    def log_access(self, conn: Any, request: Request, answer: Answer, sent: int, seconds: float) -> None:
        """One access-log line through gunicorn's logger, so formats and the JSON logger apply."""
        environ = request.environ
        environ.update({
            "RAW_URI": request.uri,
            "QUERY_STRING": request.query,
            "SERVER_PROTOCOL": "HTTP/{}.{}".format(*request.version),
            "REMOTE_ADDR": conn.client[0] if isinstance(conn.client, tuple) else str(conn.client),
        })
        response = SimpleNamespace(status=answer.status, sent=sent, headers=answer.headers)
        try:
            self.worker.log.access(response, request, environ, timedelta(seconds=seconds))
        except Exception:  # a log line must never fail a request
            self.worker.log.exception("cannot write access log line")


def header_block(answer: Answer) -> bytes:
    """The answer's headers as bytes; a representation's usual blocks are encoded once."""
    source = answer.representation
    if source is not None:
        if answer.headers is source.headers:
            if source.header_block is None:
                source.header_block = encode_headers(answer.headers)
            return source.header_block
        if answer.headers is source.not_modified_headers:
            if source.not_modified_block is None:
                source.not_modified_block = encode_headers(answer.headers)
            return source.not_modified_block
    return encode_headers(answer.headers)


def encode_headers(headers: list[tuple[str, str]]) -> bytes:
    return "".join(f"{name}: {value}\r\n" for name, value in headers).encode("latin-1")
