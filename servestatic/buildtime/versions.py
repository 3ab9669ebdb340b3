"""Earlier versions of a hashed-asset family: where they come from, which are dictionaries
for a file, and how the cache directory keeps them (buildtime/deltas.py makes the deltas).

A family is the name every version of a content-hashed file shares, its hash replaced by
`*` (site/hashednames.family_of). Its earlier versions are found in three places: the
cache directory, which keeps under `versions/<family key>/<sha-256>` every member seen by
a run, the current ones plus the `count` most recently seen others (`remember`), with when
each was last seen in `seen.json` beside them (not in the files' mtimes: a CNB lifecycle
restores its cache layers with every mtime set to 1980, and a CI cache may too); a
previous release's root (`versions_from_dir`); and the root itself, whose members older
than a file by at least `OLDER_BY` are earlier versions of it (a Django STATIC_ROOT
collected without `--clear`), while members of the same build are not.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from servestatic.site.atomic import remove_quietly, write_atomic
from servestatic.site.hashednames import family_of
from servestatic.site.manifest import FileEntry
from servestatic.site.scan import walk

# A root file older than another of its family by at least this much (seconds) holds an
# earlier version of it; closer, the two are of one build (a bundler's sibling chunks).
OLDER_BY = 1.0
# Per family directory of the cache: {SHA-256 hex: when a run last saw that version}.
SEEN = "seen.json"


@dataclass(frozen=True)
class Version:
    """One version of a family's file: where its bytes are, its SHA-256, and how recent it is."""

    sha256: bytes
    path: str
    size: int
    mtime: float


@dataclass
class Member:
    """A current family member of the root."""

    relative: str
    absolute: str
    sha256: bytes
    size: int
    mtime: float


def sha256_of(entry: FileEntry) -> bytes | None:
    """The file's SHA-256 from its manifest entry (its Repr-Digest value), or None."""
    value = entry.digests.get("sha-256")
    return base64.b64decode(value) if value else None


def members(root: Path, files: dict[str, FileEntry]) -> dict[str, list[Member]]:
    """The root's current family members (entries the compressor gave a family), by family."""
    families: dict[str, list[Member]] = {}
    for relative, entry in files.items():
        if not entry.family:
            continue
        sha = sha256_of(entry)
        absolute = os.path.join(root, relative)
        try:
            mtime = os.stat(absolute).st_mtime
        except OSError:
            continue
        if sha is not None:
            families.setdefault(entry.family, []).append(Member(relative, absolute, sha, entry.size, mtime))
    return families


def family_key(family: str) -> str:
    return hashlib.sha256(family.encode("utf-8")).hexdigest()[:20]


def _seen(directory: Path) -> dict[str, float]:
    """When each cached version was last seen (`SEEN`); empty where there is no record."""
    try:
        seen = json.loads((directory / SEEN).read_text())
    except (OSError, ValueError):
        return {}
    return seen if isinstance(seen, dict) else {}


def cached_versions(versions_dir: Path, family: str) -> list[Version]:
    """The family's versions in the cache, each dated by when a run last saw it (its mtime
    where `SEEN` has no record of it: a cache written before there was one)."""
    directory = versions_dir / family_key(family)
    found = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    seen = _seen(directory)
    for item in entries:
        if len(item.name) != 64:
            continue
        try:
            status = item.stat()
            when = seen.get(item.name)
            found.append(Version(bytes.fromhex(item.name), item.path, status.st_size,
                                 when if isinstance(when, float | int) else status.st_mtime))
        except (OSError, ValueError):
            continue
    return found


def versions_from_dir(directory: Path, families: set[str],
                      hashed: frozenset[str]) -> dict[str, list[Version]]:
    """Earlier versions in a previous release's root, by family: its files whose family is one
    of the current ones."""
    found: dict[str, list[Version]] = {}
    for item in walk(directory):
        family = family_of(item.relative, item.relative in hashed)
        if family not in families:
            continue
        try:
            with open(item.absolute, "rb") as stream:
                digest = hashlib.file_digest(stream, "sha256").digest()
        except OSError:
            continue
        found.setdefault(family, []).append(Version(digest, os.fspath(item.absolute), item.size, item.mtime))
    return found


def choose(member: Member, family: list[Member], earlier: list[Version], count: int) -> tuple[Version, ...]:
    """The `count` most recent earlier versions of a file: those from the cache and a previous
    release that are not the current bytes of a family member, and root siblings older than it."""
    current = {other.sha256: other for other in family}
    candidates: dict[bytes, Version] = {}
    for version in earlier:
        sibling = current.get(version.sha256)
        if version.sha256 == member.sha256:
            continue
        if sibling is not None and sibling.mtime > member.mtime - OLDER_BY:
            continue  # a current sibling, not an earlier version
        candidates.setdefault(version.sha256, version)
    for other in family:
        if other.sha256 != member.sha256 and other.mtime <= member.mtime - OLDER_BY:
            version = Version(other.sha256, other.absolute, other.size, other.mtime)
            candidates.setdefault(other.sha256, version)
    newest = sorted(candidates.values(), key=lambda version: version.mtime, reverse=True)
    return tuple(newest[:count])


def remember(versions_dir: Path, families: dict[str, list[Member]], count: int) -> None:
    """Keep each current member's bytes in the cache as a future dictionary, recorded as seen
    now, and per family the current ones plus the `count` most recently seen others. Best effort."""
    now = time.time()
    for family, family_members in families.items():
        directory = versions_dir / family_key(family)
        current = {member.sha256.hex() for member in family_members}
        try:
            directory.mkdir(parents=True, exist_ok=True)
            for member in family_members:
                target = directory / member.sha256.hex()
                if not target.exists():
                    write_atomic(target, Path(member.absolute).read_bytes())
            seen = {version.sha256.hex(): version.mtime for version in cached_versions(versions_dir, family)}
            seen.update(dict.fromkeys(current, now))
            others = sorted((name for name in seen if name not in current), key=seen.__getitem__,
                            reverse=True)
            for name in others[count:]:
                remove_quietly(os.fspath(directory / name))
                del seen[name]
            write_atomic(directory / SEEN, json.dumps(seen, sort_keys=True).encode())
        except OSError:
            continue
