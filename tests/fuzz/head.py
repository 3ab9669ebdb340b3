"""Fuzz target: the loop's request-head reader (`parse_head`, servestatic/server/requesthead.py).

The input is the bytes a client sent; the head is everything up to the first blank line,
as the worker finds it. `parse_head` may refuse anything (None: gunicorn parses it), but
a head it accepts must be read exactly as its bytes say, and be one gunicorn would accept
and read the same way (tests/fuzz/gunicorn_head.py): the loop answers it before gunicorn's
parser sees it, so any difference is a request answered differently depending on which
reader looked first. Checked under gunicorn's default limits, tight ones and none, and at
an offset in the buffer (a pipelined second request), which must not change the answer.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from gunicorn.config import Config

from servestatic.core.decision import APP, HEALTH, STATIC
from servestatic.server.requesthead import StaticRequest, parse_head
from tests.fuzz.gunicorn_head import GunicornRefused, environ_headers, gunicorn_config, read_with_gunicorn

# (limit_request_line, limit_request_fields, limit_request_field_size): gunicorn's defaults,
# tight ones that fuzzed heads reach, and none at all (0).
LIMITS: tuple[tuple[int, int, int], ...] = ((4094, 100, 8190), (48, 3, 24), (0, 0, 0))
CONFIGS: dict[tuple[int, int, int], Config] = {limits: gunicorn_config(limits) for limits in LIMITS}
# A whole request before the fuzzed one, as when a client pipelines.
PIPELINED = b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n"

_HEADER_LINE = re.compile(rb"([!#$%&'*+.^`|~0-9A-Za-z-]+):([\t\x20-\x7e\x80-\xff]*)")
_VERSIONS = {(1, 0): b"HTTP/1.0", (1, 1): b"HTTP/1.1"}
_REFUSED_FIELDS = {b"transfer-encoding", b"expect", b"upgrade", b"http2-settings", b"te", b"trailer"}


def route(path: str, method: str) -> str:
    """A stand-in for StaticApp.route: the app's paths, the health check, files for the rest."""
    if path.startswith("/app"):
        return APP
    if path == "/healthz":
        return HEALTH
    return STATIC


def expected_path(target: bytes) -> str:
    """The table key of a target, derived here from RFC 9112 3.2 (origin- or absolute-form)."""
    if not target.startswith(b"/"):
        authority_and_path = target.split(b"://", 1)[1]
        slash = authority_and_path.find(b"/")
        target = authority_and_path[slash:] if slash >= 0 else b"/"
    return unquote_to_bytes(target.split(b"?", 1)[0]).decode("latin-1")


def check_accepted(head: bytes, request: StaticRequest, limits: tuple[int, int, int]) -> None:
    """An accepted head is read as its bytes say and within gunicorn's limits."""
    request_line, *lines = head[:-4].split(b"\r\n")
    assert request.method in ("GET", "HEAD"), request.method
    assert request.version in _VERSIONS, request.version
    assert request_line == b" ".join([request.method.encode(), request.target, _VERSIONS[request.version]])
    assert all(0x21 <= byte <= 0x7E and byte != 0x23 for byte in request.target), request.target
    scheme = request.target.split(b"://", 1)[0].lower()
    assert request.target.startswith(b"/") or scheme in (b"http", b"https"), request.target
    environ = dict(request.environ)
    path = expected_path(request.target)
    assert environ.pop("REQUEST_METHOD") == request.method
    assert environ.pop("PATH_INFO") == path
    query = request.target.split(b"?", 1)[1] if b"?" in request.target else b""
    assert environ.pop("QUERY_STRING") == query.decode("latin-1")
    assert request.route == route(path, request.method) and request.route in (STATIC, HEALTH)

    fields = []
    for line in lines:
        matched = _HEADER_LINE.fullmatch(line)
        assert matched is not None, f"accepted a malformed header line {line!r}"
        fields.append((matched[1].lower(), matched[2].strip(b" \t")))
    assert environ == environ_headers(fields), "the environ is not the head's header fields"
    names = [name for name, _ in fields]
    assert _REFUSED_FIELDS.isdisjoint(names), names
    assert environ.get("CONTENT_LENGTH", "0") == "0"
    assert names.count(b"host") == 1 or (request.version == (1, 0) and names.count(b"host") == 0)

    max_line, max_fields, max_field_size = limits
    assert not max_line or len(request_line) <= max_line
    assert not max_fields or len(lines) <= max_fields
    # gunicorn counts a field's CRLF in limit_request_field_size.
    assert not max_field_size or all(len(line) + 2 <= max_field_size for line in lines)

    tokens = {token.strip(" \t").lower() for value in [environ.get("HTTP_CONNECTION", "")]
              for token in value.split(",")}
    persistent = "close" not in tokens if request.version == (1, 1) else "keep-alive" in tokens
    assert request.keep_alive == persistent


def check_agrees_with_gunicorn(head: bytes, request: StaticRequest, limits: tuple[int, int, int]) -> None:
    """gunicorn accepts what the loop accepted, with the same method, target, version and headers."""
    try:
        reading = read_with_gunicorn(head, CONFIGS[limits])
    except GunicornRefused as refusal:
        raise AssertionError(f"the loop accepts what gunicorn refuses ({refusal}), limits {limits}: "
                             f"{head!r}") from None
    loop_headers = {key: value for key, value in request.environ.items()
                    if key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH")}
    assert (reading.method, reading.target, reading.version, reading.headers) == (
        request.method, request.target, request.version, loop_headers), (head, reading, limits)


def check_head(data: bytes) -> None:
    """The whole contract for one input (raises AssertionError on a breach)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return  # the worker asks parse_head only about a whole head
    head = data[:end + 4]
    for limits in LIMITS:
        request = parse_head(data, 0, end, limits, route)
        offset = len(PIPELINED)
        again = parse_head(PIPELINED + data, offset, offset + end, limits, route)
        assert (request is None) == (again is None), "the answer depends on where the head starts"
        if request is None:
            continue
        assert again is not None and (again.method, again.target, again.version, again.environ) == (
            request.method, request.target, request.version, request.environ)
        check_accepted(head, request, limits)
        check_agrees_with_gunicorn(head, request, limits)


def TestOneInput(data: bytes) -> None:
    check_head(data)
