"""Compression Dictionary Transport (RFC 9842) at serving time: the headers and the choice.

A content-hashed file of a family (the manifest's `family`, `assets/main-*.js`) is sent
with `Use-As-Dictionary: match="/assets/main-*.js", match-dest=("script")`, so that a
browser keeps it as a dictionary for the next version of the file. A request naming
one of the file's earlier versions in `Available-Dictionary` (its SHA-256, an RFC 8941
byte sequence `:base64:`) and listing `dcz` in Accept-Encoding gets the build-time delta
(buildtime/deltas.py) instead of br, when it may read the response whole (`readable`):
`delta_for` decides. Every representation of a
file that has deltas varies on both headers (core/table.py), so that a shared cache
never gives a delta to a client without its dictionary.

The site-wide dictionary of the HTML pages (buildtime/htmldictionary.py) is announced on every
page of its mount (`page_link`: `Link: <...>; rel="compression-dictionary"`, which a browser
follows when idle) and sent with `Use-As-Dictionary: match="<prefix>*", match-dest=("document")`
(`page_dictionary`): any navigation under the mount may use it, no subresource does. Its pages'
deltas are chosen by `delta_for` like any other.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from servestatic.core.cors import CorsPolicy

CODING = "dcz"
VARY = "Accept-Encoding, Available-Dictionary"

# Characters with a meaning in a URL Pattern (URLPattern's pathname syntax): a literal one is
# escaped with a backslash. '*' is the one wildcard the family pattern means.
_PATTERN_SPECIAL = frozenset("\\:*?+(){}")
# Which request destinations may use a dictionary (RFC 9842's `match-dest`), by media type; other
# types name none, meaning any.
_DESTINATIONS = {"text/javascript": "script", "application/javascript": "script", "text/css": "style"}


def match_pattern(prefix: str, family: str) -> str:
    """The family's URL Pattern under the mount prefix: the URL path percent-encoded as a
    browser requests it, URL Pattern syntax characters escaped, and the family's `*` kept
    as the wildcard."""
    pieces = []
    for literal in (prefix + family).split("*"):
        encoded = quote(literal, safe="/:@!$&'()*+,;=-._~")
        pieces.append("".join("\\" + char if char in _PATTERN_SPECIAL else char for char in encoded))
    return "*".join(pieces)


def use_as_dictionary(prefix: str, family: str, content_type: str) -> str:
    """The Use-As-Dictionary value (an RFC 8941 dictionary) for a member of a family."""
    pattern = match_pattern(prefix, family).replace("\\", "\\\\").replace('"', '\\"')
    value = f'match="{pattern}"'
    destination = _DESTINATIONS.get(content_type.partition(";")[0].strip())
    if destination:
        value += f', match-dest=("{destination}")'
    return value


# What marks the Link of the HTML dictionary among a page's Link headers (core/answer.py leaves
# it out of a 103 Early Hints: a browser fetches a dictionary when idle, not early).
PAGE_LINK_REL = 'rel="compression-dictionary"'


def page_link(prefix: str, relative: str) -> str:
    """The Link value that announces the HTML dictionary at `relative` under the mount prefix."""
    return f"<{quote(prefix + relative, safe='/:@!$&()*+,;=-._~')}>; {PAGE_LINK_REL}"


def page_dictionary(prefix: str) -> str:
    """The Use-As-Dictionary value of the HTML dictionary: every document under the mount.
    `match-dest` keeps a browser from offering it for the mount's scripts and styles, which
    it would not compress well and whose caches would then vary on it for nothing."""
    pattern = match_pattern(prefix, "*").replace("\\", "\\\\").replace('"', '\\"')
    return f'match="{pattern}", match-dest=("document")'


def delta_for(deltas: dict[str, Any], environ: dict[str, Any], codings: frozenset[str],
              cors: CorsPolicy) -> Any:
    """The delta representation the request may get, or None: it names a dictionary the file
    has a delta for, accepts `dcz` by name, and may read the response (`readable`)."""
    available = environ.get("HTTP_AVAILABLE_DICTIONARY")
    if available is None or CODING not in codings or not readable(environ, cors):
        return None
    return deltas.get(available.strip())


def readable(environ: dict[str, Any], cors: CorsPolicy) -> bool:
    """RFC 9842's response-readability rule, as a server applies it from Fetch Metadata: a
    dictionary may compress a response only when the page that asked can read it whole,
    since what the compressed size gives away would otherwise leak an opaque response.
    Same-origin (`Sec-Fetch-Site: same-origin`), no `Sec-Fetch-Mode` (not a browser page),
    `navigate` and `same-origin` modes may; a `cors` fetch may when it carries an Origin
    the answer allows (SERVESTATIC_CORS); any other mode (`no-cors`, `websocket`) may not."""
    if environ.get("HTTP_SEC_FETCH_SITE") == "same-origin":
        return True
    mode = environ.get("HTTP_SEC_FETCH_MODE")
    if mode is None or mode == "navigate" or mode == "same-origin":
        return True
    if mode == "cors":
        origin = environ.get("HTTP_ORIGIN")
        return origin is not None and (cors.any_origin or origin in cors.allowed)
    return False
