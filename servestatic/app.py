"""The WSGI application: a table lookup, then a precomputed answer or the user's app.

Order of decisions for a request (docs/http.md, "Order of decisions"): the static table
(method, Accept-Encoding, preconditions, Range), then the health path, the
`/dir` -> `/dir/` redirect, the SPA fallback, the user's app, and last the 404
page. The hit path does no string building beyond what a condition asks for.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO
from urllib.parse import quote

from servestatic.http import (
    Unsatisfiable,
    acceptable_codings,
    match,
    none_match,
    parse_http_date,
    parse_range,
)
from servestatic.settings import Settings
from servestatic.table import Representation, StaticFile, Table, wsgi_key

log = logging.getLogger("servestatic")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

BLOCK_SIZE = 64 * 1024
ALLOW = ("Allow", "GET, HEAD")
TEXT = ("Content-Type", "text/plain; charset=utf-8")
NO_STORE = ("Cache-Control", "no-store")
_NOT_ON_404 = frozenset({"content-length", "etag", "last-modified", "accept-ranges", "cache-control",
                         "expires"})
_HEADER_LIST = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:[ \t]*,[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*")


HAVE_PROC_FD = os.path.isdir("/proc/self/fd")


class AppImportError(Exception):
    """SERVESTATIC_APP names something that cannot be imported or is not a WSGI app."""


def import_app(import_path: str) -> WSGIApp:
    """Import `module:attribute` (or `module:factory()`) from the working directory."""
    module_name, _, attribute = import_path.partition(":")
    call = attribute.endswith("()")
    attribute = attribute.removesuffix("()")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as error:  # any import-time failure of the user's code
        raise AppImportError(
            f"SERVESTATIC_APP={import_path}: cannot import {module_name!r}: "
            f"{type(error).__name__}: {error}"
        ) from None
    try:
        for part in attribute.split("."):
            target = getattr(target, part)
        if call:
            target = target()
    except Exception as error:
        raise AppImportError(
            f"SERVESTATIC_APP={import_path}: cannot get {attribute!r} from {module_name!r}: "
            f"{type(error).__name__}: {error}"
        ) from None
    if not callable(target):
        raise AppImportError(f"SERVESTATIC_APP={import_path}: {attribute!r} is not a WSGI callable")
    return target


class FileIterator:
    """A WSGI body for servers without `wsgi.file_wrapper`: read in blocks, up to a length."""

    def __init__(self, stream: Any, length: int):
        self.stream = stream
        self.remaining = length

    def __iter__(self) -> Iterator[bytes]:
        while self.remaining > 0:
            block = self.stream.read(min(BLOCK_SIZE, self.remaining))
            if not block:
                break
            self.remaining -= len(block)
            yield block

    def close(self) -> None:
        self.stream.close()


class Answer:
    """A decided response: status, headers, and the body as an open file range or bytes."""

    __slots__ = ("body", "first", "headers", "length", "representation", "size", "status", "stream")

    def __init__(self, status: str, headers: list[tuple[str, str]], *, body: bytes | None = None,
                 stream: BinaryIO | None = None, first: int = 0, length: int = 0, size: int = 0,
                 representation: Representation | None = None):
        # `representation` is set when headers is one of its precomputed lists,
        # so a server can keep that list's encoded form with it (fastpath.py).
        self.representation = representation
        self.status = status
        self.headers = headers
        self.body = body
        self.stream = stream
        self.first = first
        self.length = length
        self.size = size


class StaticApp:
    """The servestatic WSGI app. Build it with `servestatic.server.prepare`."""

    def __init__(self, table: Table, settings: Settings, app: WSGIApp | None = None):
        self.files = table.files
        self.redirects = table.redirects
        self.not_found = table.not_found
        self.spa_index = table.spa_index
        self.table = table
        self.app = app
        self.prefix_key = table.spa_prefix  # SPA routes: paths under the SPA index's mount
        self.health_key = wsgi_key(settings.health_path)
        self.cors = settings.cors
        self.cors_any = settings.cors == ("*",)
        self.cors_allowed = frozenset(settings.cors) if not self.cors_any else frozenset()
        self.miss_cache = f"public, max-age={settings.max_age}"
        # Read by servestatic.worker: whether static hits may skip gunicorn's WSGI layer.
        self.fast_path = settings.fast_path
        self.real_root = table.real_roots  # str.startswith takes the tuple: inside any mount

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        static_file = self.files.get(path) or self.table.lookup(path)
        if static_file is not None:
            return self.respond(self.answer(static_file, environ), environ, start_response)
        return self.miss(environ, start_response)

    @staticmethod
    def respond(answer: Answer, environ: dict[str, Any],
                start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Hand an Answer to a WSGI server: the file through `wsgi.file_wrapper` (sendfile)."""
        start_response(answer.status, answer.headers)
        stream = answer.stream
        if stream is None:
            return [answer.body] if answer.body else []
        file_wrapper = environ.get("wsgi.file_wrapper")
        if file_wrapper is not None and (
            answer.first + answer.length == answer.size
            # gunicorn's sendfile sends Content-Length bytes from the current offset.
            or environ.get("SERVER_SOFTWARE", "").startswith("gunicorn")
        ):
            return file_wrapper(stream, BLOCK_SIZE)
        return FileIterator(stream, answer.length)

    # --- hits

    def answer(self, static_file: StaticFile, environ: dict[str, Any]) -> Answer:
        """Everything a request for a static file gets, decided without writing anything.

        The WSGI path (`respond`) and the worker's fast path (fastpath.py) both
        send what this returns, so they cannot disagree on the contract.
        """
        method = environ["REQUEST_METHOD"]
        if method != "GET" and method != "HEAD":
            return self.other_method(method, environ)
        representation = static_file.select(acceptable_codings(environ.get("HTTP_ACCEPT_ENCODING")))
        if representation is None:
            return self.simple("406 Not Acceptable", [("Vary", "Accept-Encoding")],
                               b"406 Not Acceptable\n", method)
        headers = representation.headers
        if self.cors_allowed:
            headers = self.with_cors_origin(headers, environ)

        precondition = self.preconditions(static_file, representation, environ)
        if precondition is not None:
            extra = self.with_cors_origin([], environ) if self.cors_allowed else []
            if precondition == 304:
                if extra:
                    return Answer("304 Not Modified", representation.not_modified_headers + extra)
                return Answer("304 Not Modified", representation.not_modified_headers,
                              representation=representation)
            return self.simple("412 Precondition Failed", representation.not_modified_headers + extra,
                               b"412 Precondition Failed\n", method)

        status = "200 OK"
        first, length = 0, representation.size
        range_header = environ.get("HTTP_RANGE")
        if range_header is not None and method == "GET" and self.range_applies(
            static_file, representation, environ
        ):
            try:
                selected = parse_range(range_header, representation.size)
            except Unsatisfiable:
                extra = self.with_cors_origin([], environ) if self.cors_allowed else []
                return self.simple(
                    "416 Range Not Satisfiable",
                    [*representation.not_modified_headers, *extra,
                     ("Content-Range", f"bytes */{representation.size}"), TEXT],
                    b"416 Range Not Satisfiable\n", method)
            if selected is not None:
                first, last = selected
                length = last - first + 1
                status = "206 Partial Content"
                headers = [pair for pair in headers if pair[0] != "Content-Length"]
                headers += [("Content-Length", str(length)),
                            ("Content-Range", f"bytes {first}-{last}/{representation.size}")]

        try:
            stream = self.open_unchanged(representation)
        except OSError as error:
            # Removed or replaced since start-up: a 404, never a 500 (HEAD as GET).
            log.warning("%s: %s since start-up", representation.path, error.strerror)
            return self.page_not_found(environ)
        if method == "HEAD":
            stream.close()
            return Answer(status, headers, representation=representation)
        if first:
            stream.seek(first)
        return Answer(status, headers, stream=stream, first=first, length=length,
                      size=representation.size, representation=representation)

    def open_unchanged(self, representation: Representation) -> BinaryIO:
        """Open a representation's file, refusing one that is no longer what the table says.

        The table is built from the manifest without touching the tree, so a
        file swapped since then for a symlink out of the root is caught here
        (O_NOFOLLOW costs nothing; only a link pays for a realpath), and one of
        another size would make Content-Length a lie and cut the answer short.
        """
        path = representation.path
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError as error:
            if error.errno != errno.ELOOP:
                raise
            real = os.path.realpath(path)
            if not real.startswith(self.real_root):
                raise OSError(errno.EACCES, "became a symlink out of the root", path) from None
            fd = os.open(real, os.O_RDONLY | os.O_CLOEXEC)
        try:
            size = os.fstat(fd).st_size
            # O_NOFOLLOW looks at the last name only: a directory on the way
            # swapped for a link out of the root is caught by where the
            # descriptor really points (one readlink, no race with the swap).
            opened = os.readlink(f"/proc/self/fd/{fd}") if HAVE_PROC_FD else os.path.realpath(path)
        except OSError:
            os.close(fd)
            raise
        if not opened.startswith(self.real_root):
            os.close(fd)
            raise OSError(errno.EACCES, "reached through a symlink out of the root", path)
        if size != representation.size:
            os.close(fd)
            raise OSError(errno.ESTALE, f"changed size ({representation.size} -> {size} bytes)", path)
        return os.fdopen(fd, "rb")

    @staticmethod
    def preconditions(static_file: StaticFile, representation: Representation,
                      environ: dict[str, Any]) -> int | None:
        """RFC 9110 13.2.2 in order: 412 for a failed If-Match/If-Unmodified-Since,
        304 when If-None-Match (or, without it, If-Modified-Since) says not modified."""
        if_match = environ.get("HTTP_IF_MATCH")
        if if_match is not None:
            if not match(if_match, representation.etag):
                return 412
        else:
            if_unmodified = environ.get("HTTP_IF_UNMODIFIED_SINCE")
            if if_unmodified is not None and static_file.mtime is not None:
                since = parse_http_date(if_unmodified)
                if since is not None and static_file.mtime > since:
                    return 412
        if_none_match = environ.get("HTTP_IF_NONE_MATCH")
        if if_none_match is not None:
            return 304 if none_match(if_none_match, representation.etag) else None
        if_modified = environ.get("HTTP_IF_MODIFIED_SINCE")
        if if_modified is not None and static_file.mtime is not None:
            since = parse_http_date(if_modified)
            if since is not None and static_file.mtime <= since:
                return 304
        return None

    @staticmethod
    def range_applies(static_file: StaticFile, representation: Representation,
                      environ: dict[str, Any]) -> bool:
        """If-Range: the range applies only if the client's copy is still current.

        An entity-tag must match strongly; a date must equal Last-Modified exactly.
        """
        if_range = environ.get("HTTP_IF_RANGE")
        if if_range is None:
            return True
        if_range = if_range.strip()
        if if_range.startswith('"'):
            return if_range == representation.etag
        if if_range.startswith("W/"):
            return False
        since = parse_http_date(if_range)
        return since is not None and static_file.mtime is not None and since == static_file.mtime

    def with_cors_origin(self, headers: list[tuple[str, str]],
                         environ: dict[str, Any]) -> list[tuple[str, str]]:
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and origin in self.cors_allowed:
            return [*headers, ("Access-Control-Allow-Origin", origin)]
        return headers

    def other_method(self, method: str, environ: dict[str, Any]) -> Answer:
        if method == "OPTIONS" and self.cors and environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"):
            return self.preflight(environ)
        return self.simple("405 Method Not Allowed", [ALLOW], b"405 Method Not Allowed\n", method)

    def preflight(self, environ: dict[str, Any]) -> Answer:
        """Answer a CORS preflight for a static path: GET and HEAD, any simple headers asked."""
        headers = [ALLOW, ("Access-Control-Allow-Methods", "GET, HEAD"),
                   ("Access-Control-Max-Age", "86400")]
        if self.cors_any:
            headers.append(("Access-Control-Allow-Origin", "*"))
        else:
            headers = self.with_cors_origin(headers, environ)
            headers.append(("Vary", "Origin"))
        requested = environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "").strip()
        if requested and len(requested) <= 1024 and _HEADER_LIST.fullmatch(requested):
            headers.append(("Access-Control-Allow-Headers", requested))
        return Answer("204 No Content", headers)

    # --- misses

    def miss(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ["REQUEST_METHOD"]
        if path == self.health_key:
            return self.respond(self.health(method), environ, start_response)
        target = self.redirects.get(path)
        if target is not None and method in ("GET", "HEAD"):
            return self.respond(self.redirect(target, environ), environ, start_response)
        if self.spa_index is not None and method in ("GET", "HEAD") and self.is_spa_route(path):
            return self.respond(self.answer(self.spa_index, environ), environ, start_response)
        if self.app is not None:
            return self.app(environ, start_response)
        return self.respond(self.page_not_found(environ), environ, start_response)

    def health(self, method: str) -> Answer:
        """The health endpoint: 200 for GET and HEAD while the worker runs; never cached."""
        if method not in ("GET", "HEAD"):
            return self.simple("405 Method Not Allowed", [ALLOW], b"405 Method Not Allowed\n", method)
        return self.simple("200 OK", [NO_STORE], b"ok\n", method)

    def is_spa_route(self, path: str) -> bool:
        """An unknown extension-less path under the prefix: a client-side route."""
        return path.startswith(self.prefix_key) and "." not in path.rpartition("/")[2]

    def redirect(self, target: str, environ: dict[str, Any]) -> Answer:
        location = quote(environ.get("SCRIPT_NAME", "") + target, safe="/!$&'()*+,;=:@~-._",
                         encoding="latin-1")
        query = environ.get("QUERY_STRING")
        if query:
            location += "?" + query
        return self.simple("301 Moved Permanently",
                           [("Location", location), ("Cache-Control", self.miss_cache)],
                           b"", environ["REQUEST_METHOD"])

    def page_not_found(self, environ: dict[str, Any]) -> Answer:
        method = environ["REQUEST_METHOD"]
        page = self.not_found
        if page is not None and method in ("GET", "HEAD"):
            representation = page.select(acceptable_codings(environ.get("HTTP_ACCEPT_ENCODING")))
            if representation is not None:
                try:
                    with self.open_unchanged(representation) as stream:
                        body = stream.read()
                except OSError:
                    body = None
                if body is not None:
                    # The page's own headers (type, coding, nosniff, CSP from a rule...)
                    # without those that would describe it as a cacheable 200.
                    headers = [pair for pair in representation.headers
                               if pair[0].lower() not in _NOT_ON_404]
                    headers.append(("Cache-Control", self.miss_cache))
                    return self.simple("404 Not Found", headers, body, method)
        return self.simple("404 Not Found", [("Cache-Control", self.miss_cache)],
                           b"404 Not Found\n", method)

    @staticmethod
    def simple(status: str, headers: list[tuple[str, str]], body: bytes, method: str) -> Answer:
        """A small answer whose body is in memory (sent for GET, not for HEAD)."""
        if not any(name == "Content-Type" for name, _ in headers) and body:
            headers = [*headers, TEXT]
        return Answer(status, [*headers, ("Content-Length", str(len(body)))],
                      body=None if method == "HEAD" else body)
