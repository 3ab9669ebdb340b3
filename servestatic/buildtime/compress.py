"""Build-time compression: write .br, .gz and .zst beside each file, and the manifest.

The entry point is `compress_tree(root, options)`; the CLI, the buildpack and
the Django storage all call it.

Work is spread over a process pool, one task per file, largest first so the
long ones do not end the run alone. Each task reads its file once, hashes it,
and for every encoding either keeps the variant already on disk (same content
hash, same parameters, variant intact), copies it from the cache directory, or
compresses. A file's new variants are all written to temporary names and
renamed only when every one of them succeeded, so a failure leaves that file's
previous variants, and its previous manifest entry, as they were.

A large file is first compressed whole at brotli's quality 2 (about 3 ms per
MiB): when that saves under 1%, brotli 11 and gzip would not reach the 5%
rule either, and a few seconds per file of random or already-compressed bytes
are saved. The verdict is recorded in the manifest, so a re-run does not probe.

Once every file is done, the content-hashed ones get their dictionary deltas against
earlier versions (RFC 9842 `dcz`, buildtime/deltas.py), a second step over the pool; with
`html_dictionary`, a dictionary is first trained from the HTML pages and each page gets its
delta against it (buildtime/htmldictionary.py).
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import brotli

from servestatic import __version__
from servestatic.buildtime.deltas import CODING as DELTA_CODING
from servestatic.buildtime.deltas import PARAMETERS as DELTA_PARAMETERS
from servestatic.buildtime.deltas import DeltaOptions, DeltaStats, add_deltas, remove_unlisted
from servestatic.buildtime.encoders import encoder_parameters, make_encoders, parameters_key
from servestatic.buildtime.htmldictionary import (
    HtmlDictionaryStats,
    PageDeltaOptions,
    add_page_deltas,
    earlier_dictionaries,
    remove_stale,
    write_dictionary,
)
from servestatic.buildtime.preload import preload_hints
from servestatic.config.settings import Settings, load_settings
from servestatic.site.atomic import remove_quietly, temporary_beside, write_atomic
from servestatic.site.hashednames import family_of, immutable_test
from servestatic.site.manifest import (
    FileEntry,
    Manifest,
    ManifestError,
    Variant,
    fingerprint,
    fingerprint_stream,
    real_mtime,
)
from servestatic.site.manifest import load as load_manifest
from servestatic.site.manifest import save as save_manifest
from servestatic.site.mediatypes import content_type_for
from servestatic.site.names import ENCODING_SUFFIXES, MANIFEST_NAME, is_html_dictionary_name
from servestatic.site.scan import FoundFile, walk

log = logging.getLogger("servestatic")

# A variant is kept only when it saves at least 5%.
MAX_RATIO = 0.95
# Files at least this large are probed before the full effort ...
PROBE_MIN_SIZE = 64 * 1024
# ... and called incompressible when brotli's quality 2, over the whole file
# with a 16 MiB window (so repeats far apart count too), saves less than 1%.
# On the benchmark's npm corpus the worst compressible file probes at 0.86
# (an OpenType font, 0.74 at brotli 11); random bytes probe at 1.000001.
PROBE_QUALITY = 2
PROBE_RATIO = 0.99
# How much of an HTML page is read for its preload hints: its head is at the start.
PRELOAD_READ = 256 * 1024


class CompressError(Exception):
    """The run cannot start (no root, unwritable root); one line for the user."""


@dataclass(frozen=True)
class CompressOptions:
    """How to compress; the compress settings of `servestatic.config.settings`, without the root."""

    zstd: bool = False
    min_size: int = 256
    skip_extensions: frozenset[str] = frozenset()
    gzip_effort: str = "balanced"
    workers: int = 0  # processes; 0: one per core
    cache_dir: Path | None = None
    immutable_pattern: str = "auto"
    # Relative paths known to carry a content hash whatever their names look like:
    # a tool that made them (Django's collectstatic, see servestatic.django) knows
    # better than the name test, which misses a hash of digits only.
    hashed_names: frozenset[str] = frozenset()
    # Dictionary deltas (buildtime/deltas.py): earlier versions per family (0: none), the
    # percentage a delta must save against br, and a previous release's root to take them from.
    delta_versions: int = 3
    delta_min_saving: int = 10
    dictionaries_from: Path | None = None
    # A site-wide dictionary trained from the HTML pages, and each page's delta against it
    # (buildtime/htmldictionary.py).
    html_dictionary: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> CompressOptions:
        return cls(zstd=settings.zstd, min_size=settings.min_size,
                   skip_extensions=settings.skip_extensions, gzip_effort=settings.gzip_effort,
                   workers=settings.compress_worker_count, cache_dir=settings.cache_dir,
                   immutable_pattern=settings.immutable_pattern,
                   delta_versions=settings.delta_versions, delta_min_saving=settings.delta_min_saving,
                   dictionaries_from=settings.dictionaries_from, html_dictionary=settings.html_dictionary)

    @classmethod
    def defaults(cls) -> CompressOptions:
        """The settings table's defaults (skip list included), ignoring the environment."""
        return cls.from_settings(load_settings(environ={}))

    @property
    def encodings(self) -> tuple[str, ...]:
        return ("br", "gzip", "zstd") if self.zstd else ("br", "gzip")

    @property
    def worker_count(self) -> int:
        return self.workers or (os.cpu_count() or 1)


@dataclass(frozen=True)
class Job:
    """One file's work, small enough to send to a worker process."""

    relative: str
    absolute: str
    size: int
    encodings: tuple[str, ...]
    previous: FileEntry | None
    cache_dirs: dict[str, str]
    gzip_effort: str


@dataclass
class EncodingStats:
    """One encoding over the files it applies to (those large enough, not on the skip list).

    `variant_bytes` is what the variant files beside them hold after the run;
    `client_bytes` is what a client accepting only this encoding is sent for
    them: the variant where there is one, else the original.
    """

    files: int = 0
    original_bytes: int = 0
    variants: int = 0
    variant_bytes: int = 0
    client_bytes: int = 0
    compressed: int = 0  # variants produced by compressing in this run
    from_cache: int = 0
    reused: int = 0  # variants (or verdicts) already on disk and still right
    incompressible: int = 0  # files the probe ruled out

    def add(self, other: EncodingStats) -> None:
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)


@dataclass
class Outcome:
    relative: str
    entry: FileEntry | None
    error: str | None = None
    stats: dict[str, EncodingStats] = field(default_factory=dict)


@dataclass
class Summary:
    files: int = 0
    bytes: int = 0
    errors: list[str] = field(default_factory=list)
    removed: int = 0
    seconds: float = 0.0
    encodings: dict[str, EncodingStats] = field(default_factory=dict)
    deltas: DeltaStats = field(default_factory=DeltaStats)
    html_dictionary: HtmlDictionaryStats | None = None  # None: not asked for

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "removed_variants": self.removed,
            "errors": self.errors,
            "encodings": {name: vars(stats) for name, stats in self.encodings.items()},
            "deltas": vars(self.deltas),
            **({"html_dictionary": vars(self.html_dictionary)} if self.html_dictionary else {}),
        }

    def line(self) -> str:
        parts = [f"{self.files} files, {self.bytes:,} bytes"]
        for name, stats in self.encodings.items():
            parts.append(
                f"{name}: {stats.variants} variants, {stats.variant_bytes:,} bytes written for "
                f"{stats.files} files of {stats.original_bytes:,} bytes (a {name} client gets "
                f"{stats.client_bytes:,}); {stats.compressed} compressed, {stats.from_cache} cached, "
                f"{stats.reused} kept, {stats.incompressible} incompressible"
            )
        if self.deltas.files:
            parts.append(self.deltas.line())
        if self.html_dictionary is not None:
            parts.append(self.html_dictionary.line())
        parts.append(f"{self.seconds:.2f} s")
        if self.errors:
            parts.append(f"{len(self.errors)} errors")
        return "; ".join(parts)


def variant_path(original: str | Path, encoding: str) -> str:
    return os.fspath(original) + ENCODING_SUFFIXES[encoding]


def looks_incompressible(data: bytes) -> bool:
    """Whether a fast whole-file brotli pass says no encoding will reach MAX_RATIO."""
    if len(data) < PROBE_MIN_SIZE:
        return False
    probe = brotli.compress(data, quality=PROBE_QUALITY, lgwin=24)
    return len(probe) > len(data) * PROBE_RATIO


# --- one file, in a worker process


def process(job: Job) -> Outcome:
    """Hash one file and bring its variants up to date."""
    try:
        data, entry = _read(job)
    except OSError as error:
        return Outcome(job.relative, None, f"{job.relative}: cannot read: {error.strerror}")
    previous = job.previous if job.previous and job.previous.hash == entry.hash else None
    stats = {encoding: EncodingStats(files=1, original_bytes=len(data), client_bytes=len(data))
             for encoding in job.encodings}
    staged: list[tuple[str, str]] = []  # (temporary, final)
    try:
        outputs = _outputs(job, data, entry, previous, stats)
        for encoding, output in outputs.items():
            staged.append(_stage(variant_path(job.absolute, encoding), output))
            hashes = fingerprint(output)
            entry.variants[encoding] = Variant(size=len(output), hash=hashes.hash, digests=hashes.digests)
        # Renames last, once every variant is fully written: a full disk never
        # leaves this file with one new variant beside one old one.
        for temporary, final in staged:
            os.replace(temporary, final)
    except OSError as error:
        for temporary, _final in staged:
            remove_quietly(temporary)  # those already renamed are gone: nothing to do
        reason = error.strerror or str(error)
        return Outcome(job.relative, job.previous, f"{job.relative}: cannot write variant: {reason}")
    for encoding, variant in entry.variants.items():
        counter = stats[encoding]
        counter.variants, counter.variant_bytes, counter.client_bytes = 1, variant.size, variant.size
    _remove_stale_variants(job, entry)
    return Outcome(job.relative, entry, None, stats)


def _read(job: Job) -> tuple[bytes, FileEntry]:
    """The file's bytes (only when it is to be compressed) and its new manifest entry,
    with its ETag hash, Repr-Digest values and SRI value from one pass over the bytes."""
    with open(job.absolute, "rb") as stream:
        data = stream.read() if job.encodings else b""
        hashes = fingerprint(data) if job.encodings else fingerprint_stream(stream)
        status = os.fstat(stream.fileno())
    entry = FileEntry(
        size=status.st_size,
        hash=hashes.hash,
        digests=hashes.digests,
        integrity=hashes.integrity,
        content_type=content_type_for(job.relative),
        immutable=False,  # decided by the parent, which holds the setting
        mtime=real_mtime(int(status.st_mtime)),
        tried=list(job.encodings),
    )
    return data, entry


def _outputs(job: Job, data: bytes, entry: FileEntry, previous: FileEntry | None,
             stats: dict[str, EncodingStats]) -> dict[str, bytes]:
    """The new variant bytes to write, by encoding; records kept variants in entry.

    An encoding whose variant on disk is still right, or that was tried for
    these bytes and fell short, costs nothing; the rest come from the cache
    directory or are compressed, and are dropped above MAX_RATIO.
    """
    outputs: dict[str, bytes] = {}
    encoders: dict[str, Callable[[bytes], bytes]] | None = None
    if previous is not None and previous.incompressible:
        entry.incompressible = True
    for encoding in job.encodings:
        counter = stats[encoding]
        if previous is not None and encoding in previous.tried:
            recorded = previous.variants.get(encoding)
            if recorded is None:
                counter.reused = 1
                continue
            kept = _variant_intact(variant_path(job.absolute, encoding), recorded)
            if kept is not None:
                entry.variants[encoding] = kept
                counter.reused = 1
                continue
        cache_dir = job.cache_dirs.get(encoding)
        output = _read_cache(cache_dir, entry.hash) if cache_dir else None
        if output is not None:
            counter.from_cache = 1
        else:
            if entry.incompressible or (encoders is None and looks_incompressible(data)):
                entry.incompressible = True
                counter.incompressible = 1
                continue
            if encoders is None:
                encoders = make_encoders(job.encodings, job.gzip_effort)
            output = encoders[encoding](data)
            counter.compressed = 1
            if cache_dir:
                _write_cache(cache_dir, entry.hash, output)
        if len(output) <= len(data) * MAX_RATIO:
            outputs[encoding] = output
    return outputs


def _stage(final: str, output: bytes) -> tuple[str, str]:
    """Write output to a temporary name beside final; returns (temporary, final)."""
    fd, temporary = temporary_beside(Path(final))
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(output)
        os.chmod(temporary, 0o644)
    except OSError:
        remove_quietly(temporary)
        raise
    return temporary, final


def _remove_stale_variants(job: Job, entry: FileEntry) -> None:
    """Remove variant files this run does not keep: dropped ones, and those of
    encodings no longer produced (now too small, zstd turned off). A variant left
    behind would be served by an older server reading an older manifest."""
    kept = set(entry.variants)
    previous = set(job.previous.variants) if job.previous is not None else set()
    for encoding in (set(job.encodings) | previous) - kept:
        remove_quietly(variant_path(job.absolute, encoding))


def _variant_intact(path: str, recorded: Variant) -> Variant | None:
    """The variant on disk when it is still the one recorded, else None. Its digests
    come from the same read, so a manifest written before digests gains them here."""
    try:
        with open(path, "rb") as stream:
            if os.fstat(stream.fileno()).st_size != recorded.size:
                return None
            hashes = fingerprint_stream(stream)
    except OSError:
        return None
    if hashes.hash != recorded.hash:
        return None
    return Variant(size=recorded.size, hash=recorded.hash, digests=hashes.digests)


def _read_cache(cache_dir: str, digest: str) -> bytes | None:
    try:
        with open(os.path.join(cache_dir, digest[:2], digest), "rb") as stream:
            return stream.read()
    except OSError:
        return None


def _write_cache(cache_dir: str, digest: str, data: bytes) -> None:
    """Best effort: a cache that cannot be written costs speed, never the build."""
    try:
        directory = Path(cache_dir, digest[:2])
        directory.mkdir(parents=True, exist_ok=True)
        write_atomic(directory / digest, data)
    except OSError:
        pass


# --- the whole tree, in the parent process


def compress_tree(
    root: Path,
    options: CompressOptions | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Summary:
    """Compress root in place and write its manifest; raises CompressError.

    Errors on single files do not stop the run: they are in `Summary.errors`,
    and those files keep their previous variants and manifest entries.
    """
    started = time.perf_counter()
    options = options or CompressOptions.defaults()
    if not root.is_dir():
        raise CompressError(f"{root}: no such directory")
    if not os.access(root, os.W_OK):
        raise CompressError(f"{root}: directory is not writable")
    parameters = _parameters(options)
    previous = _previous_manifest(root, parameters)
    found = list(walk(root))
    removed = _remove_orphans(root, previous, {item.relative for item in found})
    found = [item for item in found if item.relative not in removed]
    # Dictionaries of earlier runs are servestatic's: the current one is made anew below.
    old_dictionaries = [item.relative for item in found if is_html_dictionary_name(item.relative)]
    found = [item for item in found if not is_html_dictionary_name(item.relative)]
    summary = Summary(files=len(found), bytes=sum(item.size for item in found), removed=len(removed))
    jobs = _jobs(root, found, previous, options, parameters)
    files = _collect(_run(jobs, options.worker_count), summary, options, len(jobs), on_progress,
                     root, frozenset(item.relative for item in found))
    trusted = False
    if options.delta_versions or options.html_dictionary:
        # Deltas made with other parameters (or another margin) are made again, not kept.
        parameters = {**parameters, DELTA_CODING: {**DELTA_PARAMETERS[DELTA_CODING],
                                                   "min_saving": options.delta_min_saving}}
        trusted = previous is not None and previous.compression.get(DELTA_CODING) == parameters[DELTA_CODING]
    html_dictionary = ""
    if options.html_dictionary:
        summary.html_dictionary = HtmlDictionaryStats()
        html_dictionary = _add_html_dictionary(root, files, previous, trusted, parameters, options,
                                               old_dictionaries, summary.html_dictionary, summary.errors)
    remove_stale(root, [relative for relative in old_dictionaries if relative != html_dictionary])
    if options.delta_versions:
        summary.deltas = add_deltas(root, files, previous.files if trusted else {}, DeltaOptions(
            versions=options.delta_versions, min_saving=options.delta_min_saving,
            cache_dir=options.cache_dir, dictionaries_from=options.dictionaries_from,
            hashed_names=options.hashed_names, workers=options.worker_count), summary.errors)
    else:
        remove_unlisted(root, files)
    try:
        save_manifest(root, Manifest(files=files, compression=parameters,
                                     generator=f"servestatic {__version__}", html_dictionary=html_dictionary))
    except OSError as error:
        # The previous manifest stays in place (written atomically); report it
        # like any other file error rather than with a traceback.
        summary.errors.append(f"{MANIFEST_NAME}: cannot write manifest: {error.strerror or error}")
    seal_tree(root)
    summary.seconds = time.perf_counter() - started
    return summary


def _add_html_dictionary(root: Path, files: dict[str, FileEntry], previous: Manifest | None, trusted: bool,
                         parameters: dict[str, Any], options: CompressOptions, old: list[str],
                         stats: HtmlDictionaryStats, errors: list[str]) -> str:
    """Train the HTML pages' dictionary, add it to `files` (compressed like any file, immutable:
    its name is its hash) and give the pages their deltas; its relative path, or "" when none
    was made (too few pages, no zstandard)."""
    started = time.perf_counter()
    trained = write_dictionary(root, files, stats)
    if trained is None:
        stats.seconds = time.perf_counter() - started
        return ""
    before = previous.files.get(trained.relative) if previous is not None else None
    outcome = process(Job(relative=trained.relative, absolute=trained.version.path,
                          size=trained.version.size, encodings=options.encodings, previous=before,
                          cache_dirs=_cache_dirs(options, parameters), gzip_effort=options.gzip_effort))
    if outcome.entry is None:
        errors.append(outcome.error or f"{trained.relative}: not compressed")
        stats.seconds = time.perf_counter() - started
        return ""
    outcome.entry.immutable = True
    files[trained.relative] = outcome.entry
    earlier = earlier_dictionaries(root, trained, options.cache_dir, options.dictionaries_from, old)
    add_page_deltas(root, files, previous.files if previous is not None and trusted else {}, trained,
                    earlier, PageDeltaOptions(versions=options.delta_versions,
                                              min_saving=options.delta_min_saving,
                                              cache_dir=options.cache_dir, workers=options.worker_count),
                    stats, errors)
    stats.seconds = time.perf_counter() - started
    return trained.relative


# Group and other write permission: what `seal_tree` takes away.
_SHARED_WRITE = 0o022


def seal_tree(root: Path) -> None:
    """Take group and other write permission off root and everything below it.

    A build context keeps its modes through `COPY` (a `git archive` or Ubuntu's umask 002
    gives group-writable files), and the image's server runs in group 0, the group that
    owns what root copied in: without this, UID 10001 could change the site it serves.
    Compressing is the step every way of building a site goes through (the Dockerfiles,
    the onbuild variant, the buildpack, Django's storage), so it is done here once.
    Symlinks are left alone (their modes mean nothing; their targets are outside this
    walk or reached through it). A file that cannot be changed is logged, not fatal: the
    site was compressed, and a user who does not own it cannot seal it anyway.
    """
    refused: list[str] = []
    for directory, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            _seal(os.path.join(directory, name), refused)
    _seal(str(root), refused)
    if refused:
        log.warning("could not remove group and other write permission from %d files under %s "
                    "(first: %s)", len(refused), root, refused[0])


def _seal(path: str, refused: list[str]) -> None:
    try:
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode) or not mode & _SHARED_WRITE:
            return
        os.chmod(path, stat.S_IMODE(mode) & ~_SHARED_WRITE)
    except OSError:
        refused.append(path)


def _parameters(options: CompressOptions) -> dict[str, Any]:
    """The parameters of each encoding in use; fails now if zstd is asked for and missing."""
    encodings = options.encodings
    if "zstd" in encodings:
        make_encoders(("zstd",), options.gzip_effort)
    return {name: value for name, value in encoder_parameters(options.gzip_effort).items()
            if name in encodings}


def _previous_manifest(root: Path, parameters: dict[str, Any]) -> Manifest | None:
    try:
        previous = load_manifest(root)
    except ManifestError:
        return None
    # Variants made with other parameters (another gzip effort) are not reused,
    # but the entries still tell which variant files we wrote and may remove.
    # Compared per encoding, so changing the gzip effort does not redo brotli.
    trusted = {name for name, value in parameters.items() if previous.compression.get(name) == value}
    if trusted != set(parameters):
        for entry in previous.files.values():
            entry.tried = [name for name in entry.tried if name in trusted]
    return previous


def _remove_orphans(root: Path, previous: Manifest | None, present: set[str]) -> set[str]:
    """Remove variants of files that are gone, before they could pass as files.

    The walk has already seen them as files (their original is gone), so the
    caller drops the returned relative paths from what it found.
    """
    removed: set[str] = set()
    if previous is None:
        return removed
    for relative, entry in previous.files.items():
        if relative in present:
            continue
        for encoding in entry.variants:
            path = variant_path(root / relative, encoding)
            if os.path.exists(path):
                remove_quietly(path)
                removed.add(variant_path(relative, encoding))
    return removed


def _jobs(root: Path, found: list[FoundFile], previous: Manifest | None, options: CompressOptions,
          parameters: dict[str, Any]) -> list[Job]:
    """One job per file, largest first."""
    cache_dirs = _cache_dirs(options, parameters)
    return [
        Job(
            relative=item.relative,
            absolute=os.fspath(item.absolute),
            size=item.size,
            encodings=options.encodings if _is_compressible(item, options) else (),
            previous=previous.files.get(item.relative) if previous else None,
            cache_dirs=cache_dirs,
            gzip_effort=options.gzip_effort,
        )
        for item in sorted(found, key=lambda item: item.size, reverse=True)
    ]


def _cache_dirs(options: CompressOptions, parameters: dict[str, Any]) -> dict[str, str]:
    """Each encoding's directory in the cache directory (none without one)."""
    if options.cache_dir is None:
        return {}
    return {encoding: os.fspath(options.cache_dir / f"{encoding}-{parameters_key(parameters[encoding])}")
            for encoding in options.encodings}


def _is_compressible(found: FoundFile, options: CompressOptions) -> bool:
    extension = found.relative.rsplit("/", 1)[-1].rpartition(".")[2].lower()
    return found.size >= options.min_size and extension not in options.skip_extensions


def _collect(outcomes: Iterable[Outcome], summary: Summary, options: CompressOptions, total: int,
             on_progress: Callable[[int, int], None] | None, root: Path,
             present: frozenset[str]) -> dict[str, FileEntry]:
    """The manifest's entries from the workers' outcomes, with each HTML page's preload
    hints (read here, where the whole tree's names are known); errors and counts into summary."""
    name_test = immutable_test(options.immutable_pattern)
    hashed_names = options.hashed_names

    def is_immutable(relative: str) -> bool:
        return relative in hashed_names or name_test(relative)

    files: dict[str, FileEntry] = {}
    for done, outcome in enumerate(outcomes, start=1):
        if outcome.error:
            summary.errors.append(outcome.error)
        if outcome.entry is not None:
            outcome.entry.immutable = is_immutable(outcome.relative)
            if options.delta_versions and outcome.entry.immutable and outcome.entry.tried \
                    and not outcome.entry.incompressible:
                # A compressible content-hashed file of a family: its earlier versions are
                # dictionaries for it, and it one for the next (buildtime/deltas.py).
                outcome.entry.family = family_of(outcome.relative, outcome.relative in hashed_names) or ""
            if outcome.entry.content_type.startswith("text/html"):
                outcome.entry.preload = _preload(root, outcome.relative, present)
            files[outcome.relative] = outcome.entry
        for name, stats in outcome.stats.items():
            summary.encodings.setdefault(name, EncodingStats()).add(stats)
        if on_progress:
            on_progress(done, total)
    return files


def _preload(root: Path, relative: str, present: frozenset[str]) -> list[tuple[str, str]]:
    """An HTML page's preload hints from its first PRELOAD_READ bytes (its head); none
    when it cannot be read (its entry is still written, without hints)."""
    try:
        with open(root / relative, "rb") as stream:
            head = stream.read(PRELOAD_READ)
    except OSError:
        return []
    return preload_hints(head, relative, present)


def _run(jobs: list[Job], workers: int) -> Iterable[Outcome]:
    """Run jobs in a process pool; in-process when one worker or few small jobs."""
    compressing = [job for job in jobs if job.encodings]
    if workers <= 1 or sum(job.size for job in compressing) < 256 * 1024:
        yield from map(process, jobs)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(process, job) for job in compressing]
        # Files that are only hashed are cheap: do them here while the pool works.
        yield from map(process, (job for job in jobs if not job.encodings))
        for future in as_completed(futures):
            yield future.result()
