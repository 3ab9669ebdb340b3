"""What a real browser (headless Chromium) sees of servestatic's answers.

Chromium is driven over the DevTools protocol (tests/support/chromium.py), one process
per test, and each test waits in real time for what it looks for: in the page's DOM, or
in the origin's access log. (A `--dump-dom` visit ends when the page's virtual time is
spent, which on a loaded machine can come before a fetch has finished.)

Timing-Allow-Origin: a page on one origin fetches a file from another (127.0.0.1 and
localhost are two origins: a site and its CDN host, say); Resource Timing reports the
file's size to the page only when the answer allows its origin, which real-user
monitoring needs. The page writes what it saw into its DOM.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import needs_tool, wait_for
from tests.support.chromium import Chromium
from tests.support.server import ServerProcess

PAGE = """<!doctype html><html><head><title>timing</title></head><body><p id=out>pending</p>
<script>
const url = new URL("/asset.bin", location.href.replace("127.0.0.1", "localhost")).href;
new PerformanceObserver(list => {
  for (const entry of list.getEntriesByName(url))
    document.getElementById("out").textContent = "size=" + entry.encodedBodySize;
}).observe({type: "resource", buffered: true});
fetch(url, {mode: "no-cors"});
</script></body></html>
"""
ASSET_SIZE = 3000


def shows(browser: Chromium, element: str, text: str) -> bool:
    """Wait until the page's element of that id holds `text`; fail saying what the page
    holds and what Chromium fetched."""
    return browser.wait_until(f"document.getElementById({element!r})?.textContent === {text!r}",
                              f"#{element} to read {text!r}")


@pytest.mark.parametrize(("timing", "expected"), [("cors", f"size={ASSET_SIZE}"), ("off", "size=0")])
def test_resource_timing_sees_a_cross_origin_file_only_when_allowed(tmp_path: Path, timing: str,
                                                                    expected: str) -> None:
    chromium = needs_tool("chromium")
    site = tmp_path / "site"
    site.mkdir()
    (site / "page.html").write_text(PAGE)
    (site / "asset.bin").write_bytes(os.urandom(ASSET_SIZE))  # random: no compressed variant
    with (ServerProcess(site, env={"SERVESTATIC_TIMING_ALLOW_ORIGIN": timing}) as server,
          Chromium(chromium, tmp_path / "profile") as browser):
        browser.visit(f"http://127.0.0.1:{server.port}/page.html")
        assert shows(browser, "out", expected)


# --- Dictionary deltas (RFC 9842 dcz; docs/http.md, "Dictionary deltas")


def test_a_returning_browser_gets_the_changed_bundle_as_a_delta_and_runs_it(tmp_path: Path) -> None:
    """Release 1 loaded; the site rebuilt as release 2 with its bundle changed, served on the
    same origin; Chromium loads it again: the origin's log shows the new bundle sent as the
    delta's bytes, and the page ran release 2's code. (Chromium keeps a `Use-As-Dictionary`
    response over http://127.0.0.1 and sends `Available-Dictionary` with `dcb, dcz` for the
    next URL its pattern matches.)"""
    chromium = needs_tool("chromium")
    pytest.importorskip("zstandard")
    from tests.support.caches import Origin
    from tests.support.deltas import build
    from tests.support.server import free_port
    from tests.support.site import manifest_entry

    cache, port = tmp_path / "cache", free_port()
    with Chromium(chromium, tmp_path / "profile") as browser:
        for release in (1, 2):
            site = build(tmp_path / f"release{release}", release, cache)
            with Origin(site.root, port=port) as origin:  # one origin: dictionaries are kept per origin
                browser.visit(f"{origin.url}/index.html")
                assert shows(browser, "release", f"release {release}")  # the page ran this release's code
                bundle_requests = origin.requests("/" + site.name)
    (delta,) = manifest_entry(site.root, site.name)["deltas"].values()
    assert [(entry["status"], entry["bytes"]) for entry in bundle_requests] == [(200, delta["size"])]
    assert delta["size"] < (site.root / (site.name + ".br")).stat().st_size / 10


# --- The HTML pages' dictionary (RFC 9842 dcz; docs/http.md, "A dictionary for the HTML pages")

# The first page follows a link to the next as soon as it has loaded: a reader's click.
FOLLOW = """<script>
addEventListener("load", () => document.querySelector("nav a[href='/configure-1.html']").click());
</script>"""


def test_a_browser_fetches_the_html_dictionary_and_gets_the_next_page_as_dcz(tmp_path: Path) -> None:
    """Chromium loads a page and, when idle, fetches the dictionary its Link announces (the
    origin's log, polled, shows it). It then goes to a page whose link is followed: the
    origin's log shows the next page sent as its delta's bytes, and the page Chromium shows
    is that page, decoded. One Chromium process throughout, driven over the DevTools
    protocol: the dictionary is fetched on Chromium's own idle clock, which a `--dump-dom`
    visit's virtual time can end first on a loaded machine."""
    chromium = needs_tool("chromium")
    pytest.importorskip("zstandard")
    import json

    from tests.support.caches import Origin
    from tests.support.cli import compress
    from tests.support.deltas import write_doc_site
    from tests.support.site import MANIFEST

    root = tmp_path / "site"
    start, following, elsewhere = write_doc_site(root, script=FOLLOW)[:3]
    compress(root, "--html-dictionary")
    manifest = json.loads((root / MANIFEST).read_text())
    dictionary = "/" + manifest["html_dictionary"]
    (delta,) = manifest["files"][following]["deltas"].values()
    br = {name: (root / (name.lstrip("/") + ".br")).stat().st_size for name in (elsewhere, dictionary)}
    with Origin(root) as origin, Chromium(chromium, tmp_path / "profile") as browser:
        browser.visit(f"{origin.url}/{elsewhere}")
        fetched = wait_for(lambda: [(entry["status"], entry["bytes"])
                                    for entry in origin.requests(dictionary)],
                           30, lambda: "Chromium to fetch the dictionary; it fetched:\n"
                                       + browser.network_log())
        assert fetched == [(200, br[dictionary])]
        browser.visit(f"{origin.url}/{start}")  # whose script follows a link to the next page
        # Chromium shows the followed page, decoded, whole:
        browser.wait_until(f"document.getElementById('title')?.textContent === {following!r}"
                           " && document.readyState === 'complete'", "the followed page")
        seen = [(entry["status"], entry["bytes"]) for entry in origin.requests("/" + following)]
    assert seen == [(200, delta["size"])], seen
    assert delta["size"] < (root / (following + ".br")).stat().st_size * 0.9
