"""The guard against a manifest that lists what must never be served."""

from __future__ import annotations

import pytest

from servestatic.site.scan import never_served


@pytest.mark.parametrize(("relative", "refused"), [
    (".env", True), (".servestatic-manifest.json", True), ("a/.git/config", True), ("a/.b", True),
    ("a/../b", True), ("a/./b", True), ("../etc/passwd", True), ("a\\b", True), ("a\x00b", True),
    ("a//b", True), ("/etc/passwd", True), ("dir/", True), ("", True), (".well-known", True),
    (".well-known/.hidden", True),
    (".well-known/security.txt", False), ("a/b.c", False), ("a..b", False), ("résumé.txt", False),
    ("css/site.0123456789ab.css", False), ("x.well-known/a", False),
])
def test_never_served(relative: str, refused: bool) -> None:
    assert never_served(relative) is refused
