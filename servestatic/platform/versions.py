"""The one version, and every place a release carries it.

The version is declared once, as ``servestatic.__version__`` (pyproject.toml reads
it from there). The image, the buildpack and the chart cannot import Python, so
each keeps a copy in its own format; ``carried_versions`` reads every copy so
that a test, and ``scripts/release`` before it builds anything, can refuse a
tree where one of them was forgotten in a bump.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import servestatic


def declared_version() -> str:
    """The version: ``servestatic.__version__``, the one place it is written."""
    return servestatic.__version__


def image_tag(version: str) -> str:
    """The short tag the README, the onbuild variant and the chart use: MAJOR.MINOR."""
    return ".".join(version.split(".")[:2])


def _match(pattern: str, text: str, where: str) -> str:
    found = re.search(pattern, text, re.MULTILINE)
    if found is None:
        raise ValueError(f"{where}: no version found (pattern {pattern!r})")
    return found.group(1)


def carried_versions(repo: Path) -> dict[str, str]:
    """Each copy of the version in the tree, keyed by where it is.

    The short tags (Dockerfile.onbuild's base, the chart's default image tag,
    which is its appVersion cut to MAJOR.MINOR) are returned as written, so a
    caller compares them with ``image_tag(declared_version())``.
    """
    chart = (repo / "helm/servestatic/Chart.yaml").read_text()
    buildpack = tomllib.loads((repo / "buildpack/buildpack.toml").read_text())
    return {
        "Dockerfile ARG VERSION": _match(r"^ARG VERSION=(\S+)$", (repo / "Dockerfile").read_text(),
                                         "Dockerfile"),
        "buildpack/buildpack.toml": buildpack["buildpack"]["version"],
        "Chart.yaml version": _match(r"^version:\s*\"?([^\s\"]+)\"?$", chart, "Chart.yaml"),
        "Chart.yaml appVersion": _match(r"^appVersion:\s*\"?([^\s\"]+)\"?$", chart, "Chart.yaml"),
        "Dockerfile.onbuild base tag": _match(r"^ARG BASE=servestatic/base:(\S+)$",
                                              (repo / "Dockerfile.onbuild").read_text(),
                                              "Dockerfile.onbuild"),
    }


def disagreements(repo: Path) -> list[str]:
    """One line per copy that differs from the declared version (empty when all agree)."""
    version = declared_version()
    short = image_tag(version)
    wrong = []
    for where, found in carried_versions(repo).items():
        expected = short if where.endswith("tag") else version
        if found != expected:
            wrong.append(f"{where} says {found}, expected {expected} (servestatic.__version__ {version})")
    return wrong
