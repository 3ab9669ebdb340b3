"""Dictionary deltas through the CDN recipes: Varnish with docs/cdn/varnish.vcl and nginx
with docs/cdn/nginx.conf in front of a real `servestatic serve` (tests/support/caches.py).

A client holding release 1's bundle gets release 2's as `dcz` through the cache, one
without it gets br, and the origin is asked once per (encoding class, dictionary): counted
in its access log, as tests/test_cdn.py does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.caches import Nginx, Origin, Proxy, Varnish
from tests.support.cli import compress
from tests.support.deltas import Release, available_dictionary, build, decode_dcz, write_doc_site
from tests.support.site import MANIFEST

zstandard = pytest.importorskip("zstandard")  # a test dependency (pyproject's test extra)

PROXIES: dict[str, type[Proxy]] = {"varnish": Varnish, "nginx": Nginx}
BOTH = "dcz, br, gzip"


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Release, Release]:
    base = tmp_path_factory.mktemp("deltas-cdn")
    return build(base / "r1", 1, base / "cache"), build(base / "r2", 2, base / "cache")


@pytest.fixture(scope="module", params=sorted(PROXIES))
def stack(request: pytest.FixtureRequest, releases: tuple[Release, Release],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proxy, Origin]]:
    with Origin(releases[1].root) as origin:
        proxy = PROXIES[request.param](tmp_path_factory.mktemp(request.param), origin.port).start()
        try:
            yield proxy, origin
        finally:
            proxy.stop()


def get(proxy: Proxy, path: str, **headers: str) -> tuple[httpx.Response, bytes]:
    """One request on its own connection; the body as sent (not decoded)."""
    with httpx.stream("GET", proxy.url + path, headers=headers, timeout=10) as response:
        return response, b"".join(response.iter_raw())


def test_the_delta_and_br_through_the_cache_each_fetched_once(stack: tuple[Proxy, Origin],
                                                              releases: tuple[Release, Release]) -> None:
    proxy, origin = stack
    first, second = releases
    path = "/" + second.name
    br = (second.root / (second.name + ".br")).read_bytes()
    readers = [{}, {"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Site": "same-origin"},
               {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "cross-site"}]
    for round_ in range(3):
        asking = {"Accept-Encoding": BOTH, "Available-Dictionary": first.dictionary, **readers[round_]}
        response, body = get(proxy, path, **asking)
        assert response.headers["content-encoding"] == "dcz", asking
        assert decode_dcz(body, first.data) == second.data
        assert response.headers["vary"] == "Accept-Encoding, Available-Dictionary"
        for headers in ({"Accept-Encoding": BOTH},
                        {"Accept-Encoding": "br, gzip", "Available-Dictionary": first.dictionary},
                        {"Accept-Encoding": BOTH, "Available-Dictionary": first.dictionary,
                         "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Site": "cross-site"},
                        {"Accept-Encoding": BOTH, "Available-Dictionary": first.dictionary,
                         "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "cross-site",
                         "Origin": "https://other.example"}):
            response, body = get(proxy, path, **headers)
            assert response.headers["content-encoding"] == "br", headers
            assert body == br, headers
            assert response.headers["vary"] == "Accept-Encoding, Available-Dictionary"
    fetched = sorted(entry["bytes"] for entry in origin.requests(path))
    delta = int(get(proxy, path, **{"Accept-Encoding": BOTH,
                                    "Available-Dictionary": first.dictionary})[0].headers["content-length"])
    assert fetched == sorted([delta, len(br)]), fetched


def test_an_unknown_dictionary_gets_br_and_is_kept_apart(stack: tuple[Proxy, Origin],
                                                         releases: tuple[Release, Release]) -> None:
    proxy, origin = stack
    second = releases[1]
    path = "/" + second.name
    before = len(origin.requests(path))
    for _round in range(2):
        response, body = get(proxy, path, **{"Accept-Encoding": BOTH,
                                             "Available-Dictionary": available_dictionary(b"unknown")})
        assert response.headers["content-encoding"] == "br"
        assert body == (second.root / (second.name + ".br")).read_bytes()
    assert len(origin.requests(path)) - before <= 1


def test_a_path_without_deltas_is_kept_per_dictionary_by_nginx_only(stack: tuple[Proxy, Origin]) -> None:
    """Varnish keys on the dictionary through the origin's Vary, so a path without deltas is
    one copy whatever dictionary is named; nginx chooses its key before the response, so it
    keeps one per dictionary named (docs/cdn.md says so; browsers name one only for paths
    matching a dictionary's pattern)."""
    proxy, origin = stack
    path = "/site.css"
    for value in (b"a", b"b", b"c", b"a"):
        get(proxy, path, **{"Accept-Encoding": BOTH, "Available-Dictionary": available_dictionary(value)})
    assert len(origin.requests(path)) == (1 if isinstance(proxy, Varnish) else 3)


# --- The HTML pages' dictionary (buildtime/htmldictionary.py) through the caches


@pytest.fixture(scope="module")
def doc_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("html-dictionary-cdn") / "site"
    write_doc_site(root)
    compress(root, "--html-dictionary")
    return root


@pytest.mark.parametrize("name", sorted(PROXIES))
def test_a_page_as_dcz_and_br_through_the_cache_each_fetched_once(
        doc_site: Path, name: str, tmp_path: Path) -> None:
    """A navigation naming the HTML dictionary gets the page's delta through the cache, one
    naming none gets br, and the origin is asked once for each."""
    manifest = json.loads((doc_site / MANIFEST).read_text())
    dictionary = (doc_site / manifest["html_dictionary"]).read_bytes()
    page = next(iter(sorted(relative for relative, entry in manifest["files"].items() if "deltas" in entry)))
    navigate = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "none"}
    # HTML is no-cache for browsers; CDN-Cache-Control lets the cache keep it (docs/cdn.md).
    with Origin(doc_site, env={"SERVESTATIC_CDN_MAX_AGE": "3600"}) as origin:
        proxy = PROXIES[name](tmp_path / name, origin.port).start()
        try:
            for _round in range(2):
                holding = {"Accept-Encoding": BOTH, "Available-Dictionary": available_dictionary(dictionary)}
                response, body = get(proxy, "/" + page, **holding, **navigate)
                assert response.headers["content-encoding"] == "dcz"
                assert decode_dcz(body, dictionary) == (doc_site / page).read_bytes()
                response, body = get(proxy, "/" + page, **{"Accept-Encoding": BOTH, **navigate})
                assert response.headers["content-encoding"] == "br"
                assert body == (doc_site / (page + ".br")).read_bytes()
                assert 'rel="compression-dictionary"' in response.headers["link"]
            assert len(origin.requests("/" + page)) == 2
        finally:
            proxy.stop()
