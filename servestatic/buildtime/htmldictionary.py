"""A site-wide dictionary for the HTML pages (RFC 9842 `dcz`, issue 21), made at build time.

The pages of a documentation site share most of their bytes: the head, the navigation, the
sidebar's table of contents, the footer. A dictionary trained from them (zstd's trainer) is
served once, as a file of the site (`_servestatic/html.<sha-256>.dict`, immutable), announced
on every page with `Link: <...>; rel="compression-dictionary"` (core/table.py); a browser
fetches it when idle and names its SHA-256 in `Available-Dictionary` on its next navigations,
and each page is answered with its delta against it: the page's `dcz` variant, recorded and
served like a hashed file's deltas (buildtime/deltas.py makes them, core/dictionaries.py
chooses them).

Raw content, not a zstd dictionary: `dcz` has the decoder use the dictionary's bytes as
they are, as a raw-content zstd dictionary (a prefix), whatever they hold (RFC 9842's
`dcz`; Chromium decodes so, tests/test_browser.py), so the entropy tables a trained zstd
dictionary starts with would be mere bytes of history to a browser. The served file is the
trained dictionary's content section alone: the header ends with the three repeat offsets the trainer always
writes (1, 4, 8, little-endian), and the content follows. Without its tables the dictionary
compresses The Cargo Book's pages 0.2% worse than the full zstd dictionary would
(bench/html_dictionary.py).

A deploy that retrains makes a new dictionary with a new name and hash. The dictionaries of
earlier builds are kept in the cache directory (`versions/`, like a hashed file's versions),
and each page also gets its delta against the `delta_versions` most recent of them, so a
visitor who holds an earlier one still gets a small answer; a client naming a dictionary the
page has no delta against (or none the build knows) gets br, as `delta_for` decides by the
hash alone. Earlier dictionaries are not served again: a browser fetches the current one
from the Link of the page it has just been sent.

Off by default (SERVESTATIC_HTML_DICTIONARY): it writes one more file and a delta per page
(and per earlier dictionary), which only pays on a site whose visitors read several pages,
and makes HTML vary on `Available-Dictionary` at every cache in front.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from servestatic.buildtime.deltas import CODING, DeltaJob, b64, cache_dirs, run
from servestatic.buildtime.versions import Member, Version, cached_versions, remember, sha256_of
from servestatic.site.atomic import remove_quietly, write_atomic
from servestatic.site.manifest import FileEntry
from servestatic.site.names import (
    DELTA_DIRECTORY,
    HTML_DICTIONARY_DIRECTORY,
    VARIANT_SUFFIXES,
    html_dictionary_name,
    is_html_dictionary_name,
)
from servestatic.site.scan import walk

log = logging.getLogger("servestatic")

# The dictionary's size: on The Cargo Book's 104 pages (bench/html_dictionary.py) 32 KiB
# sends 23% more bytes than 64 KiB (1.5 KB a page, for 7.5 KB less of dictionary: repaid
# by the fifth page), and 112 KiB 6% fewer (400 bytes a page, for 10 KB more: repaid by
# the twenty-sixth page, more than most visits read).
SIZE = 64 * 1024
# Fewer pages than this are too few samples to train on (and too few to share much).
MIN_PAGES = 8
# The samples' bytes at most (zstd's trainer wants about 100 times the dictionary size):
# a site with more HTML is sampled evenly by path, so that memory and time stay bounded.
MAX_SAMPLE_BYTES = 128 * SIZE
# The trainer's parameters (fastcover with fixed segment and d-mer sizes): 0.06 s on The
# Cargo Book where letting zstd search them took 33 s and gained 0.5%.
TRAIN_PARAMETERS = {"k": 2048, "d": 8, "f": 20}
# What ends a trained zstd dictionary's header: the repeat offsets 1, 4 and 8 as
# little-endian 32-bit numbers (zstd's dictionary format, ZDICT_finalizeDictionary).
_REPEAT_OFFSETS = bytes.fromhex("010000000400000008000000")
_ZSTD_DICTIONARY_MAGIC = bytes.fromhex("37a430ec")
# The key its versions are kept under in the cache directory (buildtime/versions.py).
FAMILY = HTML_DICTIONARY_DIRECTORY + "/html.*.dict"


@dataclass
class HtmlDictionaryStats:
    pages: int = 0  # HTML pages a delta was made or kept for
    samples: int = 0  # pages trained on
    dictionary_bytes: int = 0
    earlier: int = 0  # earlier dictionaries the pages also got deltas against
    deltas: int = 0  # against the current dictionary
    delta_bytes: int = 0  # of those
    br_bytes: int = 0  # what br clients get for the same pages
    train_seconds: float = 0.0
    seconds: float = 0.0  # the whole step

    def line(self) -> str:
        if not self.dictionary_bytes:
            return f"html dictionary: none ({self.pages} compressible pages; {MIN_PAGES} needed)"
        return (f"html dictionary: {self.dictionary_bytes:,} bytes trained on {self.samples} pages "
                f"in {self.train_seconds:.2f} s; {self.deltas} of {self.pages} pages as {CODING} "
                f"against it, {self.delta_bytes:,} bytes where br sends {self.br_bytes:,}; "
                f"{self.earlier} earlier dictionaries")


def raw_content(trained: bytes) -> bytes:
    """A trained zstd dictionary's content section (see the module's docstring); the bytes
    as they are when they are not a zstd dictionary."""
    if not trained.startswith(_ZSTD_DICTIONARY_MAGIC):
        return trained
    end = trained.find(_REPEAT_OFFSETS, 8)
    return trained if end < 0 else trained[end + len(_REPEAT_OFFSETS):]


def train(samples: list[bytes], size: int = SIZE) -> bytes | None:
    """A raw-content dictionary of at most `size` bytes trained on the samples, or None
    without the zstandard package or when zstd cannot train on them."""
    try:
        import zstandard
    except ImportError:
        return None
    # The trainer fails when asked for more than its samples hold.
    size = min(size, sum(len(sample) for sample in samples) // 4)
    try:
        trained = zstandard.train_dictionary(size, samples, threads=1, **TRAIN_PARAMETERS)
    except zstandard.ZstdError as error:
        log.warning("no html dictionary: zstd could not train one (%s)", error)
        return None
    return raw_content(trained.as_bytes())


def pages_of(files: dict[str, FileEntry]) -> list[str]:
    """The HTML pages a dictionary is for: those compressed (so large enough and compressible)."""
    return sorted(relative for relative, entry in files.items()
                  if entry.content_type.startswith("text/html") and entry.variants
                  and not is_html_dictionary_name(relative))


def samples_of(root: Path, pages: list[str], limit: int = MAX_SAMPLE_BYTES) -> list[bytes]:
    """The pages' bytes to train on, within `limit`: every page, or pages spread evenly over
    the site by path."""
    chosen: list[bytes] = []
    total = 0
    step = 1
    sizes = [os.path.getsize(root / page) for page in pages]
    if sum(sizes) > limit:
        step = max(1, round(sum(sizes) / limit))
    for index in range(0, len(pages), step):
        if total + sizes[index] > limit:
            break
        chosen.append((root / pages[index]).read_bytes())
        total += sizes[index]
    return chosen


@dataclass(frozen=True)
class Trained:
    """The dictionary this build serves: its path in the root and its version record."""

    relative: str
    version: Version


def write_dictionary(root: Path, files: dict[str, FileEntry],
                     stats: HtmlDictionaryStats) -> Trained | None:
    """Train the dictionary from the root's HTML pages and write it under its hashed name;
    None when there are too few pages or zstd is missing."""
    pages = pages_of(files)
    stats.pages = len(pages)
    if len(pages) < MIN_PAGES:
        return None
    started = time.perf_counter()
    samples = samples_of(root, pages)
    dictionary = train(samples)
    stats.train_seconds = time.perf_counter() - started
    stats.samples = len(samples)
    if not dictionary:
        return None
    sha256 = hashlib.sha256(dictionary).digest()
    relative = html_dictionary_name(sha256)
    path = root / relative
    try:
        if not (path.is_file() and path.read_bytes() == dictionary):
            path.parent.mkdir(exist_ok=True)
            write_atomic(path, dictionary)
            os.chmod(path, 0o644)
    except OSError as error:
        log.warning("no html dictionary: cannot write %s: %s", relative, error.strerror or error)
        return None
    stats.dictionary_bytes = len(dictionary)
    status = path.stat()
    return Trained(relative, Version(sha256, os.fspath(path), status.st_size, status.st_mtime))


def earlier_dictionaries(root: Path, current: Trained | None, cache_dir: Path | None,
                         from_dir: Path | None, in_root: Iterable[str]) -> list[Version]:
    """Dictionaries of earlier builds, newest first: kept in the cache directory, in a previous
    release's root (`dictionaries_from`), and still in this root from a previous run."""
    found: dict[bytes, Version] = {}
    versions_dir, _ = cache_dirs(cache_dir)
    candidates = cached_versions(versions_dir, FAMILY) if versions_dir is not None else []
    paths = [root / relative for relative in in_root]
    if from_dir is not None:
        paths += [item.absolute for item in walk(from_dir) if is_html_dictionary_name(item.relative)]
    for path in paths:
        try:
            data = path.read_bytes()
            candidates.append(Version(hashlib.sha256(data).digest(), os.fspath(path), len(data),
                                      path.stat().st_mtime))
        except OSError:
            continue
    for version in candidates:
        if current is None or version.sha256 != current.version.sha256:
            found.setdefault(version.sha256, version)
    return sorted(found.values(), key=lambda version: version.mtime, reverse=True)


@dataclass(frozen=True)
class PageDeltaOptions:
    """What `add_page_deltas` needs of the compress options."""

    versions: int  # earlier dictionaries to make deltas against too
    min_saving: int  # percent smaller than br a delta must be
    cache_dir: Path | None
    workers: int


def add_page_deltas(root: Path, files: dict[str, FileEntry], previous: dict[str, FileEntry],
                    current: Trained, earlier: list[Version], options: PageDeltaOptions,
                    stats: HtmlDictionaryStats, errors: list[str]) -> None:
    """Give each page (in `files`) its deltas against the current dictionary and the most recent
    earlier ones, and keep the current one in the cache as a future earlier dictionary."""
    dictionaries = (current.version, *earlier[: options.versions])
    stats.earlier = len(dictionaries) - 1
    versions_dir, delta_cache = cache_dirs(options.cache_dir)
    jobs = []
    for relative in pages_of(files):
        entry = files[relative]
        sha = sha256_of(entry)
        if sha is None:
            continue
        br = entry.variants.get("br")
        br_size = br.size if br is not None else entry.size
        before = previous.get(relative)
        jobs.append(DeltaJob(
            relative=relative, absolute=os.fspath(root / relative), sha256=sha, br_size=br_size,
            dictionaries=dictionaries,
            previous=before if before is not None and before.hash == entry.hash else None,
            root=os.fspath(root), cache_dir=delta_cache,
            max_size=br_size * (100 - options.min_saving) / 100))
    if jobs:
        (root / DELTA_DIRECTORY).mkdir(exist_ok=True)
    key = b64(current.version.sha256)
    br_sizes = {job.relative: job.br_size for job in jobs}
    for outcome in run(sorted(jobs, key=lambda job: job.br_size, reverse=True), options.workers):
        entry = files[outcome.relative]
        entry.deltas, entry.delta_tried = outcome.deltas, outcome.tried
        if outcome.error:
            errors.append(outcome.error)
        delta = outcome.deltas.get(key)
        if delta is not None:
            stats.deltas += 1
            stats.delta_bytes += delta.size
            stats.br_bytes += br_sizes[outcome.relative]
    if versions_dir is not None:
        member = Member(current.relative, current.version.path, current.version.sha256,
                        current.version.size, current.version.mtime)
        remember(versions_dir, {FAMILY: [member]}, options.versions)


def remove_stale(root: Path, stale: Iterable[str]) -> None:
    """Remove dictionaries of earlier runs from the root, with their variants: only the
    current one is served."""
    for relative in stale:
        remove_quietly(os.fspath(root / relative))
        for suffix in VARIANT_SUFFIXES:
            remove_quietly(os.fspath(root / relative) + suffix)
