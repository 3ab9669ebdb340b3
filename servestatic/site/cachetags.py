"""Cache tags: the names a CDN purges by (SERVESTATIC_CACHE_TAG_HEADER; docs/cdn.md).

Cloudflare (`Cache-Tag`), Fastly (`Surrogate-Key`) and Akamai (`Edge-Cache-Tag`)
store the tags an origin's response names with the object, and one purge call
removes every object carrying a tag. Each file is tagged with

- `release-<build>`: the build id `servestatic compress` wrote into the manifest
  (site/manifest.py `build_id`), so "everything from release N" is one call;
- its kind: `html`, `asset` (a content-hashed name) or `other`;
- each directory it is in, as the URL path a cache sees (`/`, `/docs/`,
  `/docs/api/`), percent-encoded down to the characters every CDN takes in a tag.

404 answers carry the release tag and `404`, since their URL is anything at all.
`servestatic diff --tags` (buildtime/diff.py) prints the tags that purge what a
deploy changed. Kept here, below both the server and the build, because both
compute tags and must agree.

The header is decided once per file, with its other fixed headers (core/table.py),
never per request. Each CDN's documented limits are kept by leaving out the tags
that would pass them, deepest directory first (docs/cdn.md lists the limits).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

RELEASE_PREFIX = "release-"
HTML, ASSET, OTHER, NOT_FOUND = "html", "asset", "other", "404"


@dataclass(frozen=True)
class TagStyle:
    """One CDN's tag header: its name, separator and documented limits."""

    header: str
    separator: str
    max_tag: int  # characters (bytes: tags here are ASCII) of one tag
    max_header: int  # characters of the whole value
    max_tags: int  # tags per object


# From each CDN's documentation (docs/cdn.md, "Purge by tag"), checked 2026-12.
STYLES: dict[str, TagStyle] = {
    # Cloudflare: comma-separated; the value at most 16 KB, at most 1,000 tags; a tag at most
    # 1,024 characters.
    "cache-tag": TagStyle("Cache-Tag", ",", 1024, 16 * 1024, 1000),
    # Fastly: space-separated; a key at most 1,024 bytes, the header at most 16,384 bytes.
    "surrogate-key": TagStyle("Surrogate-Key", " ", 1024, 16384, 16384),
    # Akamai: comma-separated; a tag at most 128 characters, at most 128 tags per object
    # (more are ignored); the value kept under 8,192 characters.
    "edge-cache-tag": TagStyle("Edge-Cache-Tag", ",", 128, 8192, 128),
}


def release_tag(build: str) -> str:
    return RELEASE_PREFIX + build


def kind(content_type: str, immutable: bool) -> str:
    """html, asset (a content-hashed name, cached for a year) or other."""
    if content_type.startswith("text/html"):
        return HTML
    return ASSET if immutable else OTHER


def directory_tags(url_path: str) -> list[str]:
    """Each directory a URL path is in, shortest first: `/docs/a b.css` -> `/`, `/docs/`.

    Percent-encoded to letters, digits, `/ - . _ ~` and `%`: Akamai refuses `:`, `@`,
    `*`, `<>` and more in a tag, commas separate tags, spaces separate Fastly's keys.
    """
    parts = url_path.split("/")[1:-1]
    tags = ["/"]
    for part in parts:
        tags.append(tags[-1] + quote(part, safe="") + "/")
    return tags


def file_tags(build: str, url_path: str, content_type: str, immutable: bool) -> list[str]:
    """The tags of a served file, most general first (the order limits cut from the end)."""
    tags = [release_tag(build)] if build else []
    tags.append(kind(content_type, immutable))
    tags += directory_tags(url_path)
    return tags


def header_value(style: TagStyle, tags: list[str]) -> str:
    """The tags joined for the header, leaving out any tag past the style's limits."""
    kept: list[str] = []
    length = 0
    for tag in tags:
        added = len(tag) + (len(style.separator) if kept else 0)
        if len(tag) > style.max_tag or length + added > style.max_header or len(kept) >= style.max_tags:
            continue
        kept.append(tag)
        length += added
    return style.separator.join(kept)
