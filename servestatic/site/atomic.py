"""Atomic file replacement: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def temporary_beside(path: Path) -> tuple[int, str]:
    """Open a temporary file next to path; a dotfile, so never served or scanned."""
    return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)


def write_atomic(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Write data to a temporary name beside path, then rename it over path.

    A crash or a full disk leaves the previous file in place. `durable` adds an
    fsync before the rename; the manifest asks for it, the many variants do not,
    since a rename alone already keeps an interrupted run from leaving a
    truncated file and a power cut during a build means rebuilding anyway.
    """
    fd, temporary = temporary_beside(path)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        remove_quietly(temporary)
        raise


def remove_quietly(path: str | Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
