"""Copies of the example site, so that no test writes into examples/."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.support import EXAMPLE_SITE

MANIFEST = ".servestatic-manifest.json"
# What `servestatic compress` leaves in a tree; a copy never takes these along, so
# a test starts from sources whatever an earlier run left in examples/.
BUILD_OUTPUTS = ("*.br", "*.gz", "*.zst", MANIFEST)


def copy_site(target: Path, source: Path = EXAMPLE_SITE) -> Path:
    """A private copy of source (the example site) without build output; returns target."""
    shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(*BUILD_OUTPUTS))
    return target


def manifest_entry(root: Path, relative: str) -> dict[str, Any]:
    """One file's entry in root's manifest, as JSON."""
    return json.loads((root / MANIFEST).read_text(encoding="utf-8"))["files"][relative]
