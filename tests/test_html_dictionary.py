"""The site-wide dictionary of the HTML pages (RFC 9842 `dcz`; buildtime/htmldictionary.py),
built by `servestatic compress --html-dictionary` and served by a real server in both answer
paths (the event loop's and the ASGI front's) and by `servestatic.wsgi:application` under
gunicorn: every page announces the dictionary with a Link, the dictionary is sent with its
Use-As-Dictionary, a client naming it gets the page's delta and every other client br, and a
deploy that retrains keeps the visitors holding the previous dictionary on small answers
(docs/http.md, "A dictionary for the HTML pages")."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from servestatic.buildtime.htmldictionary import MIN_PAGES, TRAIN_PARAMETERS, raw_content, train
from servestatic.core.answer import Answer, early_hint_headers
from tests.support.cli import compress
from tests.support.deltas import (
    SERVERS,
    available_dictionary,
    decode_dcz,
    served,
    write_doc_site,
)
from tests.support.server import ServerProcess, serving
from tests.support.site import MANIFEST

zstandard = pytest.importorskip("zstandard")

PREFIX = "/docs/"
BOTH = "dcz, br, gzip"
NAVIGATE = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}


@dataclass
class Build:
    """One compressed release of the documentation site."""

    root: Path
    pages: list[str]
    dictionary: str  # its relative path

    @property
    def dictionary_bytes(self) -> bytes:
        return (self.root / self.dictionary).read_bytes()

    @property
    def available(self) -> str:
        return available_dictionary(self.dictionary_bytes)

    def manifest(self) -> dict[str, object]:
        return json.loads((self.root / MANIFEST).read_text())


def build(root: Path, release: int, cache: Path, *args: str) -> Build:
    pages = write_doc_site(root, release=release)
    compress(root, "--cache-dir", str(cache), "--html-dictionary", *args)
    manifest = json.loads((root / MANIFEST).read_text())
    return Build(root, pages, manifest.get("html_dictionary", ""))


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Build, Build]:
    """Release 1, then release 2 (every page's text changed, so retrained) with one cache dir."""
    base = tmp_path_factory.mktemp("htmldictionary")
    return build(base / "release1", 1, base / "cache"), build(base / "release2", 2, base / "cache")


@pytest.fixture(scope="module", params=SERVERS)
def server(releases: tuple[Build, Build], request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with served(releases[1].root, request.param, {"SERVESTATIC_PREFIX": PREFIX}) as running:
        yield running


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as session:
        yield session


def get(http: httpx.Client, path: str, **headers: str) -> httpx.Response:
    # httpx would decode a br body: the raw bytes are what is checked here.
    with http.stream("GET", path, headers=headers) as response:
        response.raw = b"".join(response.iter_raw())  # type: ignore[attr-defined]
    return response


def vary(response: httpx.Response) -> set[str]:
    return {token.strip().lower() for token in response.headers.get("vary", "").split(",") if token.strip()}


def dictionary_links(response: httpx.Response) -> list[str]:
    return [value for value in response.headers.get_list("link") if "compression-dictionary" in value]


# --- build time


def test_the_dictionary_is_raw_content_under_a_hashed_name(releases: tuple[Build, Build]) -> None:
    first, second = releases
    for release in releases:
        data = release.dictionary_bytes
        assert release.dictionary == f"_servestatic/html.{hashlib.sha256(data).hexdigest()[:16]}.dict"
        assert not data.startswith(bytes.fromhex("37a430ec"))  # no zstd dictionary header
        entry = release.manifest()["files"][release.dictionary]  # type: ignore[index]
        assert entry["immutable"] is True
        assert "br" in entry["variants"]
        assert 4096 < len(data) <= 64 * 1024
    assert first.dictionary != second.dictionary  # retrained: the pages changed
    # Only the current dictionary is in the tree.
    assert sorted(path.name for path in (second.root / "_servestatic").iterdir()
                  if not path.name.endswith((".br", ".gz"))) == [second.dictionary.rpartition("/")[2]]


def test_each_page_has_deltas_against_the_current_and_the_previous_dictionary(
        releases: tuple[Build, Build]) -> None:
    first, second = releases
    files = second.manifest()["files"]
    current = available_dictionary(second.dictionary_bytes)[1:-1]
    previous = available_dictionary(first.dictionary_bytes)[1:-1]
    for page in second.pages:
        deltas = files[page]["deltas"]  # type: ignore[index]
        assert set(deltas) == {current, previous}, page
        br = (second.root / (page + ".br")).stat().st_size
        assert all(delta["size"] <= br * 0.9 for delta in deltas.values())  # the margin
    assert "deltas" not in files["site.css"]  # type: ignore[index]


def test_a_rerun_with_nothing_changed_trains_the_same_dictionary_and_compresses_nothing(
        tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = build(tmp_path / "site", 1, cache)
    made = json.loads(compress(first.root, "--cache-dir", str(cache), "--html-dictionary",
                               "--json").stdout)
    assert made["html_dictionary"]["deltas"] == len(first.pages)
    assert json.loads((first.root / MANIFEST).read_text())["html_dictionary"] == first.dictionary
    assert made["encodings"]["br"]["compressed"] == 0


def test_too_few_pages_make_no_dictionary(tmp_path: Path) -> None:
    root = tmp_path / "site"
    write_doc_site(root, pages=MIN_PAGES - 1)
    compress(root, "--html-dictionary")
    assert "html_dictionary" not in json.loads((root / MANIFEST).read_text())
    assert not (root / "_servestatic").exists()


def test_turned_off_the_dictionary_its_deltas_and_its_link_go(tmp_path: Path) -> None:
    site = build(tmp_path / "site", 1, tmp_path / "cache")
    held = site.available  # a browser that fetched it before
    compress(site.root, "--cache-dir", str(tmp_path / "cache"), "--no-html-dictionary")
    manifest = json.loads((site.root / MANIFEST).read_text())
    assert "html_dictionary" not in manifest
    assert not any(path.is_file() for path in (site.root / "_servestatic").iterdir())
    assert not any("deltas" in entry for entry in manifest["files"].values())
    with serving(site.root) as server:
        page = httpx.get(f"{server.url}/{site.pages[0]}", headers={
            "Accept-Encoding": BOTH, "Available-Dictionary": held, **NAVIGATE})
    assert page.headers["content-encoding"] == "br"
    assert dictionary_links(page) == []
    assert vary(page) == {"accept-encoding"}


def test_raw_content_is_the_trained_dictionary_without_its_header() -> None:
    samples = [f"<html><nav>{'menu item ' * 50}</nav><p>page {index}</p></html>".encode() * 4
               for index in range(20)]
    trained = zstandard.train_dictionary(4096, samples, threads=1, **TRAIN_PARAMETERS).as_bytes()
    content = train(samples, 4096)
    assert content is not None and trained.endswith(content)
    assert raw_content(content) == content
    assert len(trained) - len(content) < 1024  # the header and entropy tables only


# --- serving


def test_a_page_announces_the_dictionary_which_is_sent_as_one_for_documents(
        releases: tuple[Build, Build], http: httpx.Client) -> None:
    second = releases[1]
    page = get(http, PREFIX + second.pages[0], **{"Accept-Encoding": "br"})
    assert dictionary_links(page) == [f'<{PREFIX}{second.dictionary}>; rel="compression-dictionary"']
    assert any("rel=preload" in value for value in page.headers.get_list("link"))  # beside it
    dictionary = get(http, PREFIX + second.dictionary, **{"Accept-Encoding": "br"})
    assert dictionary.status_code == 200
    assert dictionary.headers["use-as-dictionary"] == f'match="{PREFIX}*", match-dest=("document")'
    assert "immutable" in dictionary.headers["cache-control"]
    assert unbrotli(dictionary.raw) == second.dictionary_bytes  # type: ignore[attr-defined]
    css = get(http, PREFIX + "site.css", **{"Accept-Encoding": "br"})
    assert dictionary_links(css) == [] and "use-as-dictionary" not in css.headers


def unbrotli(body: bytes) -> bytes:
    import brotli

    return brotli.decompress(body)


@pytest.mark.parametrize("which", ["current", "previous"])
def test_a_page_asked_with_a_dictionary_it_has_a_delta_for_is_sent_as_dcz(
        releases: tuple[Build, Build], http: httpx.Client, which: str) -> None:
    first, second = releases
    holder = second if which == "current" else first
    for page in second.pages[:3]:
        response = get(http, PREFIX + page, **{"Accept-Encoding": BOTH,
                                                "Available-Dictionary": holder.available, **NAVIGATE})
        assert response.status_code == 200
        assert response.headers["content-encoding"] == "dcz"
        assert vary(response) == {"accept-encoding", "available-dictionary"}
        assert decode_dcz(response.raw, holder.dictionary_bytes) == (second.root / page).read_bytes()  # type: ignore[attr-defined]
        assert len(response.raw) < (second.root / (page + ".br")).stat().st_size * 0.9  # type: ignore[attr-defined]
        assert dictionary_links(response) == [f'<{PREFIX}{second.dictionary}>; rel="compression-dictionary"']


@pytest.mark.parametrize(("headers", "why"), [
    ({"Accept-Encoding": BOTH}, "no dictionary"),
    ({"Accept-Encoding": BOTH, "Available-Dictionary": available_dictionary(b"a dictionary of no build")},
     "a dictionary the build does not know"),
    ({"Accept-Encoding": "br, gzip", "Available-Dictionary": "current"}, "no dcz in Accept-Encoding"),
])
def test_every_other_page_request_gets_br_with_the_same_vary(
        releases: tuple[Build, Build], http: httpx.Client, headers: dict[str, str], why: str) -> None:
    second = releases[1]
    page = second.pages[1]
    if headers.get("Available-Dictionary") == "current":
        headers = {**headers, "Available-Dictionary": second.available}
    response = get(http, PREFIX + page, **{**NAVIGATE, **headers})
    assert response.headers["content-encoding"] == "br", why
    assert response.raw == (second.root / (page + ".br")).read_bytes(), why  # type: ignore[attr-defined]
    assert vary(response) == {"accept-encoding", "available-dictionary"}, why
    assert len(dictionary_links(response)) == 1, why


def test_the_dictionary_link_is_not_an_early_hint(releases: tuple[Build, Build]) -> None:
    """A 103 carries a page's preload hints; the dictionary is fetched when the browser is idle."""
    from servestatic.config.settings import load_settings
    from servestatic.core.table import load_table

    second = releases[1]
    table = load_table(load_settings(environ={"SERVESTATIC_ROOT": str(second.root)}))
    static_file = table.lookup("/" + second.pages[0])
    assert static_file is not None
    representation = static_file.by_size[0]
    hints = early_hint_headers(Answer("200 OK", representation.headers, representation=representation))
    assert hints and all("compression-dictionary" not in value for _, value in hints)


def test_retrained_in_place_without_a_cache_the_old_dictionary_still_gets_deltas(tmp_path: Path) -> None:
    """A tree compressed again where it is (Django's STATIC_ROOT): the previous run's dictionary,
    still in the root, is an earlier dictionary for the new pages, and then leaves the tree."""
    root = tmp_path / "site"
    write_doc_site(root, release=1)
    compress(root, "--html-dictionary")
    old = json.loads((root / MANIFEST).read_text())["html_dictionary"]
    old_bytes = (root / old).read_bytes()
    pages = write_doc_site(root, release=2)
    compress(root, "--html-dictionary")
    manifest = json.loads((root / MANIFEST).read_text())
    assert manifest["html_dictionary"] != old
    assert not (root / old).exists() and not (root / (old + ".br")).exists()
    held = available_dictionary(old_bytes)[1:-1]
    assert all(held in manifest["files"][page]["deltas"] for page in pages)
