"""HTTP header logic, kept free of WSGI so each rule can be read against RFC 9110.

Accept-Encoding with q-values (12.5.3), entity-tag lists and comparison (8.8.3,
13.1.1-2), HTTP dates (5.6.7), byte ranges (14.1-14.2), RFC 9530's
Want-Repr-Digest (section 4), and RFC 5861's stale-if-error. Each parser is total:
garbage in never raises, it yields the answer RFC 9110 gives for a field a
server cannot use (ignore it, or serve the whole representation).
"""

from __future__ import annotations

import re
from datetime import UTC
from email.utils import formatdate, parsedate_to_datetime
from functools import lru_cache

from servestatic.site.names import ENCODING_SUFFIXES

# Content codings we can have variants for. x-gzip is gzip (RFC 9110 8.4.1.3).
_CODING_ALIASES = {"x-gzip": "gzip"}

_ETAG = re.compile(r'\s*(W/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|$)')


@lru_cache(maxsize=512)
def acceptable_codings(header: str | None) -> frozenset[str]:
    """The content codings (including "identity") a client accepts.

    Cached: clients send a handful of distinct Accept-Encoding values, so
    parsing costs nothing after the first request from each kind of client.
    No header means identity only: RFC 9110 allows any coding then, but a
    client that sends nothing (curl, a health checker) wants plain bytes.
    """
    if header is None:
        return frozenset({"identity"})
    qualities: dict[str, float] = {}
    for element in header.split(","):
        coding, _, params = element.partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = -1.0
                if not 0.0 <= quality <= 1.0 or len(value.strip()) > 5:
                    quality = -1.0  # malformed qvalue: ignore this element
        if quality < 0:
            continue
        coding = _CODING_ALIASES.get(coding, coding)
        # When a coding is listed twice, the higher quality wins.
        qualities[coding] = max(quality, qualities.get(coding, 0.0))
    wildcard = qualities.pop("*", None)
    accepted = {coding for coding, quality in qualities.items() if quality > 0}
    if wildcard is not None and wildcard > 0:
        # "*" stands for the codings not listed: one refused by name stays refused.
        accepted.update(coding for coding in ENCODING_SUFFIXES if coding not in qualities)
    # identity is acceptable unless refused explicitly, or by "*;q=0" without
    # being listed itself (RFC 9110 12.5.3).
    identity_quality = qualities.get("identity", wildcard if wildcard is not None else 1.0)
    if identity_quality > 0:
        accepted.add("identity")
    else:
        accepted.discard("identity")
    return frozenset(accepted)


def accepts(codings: frozenset[str], coding: str) -> bool:
    """Whether a coding is acceptable ("*" is already expanded by acceptable_codings)."""
    return coding in codings


@lru_cache(maxsize=512)
def parse_etags(header: str) -> tuple[str, ...] | None:
    """Opaque tags of an If-None-Match/If-Match value, W/ stripped; None when malformed.

    "*" is returned as the tuple ("*",).
    """
    value = header.strip()
    if value == "*":
        return ("*",)
    tags: list[str] = []
    position = 0
    while position < len(value):
        match = _ETAG.match(value, position)
        if match is None:
            return None
        tags.append(match.group(2))
        position = match.end()
        while position < len(value) and value[position] in " \t,":
            position += 1
    return tuple(tags) if tags else None


def none_match(header: str, etag: str) -> bool:
    """True when If-None-Match matches (so the answer is 304): weak comparison."""
    tags = parse_etags(header)
    if tags is None:
        return False
    return tags == ("*",) or etag in tags


def match(header: str, etag: str) -> bool:
    """True when If-Match is satisfied: strong comparison, so W/ tags never match."""
    value = header.strip()
    if value == "*":
        return True
    tags: list[str] = []
    for item in value.split(","):
        item = item.strip()
        if item.startswith('"'):
            tags.append(item)
    return etag in tags


def parse_http_date(header: str) -> int | None:
    """Seconds since the epoch of an HTTP-date (any of its three forms), or None."""
    if len(header) > 64:
        return None
    try:
        parsed = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        # asctime-date carries no zone: every HTTP-date is GMT (RFC 9110 5.6.7).
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return int(parsed.timestamp())
    except (OverflowError, OSError, ValueError):
        return None


def http_date(timestamp: int) -> str:
    return formatdate(timestamp, usegmt=True)


class Unsatisfiable(Exception):
    """A syntactically valid single range that selects no byte: answer 416."""


_RANGE = re.compile(r"bytes[ \t]*=[ \t]*(\d{0,19})[ \t]*-[ \t]*(\d{0,19})[ \t]*", re.IGNORECASE)


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The (first, last) byte of one range, inclusive; None to send the whole file.

    Several ranges, another unit or garbage give None: serving the whole
    representation is always allowed (RFC 9110 14.2), and a multipart answer
    buys a CDN nothing. Raises Unsatisfiable for a single range past the end.
    """
    matched = _RANGE.fullmatch(header)
    if matched is None:
        return None
    first_text, last_text = matched.groups()
    if not first_text:
        if not last_text:
            return None  # "bytes=-" is not a range
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - suffix), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None  # invalid range-spec: ignore the header
    if first >= size:
        raise Unsatisfiable
    return first, min(last, size - 1)


@lru_cache(maxsize=64)
def wants_sha512(header: str) -> bool:
    """Whether a Want-Repr-Digest value (RFC 9530 section 4: a Dictionary of algorithm
    = preference 0-10) prefers sha-512 to sha-256, the digest sent by default.

    Cached like Accept-Encoding: clients send few distinct values. A member that is
    not `name=integer` is ignored, and so is a header with none left (sha-256):
    a malformed field never fails the request.
    """
    preferences: dict[str, int] = {}
    for member in header.split(","):
        name, _, value = member.partition("=")
        value = value.partition(";")[0].strip()  # parameters carry nothing for us
        if value.isdigit() and len(value) <= 2:
            preferences[name.strip().lower()] = int(value)
    sha512 = preferences.get("sha-512", 0)
    return 0 < sha512 <= 10 and sha512 > preferences.get("sha-256", 0)


# Cache-Control directives after which stale-if-error would contradict the value, or
# which already say it: a value holding one is left as it is.
_NO_STALE = ("stale-if-error", "no-store", "private", "must-revalidate", "proxy-revalidate",
             "s-maxage")


def with_stale_if_error(cache_control: str, seconds: int) -> str:
    """cache_control plus `stale-if-error=SECONDS` (RFC 5861 section 4): a cache may
    answer with its stored copy for that long when the origin cannot be reached or
    answers 5xx, so an origin outage is not a site outage. Unchanged for 0 seconds,
    and for a value that forbids serving stale or already says how long."""
    lowered = cache_control.lower()
    if seconds <= 0 or any(directive in lowered for directive in _NO_STALE):
        return cache_control
    return f"{cache_control}, stale-if-error={seconds}"
