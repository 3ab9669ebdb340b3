"""The purge list of a deploy: which URLs serve other bytes than in the previous build.

A cache in front of us keeps unhashed files for their max-age and keeps HTML
until it revalidates; after a deploy the user wants to purge exactly the URLs
whose responses changed, not everything. Two manifests say that without
touching either tree: a URL changed when its file's content hash, media type or
any variant (an encoding added, dropped or re-made) differs. A directory URL
(`/docs/` for `docs/index.html`, the prefix itself for the root's) is listed
with its index, because the cache stores it as a URL of its own.

Paths are printed as a cache sees them in a request: percent-encoded UTF-8.

`--tags` prints cache tags (site/cachetags.py) instead, for a CDN's purge by tag:
fewer calls, at the price of purging more than changed (`ManifestDiff.tags`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from servestatic.site.cachetags import NOT_FOUND, directory_tags
from servestatic.site.manifest import ManifestError, manifest_path, read_file
from servestatic.site.names import INDEX
from servestatic.site.scan import never_served

# RFC 3986 pchar plus "/": what a client may send unencoded in a path segment.
_PATH_SAFE = "/!$&'()*+,;=:@~-._"


@dataclass
class ManifestDiff:
    """URL paths whose responses changed, appeared or disappeared, each list sorted."""

    changed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def urls(self) -> list[str]:
        """Every URL to purge, sorted, each once."""
        return sorted({*self.changed, *self.added, *self.removed})

    def tags(self) -> list[str]:
        """The fewest cache tags whose purge removes every URL of `urls`, sorted: each listed
        file's directory (the deepest tag it carries), less those inside another listed
        directory, and `404` when files were added (their cached 404s). A purge of these
        removes everything else in those directories too; `urls` is the exact list."""
        directories = {directory_tags(unquote(url))[-1]
                       for url in (*self.changed, *self.removed, *self.added)}
        tags = {tag for tag in directories
                if not any(tag != other and tag.startswith(other) for other in directories)}
        if self.added:
            tags.add(NOT_FOUND)
        return sorted(tags)

    def as_dict(self) -> dict[str, list[str]]:
        return {"changed": self.changed, "added": self.added, "removed": self.removed}


def load_entries(source: Path) -> dict[str, Any]:
    """The file entries of a manifest given as its path or as the root holding it."""
    return read_file(manifest_path(source) if source.is_dir() else source)["files"]


def served_bytes(entry: Any) -> tuple[Any, ...]:
    """What decides the bytes a client gets for one file (ValueError if malformed)."""
    try:
        variants = entry.get("variants") or {}
        return (
            entry["hash"],
            entry.get("content_type"),
            tuple(sorted((coding, variant["hash"]) for coding, variant in variants.items())),
        )
    except (AttributeError, KeyError, TypeError) as error:
        raise ValueError(f"malformed manifest entry ({error!r})") from None


def url_paths(relative: str, prefix: str) -> list[str]:
    """The URL paths that serve one file: its own, and its directory's for an index."""
    paths = [prefix + relative]
    if relative == INDEX or relative.endswith("/" + INDEX):
        paths.append(prefix + relative[: -len(INDEX)])
    return [quote(path, safe=_PATH_SAFE) for path in paths]


def diff_entries(old: dict[str, Any], new: dict[str, Any], prefix: str = "/") -> ManifestDiff:
    """Compare two manifests' entries; files that are never served are left out."""
    result = ManifestDiff()
    for relative in sorted(old.keys() | new.keys()):
        if never_served(relative):
            continue
        if relative not in new:
            bucket = result.removed
        elif relative not in old:
            bucket = result.added
        elif served_bytes(old[relative]) != served_bytes(new[relative]):
            bucket = result.changed
        else:
            continue
        bucket.extend(url_paths(relative, prefix))
    for bucket in (result.changed, result.added, result.removed):
        bucket.sort()
    return result


def diff_manifests(old: Path, new: Path, prefix: str = "/") -> ManifestDiff:
    """Raises ManifestError with one line when either manifest cannot be read."""
    old_entries, new_entries = load_entries(old), load_entries(new)
    try:
        return diff_entries(old_entries, new_entries, prefix)
    except ValueError as error:
        raise ManifestError(f"{error}; run compress again") from None
