"""Subresource Integrity values of built files, from the manifest.

`servestatic compress` records each file's SRI value (`integrity`, "sha384-...",
the W3C Subresource Integrity hash of the file's own bytes, which is what a
browser checks after undoing any Content-Encoding). This module only looks them
up, so printing them for a template or a CDN snippet hashes nothing and agrees
with what the build recorded.
"""

from __future__ import annotations

import os
from pathlib import Path

from servestatic.site.manifest import ManifestError, read


class IntegrityError(Exception):
    """A path the manifest cannot answer for; one line for the user."""


def integrity_values(root: Path, paths: list[str]) -> list[tuple[str, str]]:
    """(path as given, "sha384-...") for each path, in order; raises IntegrityError or ManifestError.

    A path is the file's path relative to root as the manifest lists it
    (`css/site.css`, a leading "/" allowed, as in a URL under the root), or
    a filesystem path to a file inside root.
    """
    files = read(root)["files"]
    found = []
    for given in paths:
        relative = _relative(root, given)
        entry = files.get(relative)
        if not isinstance(entry, dict):
            raise IntegrityError(f"{given}: not a file of the manifest of {root}")
        value = entry.get("integrity")
        if not isinstance(value, str) or not value.startswith("sha384-"):
            raise ManifestError(f"{given}: the manifest of {root} has no integrity value; "
                                f"run 'servestatic compress {root}' again")
        found.append((given, value))
    return found


def _relative(root: Path, given: str) -> str:
    """The manifest's key for a path given on the command line."""
    candidate = Path(given)
    if candidate.is_file():
        try:
            return Path(os.path.realpath(candidate)).relative_to(os.path.realpath(root)).as_posix()
        except ValueError:
            raise IntegrityError(f"{given}: not inside {root}") from None
    return given.lstrip("/")
