"""Build-time compression: write .br, .gz (zopfli) and .zst beside each file, and the manifest.

Work is spread over a process pool, one task per file, largest first so the
long ones do not end the run alone. Each task reads its file once, hashes it,
and for every encoding either keeps the variant already on disk (same content
hash, same parameters, variant intact), copies it from the cache directory, or
compresses. A file's new variants are all written to temporary names and
renamed only when every one of them succeeded, so a failure leaves that file's
previous variants, and its previous manifest entry, as they were.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servestatic import __version__
from servestatic.atomic import remove_quietly, temporary_beside, write_atomic
from servestatic.encoders import encoder_parameters, make_encoders, parameters_key
from servestatic.hashednames import immutable_test
from servestatic.manifest import (
    FileEntry,
    Manifest,
    ManifestError,
    Variant,
    content_hash,
    hash_bytes,
    real_mtime,
)
from servestatic.manifest import load as load_manifest
from servestatic.manifest import save as save_manifest
from servestatic.mediatypes import content_type_for
from servestatic.scan import ENCODING_SUFFIXES, FoundFile, walk
from servestatic.settings import MANIFEST_NAME, Settings

# A variant is kept only when it saves at least 5%.
MAX_RATIO = 0.95


class CompressError(Exception):
    """The run cannot start (no root, unwritable root); one line for the user."""


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
    files: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    compressed: int = 0  # variants produced by compressing in this run
    from_cache: int = 0
    reused: int = 0  # variants already on disk and still right


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

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "removed_variants": self.removed,
            "errors": self.errors,
            "encodings": {name: vars(stats) for name, stats in self.encodings.items()},
        }

    def line(self) -> str:
        parts = [f"{self.files} files, {self.bytes:,} bytes"]
        for name, stats in self.encodings.items():
            parts.append(
                f"{name}: {stats.files} files {stats.bytes_in:,} -> {stats.bytes_out:,} bytes "
                f"({stats.compressed} compressed, {stats.from_cache} cached, {stats.reused} kept)"
            )
        parts.append(f"{self.seconds:.2f} s")
        if self.errors:
            parts.append(f"{len(self.errors)} errors")
        return "; ".join(parts)


def variant_path(original: str | Path, encoding: str) -> str:
    return os.fspath(original) + ENCODING_SUFFIXES[encoding]


def _variant_intact(path: str, recorded: Variant) -> bool:
    try:
        with open(path, "rb") as stream:
            if os.fstat(stream.fileno()).st_size != recorded.size:
                return False
            return content_hash(stream) == recorded.hash
    except OSError:
        return False


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


def process(job: Job) -> Outcome:
    """Run in a worker: hash one file and bring its variants up to date."""
    try:
        with open(job.absolute, "rb") as stream:
            data = stream.read() if job.encodings else b""
            digest = hash_bytes(data) if job.encodings else content_hash(stream)
            stat = os.fstat(stream.fileno())
    except OSError as error:
        return Outcome(job.relative, None, f"{job.relative}: cannot read: {error.strerror}")

    entry = FileEntry(
        size=stat.st_size,
        hash=digest,
        content_type=content_type_for(job.relative),
        immutable=False,  # decided by the parent, which holds the setting
        mtime=real_mtime(int(stat.st_mtime)),
        tried=list(job.encodings),
    )
    previous = job.previous if job.previous and job.previous.hash == digest else None
    staged: list[tuple[str, str]] = []  # (temporary, final)
    stale: list[str] = []
    stats: dict[str, EncodingStats] = {}
    encoders: dict[str, Callable[[bytes], bytes]] | None = None
    try:
        for encoding in job.encodings:
            stats[encoding] = counter = EncodingStats(files=1, bytes_in=len(data))
            final = variant_path(job.absolute, encoding)
            if previous is not None and encoding in previous.tried:
                recorded = previous.variants.get(encoding)
                if recorded is None:
                    counter.bytes_out = len(data)
                    counter.reused = 1
                    stale.append(final)
                    continue
                if _variant_intact(final, recorded):
                    entry.variants[encoding] = recorded
                    counter.bytes_out = recorded.size
                    counter.reused = 1
                    continue
            cache_dir = job.cache_dirs.get(encoding)
            output = _read_cache(cache_dir, digest) if cache_dir else None
            if output is not None:
                counter.from_cache = 1
            else:
                if encoders is None:
                    encoders = make_encoders(job.encodings, job.gzip_effort)
                output = encoders[encoding](data)
                counter.compressed = 1
                if cache_dir:
                    _write_cache(cache_dir, digest, output)
            if len(output) > len(data) * MAX_RATIO:
                counter.bytes_out = len(data)
                stale.append(final)
                continue
            fd, temporary = temporary_beside(Path(final))
            staged.append((temporary, final))
            with os.fdopen(fd, "wb") as stream:
                stream.write(output)
            os.chmod(temporary, 0o644)
            entry.variants[encoding] = Variant(size=len(output), hash=hash_bytes(output))
            counter.bytes_out = len(output)
        # Renames last, once every variant is fully written: a full disk never
        # leaves this file with one new variant beside one old one.
        for index, (temporary, final) in enumerate(staged):
            os.replace(temporary, final)
            staged[index] = ("", final)
    except OSError as error:
        for temporary, _final in staged:
            if temporary:
                remove_quietly(temporary)
        reason = error.strerror or str(error)
        return Outcome(job.relative, job.previous, f"{job.relative}: cannot write variant: {reason}")
    for path in stale:
        remove_quietly(path)
    # Variants of encodings no longer produced for this file (now too small,
    # zstd turned off): a manifest-listed variant left behind would be served
    # by an older server reading an older manifest, so remove them.
    if job.previous is not None:
        for encoding in set(job.previous.variants) - set(job.encodings):
            remove_quietly(variant_path(job.absolute, encoding))
    return Outcome(job.relative, entry, None, stats)


def _wanted_encodings(settings: Settings) -> tuple[str, ...]:
    return ("br", "gzip", "zstd") if settings.zstd else ("br", "gzip")


def _is_compressible(found: FoundFile, settings: Settings) -> bool:
    extension = found.relative.rsplit("/", 1)[-1].rpartition(".")[2].lower()
    return found.size >= settings.min_size and extension not in settings.skip_extensions


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


def compress_tree(
    settings: Settings,
    on_progress: Callable[[int, int], None] | None = None,
) -> Summary:
    """Compress settings.root in place and write its manifest. Raises CompressError."""
    started = time.perf_counter()
    root = settings.root
    if not root.is_dir():
        raise CompressError(f"{root}: no such directory")
    if not os.access(root, os.W_OK):
        raise CompressError(f"{root}: directory is not writable")
    encodings = _wanted_encodings(settings)
    parameters = {name: value for name, value in encoder_parameters(settings.gzip_effort).items()
                  if name in encodings}
    if "zstd" in encodings:
        make_encoders(("zstd",), settings.gzip_effort)  # fail now if zstd is missing
    previous = _previous_manifest(root, parameters)
    found = list(walk(root))
    removed = _remove_orphans(root, previous, {item.relative for item in found})
    found = [item for item in found if item.relative not in removed]
    summary = Summary(files=len(found), bytes=sum(item.size for item in found), removed=len(removed))

    cache_dirs: dict[str, str] = {}
    if settings.cache_dir is not None:
        for encoding in encodings:
            cache_dirs[encoding] = os.fspath(
                settings.cache_dir / f"{encoding}-{parameters_key(parameters[encoding])}"
            )
    jobs = [
        Job(
            relative=item.relative,
            absolute=os.fspath(item.absolute),
            size=item.size,
            encodings=encodings if _is_compressible(item, settings) else (),
            previous=previous.files.get(item.relative) if previous else None,
            cache_dirs=cache_dirs,
            gzip_effort=settings.gzip_effort,
        )
        for item in sorted(found, key=lambda item: item.size, reverse=True)
    ]
    is_immutable = immutable_test(settings.immutable_pattern)
    files: dict[str, FileEntry] = {}
    for done, outcome in enumerate(_run(jobs, settings.compress_worker_count), start=1):
        if outcome.error:
            summary.errors.append(outcome.error)
        if outcome.entry is not None:
            outcome.entry.immutable = is_immutable(outcome.relative)
            files[outcome.relative] = outcome.entry
        for name, stats in outcome.stats.items():
            total = summary.encodings.setdefault(name, EncodingStats())
            for key, value in vars(stats).items():
                setattr(total, key, getattr(total, key) + value)
        if on_progress:
            on_progress(done, len(jobs))
    try:
        save_manifest(root, Manifest(files=files, compression=parameters,
                                     generator=f"servestatic {__version__}"))
    except OSError as error:
        # The previous manifest stays in place (written atomically); report it
        # like any other file error rather than with a traceback.
        summary.errors.append(f"{MANIFEST_NAME}: cannot write manifest: {error.strerror or error}")
    summary.seconds = time.perf_counter() - started
    return summary


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

