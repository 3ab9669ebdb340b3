"""Opening a file the table names, safely: never one that left the root or changed size.

The table is built from the manifest without touching the tree, so what is on
disk may have changed since start-up. A file swapped for a symlink out of the
root must not be served, and one of another size would make Content-Length a
lie and cut the answer short.

Two ways to know the descriptor is inside the root. On Linux 5.6 and later,
openat2(2) with RESOLVE_BENEATH opens the path relative to the root's directory
and refuses any resolution that would leave it (a `..`, an absolute symlink, a
directory swapped for a link out): one system call. Elsewhere, or for a path
openat2 refuses (a symlink on the way, even one that stays inside), the file is
opened with O_NOFOLLOW and where the descriptor really points is read back from
/proc/self/fd: two more system calls (a readlink through procfs costs about as much
as the open, fstat, read and close of a small file together), and the realpath of
a symlink. Python has no binding for openat2, so it is called through ctypes.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys

HAVE_PROC_FD = os.path.isdir("/proc/self/fd")

# openat2(2): the same number on every Linux architecture (it came after the tables were unified).
_SYS_OPENAT2 = 437
_RESOLVE_NO_MAGICLINKS = 0x02  # no /proc/.../fd links on the way
_RESOLVE_BENEATH = 0x08  # nothing outside the directory: no "..", no absolute or escaping symlink
_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


class _Beneath:
    """openat2 beneath each root's directory, while the kernel offers it."""

    def __init__(self) -> None:
        self.usable = sys.platform == "linux"
        self.roots: dict[str, int] = {}  # real root -> its directory's descriptor, per process
        self.how = _OpenHow(_FLAGS, 0, _RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS)
        self.how_ref = ctypes.byref(self.how)
        self.syscall = None
        if self.usable:
            try:
                syscall = ctypes.CDLL(None, use_errno=True).syscall
            except (OSError, AttributeError):
                self.usable = False
            else:
                syscall.restype = ctypes.c_long
                syscall.argtypes = (ctypes.c_long, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p,
                                    ctypes.c_size_t)
                self.syscall = syscall

    def directory(self, root: str) -> int | None:
        """The root's directory descriptor, opened once (None if it cannot be opened)."""
        dirfd = self.roots.get(root)
        if dirfd is None:
            try:
                dirfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                return None
            self.roots[root] = dirfd
        return dirfd

    def open(self, root: str, relative: str) -> int | None:
        """A descriptor for root/relative that cannot be outside root; None when the caller
        must decide the slow way (a symlink on the way, or openat2 not usable here)."""
        dirfd = self.roots.get(root)
        if dirfd is None:
            dirfd = self.directory(root)
            if dirfd is None:
                return None
        assert self.syscall is not None
        fd = self.syscall(_SYS_OPENAT2, dirfd, os.fsencode(relative), self.how_ref, ctypes.sizeof(_OpenHow))
        if fd >= 0:
            return fd
        error = ctypes.get_errno()
        if error in (errno.EXDEV, errno.ELOOP):
            return None  # resolution would leave the root, or meets a symlink: decided below
        if error in (errno.ENOSYS, errno.EPERM, errno.EINVAL, errno.E2BIG):
            self.usable = False  # an older kernel, or a seccomp filter that refuses it
            return None
        raise OSError(error, os.strerror(error), root + relative)


_beneath = _Beneath()


def open_roots(real_roots: tuple[str, ...]) -> None:
    """Open each root's directory now, in the process that builds the table (gunicorn's
    master), so that every worker inherits them rather than opening its own descriptors
    on its first request."""
    if _beneath.usable:
        for root in real_roots:
            _beneath.directory(root)


def open_unchanged(path: str, size: int, real_root: str | tuple[str, ...]) -> int:
    """A read-only descriptor for `path`, or OSError if it is no longer the file the table says.

    `real_root` is the root's realpath with a trailing separator (or a tuple of
    them, one per mount: inside any of them is inside). The caller owns (and
    closes) the descriptor: a raw descriptor rather than a file object, since
    pread and sendfile need nothing more and a small answer then costs no
    buffered-reader allocation.
    """
    fd = None
    if _beneath.usable:
        for root in (real_root,) if isinstance(real_root, str) else real_root:
            if path.startswith(root):
                fd = _beneath.open(root, path[len(root):])
                break
    if fd is None:
        fd = _open_checked(path, real_root)
    try:
        actual = os.fstat(fd).st_size
    except OSError:
        os.close(fd)
        raise
    if actual != size:
        os.close(fd)
        raise OSError(errno.ESTALE, f"changed size ({size} -> {actual} bytes)", path)
    return fd


def _open_checked(path: str, real_root: str | tuple[str, ...]) -> int:
    """open with O_NOFOLLOW, then where the descriptor points must be inside the root.

    O_NOFOLLOW costs nothing; only a path that is a link pays for a realpath. It
    looks at the last name only: a directory on the way swapped for a link out of
    the root is caught by where the descriptor really points (one readlink, no race
    with the swap).
    """
    try:
        fd = os.open(path, _FLAGS)
    except OSError as error:
        if error.errno != errno.ELOOP:
            raise
        real = os.path.realpath(path)
        if not real.startswith(real_root):
            raise OSError(errno.EACCES, "became a symlink out of the root", path) from None
        fd = os.open(real, os.O_RDONLY | os.O_CLOEXEC)
    try:
        opened = os.readlink(f"/proc/self/fd/{fd}") if HAVE_PROC_FD else os.path.realpath(path)
    except OSError:
        os.close(fd)
        raise
    if not opened.startswith(real_root):
        os.close(fd)
        raise OSError(errno.EACCES, "reached through a symlink out of the root", path)
    return fd
