"""WSGI apps for tests/test_wsgi_differential.py, one per path, run under plain gunicorn and
under servestatic and compared byte for byte.

Every close() of a response iterable appends one line, `<QUERY_STRING> <what>`, to the file
named by WSGI_CASES_LOG (one write with O_APPEND, so lines from several processes and
threads never mix); the test reads it to count closes per request. Apps that break no
rule of PEP 3333 run inside wsgiref.validate.validator, so a server that breaks one
fails the request; the others say why they are left out.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar
from wsgiref.validate import validator

App = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def record(environ: dict[str, Any], what: str) -> None:
    path = os.environ.get("WSGI_CASES_LOG")
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{environ.get('QUERY_STRING', '')} {what}\n".encode())
        finally:
            os.close(fd)


class Counted:
    """An app's iterable with a close() that is recorded, then passed on."""

    def __init__(self, inner: Iterable[bytes], environ: dict[str, Any]):
        self.inner = inner
        self.environ = environ

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.inner)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()  # a generator still running in another thread raises here: not recorded
        record(self.environ, "close")


def counted(app: App) -> App:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return Counted(app(environ, start_response), environ)
    return wrapped


TEXT = [("Content-Type", "text/plain")]
# The headers of exc_info_before's first start_response, which the error page replaces.
FIRST_CALL = [("Content-Type", "text/plain"), ("X-First-Call", "replaced")]


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A list with its Content-Length: the hot path, no close()."""
    start_response("200 OK", [*TEXT, ("Content-Length", "6")])
    return [b"hello\n"]


def write_then_blocks(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """write() before the iterable and between its blocks: ABCD."""
    write = start_response("200 OK", list(TEXT))
    write(b"A")

    def blocks() -> Iterator[bytes]:
        yield b"B"
        write(b"C")
        yield b"D"
    return blocks()


def write_only(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The old style: the whole body through write(), an empty list returned; 3 MiB, more than
    the bridge holds before it sends from the app's thread."""
    write = start_response("200 OK", [*TEXT, ("Content-Length", str(3 * 1024 * 1024 + 3))])
    for letter in b"xyz":
        write(bytes([letter]) * (1024 * 1024))
        write(bytes([letter]))
    return []


def exc_info_before(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """PEP 3333's error handler: nothing sent yet, so start_response(exc_info) replaces the 200."""
    try:
        start_response("200 OK", list(FIRST_CALL))
        raise ValueError("the view failed")
    except ValueError:
        page = b"our own error page\n"
        start_response("500 Internal Server Error", [*TEXT, ("Content-Length", str(len(page)))],
                       sys.exc_info())
        return [page]


def exc_info_after(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The error comes after the first block: start_response(exc_info) must re-raise."""
    start_response("200 OK", list(TEXT))

    def blocks() -> Iterator[bytes]:
        yield b"partial"
        try:
            raise ValueError("late failure")
        except ValueError:
            start_response("500 Internal Server Error", list(TEXT), sys.exc_info())
        yield b"never sent"
    return blocks()


def raise_before_first_block(environ: dict[str, Any], start_response: Callable[..., Any]
                             ) -> Iterable[bytes]:
    start_response("200 OK", list(TEXT))

    def blocks() -> Iterator[bytes]:
        raise RuntimeError("failed before the first block")
        yield b""  # a generator
    return blocks()


def raise_after_first_block(environ: dict[str, Any], start_response: Callable[..., Any]
                            ) -> Iterable[bytes]:
    start_response("200 OK", list(TEXT))

    def blocks() -> Iterator[bytes]:
        yield b"first"
        raise RuntimeError("failed after the first block")
    return blocks()


def raise_in_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    raise RuntimeError("failed before start_response")


def empty_list(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", list(TEXT))
    return []


def empty_blocks(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [*TEXT, ("Content-Length", "0")])
    return iter([b"", b""])


def no_content(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("204 No Content", [])
    return []


def blocks(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A generator of many blocks, no Content-Length: chunked on both."""
    start_response("200 OK", [*TEXT, ("X-Case", "blocks")])
    return (b"%05d," % number for number in range(2000))


def upload(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Reads wsgi.input to its end in 64 KiB reads; answers its length and SHA-256."""
    body = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    digest = hashlib.sha256()
    size = 0
    try:
        while length is None or length == "" or size < int(length):
            want = 65536 if not length else min(65536, int(length) - size)
            data = body.read(want)
            if not data:
                break
            digest.update(data)
            size += len(data)
    except OSError as error:
        record(environ, f"input-error {type(error).__name__}")
        raise
    answer = f"{size} {digest.hexdigest()}\n".encode()
    start_response("200 OK", [*TEXT, ("Content-Length", str(len(answer)))])
    return [answer]


def slow_start(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Takes its time before it returns its iterable: a cancellation lands while it runs."""
    time.sleep(float(environ.get("HTTP_X_SLEEP", "2")))
    start_response("200 OK", list(TEXT))
    return [b"late\n"]


class CountedFile(io.FileIO):
    """A real file (gunicorn sends it with sendfile) whose reads are counted and whose close()
    is recorded, after a line `reads N`."""

    environ: ClassVar[dict[str, Any]] = {}  # the request's, set on the instance
    reads = 0

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        return super().read(size)

    def close(self) -> None:
        if not self.closed:
            record(self.environ, f"reads {self.reads}")
            record(self.environ, "close")
        super().close()


def file_response(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """wsgi.file_wrapper around a file of ?size=N bytes (WSGI_CASES_FILE, made by the test),
    as Django's FileResponse does: a Content-Length, block_size 4096."""
    path = os.environ["WSGI_CASES_FILE"]
    handle = CountedFile(path, "r")
    handle.environ = environ
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(os.path.getsize(path)))])
    return environ["wsgi.file_wrapper"](handle, 4096)


def hop_by_hop(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Headers PEP 3333 forbids to an app (hop-by-hop) and two that are the server's."""
    start_response("200 OK", [*TEXT, ("Content-Length", "3"), ("Connection", "close"),
                              ("Keep-Alive", "timeout=5"), ("Server", "mine"), ("X-Kept", "yes")])
    return [b"hop"]


def early_hints(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """gunicorn's wsgi.early_hints: a 103 before the response; ignored once it has started."""
    environ["wsgi.early_hints"]([("Link", "</style.css>; rel=preload; as=style")])
    environ["wsgi.early_hints"]([("Link", "</app.js>; rel=modulepreload"), ("X-Hint", "second")])
    write = start_response("200 OK", list(TEXT))
    write(b"page ")
    environ["wsgi.early_hints"]([("Link", "</late.css>; rel=preload; as=style")])  # too late: ignored
    return [b"body\n"]


def two_start_responses(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A second start_response without exc_info is an error (PEP 3333): a 500 on both."""
    start_response("200 OK", list(TEXT))
    start_response("201 Created", list(TEXT))
    return [b"not sent"]


VALIDATED: dict[str, App] = {
    "/hello": hello,
    "/write": counted(write_then_blocks),
    "/write-only": counted(write_only),
    "/exc-info-before": counted(exc_info_before),
    "/exc-info-after": counted(exc_info_after),
    "/raise-before": counted(raise_before_first_block),
    "/raise-after": counted(raise_after_first_block),
    "/empty": counted(empty_list),
    "/empty-blocks": counted(empty_blocks),
    "/no-content": counted(no_content),
    "/blocks": counted(blocks),
    "/upload": counted(upload),
    "/slow-start": counted(slow_start),
}
UNVALIDATED: dict[str, App] = {
    # wsgiref.validate raises on the app's own failure before start_response
    # ("The application must call start_response"), not the server's.
    "/raise-in-app": raise_in_app,
    # The validator wraps the iterable, and a server then cannot see its file_wrapper.
    "/file": file_response,
    # The validator refuses what these apps do on purpose.
    "/hop-by-hop": hop_by_hop,
    # wsgiref.validate does not know gunicorn's extension.
    "/early-hints": early_hints,
    "/two-start-responses": two_start_responses,
}
ROUTES: dict[str, App] = {**{path: validator(app) for path, app in VALIDATED.items()}, **UNVALIDATED}


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    app = ROUTES.get(environ["PATH_INFO"])
    if app is None:
        start_response("404 Not Found", [*TEXT, ("Content-Length", "10")])
        return [b"not found\n"]
    return app(environ, start_response)
