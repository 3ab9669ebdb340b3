"""The decision: who answers a request, and what servestatic answers, as data.

`StaticApp` knows the table, the settings and whether a user app is chained.
For a request it first says cheaply who answers it (`route`: a path and a
method, nothing else): the static table, the health endpoint, the user's app,
or servestatic's own miss (a redirect, the SPA index, a 404). Every front asks
it, and only it: the event loop (server/requesthead.py), the ASGI front, the
WSGI front and the metrics. For the requests that are not the app's it then
decides the whole answer (`decide`) as an `Answer` (core/answer.py): status,
headers and a body as bytes or an open file range, which the fronts only send.
So the HTTP contract (docs/http.md) lives here once.

Order of decisions (docs/http.md, "Order of decisions"): the static table (method,
Accept-Encoding, preconditions, Range), then the health path, the `/dir` ->
`/dir/` redirect, the SPA fallback, the user's app, and last the 404 page.
"""

from __future__ import annotations

import logging
import os
from typing import Any
from urllib.parse import quote

from servestatic.config.settings import Settings
from servestatic.core.answer import Answer, Headers
from servestatic.core.cors import CorsPolicy
from servestatic.core.dictionaries import delta_for
from servestatic.core.http import (
    Unsatisfiable,
    acceptable_codings,
    match,
    none_match,
    parse_http_date,
    parse_range,
    wants_sha512,
    with_stale_if_error,
)
from servestatic.core.safeopen import open_roots, open_unchanged
from servestatic.core.smallfiles import SMALL_FILE, SmallFiles
from servestatic.core.table import Representation, StaticFile, Table, wsgi_key

log = logging.getLogger("servestatic")

ALLOW = ("Allow", "GET, HEAD")
TEXT = ("Content-Type", "text/plain; charset=utf-8")
NO_STORE = ("Cache-Control", "no-store")
_READ_METHODS = ("GET", "HEAD")

# Who answers a request (`StaticApp.route`). The names are the metrics' `where` label too.
STATIC = "static"  # a path of the static table: 200, 304, 206, 416, 405 ...
HEALTH = "health"  # the health and readiness endpoints
APP = "app"  # the user's app
MISS = "miss"  # servestatic, for anything else: a redirect, the SPA index, a 404
_NOT_ON_404 = frozenset({"content-length", "etag", "last-modified", "accept-ranges", "cache-control",
                         "expires",
                         # a 404 has CDN headers of its own (Table.miss_cdn_headers)
                         "cdn-cache-control", "x-accel-expires", "cache-tag", "surrogate-key",
                         "edge-cache-tag"})


class StaticApp:
    """The decision for one site. Build it with `servestatic.fronts.prepare.prepare`."""

    def __init__(self, table: Table, settings: Settings, user_app: Any = None):
        self.files = table.files
        self.paths = table.paths
        self.redirects = table.redirects
        self.not_found = table.not_found
        self.spa_index = table.spa_index
        self.table = table
        # The user's app (fronts/userapp.py's UserApp), or None. The decision reads only
        # whether there is one; the fronts call it.
        self.user_app = user_app
        self.prefix_key = table.spa_prefix  # SPA routes: paths under the SPA index's mount
        self.health_key = wsgi_key(settings.health_path)
        self.ready_key = wsgi_key(settings.ready_path)
        # Ready when a request can get something: a file (the 404 page counts) or the app.
        # An image without its site (servestatic/base as it is) serves nothing: not ready.
        self.ready = bool(table.paths) or user_app is not None
        self.cors = CorsPolicy(settings.cors, settings.timing_allow_origin)
        self.miss_cache = with_stale_if_error(f"public, max-age={settings.max_age}", settings.stale_if_error)
        # A 404's Cache-Control and, for the CDN, its cache tags and CDN-Cache-Control.
        self.not_found_cache = table.policy.not_found_headers(table.not_found_build, self.miss_cache)
        # Read by the worker: whether static hits are answered in its event loop.
        self.fast_path = settings.fast_path
        self.early_hints = settings.early_hints  # answered by each front (core/answer.early_hint_headers)
        self.real_root = table.real_roots  # str.startswith takes the tuple: inside any mount
        open_roots(self.real_root)  # core/safeopen.py: opened here, inherited by the workers
        self.small_files = SmallFiles()  # each worker fills its own on its first requests
        self.security = table.security
        if table.live_prefixes:
            # Mounts that change at run time: their paths are found on disk, per request.
            # Only then are `route` and `lookup` the ones that look there.
            self.route = self.route_with_live  # type: ignore[method-assign]
            self.lookup = self.lookup_with_live  # type: ignore[method-assign]
        if self.security.needs_scheme:
            # Only then does an answer depend on the request's scheme: a site without HSTS
            # or the https redirect keeps the plain `decide`, and pays nothing for them.
            self.decide = self.decide_by_scheme  # type: ignore[method-assign]

    def lookup(self, path: str) -> StaticFile | None:
        return self.files.get(path) or self.table.lookup(path)

    def route(self, path: str, method: str) -> str:
        """Who answers this request: STATIC, HEALTH, APP or MISS; everything but APP is
        answered by `decide`.

        Cheap on purpose (dictionary and set look-ups): a front asks it before
        building anything for a request the user's app will get.
        """
        if path in self.paths:
            return STATIC
        if path == self.health_key or path == self.ready_key:
            return HEALTH
        if self.user_app is None:
            return MISS
        if method != "GET" and method != "HEAD":
            return APP
        if path in self.redirects or (self.spa_index is not None and self.is_spa_route(path)):
            return MISS
        return APP

    def route_with_live(self, path: str, method: str) -> str:
        """`route` when a mount changes at run time: a path of it is STATIC when the file is
        on disk now."""
        where = StaticApp.route(self, path, method)
        if where in (STATIC, HEALTH) or not path.startswith(self.table.live_prefixes):
            return where
        return STATIC if self.table.lookup_live(path) is not None else where

    def lookup_with_live(self, path: str) -> StaticFile | None:
        return self.files.get(path) or self.table.lookup(path) or self.table.lookup_live(path)

    def decide(self, environ: dict[str, Any]) -> Answer:
        """The answer to a request that is not the app's (`route`). `environ` needs
        REQUEST_METHOD, PATH_INFO and the request's headers as HTTP_* keys (QUERY_STRING
        and SCRIPT_NAME for redirects): fronts/environ.py builds it."""
        path = environ["PATH_INFO"]
        method = environ["REQUEST_METHOD"]
        static_file = self.lookup(path)
        if static_file is not None:
            return self.answer(static_file, environ)
        if path == self.health_key:
            return self.health(method)
        if path == self.ready_key:
            return self.readiness(method)
        if method in _READ_METHODS:
            target = self.redirects.get(path)
            if target is not None:
                return self.redirect(target, environ)
            if self.spa_index is not None and self.is_spa_route(path):
                return self.answer(self.spa_index, environ)
        return self.page_not_found(environ)

    def decide_by_scheme(self, environ: dict[str, Any]) -> Answer:
        """`decide` when HSTS or the https redirect is on (core/security.py): a plain-http
        request is redirected as Django's SecurityMiddleware would, the health path
        excepted; an https one gets Strict-Transport-Security."""
        security = self.security
        path = environ["PATH_INFO"]
        if security.is_secure(environ):
            static_file = self.lookup(path)
            if static_file is not None:
                return self.answer(static_file.https or static_file, environ)
            answer = StaticApp.decide(self, environ)
            hsts = security.hsts_pair
            if hsts is not None and path != self.health_key:
                answer.headers = [*answer.headers, hsts]  # a miss: encoded per answer
            return answer
        if security.ssl_redirect and path != self.health_key and not security.exempt(path):
            return self.https_redirect(environ)
        return StaticApp.decide(self, environ)

    def https_redirect(self, environ: dict[str, Any]) -> Answer:
        """SECURE_SSL_REDIRECT's 301 to the https URL, with the security headers a Django
        response carries; 400 when the request's host is not one to redirect to, as Django."""
        method = environ["REQUEST_METHOD"]
        location = self.security.https_location(environ)
        if location is None:
            return self.simple("400 Bad Request", [], b"400 Bad Request\n", method)
        return self.simple("301 Moved Permanently", [("Location", location), *self.security.redirect_headers],
                           b"", method)

    # --- hits

    def answer(self, static_file: StaticFile, environ: dict[str, Any]) -> Answer:
        """Everything a request for a static file gets (docs/http.md)."""
        method = environ["REQUEST_METHOD"]
        if method != "GET" and method != "HEAD":
            return self.other_method(method, environ)
        codings = acceptable_codings(environ.get("HTTP_ACCEPT_ENCODING"))
        representation = static_file.select(codings)
        if static_file.deltas is not None:
            # Dictionary deltas (RFC 9842; core/dictionaries.py): only files that have them
            # pay more than this test.
            representation = delta_for(static_file.deltas, environ, codings, self.cors) or representation
        if representation is None:
            return self.simple("406 Not Acceptable", [("Vary", "Accept-Encoding")],
                               b"406 Not Acceptable\n", method)
        headers = representation.headers
        want = environ.get("HTTP_WANT_REPR_DIGEST")
        if want is not None and representation.sha512 is not None and wants_sha512(want):
            headers = representation.with_sha512()  # kept too: see core/answer.header_block
        echo = self.cors.echo(environ) if self.cors.allowed else []
        if echo:
            headers = headers + echo

        precondition = self.preconditions(static_file, representation, environ)
        if precondition is not None:
            if precondition == 304:
                if echo:
                    return Answer("304 Not Modified", representation.not_modified_headers + echo)
                return Answer("304 Not Modified", representation.not_modified_headers,
                              representation=representation)
            return self.simple("412 Precondition Failed", representation.not_modified_headers + echo,
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
                return self.simple(
                    "416 Range Not Satisfiable",
                    [*representation.not_modified_headers, *echo,
                     ("Content-Range", f"bytes */{representation.size}"), TEXT],
                    b"416 Range Not Satisfiable\n", method)
            if selected is not None:
                first, last = selected
                length = last - first + 1
                status = "206 Partial Content"
                headers = [pair for pair in headers if pair[0] != "Content-Length"]
                headers += [("Content-Length", str(length)),
                            ("Content-Range", f"bytes {first}-{last}/{representation.size}")]

        # A small file's bytes are kept (core/smallfiles.py: one lstat a hit instead of an open).
        body = self.small_files.get(representation.path) if representation.size <= SMALL_FILE else None
        if body is None:
            try:
                fd = open_unchanged(representation.path, representation.size, self.real_root)
            except OSError as error:
                # Removed or replaced since start-up: a 404, never a 500 (HEAD as GET).
                log.warning("%s: %s since start-up", representation.path, error.strerror)
                return self.page_not_found(environ)
            if method != "HEAD" and representation.size <= SMALL_FILE:
                body = self.small_files.read(representation.path, fd, representation.size)
            if body is None and method != "HEAD":  # a large file, or one that just shrank
                return Answer(status, headers, fd=fd, first=first, length=length,
                              size=representation.size, representation=representation)
            os.close(fd)
        if method == "HEAD":
            return Answer(status, headers, representation=representation)
        if length != representation.size:
            body = body[first:first + length]
        return Answer(status, headers, body=body, representation=representation)

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

    def other_method(self, method: str, environ: dict[str, Any]) -> Answer:
        if self.cors.is_preflight(method, environ):
            return Answer("204 No Content", self.cors.preflight_headers(environ, ALLOW))
        return self.simple("405 Method Not Allowed", [ALLOW], b"405 Method Not Allowed\n", method)

    # --- misses

    def health(self, method: str) -> Answer:
        """The health endpoint: 200 for GET and HEAD while the worker runs; never cached."""
        if method not in _READ_METHODS:
            return self.simple("405 Method Not Allowed", [ALLOW], b"405 Method Not Allowed\n", method)
        return self.simple("200 OK", [NO_STORE], b"ok\n", method)

    def readiness(self, method: str) -> Answer:
        """The readiness endpoint: like `health`, but 503 while there is nothing to serve, so
        that an orchestrator sends no traffic to a server whose site is missing."""
        if method not in _READ_METHODS or self.ready:
            return self.health(method)
        return self.simple("503 Service Unavailable", [NO_STORE], b"nothing to serve\n", method)

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
        if page is not None and method in _READ_METHODS:
            representation = page.select(acceptable_codings(environ.get("HTTP_ACCEPT_ENCODING")))
            if representation is not None:
                body = self.read_small(representation)
                if body is not None:
                    # The page's own headers (type, coding, nosniff, CSP from a rule...)
                    # without those that would describe it as a cacheable 200.
                    headers = [pair for pair in representation.headers
                               if pair[0].lower() not in _NOT_ON_404]
                    headers += self.not_found_cache
                    return self.simple("404 Not Found", headers, body, method)
        return self.simple("404 Not Found", list(self.not_found_cache), b"404 Not Found\n", method)

    def read_small(self, representation: Representation) -> bytes | None:
        """A small file's whole bytes (the 404 page's), kept (core/smallfiles.py) when it
        is small enough; None when it is gone or changed size since start-up."""
        body = self.small_files.get(representation.path)
        if body is not None:
            return body
        try:
            fd = open_unchanged(representation.path, representation.size, self.real_root)
        except OSError:
            return None
        try:
            if representation.size <= SMALL_FILE:
                return self.small_files.read(representation.path, fd, representation.size)
            return os.pread(fd, representation.size, 0)
        finally:
            os.close(fd)

    @staticmethod
    def simple(status: str, headers: Headers, body: bytes, method: str) -> Answer:
        """A small answer whose body is in memory (sent for GET, not for HEAD)."""
        if not any(name == "Content-Type" for name, _ in headers) and body:
            headers = [*headers, TEXT]
        return Answer(status, [*headers, ("Content-Length", str(len(body)))],
                      body=None if method == "HEAD" else body)
