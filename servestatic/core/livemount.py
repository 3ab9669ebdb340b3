"""A file of a mount that changes at run time (`PREFIX=live:DIR`), found on the request.

User uploads (Django's MEDIA_ROOT) appear after start-up, so such a mount has no
manifest and no build-time variants: each request's path is checked and the file
looked up on disk. The safety rules are those of every mount: the same names are
never served (dotfiles, dot segments, backslashes, NUL: site/scan.py's
`never_served`), nothing outside the root (a symlink that leaves it is refused,
and `open_unchanged` checks again where the descriptor really points), and only
regular files. A `.br`/`.gz`/`.zst` beside its original is not served as a path of
its own. Nothing is immutable by its name (an upload's name may look hashed, as
Wagtail's renditions do, and still be replaced), so every file gets the short
max-age; the ETag comes from the file's inode, size and mtime in nanoseconds,
which change when the file is replaced (hashing the bytes on each request would
read every upload twice).
"""

from __future__ import annotations

import hashlib
import os
import stat

from servestatic.site.manifest import FileEntry, real_mtime
from servestatic.site.mediatypes import content_type_for
from servestatic.site.names import VARIANT_SUFFIXES
from servestatic.site.scan import never_served


def live_entry(root: str, real_root: str, relative: str) -> FileEntry | None:
    """The entry of the regular file `relative` (UTF-8, POSIX) below `root` (ending in a
    separator), or None when it must not be served or is not there. `real_root` is the
    root's realpath ending in a separator."""
    if never_served(relative):
        return None
    path = root + relative
    if relative.endswith(VARIANT_SUFFIXES) and os.path.exists(path.rpartition(".")[0]):
        return None
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    if not os.path.realpath(path).startswith(real_root):  # a symlink out of the root, on the way
        return None
    validator = f"{info.st_ino}:{info.st_size}:{info.st_mtime_ns}".encode()
    return FileEntry(size=info.st_size, hash=hashlib.sha256(validator).hexdigest()[:32],
                     content_type=content_type_for(relative), immutable=False,
                     mtime=real_mtime(int(info.st_mtime)))
