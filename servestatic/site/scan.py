"""Walk a static root and decide which files exist for the web.

The rules about what is never served live here, once, and both the compressor
and the server's no-manifest fallback use them: dotfiles (but `/.well-known/`),
the manifest and our temporary files, symlinks that leave the root, names that
are not UTF-8, and compressed variants whose original sits beside them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from servestatic.site.names import VARIANT_SUFFIXES

log = logging.getLogger("servestatic")



@dataclass(frozen=True)
class FoundFile:
    """A servable file: its path relative to the root (POSIX, UTF-8) and its stat."""

    relative: str
    absolute: Path
    size: int
    mtime: int


def never_served(relative: str) -> bool:
    """True for a relative path that is never served, whatever lists it: dot
    segments (dotfiles, ".", "..", the manifest itself) but a leading
    ".well-known/", backslashes, NUL, empty segments, absolute paths. The
    server's table applies it to every manifest entry; `walk` applies the same
    dot rule name by name, so that it can skip a hidden directory whole.

    Plain `in` tests rather than one regex: this runs for every file at start-up,
    and for 100,000 files they take 15 ms where the regex took 50.
    """
    return (
        not relative
        or (relative[0] == "." and not relative.startswith(".well-known/"))
        or "/." in relative
        or "\\" in relative
        or "\x00" in relative
        or "//" in relative
        or relative[0] == "/"
        or relative[-1] == "/"
    )


def _inside(real: str, real_root: str) -> bool:
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def walk(root: Path) -> Iterator[FoundFile]:
    """Yield every servable regular file below root, in a stable order.

    Symlinks are followed only when their target stays inside the root; a
    directory reached twice through links is walked once.
    """
    real_root = os.path.realpath(root)
    seen_dirs: set[tuple[int, int]] = set()
    yield from _walk_dir(Path(root), "", real_root, seen_dirs)


def _walk_dir(
    directory: Path, prefix: str, real_root: str, seen_dirs: set[tuple[int, int]]
) -> Iterator[FoundFile]:
    try:
        stat = directory.stat()
        key = (stat.st_dev, stat.st_ino)
        if key in seen_dirs:
            return
        seen_dirs.add(key)
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError as error:
        log.warning("cannot read directory %s: %s", directory, error.strerror)
        return
    names = {entry.name for entry in entries}
    for entry in entries:
        name = entry.name
        if name.startswith(".") and not (prefix == "" and name == ".well-known"):
            continue
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            log.warning("skipping %r: its name is not UTF-8", os.path.join(directory, name))
            continue
        if name.endswith(VARIANT_SUFFIXES) and name.rsplit(".", 1)[0] in names:
            continue  # a compressed variant of its neighbour, not a file of its own
        relative = prefix + name
        try:
            if entry.is_symlink() and not _inside(os.path.realpath(entry.path), real_root):
                log.warning("skipping %s: symlink leaves the root", relative)
                continue
            if entry.is_dir():
                yield from _walk_dir(Path(entry.path), relative + "/", real_root, seen_dirs)
            elif entry.is_file():
                stat = entry.stat()
                yield FoundFile(relative, Path(entry.path), stat.st_size, int(stat.st_mtime))
        except OSError as error:
            log.warning("skipping %s: %s", relative, error.strerror)
