"""The loop's head reader against gunicorn's parser: whatever the loop accepts, gunicorn
accepts with the same method, target, version and headers.

The worker answers a static hit from `parse_head` (servestatic/server/requesthead.py)
before gunicorn's parser sees the bytes. If the two readers disagree, the same request
gets the loop's 200 or gunicorn's 400 depending only on which looked first, and a proxy
in front may read it like one and servestatic like the other. gunicorn's reading is
tests/fuzz/gunicorn_head.py (its PythonProtocol, CallbackRequest and header policy, for a
peer whose forwarding headers it trusts). Heads come from hypothesis and from the head
fuzz target's corpus; the disagreements found so far stay here as named cases.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from servestatic.server.requesthead import StaticRequest, parse_head
from tests.fuzz.gunicorn_head import (
    GunicornRefused,
    Reading,
    gunicorn_config,
    parser_classes,
    read_with_gunicorn,
)
from tests.fuzz.head import LIMITS, route
from tests.fuzz.runner import TARGETS

DEFAULT_LIMITS = LIMITS[0]  # gunicorn's: (4094, 100, 8190)
TIGHT_LIMITS = LIMITS[1]
CONFIGS = {limits: gunicorn_config(limits) for limits in LIMITS}
# gunicorn's Python parser, and its C parser (gunicorn-h1c) where installed: servestatic's
# worker uses whichever gunicorn picks.
PARSERS = parser_classes()


def loop_headers(request: StaticRequest) -> dict[str, str]:
    return {key: value for key, value in request.environ.items()
            if key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH")}


def readings(head: bytes, limits: tuple[int, int, int],
             scheme_headers: tuple[tuple[str, str], ...] | None = None, parser: str = "python",
             **config: object) -> tuple[StaticRequest | None, Reading | GunicornRefused]:
    """The loop's reading of a whole head (or None) and gunicorn's (or why it refuses)."""
    end = head.index(b"\r\n\r\n")
    extra = {} if scheme_headers is None else {"scheme_headers": scheme_headers}
    request = parse_head(head, 0, end, limits, route, **extra)
    cfg = gunicorn_config(limits, **config) if config else CONFIGS[limits]
    try:
        reading: Reading | GunicornRefused = read_with_gunicorn(head, cfg, parser_class=PARSERS[parser])
    except GunicornRefused as refusal:
        reading = refusal
    return request, reading


def assert_alike(head: bytes, limits: tuple[int, int, int], **options: object) -> bool:
    """Fails when the loop accepts what gunicorn refuses or reads otherwise; True when the loop accepted."""
    request, reading = readings(head, limits, **options)  # type: ignore[arg-type]
    if request is None:
        return False
    assert not isinstance(reading, GunicornRefused), (
        f"the loop accepts a head gunicorn refuses ({reading}); limits {limits}: {head!r}")
    assert (reading.method, reading.target, reading.version, reading.headers) == (
        request.method, request.target, request.version, loop_headers(request)), head
    return True


# --- heads from hypothesis

TOKEN = b"!#$%&'*+-.^`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
NAMES = [b"Host", b"host", b"HOST", b"Accept-Encoding", b"Connection", b"Content-Length", b"Content-Type",
         b"content-type", b"Transfer-Encoding", b"Expect", b"Upgrade", b"TE", b"Trailer", b"HTTP2-Settings",
         b"X-Forwarded-Proto", b"X-Forwarded-Ssl", b"X-Forwarded-Protocol", b"x-forwarded-proto",
         b"X_Forwarded_Proto", b"Range", b"If-None-Match", b"X-Long"]
VALUES = [b"https", b"http", b"on", b"off", b"ssl", b"close", b"keep-alive", b"Keep-Alive, Upgrade",
          b"upgrade", b"0", b"00", b"1", b"chunked", b"100-continue", b"a, b", b"https,https", b"https, http",
          b"gzip, br", b"bytes=0-1", b'"x"', b"", b"\x80\xff", b"a\x7fb", b"a\x00b", b"a\rb"]
VALUE_BYTES = st.sampled_from([*range(0x20, 0x7F), 0x09, 0x80, 0xA0, 0xFF, 0x7F, 0x00, 0x0B, 0x0D])
TARGET_BYTES = st.sampled_from([*b"/abcz09.-_~%?=&", *b"#\" <>\\^`{|}", 0x7F, 0x80, 0xE9, 0x09, 0x00])


@st.composite
def targets(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.sampled_from([b"*", b"example.com:443", b"/healthz", b"/app/orders", b"/", b"//",
                                     b"/%C3%A9t%C3%A9.txt", b"/%zz", b"/a?b?c", b"/a#frag"]))
    path = b"/" + bytes(draw(st.lists(TARGET_BYTES, max_size=24)))
    if kind == 1:
        scheme = draw(st.sampled_from([b"http", b"https", b"HTTP", b"ftp", b"http:"]))
        host = draw(st.sampled_from([b"example.com", b"h:8080", b"", b"user@h"]))
        return scheme + b"://" + host + draw(st.sampled_from([path, b"", b"?q=1"]))
    return path


@st.composite
def header_lines(draw: st.DrawFn, limits: tuple[int, int, int]) -> list[bytes]:
    lines = []
    if draw(st.integers(0, 9)):
        lines.append(b"Host: " + draw(st.sampled_from([b"example.com", b"a", b""])))
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.integers(0, 19))
        if kind == 0:  # malformed: folded, no colon, space before the colon, empty name
            lines.append(draw(st.sampled_from([b" folded", b"\tfolded", b"NoColon", b"Name : v", b": v",
                                               b"a b: v"])))
            continue
        name = draw(st.sampled_from(NAMES)) if kind < 14 else bytes(draw(st.lists(st.sampled_from(TOKEN),
                                                                                    min_size=1, max_size=8)))
        if kind % 3 == 0:
            value = bytes(draw(st.lists(VALUE_BYTES, max_size=30)))
        elif kind % 3 == 1 and limits[2]:  # a line near gunicorn's limit_request_field_size
            size = draw(st.integers(limits[2] - 4, limits[2] + 1)) - len(name) - 2
            value = b"v" * max(size, 0)
        else:
            value = draw(st.sampled_from(VALUES))
        spaces = draw(st.sampled_from([b"", b" ", b"  ", b"\t", b" \t"]))
        lines.append(name + b":" + spaces + value + draw(st.sampled_from([b"", b" ", b"\t"])))
    return lines


@st.composite
def heads(draw: st.DrawFn) -> tuple[bytes, tuple[int, int, int]]:
    limits = draw(st.sampled_from(LIMITS))
    method = draw(st.sampled_from([b"GET", b"GET", b"GET", b"HEAD", b"POST", b"get", b"OPTIONS", b""]))
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.2",
                                    b"http/1.1"]))
    space = draw(st.sampled_from([b" ", b" ", b" ", b"  ", b"\t"]))
    request_line = method + space + draw(targets()) + b" " + version
    if limits[0] and draw(st.integers(0, 9)) == 0:  # a request line at limit_request_line
        request_line = method + b" /" + b"a" * max(limits[0] - len(method) - len(version) - 2 + draw(
            st.integers(-1, 1)), 0) + b" " + version
    lines = draw(header_lines(limits))
    if draw(st.integers(0, 4)) == 0:
        lines = draw(st.permutations(lines))
    return b"\r\n".join([request_line, *lines]) + b"\r\n\r\n", limits


@pytest.mark.parametrize("parser", list(PARSERS))
@settings(max_examples=4000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(heads())
@example((b"GET /a HTTP/1.1\r\nHost: a\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n", DEFAULT_LIMITS))
@example((b"GET /a HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n\r\n",
          DEFAULT_LIMITS))
def test_what_the_loop_accepts_gunicorn_reads_alike(parser: str,
                                                    case: tuple[bytes, tuple[int, int, int]]) -> None:
    head, limits = case
    if parser == "h1c" and limits[1] == 0:
        # gunicorn-h1c reads limit_request_fields=0 as "no field at all", where gunicorn's own
        # parsers (and the loop) read it as no limit: gunicorn's inconsistency, not the loop's.
        return
    assert_alike(head, limits, parser=parser)


@pytest.mark.parametrize("parser", list(PARSERS))
def test_the_head_corpus_reads_alike(parser: str) -> None:
    """The fuzz target's corpus (heads libFuzzer found to reach new code) through the same check."""
    corpus = sorted(TARGETS["head"].corpus.iterdir())
    accepted = 0
    for path in corpus:
        data = path.read_bytes()
        if b"\r\n\r\n" in data:
            head = data[:data.index(b"\r\n\r\n") + 4]
            accepted += sum(assert_alike(head, limits, parser=parser) for limits in LIMITS
                            if parser != "h1c" or limits[1])  # see the test above
    assert accepted >= 5, f"only {accepted} accepted heads in {len(corpus)} files: the comparison says little"


# --- the disagreements found (all three by the head fuzz target within a second, and by hypothesis)

FIELD_LIMIT_LINE = b"X: " + b"v" * (8190 - 2 - 3 + 1)  # 8189 bytes: with its CRLF, over 8190


@pytest.mark.parametrize(("head", "refusal"), [
    pytest.param(b"GET /a HTTP/1.1\r\nHost: a\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n",
                 "Duplicate content-type", id="second-content-type"),
    pytest.param(b"GET /a HTTP/1.1\r\nHost: a\r\n" + FIELD_LIMIT_LINE + b"\r\n\r\n",
                 "Request header field is too large", id="field-size-counts-its-crlf"),
    pytest.param(b"GET /a HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n\r\n",
                 "Contradictory scheme headers", id="contradictory-scheme-headers"),
    pytest.param(b"GET /a HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Proto: http\r\n\r\n",
                 "Contradictory scheme headers", id="scheme-header-twice"),
])
def test_found_disagreements_are_left_to_gunicorn(head: bytes, refusal: str) -> None:
    """Each of these the loop once answered itself while gunicorn answers 400."""
    request, reading = readings(head, DEFAULT_LIMITS)
    assert isinstance(reading, GunicornRefused) and refusal in str(reading), reading
    assert request is None


@pytest.mark.parametrize("head", [
    pytest.param(b"GET /a HTTP/1.1\r\nHost: a\r\n" + FIELD_LIMIT_LINE[:-1] + b"\r\n\r\n",
                 id="field-at-the-limit"),
    pytest.param(b"GET /a HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Ssl: on\r\n\r\n",
                 id="scheme-headers-that-agree"),
    pytest.param(b"GET /a HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: http,http\r\n\r\n",
                 id="scheme-list-saying-http"),
    pytest.param(b"GET /a HTTP/1.1\r\nHost: a\r\nContent-Type: a, b\r\n\r\n", id="one-content-type"),
])
def test_heads_next_to_them_stay_in_the_loop(head: bytes) -> None:
    """The fixes refuse no more than they must: a proxy's usual scheme headers stay fast."""
    assert assert_alike(head, DEFAULT_LIMITS)


def test_configured_scheme_headers() -> None:
    """gunicorn's secure_scheme_headers setting, given to parse_head as environ keys."""
    head = b"GET /a HTTP/1.1\r\nHost: a\r\nX-Scheme: https\r\nX-Scheme: http\r\n\r\n"
    custom = {"secure_scheme_headers": {"X-SCHEME": "https"}}
    request, reading = readings(head, DEFAULT_LIMITS, scheme_headers=(("HTTP_X_SCHEME", "https"),), **custom)
    assert isinstance(reading, GunicornRefused) and request is None
    assert assert_alike(b"GET /a HTTP/1.1\r\nHost: a\r\nX-Scheme: https\r\n\r\n", DEFAULT_LIMITS,
                        scheme_headers=(("HTTP_X_SCHEME", "https"),), **custom)


def test_corpus_directory_is_the_targets() -> None:
    assert TARGETS["head"].corpus == Path(__file__).parent / "fuzz" / "corpus" / "head"
