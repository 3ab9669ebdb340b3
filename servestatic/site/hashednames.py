"""Which file names carry a content hash, and so may be cached forever.

A false positive is expensive (a CDN and every browser keep a stale file for a
year), a false negative is cheap (a short max-age), so every rule here leans
towards "not hashed" when a name could be an ordinary word.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# webpack `[name].[contenthash].js`, `[name].[contenthash:8].chunk.js`, and
# Django's ManifestStaticFilesStorage `name.0123456789ab.css` (12 hex digits): a
# dot-delimited hex segment of 8 to 64 digits that is not the first segment.
_HEX_SEGMENT = re.compile(r"(?<=\.)[0-9a-f]{8,64}(?=\.)")

# Vite/Rollup `[name]-[hash].js`: 8 or more base64url characters after a '-',
# ending the part of the name before its first dot.
_BASE64URL = re.compile(r"[A-Za-z0-9_-]{8,}")

# A part of a name a person wrote: a word in lower, Capitalised or camelCase
# spelling, maybe with a number ("picker", "DatePicker", "bootstrap5"), or a
# number or version ("4", "v2"). A token made only of such parts is a name.
_HUMAN_PART = re.compile(r"(?:[A-Z]?[a-z]{2,})+[0-9]*|v?[0-9]+")

_LOWER_HEX = re.compile(r"[0-9a-f]+")


def _is_hex_hash(segment: str) -> bool:
    """Hex digits with at least one letter and one digit: not a date, not a word."""
    return any(c.isdigit() for c in segment) and any(c.isalpha() for c in segment)


def _is_base64url_hash(token: str) -> bool:
    """A token after the last '-' that looks random rather than written.

    Rollup's base64url hashes mix upper and lower case in all but about 3% of
    names, so lower-case-only tokens count only when they are hex
    (webpack's `[name]-[contenthash]`). Requiring mixed case is what keeps
    `font-awesome-4.7.0.css` ("awesome-4") and `theme-bootstrap5.css` out.
    """
    if _LOWER_HEX.fullmatch(token):
        return _is_hex_hash(token)
    if not (any(c.isupper() for c in token) and any(c.islower() for c in token)):
        return False
    return not all(_HUMAN_PART.fullmatch(part) for part in re.split(r"[-_]", token) if part)


def has_content_hash(path: str) -> bool:
    """True when the file name (last path segment) carries a content hash."""
    name = path.rsplit("/", 1)[-1]
    if any(_is_hex_hash(match.group()) for match in _HEX_SEGMENT.finditer(name)):
        return True
    stem = name.split(".", 1)[0]
    # Try the shortest token after a '-' first: "index-B-x3kQ9z" -> "x3kQ9z" (too
    # short), then "B-x3kQ9z".
    for index in range(len(stem) - 1, 0, -1):
        if stem[index] != "-":
            continue
        token = stem[index + 1 :]
        if len(token) >= 8 and _BASE64URL.fullmatch(token) and _is_base64url_hash(token):
            return True
    return False


def immutable_test(pattern: str) -> Callable[[str], bool]:
    """The test for a SERVESTATIC_IMMUTABLE_PATTERN value: 'auto', 'none' or a regex."""
    if pattern == "auto":
        return has_content_hash
    if pattern == "none":
        return lambda path: False
    compiled = re.compile(pattern)
    return lambda path: compiled.search(path) is not None


def family_of(path: str, hashed: bool = False) -> str | None:
    """The path with its content hash replaced by `*`: the name every version of this
    asset shares across builds (`assets/main-3fA9c1bd.js` -> `assets/main-*.js`, Django's
    `css/site.0123456789ab.css` -> `css/site.*.css`), or None when the name carries no
    hash. `hashed` says a tool knows the name carries one (Django's storage): then a hex
    segment of digits only counts too.

    Compression Dictionary Transport (buildtime/deltas.py) keeps earlier versions of a
    family as dictionaries for the next, and announces the family as the match pattern
    of `Use-As-Dictionary`.
    """
    directory, slash, name = path.rpartition("/")
    for match in _HEX_SEGMENT.finditer(name):
        if hashed or _is_hex_hash(match.group()):
            return directory + slash + name[:match.start()] + "*" + name[match.end():]
    stem_end = name.find(".")
    stem = name if stem_end < 0 else name[:stem_end]
    for index in range(len(stem) - 1, 0, -1):
        if stem[index] != "-":
            continue
        token = stem[index + 1:]
        if len(token) >= 8 and _BASE64URL.fullmatch(token) and _is_base64url_hash(token):
            return directory + slash + name[:index + 1] + "*" + name[len(stem):]
    return None
