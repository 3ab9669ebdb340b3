"""The WSGI front: StaticApp's answers through any WSGI server, the user's WSGI app behind.

This is `servestatic.wsgi:application`, for people who run gunicorn (or
another WSGI server) themselves. `servestatic serve` does not use it: its
worker answers static hits in its event loop (worker.py) and everything else
through the ASGI front (asgiapp.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from servestatic.app import Answer, StaticApp

BLOCK_SIZE = 64 * 1024


class FileRange:
    """A WSGI body: `length` bytes of an open descriptor from `first`, read in blocks.

    It also has the `fileno()`/`read()` of a file, so a server's
    `wsgi.file_wrapper` can sendfile it: gunicorn's sends Content-Length bytes
    from the descriptor's current offset, which `first` has been seeked to.
    """

    def __init__(self, fd: int, first: int, length: int):
        self.fd = fd
        self.offset = first
        self.remaining = length
        os.lseek(fd, first, os.SEEK_SET)

    def fileno(self) -> int:
        return self.fd

    def read(self, size: int = -1) -> bytes:
        size = self.remaining if size < 0 else min(size, self.remaining)
        block = os.pread(self.fd, size, self.offset) if size > 0 else b""
        self.offset += len(block)
        self.remaining -= len(block)
        return block

    def __iter__(self) -> Iterator[bytes]:
        while self.remaining > 0:
            block = self.read(BLOCK_SIZE)
            if not block:
                break
            yield block

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class WSGIApp:
    """servestatic as a WSGI app: a claimed request gets StaticApp's answer, the rest the user's app."""

    def __init__(self, static: StaticApp):
        if static.user_app is not None and static.user_app.interface != "wsgi":
            raise ValueError("servestatic.wsgi serves a WSGI app; SERVESTATIC_APP names an ASGI "
                             "app: run `servestatic serve`, or servestatic.asgi:application")
        self.static = static
        self.user_app = static.user_app.callable if static.user_app is not None else None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        environ["PATH_INFO"] = path
        if self.user_app is not None and not self.static.claims(path, environ["REQUEST_METHOD"]):
            return self.user_app(environ, start_response)
        return respond(self.static.decide(environ), environ, start_response)


def respond(answer: Answer, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Hand an Answer to a WSGI server: a file range through `wsgi.file_wrapper` (sendfile)."""
    start_response(answer.status, answer.headers)
    if answer.fd is None:
        return [answer.body] if answer.body else []
    body = FileRange(answer.fd, answer.first, answer.length)
    answer.fd = None  # the body owns it now
    file_wrapper = environ.get("wsgi.file_wrapper")
    if file_wrapper is not None and (
        answer.first + answer.length == answer.size
        or environ.get("SERVER_SOFTWARE", "").startswith("gunicorn")
    ):
        return file_wrapper(body, BLOCK_SIZE)
    return body
