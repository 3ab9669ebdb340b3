"""Link preload headers on HTML: found in each page's head by `servestatic compress`,
resolved to the URLs the server serves, sent on the page's 200s, capped by
SERVESTATIC_PRELOAD_LINKS (0: none), over a real server in both answer paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import compress
from tests.support.http import raw_request
from tests.support.server import ServerProcess, serving
from tests.support.site import copy_site, manifest_entry

INDEX_LINKS = ('</fonts/open-sans-700.woff2>; rel=preload; as=font; type="font/woff2"; crossorigin, '
               '</css/site.0123456789ab.css>; rel=preload; as=style, '
               '</assets/app-3fA9c1bd.js>; rel=modulepreload')

# A page of its own: relative references, a print stylesheet, another host, a classic
# script with crossorigin, a file the build does not have, a script after the head.
PAGE = """<!doctype html><html><head>
<link rel="stylesheet" href="../css/site.0123456789ab.css">
<link rel="stylesheet" href="../css/print.css" media="print">
<link rel="stylesheet" href="https://cdn.example/x.css">
<script src="../js/analytics.js" crossorigin="anonymous"></script>
<script src="missing.js"></script>
<script nomodule src="../js/analytics.js?legacy"></script>
</head><body><script src="../assets/format-Bq7xK2pL.js"></script></body></html>
"""
PAGE_LINKS = ("</css/site.0123456789ab.css>; rel=preload; as=style, "
              "</js/analytics.js>; rel=preload; as=script; crossorigin")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = copy_site(tmp_path_factory.mktemp("preload") / "site")
    (site / "pages").mkdir()
    (site / "pages" / "relative.html").write_text(PAGE)
    compress(site)
    return site


def test_the_manifest_records_the_hints(root: Path) -> None:
    assert manifest_entry(root, "index.html")["preload"] == [
        ["/fonts/open-sans-700.woff2", 'rel=preload; as=font; type="font/woff2"; crossorigin'],
        ["/css/site.0123456789ab.css", "rel=preload; as=style"],
        ["/assets/app-3fA9c1bd.js", "rel=modulepreload"],
    ]
    assert "preload" not in manifest_entry(root, "css/print.css")


@pytest.mark.parametrize("accept_encoding", ["br", "gzip", "identity"])
def test_index_links_its_hashed_stylesheet(server: ServerProcess, accept_encoding: str) -> None:
    for path in ("/index.html", "/"):
        response = raw_request(server, path, headers={"Accept-Encoding": accept_encoding})
        assert response.status == 200
        assert response.header("Link") == INDEX_LINKS


def test_relative_references_resolve_to_served_urls(server: ServerProcess) -> None:
    response = raw_request(server, "/pages/relative.html")
    assert response.status == 200
    assert response.header("Link") == PAGE_LINKS
    for url in ("/css/site.0123456789ab.css", "/js/analytics.js"):
        assert raw_request(server, url).status == 200, url


def test_not_on_304_nor_on_assets(server: ServerProcess) -> None:
    etag = raw_request(server, "/index.html").header("ETag")
    assert etag
    assert raw_request(server, "/index.html", headers={"If-None-Match": etag}).header("Link") is None
    assert raw_request(server, "/css/site.0123456789ab.css").header("Link") is None


def test_the_cap_and_off(root: Path) -> None:
    with serving(root, {"SERVESTATIC_PRELOAD_LINKS": "1"}) as capped:
        assert raw_request(capped, "/index.html").header("Link") == INDEX_LINKS.split(", ")[0]
    with serving(root, {"SERVESTATIC_PRELOAD_LINKS": "0"}) as off:
        assert raw_request(off, "/index.html").header("Link") is None


def test_a_relative_reference_goes_under_the_prefix(root: Path) -> None:
    with serving(root, {"SERVESTATIC_PREFIX": "/site/"}) as prefixed:
        response = raw_request(prefixed, "/site/pages/relative.html")
        assert response.status == 200
        assert response.header("Link") == ("</site/css/site.0123456789ab.css>; rel=preload; as=style, "
                                           "</site/js/analytics.js>; rel=preload; as=script; crossorigin")
