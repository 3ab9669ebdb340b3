"""The headers for the CDN in front: cache tags (SERVESTATIC_CACHE_TAG_HEADER) and
CDN-Cache-Control (SERVESTATIC_CDN_MAX_AGE), over a real server in the event loop's answer
path, gunicorn's ASGI path (SERVESTATIC_FAST_PATH=false) and the WSGI front
(`gunicorn servestatic.wsgi:application`). tests/test_cdn.py runs them behind Varnish."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from servestatic.site.cachetags import STYLES, directory_tags, file_tags, header_value
from servestatic.site.names import MANIFEST_NAME
from tests.support import REPO, needs
from tests.support.cli import SERVESTATIC, compress, environment
from tests.support.http import raw_request
from tests.support.server import ServerProcess, WsgiFront, serving
from tests.support.site import copy_site

CDN_MAX_AGE = 86400
CDN_CACHE = f"public, max-age={CDN_MAX_AGE}, stale-if-error=86400"
ENV = {"SERVESTATIC_CACHE_TAG_HEADER": "surrogate-key", "SERVESTATIC_CDN_MAX_AGE": str(CDN_MAX_AGE)}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = copy_site(tmp_path_factory.mktemp("cdnheaders") / "site")
    (site / "headers.toml").write_text(
        '[[rule]]\nglob = "docs/guide/*"\nheaders = { Cache-Control = "private, no-cache" }\n'
        '[[rule]]\nglob = "robots.txt"\nheaders = { CDN-Cache-Control = "max-age=600", '
        'Surrogate-Key = "robots" }\n')
    compress(site)
    return site


@pytest.fixture(scope="module", params=["loop", "asgi", "wsgi"])
def server(root: Path, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    env = {**ENV, "SERVESTATIC_HEADERS_FILE": str(root / "headers.toml")}
    if request.param == "wsgi":
        front = WsgiFront(root, env).start()
        try:
            yield front
        finally:
            front.stop()
        return
    if request.param == "asgi":
        env["SERVESTATIC_FAST_PATH"] = "false"
    with serving(root, env) as running:
        yield running


def build(root: Path) -> str:
    return json.loads((root / MANIFEST_NAME).read_text())["build"]


def test_each_file_carries_its_release_kind_and_directories(root: Path, server: ServerProcess) -> None:
    release = f"release-{build(root)}"
    expected = {
        "/index.html": f"{release} html /",
        "/": f"{release} html /",
        "/docs/guide/": f"{release} html / /docs/ /docs/guide/",
        "/assets/app-3fA9c1bd.js": f"{release} asset / /assets/",
        "/css/print.css": f"{release} other / /css/",
        "/data/r%C3%A9sum%C3%A9.txt": f"{release} other / /data/",
        "/robots.txt": "robots",  # a header rule's value replaces ours
        "/no/such/page": f"{release} 404",
    }
    for path, tags in expected.items():
        for accept_encoding in ("br, gzip", "identity"):
            response = raw_request(server, path, headers={"Accept-Encoding": accept_encoding})
            assert response.status == (404 if path == "/no/such/page" else 200), path
            assert response.header("Surrogate-Key") == tags, (path, accept_encoding)
    etag = raw_request(server, "/css/print.css").header("ETag")
    not_modified = raw_request(server, "/css/print.css", headers={"If-None-Match": etag})
    assert not_modified.status == 304
    assert not_modified.header("Surrogate-Key") == f"{release} other / /css/"


def test_cdn_cache_control_on_what_browsers_revalidate(server: ServerProcess) -> None:
    for path in ("/index.html", "/css/print.css", "/no/such/page"):
        response = raw_request(server, path)
        assert response.header("CDN-Cache-Control") == CDN_CACHE, path
    html = raw_request(server, "/index.html")
    assert html.header("Cache-Control") == "no-cache, stale-if-error=86400"  # browsers: unchanged
    etag = html.header("ETag")
    assert raw_request(server, "/index.html", headers={"If-None-Match": etag}).header(
        "CDN-Cache-Control") == CDN_CACHE  # a 304 refreshes the CDN's copy with it
    # A hashed file's Cache-Control already says a year.
    assert raw_request(server, "/assets/app-3fA9c1bd.js").header("CDN-Cache-Control") is None
    # A rule's CDN-Cache-Control is sent instead; a rule making a file private drops ours.
    assert raw_request(server, "/robots.txt").header("CDN-Cache-Control") == "max-age=600"
    private = raw_request(server, "/docs/guide/")
    assert private.header("Cache-Control") == "private, no-cache"
    assert private.header("CDN-Cache-Control") is None


def test_off_by_default(root: Path) -> None:
    with serving(root) as plain:
        for path in ("/index.html", "/no/such/page"):
            response = raw_request(plain, path)
            names = {name.lower() for name, _ in response.headers}
            assert not names & {"cache-tag", "surrogate-key", "edge-cache-tag", "cdn-cache-control"}, path


def test_each_cdn_gets_its_separator_and_limits() -> None:
    tags = file_tags("0123456789abcdef", "/a b/c,d/x.html", "text/html", False)
    assert tags == ["release-0123456789abcdef", "html", "/", "/a%20b/", "/a%20b/c%2Cd/"]
    assert header_value(STYLES["cache-tag"], tags) == ",".join(tags)
    assert header_value(STYLES["surrogate-key"], tags) == " ".join(tags)
    # Akamai: a tag at most 128 characters, at most 128 tags; the deep directories go first.
    deep = "/" + "/".join(f"d{index:03}" for index in range(200)) + "/page.html"
    kept = header_value(STYLES["edge-cache-tag"], file_tags("b", deep, "text/html", False)).split(",")
    assert kept[:3] == ["release-b", "html", "/"]
    assert max(map(len, kept)) <= 128 and len(kept) <= 128
    assert kept[3:] == [tag for tag in directory_tags(deep)[1:] if len(tag) <= 128]
    # Fastly and Cloudflare: 1,024 per tag and 16 KB for the header.
    for style in ("cache-tag", "surrogate-key"):
        value = header_value(STYLES[style], file_tags("b", deep, "text/html", False))
        assert len(value) <= 16384 and max(map(len, value.split(STYLES[style].separator))) <= 1024


def test_the_build_id_names_the_content(site: Path) -> None:
    compress(site)
    first = build(site)
    compress(site)
    assert build(site) == first  # the same tree, the same build
    (site / "robots.txt").write_text("User-agent: *\n")
    compress(site)
    assert build(site) != first


def test_a_wrong_tag_header_stops_start_up(root: Path) -> None:
    result = subprocess.run([*SERVESTATIC, "serve", str(root)], capture_output=True, text=True, timeout=60,
                            env=environment({"SERVESTATIC_CACHE_TAG_HEADER": "x-tags"}))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith(
        "servestatic: error: SERVESTATIC_CACHE_TAG_HEADER: got 'x-tags'; expected one of off, cache-tag")


REDBOT = REPO / ".cache" / "redbot" / "venv" / "bin" / "redbot"  # scripts/install/redbot.sh


def test_redbot_finds_no_bad_note(root: Path) -> None:
    """REDbot (HTTP lint) on an HTML page, a hashed and an unhashed file and a 404, with the
    CDN headers on: no BAD note. (It warns that `no-cache` overrides `stale-if-error` and
    that `public` is probably unnecessary: both meant, see docs/http.md.)"""
    needs(REDBOT.exists(), "REDbot is not installed (scripts/install/redbot.sh)")
    with serving(root, ENV) as running:
        for path in ("/docs/", "/assets/app-3fA9c1bd.js", "/css/print.css", "/no/such/page"):
            result = subprocess.run([str(REDBOT), "-o", "har", running.url + path], capture_output=True,
                                    text=True, timeout=120)
            assert result.returncode == 0, result.stderr
            notes = [note for entry in json.loads(result.stdout)["log"]["entries"]
                     for note in entry["_red_messages"]]
            # It read our CDN-Cache-Control (a hashed file has none).
            seen = "CDN_CACHE_CONTROL_PRESENT" in {note["note_id"] for note in notes}
            assert seen is not path.startswith("/assets/"), (path, notes)
            bad = [note for note in notes if note["level"] == "BAD"]
            assert bad == [], (path, bad)
