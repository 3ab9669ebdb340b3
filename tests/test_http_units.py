"""Unit tests of the header parsers in servestatic/core/http.py, against RFC 9110.

Each parser must be total: any string gives an answer, never an exception
(except Unsatisfiable, which is an answer: 416). Hypothesis checks that.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servestatic.core.http import (
    Unsatisfiable,
    acceptable_codings,
    accepts,
    http_date,
    match,
    none_match,
    parse_etags,
    parse_http_date,
    parse_range,
    wants_sha512,
    with_stale_if_error,
)

# --- Accept-Encoding


@pytest.mark.parametrize(("header", "expected"), [
    (None, {"identity"}),
    ("", {"identity"}),
    ("gzip", {"gzip", "identity"}),
    ("br, gzip", {"br", "gzip", "identity"}),
    ("x-gzip", {"gzip", "identity"}),
    ("GZIP, Br", {"gzip", "br", "identity"}),
    ("gzip;q=0", {"identity"}),
    ("gzip;q=0.5, br;q=0", {"gzip", "identity"}),
    ("identity;q=0", set()),
    ("gzip, identity;q=0", {"gzip"}),
    ("*", {"br", "gzip", "zstd", "identity"}),
    ("*;q=0", set()),
    ("*;q=0, identity", {"identity"}),
    ("*;q=0, gzip", {"gzip"}),
    ("br;q=0, *", {"gzip", "zstd", "identity"}),
    ("*, identity;q=0", {"br", "gzip", "zstd"}),
    ("gzip;q=0, gzip", {"gzip", "identity"}),
    ("gzip;q=1.0", {"gzip", "identity"}),
    ("gzip;q=1.001", {"identity"}),  # out of range: the element is ignored
    ("gzip;q=2", {"identity"}),
    ("gzip;q=-1", {"identity"}),
    ("gzip;q=abc", {"identity"}),
    ("gzip;q=0.0001", {"identity"}),  # more than three decimals is not a qvalue
    ("gzip ; q=0.5 ; level=1", {"gzip", "identity"}),
    ("gzip;level=1", {"gzip", "identity"}),
    (",,, ,", {"identity"}),
    ("deflate", {"deflate", "identity"}),
])
def test_acceptable_codings(header: str | None, expected: set[str]) -> None:
    assert acceptable_codings(header) == frozenset(expected)


def test_wildcard_does_not_readmit_a_refused_coding() -> None:
    codings = acceptable_codings("br;q=0, *")
    assert not accepts(codings, "br")
    assert accepts(codings, "gzip")
    assert accepts(codings, "identity")


@given(st.text(max_size=200))
def test_acceptable_codings_is_total(header: str) -> None:
    codings = acceptable_codings(header)
    assert isinstance(codings, frozenset)
    assert "*" not in codings


# --- entity tags


@pytest.mark.parametrize(("header", "tags"), [
    ('"abc"', ('"abc"',)),
    ('W/"abc"', ('"abc"',)),
    ('"a", "b",W/"c"', ('"a"', '"b"', '"c"')),
    ('  "a"  ,  "b"  ', ('"a"', '"b"')),
    ("*", ("*",)),
    (" * ", ("*",)),
    ('""', ('""',)),
    ("abc", None),  # unquoted
    ('"abc', None),
    ('"a" "b"', None),
    ("W/", None),
    ("", None),
    ('"a b"', None),  # a space is not an etagc
    ('"a", *', None),
])
def test_parse_etags(header: str, tags: tuple[str, ...] | None) -> None:
    assert parse_etags(header) == tags


@pytest.mark.parametrize(("header", "result"), [
    ('"x"', True), ('W/"x"', True), ('"y", W/"x"', True), ("*", True),
    ('"y"', False), ('"x', False), ("x", False), ('W/"y"', False),
])
def test_none_match_is_a_weak_comparison(header: str, result: bool) -> None:
    assert none_match(header, '"x"') is result


@pytest.mark.parametrize(("header", "result"), [
    ('"x"', True), ('"y", "x"', True), ("*", True),
    ('W/"x"', False),  # If-Match compares strongly
    ('"y"', False), ("x", False),
])
def test_match_is_a_strong_comparison(header: str, result: bool) -> None:
    assert match(header, '"x"') is result


@given(st.text(max_size=200))
def test_etag_functions_are_total(header: str) -> None:
    parse_etags(header)
    none_match(header, '"x"')
    match(header, '"x"')


# --- HTTP dates


@pytest.mark.parametrize("value", [
    "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate
    "Sunday, 06-Nov-94 08:49:37 GMT",  # RFC 850
    "Sun Nov  6 08:49:37 1994",  # asctime
])
def test_parse_http_date_reads_the_three_forms(value: str) -> None:
    assert parse_http_date(value) == 784111777


@pytest.mark.parametrize("value", ["", "yesterday", "Sun, 99 Nov 1994 08:49:37 GMT", "x" * 100,
                                   "Sun, 06 Nov 99999999 08:49:37 GMT", "0"])
def test_parse_http_date_gives_none_for_garbage(value: str) -> None:
    assert parse_http_date(value) is None


def test_http_date_round_trip() -> None:
    assert http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert parse_http_date(http_date(1_700_000_000)) == 1_700_000_000


@given(st.text(max_size=80))
def test_parse_http_date_is_total(value: str) -> None:
    result = parse_http_date(value)
    assert result is None or isinstance(result, int)


# --- Range


@pytest.mark.parametrize(("header", "size", "expected"), [
    ("bytes=0-0", 10, (0, 0)),
    ("bytes=0-9", 10, (0, 9)),
    ("bytes=0-99", 10, (0, 9)),
    ("bytes=3-", 10, (3, 9)),
    ("bytes=9-", 10, (9, 9)),
    ("bytes=-3", 10, (7, 9)),
    ("bytes=-10", 10, (0, 9)),
    ("bytes=-11", 10, (0, 9)),
    ("Bytes=1-2", 10, (1, 2)),
    ("bytes = 1 - 2", 10, (1, 2)),
    ("bytes=5-2", 10, None),
    ("bytes=0-1,3-4", 10, None),
    ("bytes=-", 10, None),
    ("bytes=", 10, None),
    ("bytes=a-1", 10, None),
    ("items=0-1", 10, None),
    ("bytes=0-1-2", 10, None),
    ("", 10, None),
    ("bytes=" + "9" * 20 + "-", 10, None),  # longer than any real offset: garbage
])
def test_parse_range(header: str, size: int, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(("header", "size"), [
    ("bytes=10-", 10), ("bytes=10-20", 10), ("bytes=-0", 10), ("bytes=0-0", 0), ("bytes=-5", 0),
])
def test_parse_range_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, size)


@given(st.text(max_size=60), st.integers(min_value=0, max_value=10**12))
def test_parse_range_is_total_and_in_bounds(header: str, size: int) -> None:
    try:
        result = parse_range(header, size)
    except Unsatisfiable:
        return
    if result is not None:
        first, last = result
        assert 0 <= first <= last < size


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=10**6),
       st.integers(min_value=1, max_value=10**6))
def test_parse_range_well_formed(first: int, last: int, size: int) -> None:
    try:
        result = parse_range(f"bytes={first}-{last}", size)
    except Unsatisfiable:
        assert first >= size and last >= first
        return
    if last < first:
        assert result is None
    else:
        assert result == (first, min(last, size - 1))


# --- Want-Repr-Digest (RFC 9530 section 4)


@pytest.mark.parametrize(("header", "expected"), [
    ("sha-512=1", True),
    ("sha-256=1, sha-512=2", True),
    ("SHA-512=3;x=y, sha-256=2", True),
    ("sha-256=2, sha-512=2", False),  # a tie: the default
    ("sha-512=0", False),
    ("sha-512=11", False),
    ("sha-512=-1", False),
    ("sha-512", False),
    ("md5=9", False),
    ("", False),
])
def test_wants_sha512(header: str, expected: bool) -> None:
    assert wants_sha512(header) is expected


@given(st.text())
def test_wants_sha512_is_total(header: str) -> None:
    assert wants_sha512(header) in (True, False)


# --- stale-if-error (RFC 5861)


@pytest.mark.parametrize(("value", "seconds", "expected"), [
    ("no-cache", 86400, "no-cache, stale-if-error=86400"),
    ("public, max-age=60", 600, "public, max-age=60, stale-if-error=600"),
    ("public, max-age=60", 0, "public, max-age=60"),  # the setting at 0: off
    ("no-cache, must-revalidate", 600, "no-cache, must-revalidate"),  # stale is forbidden
    ("public, s-maxage=60", 600, "public, s-maxage=60"),  # s-maxage implies proxy-revalidate
    ("no-store", 600, "no-store"),
    ("private, max-age=5", 600, "private, max-age=5"),
    ("max-age=60, stale-if-error=5", 600, "max-age=60, stale-if-error=5"),  # already said
])
def test_with_stale_if_error(value: str, seconds: int, expected: str) -> None:
    assert with_stale_if_error(value, seconds) == expected
