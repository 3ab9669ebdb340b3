"""`servestatic diff`: the purge list between two real builds of the example site.

Each test compresses a copy of the site, keeps its manifest aside as a deploy
would, changes the tree, compresses again and diffs the two manifests through
the real command.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from servestatic.site.names import MANIFEST_NAME
from tests.support.cli import SERVESTATIC, compress, environment


def diff(old: Path, new: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SERVESTATIC, "diff", str(old), str(new), *args],
                          capture_output=True, text=True, env=environment())


@pytest.fixture
def builds(site: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The site compressed, its manifest kept as the previous build's; returns (kept, site)."""
    compress(site)
    kept = tmp_path / "previous-manifest.json"
    shutil.copyfile(site / MANIFEST_NAME, kept)
    return kept, site


def test_no_change_lists_nothing(builds: tuple[Path, Path]) -> None:
    kept, site = builds
    compress(site)
    result = diff(kept, site)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def test_changed_added_removed_and_index_directories(builds: tuple[Path, Path]) -> None:
    kept, site = builds
    (site / "docs" / "index.html").write_text("<!doctype html><title>Docs, new</title>\n" * 20)
    (site / "index.html").write_text("<!doctype html><title>Home, new</title>\n" * 20)
    (site / "css" / "print.css").unlink()
    (site / "news").mkdir()
    (site / "news" / "index.html").write_text("<!doctype html><title>News</title>\n")
    (site / "data" / "résumé.txt").write_text("changed, and its name needs percent-encoding\n")
    compress(site)

    result = diff(kept, site)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == sorted([
        "/", "/index.html", "/docs/", "/docs/index.html",
        "/css/print.css",
        "/news/", "/news/index.html",
        "/data/r%C3%A9sum%C3%A9.txt",
    ])

    grouped = json.loads(diff(kept, site, "--json", "--prefix", "/static").stdout)
    assert grouped == {
        "changed": ["/static/", "/static/data/r%C3%A9sum%C3%A9.txt", "/static/docs/",
                    "/static/docs/index.html", "/static/index.html"],
        "added": ["/static/news/", "/static/news/index.html"],
        "removed": ["/static/css/print.css"],
    }


def test_a_new_variant_is_a_change_for_the_clients_that_get_it(builds: tuple[Path, Path]) -> None:
    """Same original, other served bytes: a file now too small to compress loses its variants."""
    kept, site = builds
    compress(site, "--min-size", "100000")
    changed = json.loads(diff(kept, site, "--json").stdout)["changed"]
    previous = json.loads(kept.read_text())["files"]
    had_variants = {"/" + path for path, entry in previous.items() if entry["variants"]}
    assert had_variants and set(changed) >= had_variants
    assert "/img/banner.png" not in changed  # never compressed, unchanged


def test_prefix_from_the_environment_and_a_bad_one(builds: tuple[Path, Path]) -> None:
    kept, site = builds
    (site / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n")
    compress(site)
    result = subprocess.run([*SERVESTATIC, "diff", str(kept), str(site)], capture_output=True,
                            text=True, env=environment({"SERVESTATIC_PREFIX": "/assets/"}))
    assert result.stdout.splitlines() == ["/assets/robots.txt"]
    bad = diff(kept, site, "--prefix", "static")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "servestatic: error: --prefix: got 'static'; expected a URL path starting with '/', "
        "such as / or /static/"
    ]


def test_unreadable_manifest_is_one_line(tmp_path: Path, builds: tuple[Path, Path]) -> None:
    kept, _site = builds
    bogus = tmp_path / "bogus.json"
    bogus.write_text('{"format": 99}')
    for other in (bogus, tmp_path / "missing.json"):
        result = diff(kept, other)
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert str(other) in result.stderr


def test_tags_to_purge_instead_of_urls(builds: tuple[Path, Path]) -> None:
    """`--tags`: the directories of what changed (their deepest tag, less those inside another)
    and `404` for the cached 404s of added files; the tags servestatic sends
    (tests/test_http_cdn_headers.py), percent-encoded alike."""
    kept, site = builds
    (site / "docs" / "guide" / "index.html").write_text("<!doctype html><title>Guide, new</title>\n")
    (site / "docs" / "index.html").write_text("<!doctype html><title>Docs, new</title>\n")
    (site / "data" / "résumé.txt").write_text("changed\n")
    (site / "data" / "sous dossier").mkdir()
    (site / "data" / "sous dossier" / "x.txt").write_text("new\n")
    compress(site)
    result = diff(kept, site, "--tags", "--prefix", "/static/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["/static/data/", "/static/docs/", "404"]
    (site / "robots.txt").write_text("User-agent: *\n")  # the root's directory covers everything
    compress(site)
    assert diff(kept, site, "--tags").stdout.splitlines() == ["/", "404"]
    compress(site)
    assert diff(site, site, "--tags").stdout == ""
