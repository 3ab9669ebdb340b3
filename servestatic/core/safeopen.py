"""Opening a file the table names, safely: never one that left the root or changed size.

The table is built from the manifest without touching the tree, so what is on
disk may have changed since start-up. A file swapped for a symlink out of the
root must not be served, and one of another size would make Content-Length a
lie and cut the answer short.
"""

from __future__ import annotations

import errno
import os

HAVE_PROC_FD = os.path.isdir("/proc/self/fd")


def open_unchanged(path: str, size: int, real_root: str | tuple[str, ...]) -> int:
    """A read-only descriptor for `path`, or OSError if it is no longer the file the table says.

    `real_root` is the root's realpath with a trailing separator (or a tuple of
    them, one per mount: inside any of them is inside). O_NOFOLLOW
    costs nothing; only a path that is a link pays for a realpath. The caller
    owns (and closes) the descriptor: a raw descriptor rather than a file
    object, since pread and sendfile need nothing more and a small answer then
    costs no buffered-reader allocation.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as error:
        if error.errno != errno.ELOOP:
            raise
        real = os.path.realpath(path)
        if not real.startswith(real_root):
            raise OSError(errno.EACCES, "became a symlink out of the root", path) from None
        fd = os.open(real, os.O_RDONLY | os.O_CLOEXEC)
    try:
        actual = os.fstat(fd).st_size
        # O_NOFOLLOW looks at the last name only: a directory on the way
        # swapped for a link out of the root is caught by where the
        # descriptor really points (one readlink, no race with the swap).
        opened = os.readlink(f"/proc/self/fd/{fd}") if HAVE_PROC_FD else os.path.realpath(path)
    except OSError:
        os.close(fd)
        raise
    if not opened.startswith(real_root):
        os.close(fd)
        raise OSError(errno.EACCES, "reached through a symlink out of the root", path)
    if actual != size:
        os.close(fd)
        raise OSError(errno.ESTALE, f"changed size ({size} -> {actual} bytes)", path)
    return fd
