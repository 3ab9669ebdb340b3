"""Fuzz target: the conditional-request parsers (servestatic/core/http.py): `parse_etags`,
`none_match` (If-None-Match), `match` (If-Match) and `parse_http_date`.

The input is one field value as the client sent it (bytes, read as latin-1). Contract:

- parse_etags gives None (a malformed list: the precondition is not evaluated) or the
  list's entity-tags in order, W/ dropped, each a quoted opaque-tag of RFC 9110 8.8.3's
  characters and found as is in the field; ("*",) exactly when the field is "*";
- none_match (weak comparison, 13.1.2) is true for every tag the list holds, for any
  tag when the list is "*", and for no tag the list does not hold;
- match (strong comparison, 13.1.1) is true for "*"; for a well-formed list, true for a
  tag of the server's shape exactly when the list holds it without W/ (never a weak one);
- parse_http_date gives None or a time that formats back to the same second.
"""

from __future__ import annotations

import re

from servestatic.core.http import http_date, match, none_match, parse_etags, parse_http_date

# The server's own ETags: a quoted base64url hash (site/manifest.py Fingerprint.hash).
SERVER_TAG = '"Ab-_09xyz"'
_OPAQUE = re.compile(r'"[\x21\x23-\x7e\x80-\xff]*"')
# A list element and what separates it from the next, written apart from the parser's.
_ELEMENT = re.compile(r'(W/)?("[\x21\x23-\x7e\x80-\xff]*")')
_SERVER_SHAPE = re.compile(r'"[A-Za-z0-9_-]+"')
LAST_HTTP_SECOND = 253402300799  # Fri, 31 Dec 9999 23:59:59 GMT


def strong_tags(header: str) -> set[str] | None:
    """The entity-tags without W/ of a comma-separated list of tags (RFC 9110 5.6.1, empty
    elements and spaces or tabs allowed); None for anything else."""
    strong: set[str] = set()
    position = 0
    value = header.strip(" \t")
    while position < len(value):
        if value[position] in " \t,":
            position += 1
            continue
        found = _ELEMENT.match(value, position)
        if found is None:
            return None
        if not found[1]:
            strong.add(found[2])
        position = found.end()
        while position < len(value) and value[position] in " \t":
            position += 1
        if position < len(value) and value[position] != ",":
            return None  # two tags with no comma between them: not a list
    return strong


def check_etags(header: str) -> None:
    tags = parse_etags(header)
    if tags is None:
        assert not none_match(header, SERVER_TAG)
    elif tags == ("*",):
        assert header.strip() == "*", header
        assert none_match(header, SERVER_TAG) and none_match(header, '"x"')
    else:
        assert tags, "an empty list is malformed, not a list"
        for tag in tags:
            assert _OPAQUE.fullmatch(tag), tag
            assert tag in header, (tag, header)
            assert none_match(header, tag), (header, tag)
        other = '"' + "".join(tags).replace('"', "") + 'not-in-the-list"'
        assert not none_match(header, other)
    if header.strip() == "*":
        assert match(header, SERVER_TAG)
        return
    strong = strong_tags(header)
    if strong is None:
        return  # not a plain list of tags: match may decide either way, but never raises
    for tag in strong | {SERVER_TAG}:
        if _SERVER_SHAPE.fullmatch(tag):
            assert match(header, tag) == (tag in strong), (header, tag, strong)


def check_date(header: str) -> None:
    seconds = parse_http_date(header)
    if seconds is None:
        return
    assert type(seconds) is int, seconds
    if 0 <= seconds <= LAST_HTTP_SECOND:
        assert parse_http_date(http_date(seconds)) == seconds, (header, seconds)


def TestOneInput(data: bytes) -> None:
    header = data.decode("latin-1")
    check_etags(header)
    check_date(header)
