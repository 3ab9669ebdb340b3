"""The lookup table: every response header decided once, at start-up.

`build_table` turns the manifest into a dict keyed by the exact `PATH_INFO`
string a WSGI server hands us (the URL path's UTF-8 bytes, as latin-1 text),
so that a request costs one dict lookup and no decoding. Only files the
manifest lists are keys, which is why no request path, however it is encoded,
can reach anything else. Header tuples are shared between files wherever the
value is the same, to keep a 100,000-file table small.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from servestatic.headerrules import HeaderRule, headers_for, load_rules
from servestatic.http import accepts, http_date
from servestatic.manifest import FileEntry, Manifest, ManifestError
from servestatic.manifest import load as load_manifest
from servestatic.scan import ENCODING_SUFFIXES, is_hidden
from servestatic.settings import MANIFEST_NAME, Settings

log = logging.getLogger("servestatic")

INDEX = "index.html"
NOT_FOUND_PAGE = "404.html"


class Representation:
    """One variant of one file: where its bytes are and the headers of a 200."""

    __slots__ = ("coding", "etag", "headers", "not_modified_headers", "path", "size")

    def __init__(self, coding: str, path: str, size: int, etag: str,
                 headers: list[tuple[str, str]], not_modified_headers: list[tuple[str, str]]):
        self.coding = coding
        self.path = path
        self.size = size
        self.etag = etag
        self.headers = headers
        self.not_modified_headers = not_modified_headers


class StaticFile:
    """A servable file: its representations, smallest first, and its validators."""

    __slots__ = ("by_size", "last_modified", "mtime", "relative")

    def __init__(self, relative: str, by_size: tuple[Representation, ...], mtime: int | None,
                 last_modified: str | None):
        self.relative = relative
        self.by_size = by_size
        self.mtime = mtime
        self.last_modified = last_modified

    def select(self, codings: frozenset[str]) -> Representation | None:
        """The smallest representation the client accepts, or None (406)."""
        for representation in self.by_size:
            if accepts(codings, representation.coding):
                return representation
        return None


@dataclass
class Table:
    files: dict[str, StaticFile]
    redirects: dict[str, str]
    not_found: StaticFile | None
    spa_index: StaticFile | None
    source: str = "manifest"
    seconds: float = 0.0
    rules: tuple[HeaderRule, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        return (f"{len({id(f) for f in self.files.values()})} files from the {self.source} "
                f"in {self.seconds * 1000:.0f} ms")


def wsgi_key(url_path: str) -> str:
    """A URL path as WSGI servers give it in PATH_INFO: UTF-8 bytes read as latin-1."""
    return url_path.encode("utf-8").decode("latin-1")


class _Shared:
    """Hands out one tuple per distinct header, so equal headers cost one object."""

    def __init__(self) -> None:
        self._pairs: dict[tuple[str, str], tuple[str, str]] = {}

    def __call__(self, name: str, value: str) -> tuple[str, str]:
        pair = (name, value)
        return self._pairs.setdefault(pair, pair)


class _HeaderPolicy:
    """Decides the cache, CORS and rule headers of a file from the settings."""

    def __init__(self, settings: Settings, rules: tuple[HeaderRule, ...]):
        self.settings = settings
        self.rules = rules
        self.shared = _Shared()
        self.immutable_cache = f"public, max-age={settings.immutable_max_age}, immutable"
        self.default_cache = f"public, max-age={settings.max_age}"
        self.cors_any = settings.cors == ("*",)
        self.cors_list = bool(settings.cors) and not self.cors_any

    def cache_control(self, entry: FileEntry) -> str:
        if entry.immutable:
            return self.immutable_cache
        if entry.content_type.startswith("text/html"):
            return self.settings.html_cache_control
        return self.default_cache

    def vary(self, has_variants: bool) -> str | None:
        values = (["Accept-Encoding"] if has_variants else []) + (["Origin"] if self.cors_list else [])
        return ", ".join(values) or None

    def common(self, relative: str, entry: FileEntry, last_modified: str | None) -> tuple[
        list[tuple[str, str]], list[tuple[str, str]]
    ]:
        """Headers every representation of a file shares: (for a 200, for a 304)."""
        shared = self.shared
        cache = shared("Cache-Control", self.cache_control(entry))
        vary_value = self.vary(bool(entry.variants))
        validators = [cache]
        if vary_value:
            validators.append(shared("Vary", vary_value))
        if last_modified:
            validators.append(shared("Last-Modified", last_modified))
        if self.cors_any:
            validators.append(shared("Access-Control-Allow-Origin", "*"))
        full = [
            shared("Content-Type", entry.content_type),
            shared("Accept-Ranges", "bytes"),
            shared("X-Content-Type-Options", "nosniff"),
            *validators,
        ]
        if self.rules:
            extra = headers_for(self.rules, relative)
            if extra:
                full = [pair for pair in full if pair[0].lower() not in extra]
                validators = [pair for pair in validators if pair[0].lower() not in extra]
                for name, value in extra.values():
                    if value:
                        full.append(shared(name, value))
                        if name.lower() in {"cache-control", "expires"}:
                            validators.append(shared(name, value))
        return full, validators


def _representations(root: Path, relative: str, entry: FileEntry, policy: _HeaderPolicy,
                     last_modified: str | None) -> tuple[Representation, ...]:
    common, validators = policy.common(relative, entry, last_modified)
    shared = policy.shared
    base = str(root / relative)
    items = [("identity", base, entry.size, entry.hash)]
    items += [
        (coding, base + ENCODING_SUFFIXES[coding], variant.size, variant.hash)
        for coding, variant in entry.variants.items()
        if coding in ENCODING_SUFFIXES and variant.size < entry.size
    ]
    items.sort(key=lambda item: item[2])
    representations = []
    for coding, path, size, digest in items:
        etag = f'"{digest}"'
        etag_pair = ("ETag", etag)
        headers = [*common, ("Content-Length", str(size)), etag_pair]
        not_modified = [*validators, etag_pair]
        if coding != "identity":
            encoding_pair = shared("Content-Encoding", coding)
            headers.append(encoding_pair)
        representations.append(Representation(coding, path, size, etag, headers, not_modified))
    return tuple(representations)


def build_table(settings: Settings, manifest: Manifest, source: str = "manifest") -> Table:
    """Build the lookup table from a manifest. Entries for never-served paths are dropped."""
    started = time.perf_counter()
    rules = load_rules(settings.headers_file) if settings.headers_file else ()
    policy = _HeaderPolicy(settings, rules)
    prefix = settings.prefix
    files: dict[str, StaticFile] = {}
    redirects: dict[str, str] = {}
    root = settings.root
    mtime_strings: dict[int, str] = {}
    for relative, entry in manifest.files.items():
        if (not relative or relative.startswith("/") or is_hidden(relative)
                or relative == MANIFEST_NAME or "\\" in relative or "\x00" in relative
                or any(part in {"", ".", ".."} for part in relative.split("/"))):
            log.warning("manifest lists %r, which is never served; ignoring it", relative)
            continue
        last_modified = None
        if entry.mtime is not None:
            last_modified = mtime_strings.get(entry.mtime)
            if last_modified is None:
                last_modified = mtime_strings[entry.mtime] = http_date(entry.mtime)
        representations = _representations(root, relative, entry, policy, last_modified)
        static_file = StaticFile(relative, representations, entry.mtime, last_modified)
        files[wsgi_key(prefix + relative)] = static_file
        if relative == INDEX or relative.endswith("/" + INDEX):
            directory = prefix + relative[: -len(INDEX)]
            files[wsgi_key(directory)] = static_file
            if directory != prefix:
                redirects[wsgi_key(directory[:-1])] = directory
    # A file and a directory cannot share a name, but a redirect must never
    # shadow a real file: drop any that would.
    for key in [key for key in redirects if key in files]:
        del redirects[key]
    not_found = files.get(wsgi_key(prefix + NOT_FOUND_PAGE))
    spa_index = files.get(wsgi_key(prefix + INDEX)) if settings.spa else None
    return Table(files, redirects, not_found, spa_index, source,
                 time.perf_counter() - started, rules)


def load_table(settings: Settings) -> Table:
    """The table from the root's manifest, or from a scan (with a warning) when there is none."""
    from servestatic.manifest import build_from_tree

    try:
        manifest = load_manifest(settings.root)
        source = "manifest"
    except ManifestError as error:
        if (settings.root / MANIFEST_NAME).exists():
            raise
        log.warning("%s; scanning the tree instead (slower start, no build-time variants "
                    "unless .br/.gz files are already there)", error)
        manifest = build_from_tree(settings.root, settings.immutable_pattern)
        source = "scan"
    return build_table(settings, manifest, source)
