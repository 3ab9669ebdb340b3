"""The lookup table: every response header of a file decided once.

`Table` maps the exact `PATH_INFO` string a WSGI server hands us (the URL
path's UTF-8 bytes, as latin-1 text) to a `StaticFile` holding, per variant,
the complete header list, size and path, so that answering a hit is one dict
lookup and builds nothing. Only paths the manifest lists are keys, which is
why no request path, however it is encoded, can reach anything else.

At start-up only the keys are made, each with its manifest entry in the
compact form `manifest.read_for_serving` gives (about 450 bytes a file with its
key and its digests, 1.2 KB with two variants); a file's `StaticFile` is built the
first time a worker is asked for it and kept in a cache of at most `BUILT_FILES`
files, the oldest built leaving first. Building all of them up front took seconds
for a large site, and keeping every one built (about 2 KB a file with its encoded
headers) let a worker that is eventually asked for every file of a huge site grow
without bound; rebuilding one costs about 20 µs. Header tuples are shared between
files for the same reason.
"""

from __future__ import annotations

import base64
import gc
import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from servestatic.config.settings import Mount, Settings
from servestatic.core.cors import CorsPolicy
from servestatic.core.dictionaries import VARY as DELTA_VARY
from servestatic.core.dictionaries import page_dictionary, page_link, use_as_dictionary
from servestatic.core.headerrules import HeaderRule, headers_for, load_rules
from servestatic.core.http import accepts, http_date, with_stale_if_error
from servestatic.core.livemount import live_entry
from servestatic.core.security import SecurityPolicy
from servestatic.site import typedread
from servestatic.site.cachetags import NOT_FOUND, STYLES, file_tags, header_value, release_tag
from servestatic.site.hashednames import immutable_test
from servestatic.site.manifest import (
    CompactEntry,
    FileEntry,
    ManifestError,
    read_for_serving_site,
    served_entry,
)
from servestatic.site.names import ENCODING_SUFFIXES, INDEX, MANIFEST_NAME, NOT_FOUND_PAGE, delta_name
from servestatic.site.scan import never_served

log = logging.getLogger("servestatic")

NO_SECURITY = SecurityPolicy()

_IN_A_DIRECTORY = "/" + INDEX

# How many built files (StaticFile, representations, encoded headers) a process
# keeps: about 20 MiB at 2 KB each, so that a worker of a 100,000-file site asked
# for every file stays near 100 MiB (bench/serve_memory.py). Behind a CDN the files
# the origin is asked for again and again are far fewer, and one rebuilt costs 20 µs.
# See `Table.lookup`.
BUILT_FILES = 10_000

# A manifest entry as the table keeps it until the file is asked for: compact
# (from the manifest: msgspec's typed struct, or a tuple), a dict (a manifest entry of
# an unexpected shape, judged on first use) or a FileEntry (from a scan).
Entry = typedread.Entry | CompactEntry | dict[str, Any] | FileEntry


class Representation:
    """One variant of one file: where its bytes are and the headers of a 200."""

    __slots__ = ("coding", "early_hints", "etag", "header_block", "headers", "not_modified_block",
                 "not_modified_headers", "path", "sha512", "sha512_block", "sha512_headers", "size")

    def __init__(self, coding: str, path: str, size: int, etag: str,
                 headers: list[tuple[str, str]], not_modified_headers: list[tuple[str, str]],
                 sha512: str | None = None):
        self.coding = coding
        self.path = path
        self.size = size
        self.etag = etag
        self.headers = headers
        self.not_modified_headers = not_modified_headers
        # The manifest's sha-512 digest of these bytes (base64), or None; and the headers of
        # a 200 with `Repr-Digest: sha-512=...` in place of sha-256, for a client whose
        # Want-Repr-Digest prefers it (RFC 9530 section 4), made on first use
        # (`with_sha512`): few clients ask, and a list per representation of every built
        # file would cost a worker about a fifth of their memory.
        self.sha512 = sha512
        self.sha512_headers: list[tuple[str, str]] | None = None
        # The headers of a 103 Early Hints before a 200 of these bytes (its Link header),
        # found on first use by core/answer.early_hint_headers.
        self.early_hints: list[tuple[str, str]] | None = None
        # The same lists as HTTP/1.1 header bytes, made on first use by a
        # server that writes them itself (server/connection.py, through core/answer.header_block).
        self.header_block: bytes | None = None
        self.not_modified_block: bytes | None = None
        self.sha512_block: bytes | None = None

    def with_sha512(self) -> list[tuple[str, str]]:
        """The headers of a 200 with the sha-512 Repr-Digest (only where `sha512` is set)."""
        if self.sha512_headers is None:
            self.sha512_headers = [*(pair for pair in self.headers if pair[0] != "Repr-Digest"),
                                   ("Repr-Digest", f"sha-512=:{self.sha512}:")]
        return self.sha512_headers


class StaticFile:
    """A servable file: its representations, smallest first, and its validators.

    `https` is the same file as answered to an https request when it differs: when
    Strict-Transport-Security is on (core/security.py), a twin whose header lists
    carry it, so that neither answer builds a header per request; else None (the file
    itself, which is not kept there: a file referring to itself is a reference cycle,
    freed only by a full collection, and a worker past `BUILT_FILES` would pile up
    the files it let go until then).
    """

    __slots__ = ("by_size", "deltas", "https", "last_modified", "mtime")

    def __init__(self, by_size: tuple[Representation, ...], mtime: int | None,
                 last_modified: str | None, deltas: dict[str, Representation] | None = None):
        self.by_size = by_size
        self.mtime = mtime
        self.last_modified = last_modified
        self.https: StaticFile | None = None
        # Dictionary deltas (core/dictionaries.py) by the `Available-Dictionary` value that
        # selects each (":base64:"); None for the files without any, so that their requests
        # pay one attribute test for the feature.
        self.deltas = deltas

    def select(self, codings: frozenset[str]) -> Representation | None:
        """The smallest representation the client accepts, or None (406)."""
        for representation in self.by_size:
            if accepts(codings, representation.coding):
                return representation
        return None


class MountTable:
    """One mount's share of the table: its directory and prefix, and where its entries came from."""

    __slots__ = ("build", "count", "html_dictionary", "key_prefix", "live", "prefix", "real_root", "root",
                 "source")

    def __init__(self, mount: Mount, count: int, source: str, build: str = "", html_dictionary: str = ""):
        self.prefix = mount.prefix
        self.build = build  # the manifest's build id: the release its cache tags name
        # The site-wide dictionary of the mount's HTML pages (its relative path), or "": each
        # page's Link names it, and it is sent with its Use-As-Dictionary (`_file_headers`).
        self.html_dictionary = html_dictionary
        self.key_prefix = wsgi_key(mount.prefix)
        self.root = os.path.join(mount.root, "")
        self.real_root = os.path.join(os.path.realpath(mount.root), "")
        self.count = count
        self.source = source
        self.live = mount.live  # files looked up on each request (core/livemount.py)

    def relative(self, key: str) -> str:
        """The manifest's relative path for a table key of this mount.

        Worked out again when a file is built rather than kept per key: 100,000
        keys with their relative paths beside them held 10 MiB more.
        """
        relative = key[len(self.key_prefix):]
        if not relative.isascii():
            relative = relative.encode("latin-1").decode("utf-8")
        if not relative or relative.endswith("/"):  # a directory's key: its index file
            relative += INDEX
        return relative


class Table:
    """Path -> StaticFile over every mount, built on first use from the manifests' entries.

    A path belongs to the mount with the longest prefix it starts with: a file of
    the `/` mount at `static/app.css` is never served when `/static/` is mounted
    too, and a path that mount lacks goes to the app like any miss. The 404 page
    and the SPA index are those of the mount nearest the site root (the shortest
    prefix) that has one.
    """

    def __init__(self, settings: Settings, mounts: list[tuple[MountTable, dict[str, Entry]]],
                 security: SecurityPolicy = NO_SECURITY):
        """`mounts`: each mount with its entries (relative path -> entry), which the table
        takes: it empties each dict as it goes. `security`: the headers every file gets
        besides its own (core/security.py)."""
        started = time.perf_counter()
        self.mounts = [mount for mount, _ in mounts]
        self.rules = load_rules(settings.headers_file) if settings.headers_file else ()
        self.security = security
        self.policy = _HeaderPolicy(settings, self.rules, security)
        self.immutable_override = (immutable_test(settings.immutable_pattern)
                                   if settings.immutable_pattern != "auto" else None)
        # The built files, oldest first (see `lookup`).
        self.files: OrderedDict[str, StaticFile] = OrderedDict()
        self.built_files = BUILT_FILES
        # wsgi key -> manifest entry, for every servable key. The mount is found from the
        # key on first use (`mount_of`), not stored per key: a tuple for each of 100,000
        # files made start-up 50% slower.
        self.paths: dict[str, Entry] = {}
        self.redirects: dict[str, str] = {}
        longest_first = sorted(mounts, key=lambda item: len(item[0].prefix), reverse=True)
        self._by_prefix = [(mount.key_prefix, mount) for mount, _ in longest_first]
        for index, (mount, entries) in enumerate(longest_first):
            inner = tuple(other.key_prefix for other, _ in longest_first[:index]
                          if other.prefix.startswith(mount.prefix))
            self._add(mount, entries, inner)
        # A file and a directory cannot share a name, but a redirect must never
        # shadow a real file: drop any that would.
        for key in [key for key in self.redirects if key in self.paths]:
            del self.redirects[key]
        nearest_root = [mount for mount, _ in longest_first[::-1]]
        # Files the app holds on to: never evicted from `files`, so never built twice.
        self._pinned: dict[str, StaticFile] = {}
        self.not_found = self._pin(mount.prefix + NOT_FOUND_PAGE for mount in nearest_root)
        # The build a 404's release tag names: the mount's nearest the root (policy.not_found_headers).
        self.not_found_build = nearest_root[0].build
        self.spa_index: StaticFile | None = None
        self.spa_prefix = nearest_root[0].key_prefix
        if settings.spa:
            for mount in nearest_root:
                self.spa_index = self._pin([mount.prefix + INDEX])
                if self.spa_index is not None:
                    self.spa_prefix = mount.key_prefix
                    break
        # Where a served file may really be: under one of the mounts' directories.
        self.real_roots = tuple(mount.real_root for mount in self.mounts)
        self.live_prefixes = tuple(mount.key_prefix for mount in self.mounts if mount.live)
        self.seconds = time.perf_counter() - started

    def _add(self, mount: MountTable, entries: dict[str, Entry], inner: tuple[str, ...]) -> None:
        """A mount's keys, leaving out those under the longer prefixes in `inner`."""
        paths, redirects, prefix = self.paths, self.redirects, mount.prefix
        shadowed = 0
        popitem = entries.popitem
        # Popped one by one rather than iterated: each relative path is freed as its
        # key is made, and the key takes its place in memory instead of new space.
        while entries:
            relative, entry = popitem()
            if never_served(relative):
                log.warning("manifest lists %r, which is never served; ignoring it", relative)
                continue
            url = prefix + relative
            key = url if url.isascii() else wsgi_key(url)
            if inner and key.startswith(inner):
                shadowed += 1
                continue
            paths[key] = entry
            if relative.endswith(INDEX) and (relative == INDEX or relative.endswith(_IN_A_DIRECTORY)):
                directory = prefix + relative[: -len(INDEX)]
                paths[wsgi_key(directory)] = entry
                if directory != prefix:
                    redirects[wsgi_key(directory[:-1])] = wsgi_key(directory)  # latin-1, as SCRIPT_NAME
        if shadowed:
            log.warning("%d files of the mount at %s are under a longer mount's prefix and are "
                        "never served", shadowed, prefix)

    def _pin(self, urls: Iterable[str]) -> StaticFile | None:
        """The first of `urls` the table has, built and kept for good."""
        for url in urls:
            key = wsgi_key(url)
            found = self.lookup(key)
            if found is not None:
                self._pinned[key] = found
                return found
        return None

    def lookup(self, key: str) -> StaticFile | None:
        """The StaticFile at a PATH_INFO key, built on first use; None for a miss.

        A built file goes into `files`; past `built_files` of them the oldest
        built leaves (popitem(last=False) is O(1) on an OrderedDict, where a plain
        dict's first key is found by a scan over its deleted slots). Oldest built,
        not least recently used: keeping the order of use would cost every hit a
        move_to_end, and a hit must stay one `files.get`.
        """
        files = self.files
        static_file = files.get(key)
        if static_file is not None:
            return static_file
        entry = self.paths.get(key)
        if entry is None:
            return None
        static_file = self._pinned.get(key)
        if static_file is None:
            mount = self.mount_of(key)
            relative = mount.relative(key)
            try:
                file_entry = served_entry(entry)
            except ValueError as error:
                log.error("manifest entry %r: %s; not serving it", relative, error)
                return None
            if self.immutable_override is not None:
                file_entry.immutable = self.immutable_override(relative)
            static_file = _static_file(mount, relative, file_entry, self.policy)
        files[key] = static_file
        if len(files) > self.built_files:
            files.popitem(last=False)
        return static_file

    def lookup_live(self, key: str) -> StaticFile | None:
        """The file at a key of a mount that changes at run time, looked up on disk now and
        never kept (it may change); None when the key is not such a mount's or not servable."""
        mount = next((mount for prefix, mount in self._by_prefix if key.startswith(prefix)), None)
        if mount is None or not mount.live:
            return None
        try:
            relative = key[len(mount.key_prefix):].encode("latin-1").decode("utf-8")
        except UnicodeError:
            return None
        entry = live_entry(mount.root, mount.real_root, relative)
        return None if entry is None else _static_file(mount, relative, entry, self.policy)

    def mount_of(self, key: str) -> MountTable:
        """The mount a table key belongs to: the longest prefix it starts with (keys
        under a longer prefix were never taken from a shorter one)."""
        for prefix, mount in self._by_prefix:
            if key.startswith(prefix):
                return mount
        raise KeyError(key)

    def describe(self) -> str:
        milliseconds = f"in {self.seconds * 1000:.0f} ms"
        if len(self.mounts) == 1:
            mount = self.mounts[0]
            return f"{mount.count} files from the {mount.source} {milliseconds}"
        parts = ", ".join(f"{mount.prefix}: {mount.count} from the {mount.source}"
                          for mount in self.mounts)
        return f"{sum(mount.count for mount in self.mounts)} files ({parts}) {milliseconds}"


def wsgi_key(url_path: str) -> str:
    """A URL path as WSGI servers give it in PATH_INFO: UTF-8 bytes read as latin-1."""
    return url_path.encode("utf-8").decode("latin-1")


# How many distinct headers, and combinations of a file's common headers, are kept
# for sharing. Most sites have a few dozen; a tree whose files each have their own
# mtime has as many Last-Modified values as files, and kept for good they would undo
# the bound on built files (100,000 of them held 65 MiB). Past the limit the cache is
# emptied: files built before keep what they were given, later ones share anew.
SHARED_LIMIT = 1024


class _Shared:
    """Hands out one tuple per distinct header, so equal headers cost one object."""

    def __init__(self) -> None:
        self._pairs: dict[tuple[str, str], tuple[str, str]] = {}

    def __call__(self, name: str, value: str) -> tuple[str, str]:
        pair = (name, value)
        pairs = self._pairs
        found = pairs.get(pair)
        if found is None:
            if len(pairs) >= SHARED_LIMIT:
                pairs.clear()
            found = pairs[pair] = pair
        return found


class _HeaderPolicy:
    """Decides the cache, CORS and rule headers of a file from the settings."""

    def __init__(self, settings: Settings, rules: tuple[HeaderRule, ...],
                 security: SecurityPolicy = NO_SECURITY):
        self.settings = settings
        self.rules = rules
        self.security = security
        self.shared = _Shared()
        # A hashed file is fresh for a year: stale-if-error would add nothing to it.
        self.immutable_cache = f"public, max-age={settings.immutable_max_age}, immutable"
        self.default_cache = with_stale_if_error(f"public, max-age={settings.max_age}",
                                                 settings.stale_if_error)
        self.html_cache = with_stale_if_error(settings.html_cache_control, settings.stale_if_error)
        self.cors = CorsPolicy(settings.cors, settings.timing_allow_origin)
        # --- for the CDN in front (site/cachetags.py; docs/cdn.md)
        # CDN-Cache-Control (RFC 9213) for HTML, unhashed files and 404s: a CDN keeps them this
        # long without asking the origin, browsers still follow Cache-Control; None: off.
        self.cdn_cache = (with_stale_if_error(f"public, max-age={settings.cdn_max_age}",
                                              settings.stale_if_error)
                          if settings.cdn_max_age else None)
        self.tag_style = STYLES.get(settings.cache_tag_header)
        # Most files share their common headers with thousands of others: each
        # combination is built once, and a built file costs two lists less.
        self._common_cache: dict[tuple[str, bool, bool, str | None, bool], tuple[
            list[tuple[str, str]], list[tuple[str, str]]]] = {}

    def cache_control(self, entry: FileEntry) -> str:
        if entry.immutable:
            return self.immutable_cache
        if entry.content_type.startswith("text/html"):
            return self.html_cache
        return self.default_cache

    def link(self, prefix: str, relative: str, entry: FileEntry) -> tuple[str, str] | None:
        """The `Link` header of an HTML page's preload hints (at most `preload_links` of
        them, from the manifest), or None: none recorded, the setting at 0, or a header
        rule that sets Link for the file (the rule's value is sent instead)."""
        hints = entry.preload[: self.settings.preload_links]
        if not hints or (self.rules and "link" in headers_for(self.rules, relative)):
            return None
        # A relative target is relative to the served root: under the mount's prefix.
        prefix = quote(prefix, safe="/:@!$&'()*+,;=-._~")
        values = [f"<{target if target.startswith('/') else prefix + target}>; {parameters}"
                  for target, parameters in hints]
        return ("Link", ", ".join(values))

    def vary(self, has_variants: bool, has_deltas: bool = False) -> str | None:
        values = [DELTA_VARY] if has_deltas else ["Accept-Encoding"] if has_variants else []
        if self.cors.varies_by_origin:
            values.append("Origin")
        return ", ".join(values) or None

    def common(self, relative: str, entry: FileEntry, last_modified: str | None) -> tuple[
        list[tuple[str, str]], list[tuple[str, str]]
    ]:
        """Headers every representation of a file shares: (for a 200, for a 304)."""
        key = (entry.content_type, entry.immutable, bool(entry.variants), last_modified, bool(entry.deltas))
        if not self.rules:
            cache = self._common_cache
            cached = cache.get(key)
            if cached is None:
                if len(cache) >= SHARED_LIMIT:
                    cache.clear()
                cached = cache[key] = self._common(relative, entry, last_modified)
            return cached
        return self._common(relative, entry, last_modified)

    def _common(self, relative: str, entry: FileEntry, last_modified: str | None) -> tuple[
        list[tuple[str, str]], list[tuple[str, str]]
    ]:
        shared = self.shared
        cache = shared("Cache-Control", self.cache_control(entry))
        vary_value = self.vary(bool(entry.variants), bool(entry.deltas))
        validators = [cache]
        if vary_value:
            validators.append(shared("Vary", vary_value))
        if last_modified:
            validators.append(shared("Last-Modified", last_modified))
        if self.cdn_cache is not None and not entry.immutable and not _forbids_shared_caching(cache):
            validators.append(shared("CDN-Cache-Control", self.cdn_cache))
        validators += [shared(name, value) for name, value in self.cors.fixed_headers()]
        full = [
            shared("Content-Type", entry.content_type),
            shared("Accept-Ranges", "bytes"),
            shared("X-Content-Type-Options", "nosniff"),
            *validators,
            *(shared(name, value) for name, value in self.security.headers),
        ]
        if self.rules:
            extra = headers_for(self.rules, relative)
            if extra:
                full = [pair for pair in full if pair[0].lower() not in extra]
                validators = [pair for pair in validators if pair[0].lower() not in extra]
                for name, value in extra.values():
                    if value:
                        full.append(shared(name, value))
                        if name.lower() in {"cache-control", "expires", "cdn-cache-control"}:
                            validators.append(shared(name, value))
                if "cdn-cache-control" not in extra and _forbids_shared_caching(extra.get("cache-control")):
                    # A rule made the file private or unstorable: our CDN lifetime must not
                    # override that for the CDN.
                    full = [pair for pair in full if pair[0] != "CDN-Cache-Control"]
                    validators = [pair for pair in validators if pair[0] != "CDN-Cache-Control"]
            if "x-accel-expires" in extra:
                return full, validators
        cdn = next((value for name, value in full if name.lower() == "cdn-cache-control"), None)
        accel = self.accel_expires(cdn)
        if accel is not None:
            full, validators = [accel, *full], [accel, *validators]
        return full, validators

    def accel_expires(self, cdn_cache_control: str | None) -> tuple[str, str] | None:
        """`X-Accel-Expires` with CDN-Cache-Control's max-age, or None: nginx reads no
        CDN-Cache-Control, but takes its cache lifetime from this header (and does not pass it
        on). First among the headers: nginx 1.22 reads them in order, and only an
        X-Accel-Expires read before Cache-Control keeps a `no-cache` answer storable."""
        if cdn_cache_control is None:
            return None
        max_age = _MAX_AGE.search(cdn_cache_control)
        if max_age is None or _forbids_shared_caching(("", cdn_cache_control)):
            return None
        return self.shared("X-Accel-Expires", max_age.group(1))

    def tags(self, mount: MountTable, relative: str, entry: FileEntry) -> tuple[str, str] | None:
        """The cache-tag header of a file (SERVESTATIC_CACHE_TAG_HEADER), or None when off
        or when a header rule sets that header for the file (the rule's value is sent)."""
        style = self.tag_style
        if style is None or (self.rules and style.header.lower() in headers_for(self.rules, relative)):
            return None
        tags = file_tags(mount.build, mount.prefix + relative, entry.content_type, entry.immutable)
        return (style.header, header_value(style, tags))

    def not_found_headers(self, build: str, cache_control: str) -> list[tuple[str, str]]:
        """A 404's Cache-Control and its CDN headers: its tags (the release and `404`) and
        CDN-Cache-Control, with X-Accel-Expires before them all (`accel_expires`)."""
        headers = [("Cache-Control", cache_control)]
        if self.tag_style is not None:
            tags = [release_tag(build), NOT_FOUND] if build else [NOT_FOUND]
            headers.append((self.tag_style.header, header_value(self.tag_style, tags)))
        if self.cdn_cache is not None:
            headers.append(("CDN-Cache-Control", self.cdn_cache))
        accel = self.accel_expires(self.cdn_cache)
        return headers if accel is None else [accel, *headers]


_MAX_AGE = re.compile(r"(?i)(?:^|[\s,])max-age\s*=\s*\"?(\d+)")


def _forbids_shared_caching(cache_control: tuple[str, str] | None) -> bool:
    return cache_control is not None and any(directive in cache_control[1].lower()
                                             for directive in ("private", "no-store"))


def _file_headers(mount: MountTable, relative: str, entry: FileEntry, policy: _HeaderPolicy,
                  last_modified: str | None, extra: tuple[tuple[str, str], ...]
                  ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The headers all of a file's representations share: (for a 200, for a 304)."""
    common, validators = policy.common(relative, entry, last_modified)
    if extra:
        common, validators = [*common, *extra], [*validators, *extra]
    link = policy.link(mount.prefix, relative, entry)
    if link is not None:
        common = [*common, link]
    tags = policy.tags(mount, relative, entry)
    if tags is not None:  # on a 304 too: a cache refreshing its copy keeps its tags current
        common, validators = [*common, tags], [*validators, tags]
    if entry.family and entry.immutable:
        # Dictionary deltas (issue 21; core/dictionaries.py): a family member is kept by
        # browsers as a dictionary for its next version.
        common = [*common, policy.shared("Use-As-Dictionary", use_as_dictionary(
            mount.prefix, entry.family, entry.content_type))]
    if mount.html_dictionary:
        common = _with_html_dictionary(mount, relative, entry, policy, common)
    return common, validators


def _with_html_dictionary(mount: MountTable, relative: str, entry: FileEntry, policy: _HeaderPolicy,
                          common: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers of the site-wide HTML dictionary (core/dictionaries.py): a page announces
    it with a Link of its own, beside its preload hints or a header rule's Link (a rule's
    Link replaces the preload hints it would repeat, not this); the dictionary itself is
    sent with its Use-As-Dictionary. Made once per file, like the rest of its headers."""
    if relative == mount.html_dictionary:
        return [*common, policy.shared("Use-As-Dictionary", page_dictionary(mount.prefix))]
    if entry.content_type.startswith("text/html"):
        return [*common, policy.shared("Link", page_link(mount.prefix, mount.html_dictionary))]
    return common


def _representations(mount: MountTable, relative: str, entry: FileEntry, policy: _HeaderPolicy,
                     last_modified: str | None, extra: tuple[tuple[str, str], ...] = ()
                     ) -> tuple[Representation, ...]:
    """The file's representations, smallest first; `extra` headers go on a 200 and a 304 alike."""
    common, validators = _file_headers(mount, relative, entry, policy, last_modified, extra)
    base = mount.root + relative
    items = [("identity", base, entry.size, entry.hash, entry.digests)]
    items += [
        (coding, base + ENCODING_SUFFIXES[coding], variant.size, variant.hash, variant.digests)
        for coding, variant in entry.variants.items()
        if coding in ENCODING_SUFFIXES and variant.size < entry.size
    ]
    items.sort(key=lambda item: item[2])
    return tuple(_representation(policy, common, validators, *item) for item in items)


def _delta_representations(mount: MountTable, relative: str, entry: FileEntry, policy: _HeaderPolicy,
                           last_modified: str | None, extra: tuple[tuple[str, str], ...] = ()
                           ) -> dict[str, Representation] | None:
    """The file's dictionary deltas by the `Available-Dictionary` value that selects each, with
    the headers of the file's other representations; None when it has none."""
    sha256 = entry.digests.get("sha-256")
    if not entry.deltas or not sha256:
        return None
    common, validators = _file_headers(mount, relative, entry, policy, last_modified, extra)
    file_sha = base64.b64decode(sha256)
    return {
        f":{dictionary}:": _representation(
            policy, common, validators, delta.coding,
            mount.root + delta_name(file_sha, base64.b64decode(dictionary), delta.coding),
            delta.size, delta.hash, delta.digests)
        for dictionary, delta in entry.deltas.items()
    }


def _representation(policy: _HeaderPolicy, common: list[tuple[str, str]],
                    validators: list[tuple[str, str]], coding: str, path: str, size: int,
                    digest: str, digests: dict[str, str]) -> Representation:
    """One representation with the headers of a 200 and a 304."""
    shared = policy.shared
    etag = f'"{digest}"'
    etag_pair = ("ETag", etag)
    headers = [*common, ("Content-Length", str(size)), etag_pair]
    not_modified = [*validators, etag_pair]
    if coding != "identity":
        encoding_pair = shared("Content-Encoding", coding)
        headers.append(encoding_pair)
    # `Repr-Digest` (RFC 9530 section 3), from the manifest's build-time digest of these bytes.
    sha256 = digests.get("sha-256")
    if sha256:
        headers.append(("Repr-Digest", f"sha-256=:{sha256}:"))
    return Representation(coding, path, size, etag, headers, not_modified, digests.get("sha-512") or None)


def _static_file(mount: MountTable, relative: str, entry: FileEntry, policy: _HeaderPolicy) -> StaticFile:
    last_modified = http_date(entry.mtime) if entry.mtime is not None else None
    representations = _representations(mount, relative, entry, policy, last_modified)
    deltas = _delta_representations(mount, relative, entry, policy, last_modified)
    static_file = StaticFile(representations, entry.mtime, last_modified, deltas)
    hsts = policy.security.hsts_pair
    if hsts is not None and not any(name.lower() == "strict-transport-security"
                                    for name, _ in representations[0].headers):  # a rule's wins
        extra = (policy.shared(*hsts),)
        secure = _representations(mount, relative, entry, policy, last_modified, extra)
        static_file.https = StaticFile(secure, entry.mtime, last_modified,
                                       _delta_representations(mount, relative, entry, policy,
                                                              last_modified, extra))
    return static_file


def load_table(settings: Settings, security: SecurityPolicy = NO_SECURITY) -> Table:
    """The table of every mount, each from its manifest, or from a scan (with a warning)."""
    collecting = gc.isenabled()
    # The table is an object or two per file, all kept as long as the process runs.
    # The cyclic collector would walk them again and again while they are made, and
    # once more at its first collection after (15 ms for 100,000 files): it is off
    # while they are made, and they are then frozen, out of its reach for good (as
    # server.run does again with everything else before gunicorn forks).
    gc.disable()
    try:
        mounts = (*settings.all_mounts, *settings.live_mounts)
        table = Table(settings, [_load_mount(settings, mount) for mount in mounts], security)
        gc.freeze()
        return table
    finally:
        if collecting:
            gc.enable()


def _load_mount(settings: Settings, mount: Mount) -> tuple[MountTable, dict[str, Entry]]:
    from servestatic.site.manifest import build_from_tree

    entries: dict[str, Entry]
    html_dictionary = ""
    if mount.live:
        return MountTable(mount, 0, "disk on each request"), {}
    try:
        site = read_for_serving_site(mount.root)
        entries, build, html_dictionary = site.files, site.build, site.html_dictionary
        source = "manifest"
    except ManifestError as error:
        if (mount.root / MANIFEST_NAME).exists():
            raise
        log.warning("%s; scanning the tree instead (slower start, no build-time variants "
                    "unless .br/.gz files are already there)", error)
        scanned = build_from_tree(mount.root, settings.immutable_pattern)
        entries, build = dict(scanned.files), scanned.build
        source = "scan"
    return MountTable(mount, len(entries), source, build, html_dictionary), entries
