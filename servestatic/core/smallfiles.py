"""Small files' bytes, read once per worker and checked against the disk by one lstat a hit.

Opening a small file for every request (openat2 through ctypes, fstat, pread and
close: four system calls) cost a 1 KiB answer more than anything but the socket
itself: about 5 µs of its 40 on a quiet machine, 12 µs on a busy one, against 1
and 2 µs for one lstat. nginx's open_file_cache keeps descriptors and looks at the
disk again only every 60 seconds; this keeps the bytes and looks on every request,
so what a request gets is what it got before this cache: a file removed, grown,
shrunk, rewritten or swapped for a symlink since it was kept is no longer the kept
one (its lstat differs in inode, size or modification time) and is opened again
the safe way (core/safeopen.py), which answers 404 for a file that left the root.

The kept bytes were read through a descriptor opened the safe way, and the
identity that lstat must match is that descriptor's fstat, taken before the read:
a file changed during the read has a newer modification time and is read again.

A modification time moves only when the clock it is read from has ticked: the kernel
stamps files from a coarse clock (a few ms), and some filesystems keep whole seconds.
A file rewritten in place with as many bytes within one tick of the read keeps its
lstat, so the bytes read before it would be answered from then on. As git does with
its index ("racy git"), a file modified within RECENT of the read is therefore not
kept: it is read per request until it has been still that long, after which any
rewrite stamps a time the kept identity cannot have.

Bounds (docs/operations.md): a file is kept only up to SMALL_FILE bytes, and a
process keeps at most MEMORY bytes of them, each file counted with what keeping it
costs beside its bytes (KEPT_OVERHEAD); past that the earliest kept go first.
"""

from __future__ import annotations

import os
import threading
import time

# A file larger than this is opened per request, as before: it goes out by sendfile.
SMALL_FILE = 64 * 1024
# What one worker keeps at most, whatever the site's size.
MEMORY = 16 * 1024 * 1024
# What keeping one file costs beside its bytes, counted against MEMORY: its dict slot, the
# identity tuple and its integers, the bytes object's header, and its path (which outlives
# the table's built file). About 300 bytes measured; without it, a client asking for each
# of a big site's tiny files (20 bytes counted, 320 held) took a worker 16 times past MEMORY.
KEPT_OVERHEAD = 320
# A file modified less than this before it is read is not kept (nanoseconds; see above):
# longer than any clock tick and the 1 s or 2 s timestamps of coarse filesystems.
RECENT = 3 * 1_000_000_000


class SmallFiles:
    """Kept bytes by path, with the (inode, device, size, mtime) they were read at."""

    __slots__ = ("entries", "held", "lock", "memory")

    def __init__(self, memory: int = MEMORY):
        self.entries: dict[str, tuple[int, int, int, int, bytes]] = {}
        self.held = 0
        self.memory = memory
        # Keeping is locked: under the WSGI front (servestatic.wsgi) threads decide at once.
        # A hit only reads the dict, which the GIL keeps whole.
        self.lock = threading.Lock()

    def get(self, path: str) -> bytes | None:
        """The kept bytes of `path` if the file on disk is still the one they came from."""
        entry = self.entries.get(path)
        if entry is None:
            return None
        try:
            now = os.lstat(path)
        except OSError:
            return None
        if (now.st_ino != entry[0] or now.st_mtime_ns != entry[3] or now.st_size != entry[2]
                or now.st_dev != entry[1]):
            return None
        return entry[4]

    def read(self, path: str, fd: int, size: int) -> bytes | None:
        """Read the whole of a file opened the safe way and keep it; None when it is not
        `size` bytes long any more (the caller then answers from the descriptor, whose
        short read says the file shrank). The descriptor stays the caller's."""
        try:
            identity = os.fstat(fd)
            data = os.pread(fd, size, 0)
        except OSError:
            return None  # the descriptor's own read then fails the same way, as before
        if len(data) != size:
            return None
        if time.time_ns() - identity.st_mtime_ns < RECENT:
            return data  # answered, not kept: a rewrite within its tick would go unseen
        cost = size + KEPT_OVERHEAD
        with self.lock:
            previous = self.entries.pop(path, None)
            if previous is not None:
                self.held -= len(previous[4]) + KEPT_OVERHEAD
            while self.entries and self.held + cost > self.memory:
                oldest = next(iter(self.entries))
                self.held -= len(self.entries.pop(oldest)[4]) + KEPT_OVERHEAD
            if self.held + cost <= self.memory:
                self.entries[path] = (identity.st_ino, identity.st_dev, size, identity.st_mtime_ns, data)
                self.held += cost
        return data
