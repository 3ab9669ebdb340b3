"""Dictionary deltas at build time: Compression Dictionary Transport (RFC 9842), `dcz`.

A deploy changes a few content-hashed bundles, and a returning visitor holds the
previous version of each. For every current file of a hashed-asset family
(site/hashednames.family_of: `assets/main-*.js`) and each earlier version of it, this
writes the file compressed with zstd against the earlier version as a raw-content
dictionary, framed as RFC 9842's `dcz`: the 8-byte magic, the dictionary's
32-byte SHA-256, then the zstd frame. A browser holding the earlier version (it was
sent with `Use-As-Dictionary`, core/dictionaries.py) names its SHA-256 in
`Available-Dictionary` and is answered with the delta.

Earlier versions come from the cache directory, `--dictionaries-from DIR` (a previous
release's root) and older hashed files still in the root (buildtime/versions.py).

A delta is kept only when it is `delta_min_saving` percent smaller than the file's br
variant (or the file, without one): a variant that saves little costs a cache entry
per dictionary at every CDN for nothing. Deltas are cached in the cache directory like
the other variants (`dcz-<parameters>/`), and the manifest records every pair tried, so
a re-run with nothing changed compresses nothing.

The window: RFC 9842 has `dcz` decoders support a window of max(8 MB, 1.25 x the
dictionary), so the encoder's window is the largest power of two within that.
`dcb` (shared brotli) is not made: it needs libbrotlienc 1.1.0's shared-dictionary API,
which the Python binding does not expose and Debian bookworm's library lacks.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from servestatic.buildtime.encoders import parameters_key, zstd_module
from servestatic.buildtime.versions import (
    Version,
    cached_versions,
    choose,
    members,
    remember,
    sha256_of,
    versions_from_dir,
)
from servestatic.site.atomic import remove_quietly, write_atomic
from servestatic.site.manifest import Delta, FileEntry, fingerprint, fingerprint_stream
from servestatic.site.names import DELTA_DIRECTORY, delta_name

log = logging.getLogger("servestatic")

CODING = "dcz"
# RFC 9842's dcz header: a skippable zstd frame's magic and length (32), then the SHA-256.
DCZ_MAGIC = bytes.fromhex("5e2a4d1820000000")
DELTA_LEVEL = 19
# Decoders must support a window of max(8 MB, 1.25 x dictionary size) (RFC 9842, dcz).
MIN_WINDOW = 8 * 1024 * 1024
PARAMETERS = {"dcz": {"zstd_level": DELTA_LEVEL, "window": "rfc9842", "dictionary": "raw"}}


def window_log(dictionary_size: int) -> int:
    """The largest window (as log2) an RFC 9842 decoder must accept for this dictionary."""
    limit = max(MIN_WINDOW, dictionary_size * 5 // 4)
    return min(limit.bit_length() - 1, 30)


def dcz_encoder() -> Callable[[bytes, bytes, bytes], bytes] | None:
    """encode(data, dictionary, dictionary_sha256) -> the `dcz` body, or None without zstd:
    compression.zstd or its backport (encoders.zstd_module, the `zstd` extra), else the
    zstandard package."""
    encode = _standard_encoder()
    if encode is not None:
        return encode
    try:
        import zstandard
    except ImportError:
        return None

    def encode_zstandard(data: bytes, dictionary: bytes, dictionary_sha256: bytes) -> bytes:
        raw = zstandard.ZstdCompressionDict(dictionary, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        parameters = zstandard.ZstdCompressionParameters.from_level(
            DELTA_LEVEL, source_size=len(data), dict_size=len(dictionary),
            window_log=window_log(len(dictionary)))
        compressor = zstandard.ZstdCompressor(dict_data=raw, compression_params=parameters)
        return DCZ_MAGIC + dictionary_sha256 + compressor.compress(data)

    return encode_zstandard


def _standard_encoder() -> Callable[[bytes, bytes, bytes], bytes] | None:
    zstd = zstd_module()
    if zstd is None:
        return None

    def encode(data: bytes, dictionary: bytes, dictionary_sha256: bytes) -> bytes:
        options = {zstd.CompressionParameter.compression_level: DELTA_LEVEL,
                   zstd.CompressionParameter.window_log: window_log(len(dictionary))}
        raw = zstd.ZstdDict(dictionary, is_raw=True)
        return DCZ_MAGIC + dictionary_sha256 + zstd.compress(data, options=options, zstd_dict=raw)

    return encode


def b64(digest: bytes) -> str:
    """A SHA-256 as `Available-Dictionary` carries it (RFC 8941 byte sequence: standard base64)."""
    return base64.b64encode(digest).decode("ascii")


@dataclass
class DeltaStats:
    files: int = 0  # current family members with at least one earlier version
    deltas: int = 0  # deltas in the manifest after the run
    made: int = 0  # compressed in this run
    from_cache: int = 0
    kept: int = 0  # already on disk and still right
    dropped: int = 0  # tried and not worth a variant (margin)
    delta_bytes: int = 0
    br_bytes: int = 0  # what br clients get for the same files, once per delta
    seconds: float = 0.0  # wall time of the whole delta step (`add_deltas`)

    def add(self, other: DeltaStats) -> None:
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)

    def line(self) -> str:
        saved = self.br_bytes - self.delta_bytes
        return (f"{CODING}: {self.deltas} deltas for {self.files} files against earlier versions, "
                f"{self.delta_bytes:,} bytes where br sends {self.br_bytes:,} ({saved:,} saved); "
                f"{self.made} compressed, {self.from_cache} cached, {self.kept} kept, "
                f"{self.dropped} not worth it")


@dataclass(frozen=True)
class DeltaJob:
    """One current file and the earlier versions to make deltas against."""

    relative: str
    absolute: str
    sha256: bytes
    br_size: int
    dictionaries: tuple[Version, ...]
    previous: FileEntry | None  # its entry in the previous manifest, when the bytes are the same
    root: str
    cache_dir: str | None
    max_size: float  # a delta larger than this is not kept


@dataclass
class DeltaOutcome:
    relative: str
    deltas: dict[str, Delta] = field(default_factory=dict)
    tried: list[str] = field(default_factory=list)
    stats: DeltaStats = field(default_factory=DeltaStats)
    error: str | None = None
    unavailable: bool = False  # no zstd encoder here: nothing was tried


def make(job: DeltaJob) -> DeltaOutcome:
    """The deltas of one file against each of its dictionaries (in a worker process)."""
    outcome = DeltaOutcome(job.relative)
    stats = outcome.stats
    stats.files = 1
    encode = None
    data: bytes | None = None
    for version in job.dictionaries:
        key = b64(version.sha256)
        path = os.path.join(job.root, delta_name(job.sha256, version.sha256, CODING))
        recorded = job.previous.deltas.get(key) if job.previous else None
        if recorded is not None and _intact(path, recorded):
            outcome.deltas[key] = recorded
            outcome.tried.append(key)
            stats.kept += 1
            continue
        if job.previous is not None and key in job.previous.delta_tried and recorded is None:
            outcome.tried.append(key)
            stats.dropped += 1  # tried for these same bytes and dropped: not again
            continue
        cached = _cache_path(job.cache_dir, job.sha256, version.sha256)
        output = _read(cached) if cached else None
        try:
            if output is not None:
                stats.from_cache += 1
            else:
                if encode is None:
                    encode = dcz_encoder()
                    if encode is None:
                        outcome.unavailable = True
                        continue
                if data is None:
                    data = Path(job.absolute).read_bytes()
                output = encode(data, Path(version.path).read_bytes(), version.sha256)
                stats.made += 1
                if cached:
                    _write_cache(cached, output)
            outcome.tried.append(key)
            if len(output) > job.max_size:
                stats.dropped += 1
                continue
            write_atomic(Path(path), output)
            os.chmod(path, 0o644)
        except OSError as error:
            outcome.error = f"{job.relative}: cannot make a {CODING} delta: {error.strerror or error}"
            continue
        hashes = fingerprint(output)
        outcome.deltas[key] = Delta(coding=CODING, dictionary_size=version.size, size=len(output),
                                    hash=hashes.hash, digests=hashes.digests)
    stats.deltas = len(outcome.deltas)
    stats.delta_bytes = sum(delta.size for delta in outcome.deltas.values())
    stats.br_bytes = job.br_size * len(outcome.deltas)
    return outcome


def _intact(path: str, recorded: Delta) -> bool:
    try:
        with open(path, "rb") as stream:
            if os.fstat(stream.fileno()).st_size != recorded.size:
                return False
            return fingerprint_stream(stream).hash == recorded.hash
    except OSError:
        return False


def _cache_path(cache_dir: str | None, file_sha: bytes, dictionary_sha: bytes) -> str | None:
    if cache_dir is None:
        return None
    name = f"{file_sha.hex()}.{dictionary_sha.hex()}"
    return os.path.join(cache_dir, name[:2], name)


def _read(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


def _write_cache(path: str, data: bytes) -> None:
    """Best effort, like the other variants' cache."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(Path(path), data)
    except OSError:
        pass


def remove_unlisted(root: Path, files: dict[str, FileEntry]) -> None:
    """Remove delta files no entry lists (of files gone or changed, of dictionaries dropped)."""
    directory = root / DELTA_DIRECTORY
    if not directory.is_dir():
        return
    listed = set()
    for entry in files.values():
        sha = sha256_of(entry) if entry.deltas else None
        if sha is None:
            continue
        for dictionary, delta in entry.deltas.items():
            listed.add(delta_name(sha, base64.b64decode(dictionary), delta.coding).rpartition("/")[2])
    for item in os.scandir(directory):
        if item.name not in listed:
            remove_quietly(item.path)
    with contextlib.suppress(OSError):
        directory.rmdir()  # only when empty


def run(jobs: list[DeltaJob], workers: int) -> Iterable[DeltaOutcome]:
    if workers <= 1 or len(jobs) <= 1:
        yield from map(make, jobs)
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        yield from pool.map(make, jobs)


def cache_dirs(cache_dir: Path | None) -> tuple[Path | None, str | None]:
    """(versions directory, delta cache directory) under the cache directory, or Nones."""
    if cache_dir is None:
        return None, None
    return cache_dir / "versions", os.fspath(cache_dir / f"dcz-{parameters_key(PARAMETERS['dcz'])}")


@dataclass(frozen=True)
class DeltaOptions:
    """What `add_deltas` needs of the compress options."""

    versions: int  # earlier versions per family; 0: no deltas
    min_saving: int  # percent smaller than br a delta must be
    cache_dir: Path | None
    dictionaries_from: Path | None
    hashed_names: frozenset[str]
    workers: int


def add_deltas(root: Path, files: dict[str, FileEntry], previous: dict[str, FileEntry],
               options: DeltaOptions, errors: list[str]) -> DeltaStats:
    """Make the deltas of every family member of `files` (the new manifest's entries, which
    gain `deltas` and `delta_tried`), keep the current versions in the cache, and remove the
    delta files no entry lists. `previous`: the previous manifest's entries."""
    started = time.perf_counter()
    stats = DeltaStats()
    versions_dir, delta_cache = cache_dirs(options.cache_dir)
    families = members(root, files)
    earlier: dict[str, list[Version]] = {}
    if families and versions_dir is not None:
        for family in families:
            earlier[family] = cached_versions(versions_dir, family)
    if families and options.dictionaries_from is not None:
        found = versions_from_dir(options.dictionaries_from, set(families), options.hashed_names)
        for family, versions in found.items():
            earlier.setdefault(family, []).extend(versions)
    jobs = []
    for family, family_members in families.items():
        for member in family_members:
            dictionaries = choose(member, family_members, earlier.get(family, []), options.versions)
            if not dictionaries:
                continue
            entry = files[member.relative]
            before = previous.get(member.relative)
            br = entry.variants.get("br")
            br_size = br.size if br is not None else entry.size
            jobs.append(DeltaJob(
                relative=member.relative, absolute=member.absolute, sha256=member.sha256,
                br_size=br_size, dictionaries=dictionaries,
                previous=before if before is not None and before.hash == entry.hash else None,
                root=os.fspath(root), cache_dir=delta_cache,
                max_size=br_size * (100 - options.min_saving) / 100))
    if jobs:
        (root / DELTA_DIRECTORY).mkdir(exist_ok=True)
    unavailable = False
    for outcome in run(sorted(jobs, key=lambda job: job.br_size, reverse=True), options.workers):
        entry = files[outcome.relative]
        entry.deltas, entry.delta_tried = outcome.deltas, outcome.tried
        unavailable = unavailable or outcome.unavailable
        stats.add(outcome.stats)
        if outcome.error:
            errors.append(outcome.error)
    if unavailable:
        log.warning("no %s deltas: they need zstd, Python 3.14+ or the backports.zstd package "
                    "(pip install 'servestatic-origin[zstd]')", CODING)
    if versions_dir is not None:
        remember(versions_dir, families, options.versions)
    remove_unlisted(root, files)
    stats.seconds = time.perf_counter() - started
    return stats
