"""Preload hints of an HTML page, read from its head at build time.

What a page needs before it can render (its stylesheets, its scripts, the fonts
it already asks to preload) is known when the page is built; sent as `Link:
<url>; rel=preload` headers on the page itself, a browser (or a CDN turning
them into 103 Early Hints) can start those fetches before the HTML has been
parsed. The build records them in the manifest, so the server only copies them
into the page's precomputed headers (core/table.py).

Each hint is (target, parameters): the target is the URL as the page's own
request would resolve it, either an absolute path ("/css/site.css", kept as
written) or, for a relative reference, a path relative to the served root
("css/site.css", which the server puts under its URL prefix); the parameters
are the rest of the link-value ("rel=preload; as=style"). References to other
hosts, `data:` URLs and files a relative reference names but the build does not
have are left out: a preload of those would be wasted or fail.
"""

from __future__ import annotations

import posixpath
from html.parser import HTMLParser
from urllib.parse import quote, urlsplit

# Hints recorded per page; the server sends at most SERVESTATIC_PRELOAD_LINKS of them.
RECORDED = 16
# Characters kept as they are in a target: those of a URL path and query, and "%"
# for what is already percent-encoded. Everything else is percent-encoded, so a
# target is always safe inside `<...>` in a header.
_URL_SAFE = "/:@!$&'()*+,;=-._~%?"

Hint = tuple[str, str]
# `type` values of a classic script (none at all is the usual case).
_CLASSIC_TYPES = ("", "text/javascript", "application/javascript")


def preload_hints(html: bytes, relative: str, present: frozenset[str] | set[str]) -> list[Hint]:
    """The hints of the page at `relative` (its path under the root), in document order.

    `present`: the relative paths of the tree, to drop relative references to
    files the build does not have.
    """
    parser = _HeadParser()
    try:
        parser.feed(html.decode("utf-8", errors="replace"))
        parser.close()
    except _EndOfHead:
        pass
    hints: list[Hint] = []
    seen: set[str] = set()
    directory = posixpath.dirname(relative)
    for reference, parameters in parser.found:
        target = _target(reference, directory, present)
        if target is None or target in seen:
            continue
        seen.add(target)
        hints.append((target, parameters))
        if len(hints) == RECORDED:
            break
    return hints


def _target(reference: str, directory: str, present: frozenset[str] | set[str]) -> str | None:
    """The hint's target for a reference in the page, or None when it is not ours to preload."""
    reference = reference.strip()
    parts = urlsplit(reference)
    if not reference or parts.scheme or parts.netloc or reference.startswith("//"):
        return None
    path = parts.path
    query = "?" + parts.query if parts.query else ""
    if path.startswith("/"):
        return quote(path + query, safe=_URL_SAFE)
    joined = posixpath.normpath(posixpath.join(directory, path))
    if joined.startswith("../") or joined == ".." or joined not in present:
        return None
    return quote(joined + query, safe=_URL_SAFE)


class _EndOfHead(Exception):
    """Raised to stop parsing at the end of the head (or the start of the body)."""


class _HeadParser(HTMLParser):
    """Collects (reference, parameters) from the head's link and script elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            raise _EndOfHead
        values = {name: (value or "") for name, value in attrs}
        if tag == "link":
            self._link(values)
        elif tag == "script":
            self._script(values)

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            raise _EndOfHead

    def _link(self, values: dict[str, str]) -> None:
        rel = values.get("rel", "").lower().split()
        href = values.get("href", "")
        if "stylesheet" in rel and "alternate" not in rel and "disabled" not in values:
            # A stylesheet for another medium (print) is not needed to render.
            if values.get("media", "all").strip().lower() in ("all", "screen", ""):
                self.found.append((href, "rel=preload; as=style" + _crossorigin(values)))
        elif "preload" in rel and values.get("as", "").lower() == "font":
            kind = values.get("type", "")
            typed = f'; type="{kind}"' if kind and kind.replace("/", "").replace("-", "").isalnum() else ""
            # A font is always fetched in CORS mode: the hint must say so to be used.
            self.found.append((href, f"rel=preload; as=font{typed}; crossorigin"))

    def _script(self, values: dict[str, str]) -> None:
        src = values.get("src", "")
        if not src or "nomodule" in values:
            return
        if values.get("type", "").lower() == "module":
            self.found.append((src, "rel=modulepreload" + _crossorigin(values)))
        elif values.get("type", "").lower() in _CLASSIC_TYPES:
            self.found.append((src, "rel=preload; as=script" + _crossorigin(values)))


def _crossorigin(values: dict[str, str]) -> str:
    """The element's CORS mode as a link parameter, so the preload matches its fetch."""
    if "crossorigin" not in values:
        return ""
    return "; crossorigin=use-credentials" if values["crossorigin"].lower() == "use-credentials" \
        else "; crossorigin"
