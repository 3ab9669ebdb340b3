"""The static URLs a page links: what `servestatic check` holds against the mounts.

A page that links `/static/css/site.css` while no mount serves that path is the
commonest broken deployment (a prefix missing, a root pointed at the wrong
directory) and shows nowhere but in a browser. Only links that are surely static
files are taken: the resources a page loads (stylesheets, scripts, images, media,
icons) and any other link whose name has the extension of a static type, each
only when it is a path on the same site (`/...`, not `//host/...` or a full URL).
A page's own links to other pages are not static and are left alone.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import unquote_to_bytes

from servestatic.site.mediatypes import content_type_for

# (tag, attribute) pairs whose URL the browser loads as a resource of the page.
_RESOURCES = {("link", "href"), ("script", "src"), ("img", "src"), ("source", "src"),
              ("video", "src"), ("video", "poster"), ("audio", "src"), ("track", "src"),
              ("input", "src"), ("embed", "src"), ("object", "data"), ("iframe", "src")}
_SRCSET = re.compile(r"\s*([^\s,]+)(?:\s+[^,]*)?(?:,|$)")
# A link rel that names another page (or nothing the browser loads): its href may be anything.
_PAGE_RELS = {"canonical", "alternate", "next", "prev", "author", "help", "license", "search",
              "bookmark", "external", "nofollow", "noopener", "noreferrer", "dns-prefetch",
              "preconnect"}


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value for name, value in attrs if value}
        rels = set((values.get("rel") or "").lower().split())
        for name, value in values.items():
            if name in ("srcset", "imagesrcset"):
                self.found += [match.group(1) for match in _SRCSET.finditer(value) if match.group(1)]
            elif self._loads(tag, name, rels) or (name == "href" and _static_name(value)):
                self.found.append(value)

    @staticmethod
    def _loads(tag: str, name: str, rels: set[str]) -> bool:
        """Whether the attribute is a resource the browser loads with the page."""
        return (tag, name) in _RESOURCES and not (tag == "link" and rels & _PAGE_RELS)


def _static_name(url: str) -> bool:
    """Whether the URL's last path segment has the extension of a type that is not a page."""
    name = url.partition("?")[0].partition("#")[0].rpartition("/")[2]
    return "." in name and not content_type_for(name).startswith(("text/html", "application/octet-stream"))


def static_links(html: str) -> list[str]:
    """The page's static links that are paths on the same site, as WSGI keys (the URL path's
    bytes as latin-1, percent-decoded), without query or fragment; each once, in order."""
    parser = _Links()
    parser.feed(html)
    parser.close()
    paths: dict[str, None] = {}
    for url in parser.found:
        url = url.strip()
        if not url.startswith("/") or url.startswith("//"):
            continue
        path = url.partition("#")[0].partition("?")[0]
        paths.setdefault(unquote_to_bytes(path).decode("latin-1"), None)
    return list(paths)
