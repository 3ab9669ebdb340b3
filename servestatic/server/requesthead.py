"""Reading a request head for the event loop's static path: just enough, and strict.

The worker answers a static hit straight from the bytes it received, before
gunicorn's parser sees them, so this parser only has to recognise the plain
requests it will answer itself and say None to everything else; gunicorn then
parses and answers those its own way, errors included. Why not gunicorn's
parser or httptools: gunicorn's C parser (gunicorn-h1c) is an optional,
source-only package, its pure-Python parser cost 27 µs for a browser's head,
and httptools' per-header callbacks 11 µs; this one validates the whole
header block with one regular expression and costs about 5 µs (docs/design.md).

What it refuses (None): any method but GET and HEAD; a version other than
HTTP/1.1 or HTTP/1.0; a request-target with a space, a control, a `#` or a
non-ASCII byte; a header name with `_` (gunicorn drops those) or outside the
token characters; a folded line; a control in a value; a body or anything
that announces one (Content-Length other than 0, Transfer-Encoding); Expect,
Upgrade, HTTP2-Settings, TE, Trailer; a duplicate Host or Content-Type; HTTP/1.1
without Host; scheme headers that may contradict each other (gunicorn's 400 from a
trusted peer); anything over gunicorn's limit_request_* settings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from servestatic.core.decision import HEALTH, STATIC
from servestatic.fronts.environ import add_header_lines, request_path

_METHODS = {b"GET": "GET", b"HEAD": "HEAD"}
_VERSIONS = {b"HTTP/1.1": (1, 1), b"HTTP/1.0": (1, 0)}
# origin-form or absolute-form: visible ASCII but '#'
_TARGET = re.compile(rb"[\x21\x22\x24-\x7e]+")
# Every header line, each ending in CRLF: a token name without '_', a colon, a value
# of visible characters, spaces, tabs and obs-text (RFC 9110 5.5), no other control.
_HEADER_BLOCK = re.compile(rb"(?:[!#$%&'*+.^`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*\r\n)*")
# Request headers after which gunicorn, not the loop, must decide what happens.
_NOT_OURS = frozenset({"HTTP_TRANSFER_ENCODING", "HTTP_EXPECT", "HTTP_UPGRADE", "HTTP_HTTP2_SETTINGS",
                       "HTTP_TE", "HTTP_TRAILER"})


# gunicorn's default secure_scheme_headers, as (environ key, the value that means https).
# From a peer in forwarded_allow_ips, two of them saying different schemes are gunicorn's
# 400 (InvalidSchemeHeaders), so the loop must not answer such a head with a 200.
SCHEME_HEADERS = (("HTTP_X_FORWARDED_PROTOCOL", "ssl"), ("HTTP_X_FORWARDED_PROTO", "https"),
                  ("HTTP_X_FORWARDED_SSL", "on"))

# The routes (`StaticApp.route`) the loop answers itself; the rest go to gunicorn and the ASGI front.
_LOOP_ROUTES = (STATIC, HEALTH)


class StaticRequest:
    """The little of a request the loop needs to answer a static hit, and to log it."""

    __slots__ = ("environ", "keep_alive", "method", "route", "target", "version")

    def __init__(self, method: str, target: bytes, version: tuple[int, int], keep_alive: bool,
                 environ: dict[str, Any], route: str):
        self.method = method
        self.target = target
        self.version = version
        self.keep_alive = keep_alive
        self.environ = environ
        self.route = route

    def should_close(self) -> bool:  # what gunicorn's _will_close asks of a request
        return not self.keep_alive


def parse_head(data: bytes, start: int, end: int, limits: tuple[int, int, int],
               route: Callable[[str, str], str],
               scheme_headers: tuple[tuple[str, str], ...] = SCHEME_HEADERS) -> StaticRequest | None:
    """The head in data[start:end] (end: where its blank line starts) as a StaticRequest,
    or None when gunicorn should parse and answer it.

    `limits` are gunicorn's (limit_request_line, limit_request_fields,
    limit_request_field_size), 0 meaning none. `route(path, method)` is
    `StaticApp.route`, asked before the header fields are read, so that a
    request for the user's app costs only its request line. `scheme_headers` are
    gunicorn's secure_scheme_headers as environ keys (`SCHEME_HEADERS`: its default).
    """
    line_end = data.find(b"\r\n", start, end + 2)
    request_line = data[start:line_end]
    max_line, max_fields, max_field_size = limits
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
    path = request_path(target)
    if path is None:
        return None
    where = route(path, method)
    if where not in _LOOP_ROUTES:
        return None
    block = data[line_end + 2:end + 2]
    if not _HEADER_BLOCK.fullmatch(block):
        return None
    lines = block.split(b"\r\n")
    lines.pop()  # the empty piece after the last CRLF
    if max_fields and len(lines) > max_fields:
        return None
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path,
                               "QUERY_STRING": target.partition(b"?")[2].decode("latin-1")}
    if not add_header_lines(environ, lines, max_field_size):
        return None
    if not _NOT_OURS.isdisjoint(environ):
        return None
    if _schemes_may_disagree(environ, scheme_headers):
        return None
    length = environ.get("CONTENT_LENGTH")
    if length is not None and length != "0":
        return None
    if version == (1, 1) and "HTTP_HOST" not in environ:
        return None  # gunicorn's answer to that is its own business
    connection = environ.get("HTTP_CONNECTION")
    tokens = {token.strip(" \t").lower() for token in connection.split(",")} if connection else set()
    if "upgrade" in tokens:
        return None
    keep_alive = "close" not in tokens if version == (1, 1) else "keep-alive" in tokens
    return StaticRequest(method, target, version, keep_alive, environ, where)


def _schemes_may_disagree(environ: dict[str, Any], scheme_headers: tuple[tuple[str, str], ...]) -> bool:
    """Whether gunicorn could find the scheme headers contradictory: two fields (or one
    given twice) saying different schemes; each says https when its whole value is the
    secure one. A field given twice is joined with "," here, as is a value with a comma of
    its own: when one piece is the secure value, either may be meant, and gunicorn decides.
    (gunicorn ignores them from an untrusted peer: leaving those heads to it costs only speed.)"""
    secure = None
    for key, https in scheme_headers:
        if key in environ:  # rather than .get: most heads carry none of them
            value = environ[key]
            if "," in value and https in value.split(","):
                return True
            says = value == https
            if secure is not None and secure != says:
                return True
            secure = says
    return False
