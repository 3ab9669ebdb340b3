"""The documentation points at files that exist: a reader who follows a path named in the
README, docs/, the chart's or the buildpack's README, or a recipe's comments finds it."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support import REPO

DOCUMENTS = [REPO / "README.md", REPO / "helm" / "servestatic" / "README.md",
             REPO / "buildpack" / "README.md",
             *sorted((REPO / "docs").rglob("*.md")), *sorted((REPO / "docs" / "cdn").glob("*.*")),
             *sorted((REPO / "examples").rglob("Dockerfile"))]
# A repository path: a directory of this project, then a file with an extension (or a
# Dockerfile). docs/ alone is left out: `docs/index.html` is also a URL path of the example site.
PATH = re.compile(r"(?<![\w./-])((?:tests|servestatic|scripts|examples|helm|buildpack|entrypoint|docs/cdn)"
                  r"/[\w./-]*(?:\.[a-z]{1,5}|Dockerfile)|docs/\w+\.md)\b")


def named_paths(document: Path) -> set[str]:
    return {match.rstrip(".") for match in PATH.findall(document.read_text())}


def test_every_path_the_docs_name_exists() -> None:
    missing = []
    for document in DOCUMENTS:
        for name in named_paths(document):
            if not (REPO / name).exists() and not (REPO / name.split("::")[0]).exists():
                missing.append(f"{document.relative_to(REPO)}: {name}")
    assert missing == []


def test_the_check_sees_a_missing_path(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("see tests/test_cdn_varnish.py and tests/test_cdn.py, or docs/cdn/varnish.vcl, "
                    "docs/cdn.md and examples/docker/chained/Dockerfile; /docs/index.html is a URL.")
    assert named_paths(page) == {"tests/test_cdn_varnish.py", "tests/test_cdn.py", "docs/cdn/varnish.vcl",
                                 "docs/cdn.md", "examples/docker/chained/Dockerfile"}
