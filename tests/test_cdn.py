"""The CDN recipes, run: Varnish with docs/cdn/varnish.vcl and nginx with docs/cdn/nginx.conf
in front of a real `servestatic serve` (see tests/support/caches.py for how they are started).

What reached the origin is read from its access log, so "once per encoding"
and "revalidated with a 304" are counted at the origin, not guessed from the
cache's headers.
"""

from __future__ import annotations

import json
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from servestatic.site.names import MANIFEST_NAME
from tests.support.caches import Nginx, Origin, Proxy, Varnish
from tests.support.cli import SERVESTATIC, compress
from tests.support.http import raw_request
from tests.support.offload import run as offload_run
from tests.support.offload import site_urls
from tests.support.site import copy_site

# Accept-Encoding as clients spell it -> the Content-Encoding they must get (None: identity).
CLIENTS: dict[str, str | None] = {
    "gzip, deflate, br": "br",
    "gzip, deflate, br, zstd": "br",
    "br, gzip": "br",
    "gzip;q=1.0, br;q=0.9": "br",
    "gzip, deflate": "gzip",
    "gzip": "gzip",
    "br;q=0, gzip": "gzip",
    "identity": None,
    "deflate": None,
    "br;q=0, gzip;q=0": None,
}
MAX_AGE = 2  # of unhashed files and of the 404 page, so that expiry fits in a test
PROXIES: dict[str, type[Proxy]] = {"varnish": Varnish, "nginx": Nginx}


def start_proxy(kind: str, workdir: Path, origin: Origin) -> Proxy:
    return PROXIES[kind](workdir, origin.port).start()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_site(tmp_path_factory.mktemp("cdn") / "site")
    compress(root)
    return root


@pytest.fixture(scope="module", params=sorted(PROXIES))
def stack(request: pytest.FixtureRequest, site: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proxy, Origin]]:
    with Origin(site, env={"SERVESTATIC_MAX_AGE": str(MAX_AGE)}) as origin:
        proxy = start_proxy(request.param, tmp_path_factory.mktemp(request.param), origin)
        try:
            yield proxy, origin
        finally:
            proxy.stop()


def get(proxy: Proxy, path: str, accept_encoding: str, **headers: str) -> httpx.Response:
    """One request on a connection of its own, as a separate client would send it."""
    return httpx.get(proxy.url + path, headers={"Accept-Encoding": accept_encoding, **headers},
                     timeout=10)


def test_every_client_gets_its_encoding_and_the_origin_serves_each_once(
        stack: tuple[Proxy, Origin], site: Path) -> None:
    proxy, origin = stack
    path = "/assets/app-3fA9c1bd.js"  # a content-hashed name: immutable for a year
    original = (site / path[1:]).read_bytes()
    for _round in range(3):
        for accept_encoding, coding in CLIENTS.items():
            response = get(proxy, path, accept_encoding)
            assert response.status_code == 200
            assert response.headers.get("content-encoding") == coding, accept_encoding
            assert response.content == original
            assert response.headers["vary"] == "Accept-Encoding"
            assert "immutable" in response.headers["cache-control"]
    fetched = origin.requests(path)
    sizes = {(site / (path[1:] + suffix)).stat().st_size for suffix in (".br", ".gz")}
    assert sorted(entry["bytes"] for entry in fetched) == sorted({*sizes, len(original)}), fetched


def test_ranges_through_the_cache(stack: tuple[Proxy, Origin], site: Path) -> None:
    proxy, _origin = stack
    for path in ("/js/analytics.js", "/js/analytics.js"):  # a miss, then a hit
        original = (site / path[1:]).read_bytes()
        response = get(proxy, path, "identity", Range="bytes=5-14")
        assert response.status_code == 206
        assert response.headers["content-range"] == f"bytes 5-14/{len(original)}"
        assert response.content == original[5:15]
    brotli_bytes = (site / "js/analytics.js.br").read_bytes()
    headers = {"Accept-Encoding": "gzip, deflate, br", "Range": "bytes=0-9"}
    with httpx.stream("GET", proxy.url + "/js/analytics.js", headers=headers, timeout=10) as response:
        assert response.status_code == 206
        assert response.headers["content-encoding"] == "br"
        assert response.headers["content-range"] == f"bytes 0-9/{len(brotli_bytes)}"
        assert b"".join(response.iter_raw()) == brotli_bytes[:10]  # a range of the brotli bytes


def test_http_1_0_client(stack: tuple[Proxy, Origin], site: Path) -> None:
    proxy, _origin = stack
    original = (site / "css/print.css").read_bytes()
    for _ in range(2):  # a miss, then a hit
        answer = raw_request(proxy, "", raw=b"GET /css/print.css HTTP/1.0\r\nHost: example.test\r\n\r\n")
        assert answer.status == 200
        assert answer.header("Transfer-Encoding") is None
        assert answer.body == original


def test_a_404_is_cached_for_its_max_age_and_no_longer(stack: tuple[Proxy, Origin]) -> None:
    proxy, origin = stack
    path = "/no/such/page"
    first = get(proxy, path, "identity")
    fetched_at = time.monotonic()
    assert first.status_code == 404
    assert first.headers["cache-control"] == f"public, max-age={MAX_AGE}, stale-if-error=86400"
    assert get(proxy, path, "identity").status_code == 404
    assert len(origin.requests(path)) == 1
    deadline = fetched_at + MAX_AGE + 3
    while len(origin.requests(path)) == 1 and time.monotonic() < deadline:
        assert get(proxy, path, "identity").status_code == 404
        time.sleep(0.1)  # polling for the expiry, which is the property under test
    refetched_after = time.monotonic() - fetched_at
    assert len(origin.requests(path)) == 2
    assert MAX_AGE - 0.5 <= refetched_after <= MAX_AGE + 3


def test_html_is_revalidated_at_the_origin_with_304s(stack: tuple[Proxy, Origin], site: Path) -> None:
    """`no-cache` HTML: every request asks the origin, which answers 304 while it is unchanged.

    nginx's proxy_cache never stores a `no-cache` response, so there every
    request is a full 200 at the origin: the limit docs/cdn.md states.
    """
    proxy, origin = stack
    original = (site / "docs/index.html").read_bytes()
    responses = [get(proxy, "/docs/", "gzip, deflate, br") for _ in range(3)]
    for response in responses:
        assert response.status_code == 200
        assert response.headers["content-encoding"] == "br"
        assert response.headers["cache-control"] == "no-cache, stale-if-error=86400"
        assert response.content == original
    etag = responses[0].headers["etag"]
    conditional = get(proxy, "/docs/", "gzip, deflate, br", **{"If-None-Match": etag})
    statuses = [entry["status"] for entry in origin.requests("/docs/")]
    if isinstance(proxy, Varnish):
        assert conditional.status_code == 304
        assert statuses == [200, 304, 304, 304]
    else:
        assert conditional.status_code == 200  # nginx drops the client's validators too
        assert statuses == [200, 200, 200, 200]


# Seconds after the origin stops during which every answer must still be the last good copy:
# the Bar's 60 s with Varnish; nginx, which keeps no HTML (its limit, docs/cdn.md), keeps the
# shorter window that saves 50 s of suite time. The origin's stale-if-error is 5 s longer,
# since a copy's window starts when it went stale (at the warm-up), not when the origin stopped.
STALE_WINDOW = {"varnish": 60, "nginx": 10}
PROBE_DELAY = 5  # seconds within which the Varnish recipe's probe must see the origin up again


def answers(proxy: Proxy, expected: dict[str, tuple[int, bytes]]) -> bool:
    return all((response.status_code, response.content) == answer
               for response, answer in ((get(proxy, path, "gzip, deflate, br"), answer)
                                        for path, answer in expected.items()))


@pytest.mark.parametrize("kind", sorted(PROXIES))
def test_the_last_good_copy_is_answered_while_the_origin_is_down(
        kind: str, site: Path, tmp_path: Path) -> None:
    """Warm the cache, stop the origin: the HTML (Varnish; nginx never stores `no-cache`),
    a hashed asset and the 404 page are still answered for STALE_WINDOW seconds, checked
    about four times a second, and no longer than stale-if-error;
    the origin back, the next request for the HTML revalidates there (a 304).

    Every answer is right from the moment the origin stops: before Varnish's probe has
    seen it down (about 2 s), a request whose revalidation fails gets the stale copy.
    """
    window = STALE_WINDOW[kind]
    stale_if_error = window + 5
    env = {"SERVESTATIC_MAX_AGE": str(MAX_AGE), "SERVESTATIC_STALE_IF_ERROR": str(stale_if_error)}
    origin = Origin(site, env=env).start()
    proxy = start_proxy(kind, tmp_path, origin)
    html_cached = kind == "varnish"
    expected = {"/index.html": (200, (site / "index.html").read_bytes()),
                "/assets/app-3fA9c1bd.js": (200, (site / "assets/app-3fA9c1bd.js").read_bytes()),
                "/no/such/page": (404, (site / "404.html").read_bytes())}
    if not html_cached:
        del expected["/index.html"]
    try:
        assert answers(proxy, expected)
        assert origin.stop() == 0
        stopped = time.monotonic()
        # From here on the 404 page (max-age 2) and the HTML (no-cache) are stale:
        # every answer is the kept copy.
        checks = 0
        while time.monotonic() < stopped + window:
            assert answers(proxy, expected), f"a wrong answer after {time.monotonic() - stopped:.1f} s"
            checks += 1
            time.sleep(0.25)  # pacing the checks over the window, which is the property under test
        assert answers(proxy, expected), "a wrong answer at the end of the window"  # at >= window s
        assert checks >= 2 * window
        if html_cached:
            # Past the window the stale copy is no longer answered.
            while get(proxy, "/index.html", "gzip, deflate, br").status_code == 200:
                assert time.monotonic() < stopped + stale_if_error + 3, "stale HTML outlived stale-if-error"
                time.sleep(0.2)  # polling for the end of the window
        origin = Origin(site, port=origin.port, env=env).start()
        restarted = time.monotonic()
        while (response := get(proxy, "/index.html", "gzip, deflate, br")).status_code != 200:
            assert time.monotonic() < restarted + PROBE_DELAY, "the origin is back but not reached"
            time.sleep(0.2)  # polling for the probe to see the origin up
        assert response.content == (site / "index.html").read_bytes()
        # Varnish kept the copy past its grace (keep): the first request revalidates it.
        statuses = [entry["status"] for entry in origin.requests("/index.html")]
        assert statuses == ([304] if html_cached else [200])
    finally:
        proxy.stop()
        origin.stop()


def test_purge_after_a_deploy_with_servestatic_diff(tmp_path: Path) -> None:
    """The deploy step of the README: keep the old manifest, compress, diff, PURGE each URL."""
    root = copy_site(tmp_path / "site")
    compress(root)
    kept = tmp_path / "previous-manifest.json"
    shutil.copyfile(root / MANIFEST_NAME, kept)
    old_robots = (root / "robots.txt").read_text()
    origin = Origin(root).start()
    proxy = start_proxy("varnish", tmp_path / "varnish", origin)
    try:
        for path in ("/robots.txt", "/css/print.css"):
            for accept_encoding in ("br, gzip", "identity"):
                assert get(proxy, path, accept_encoding).status_code == 200

        (root / "robots.txt").write_text("User-agent: *\nDisallow: /drafts/\n")
        compress(root)
        port = origin.port
        assert origin.stop() == 0
        origin = Origin(root, port=port).start()  # the deploy: same address, new build
        assert get(proxy, "/robots.txt", "identity").text == old_robots  # still cached

        purge_list = subprocess.run([*SERVESTATIC, "diff", str(kept), str(root)], check=True,
                                    capture_output=True, text=True).stdout.split()
        assert purge_list == ["/robots.txt"]
        for url in purge_list:
            assert httpx.request("PURGE", proxy.url + url).status_code == 200
        for accept_encoding in ("br, gzip", "identity"):
            assert get(proxy, "/robots.txt", accept_encoding).text == "User-agent: *\nDisallow: /drafts/\n"
            assert get(proxy, "/css/print.css", accept_encoding).status_code == 200
        assert origin.requests("/css/print.css") == []  # still served from the cache
    finally:
        proxy.stop()
        origin.stop()


class RawOrigin:
    """An origin of a few lines on a real socket (an ephemeral port, or the one given), each
    connection answered in a thread by `answer`, with the request-target its head names."""

    def __init__(self, port: int = 0):
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.read, args=(connection,), daemon=True).start()

    def read(self, connection: socket.socket) -> None:
        with connection:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = connection.recv(4096)
                if not chunk:
                    return
                head += chunk
            self.answer(connection, head.split(b" ", 2)[1].decode())

    def answer(self, connection: socket.socket, target: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.listener.close()


class ResettingOrigin(RawOrigin):
    """A raw origin that resets the connection of the first request for `path`, then answers.

    What a fetch meets when the origin closes a connection as it restarts: Varnish retries
    by itself only on a reused connection that fails before any answer, so without the
    recipe's retry this first request would be the client's 503.
    """

    def __init__(self, path: str):
        self.path = path
        self.requests_for_path = 0
        super().__init__()

    def answer(self, connection: socket.socket, target: str) -> None:
        if target == self.path:
            self.requests_for_path += 1
            if self.requests_for_path == 1:
                # SO_LINGER 0: close with a reset, as a killed process's socket does.
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nCache-Control: max-age=60\r\n"
                           b"Connection: close\r\n\r\nok")


class FailingOrigin(RawOrigin):
    """A raw origin that answers every request with a 500 and no caching headers, as an
    app's error page would, but the health path with a 200, so that Varnish's probe sees
    an origin that is up. `failed` counts the 500s."""

    def __init__(self, port: int):
        self.failed = 0
        super().__init__(port)

    def answer(self, connection: socket.socket, target: str) -> None:
        if target == "/healthz":
            status = b"200 OK"
        else:
            self.failed += 1
            status = b"500 Internal Server Error"
        connection.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 6\r\n"
                           b"Connection: close\r\n\r\nbroken")


def test_varnish_answers_the_last_good_copy_when_the_origin_answers_500(site: Path, tmp_path: Path) -> None:
    """stale-if-error covers an origin that answers 5xx as well as one that is down (RFC 5861
    section 4). Warm the cache, put an origin answering 500 in the origin's place (healthy
    by the probe), let the 404 page's max-age pass: the 404 page and the HTML (revalidated
    on every request), each asked at the failing origin, are the kept copies every time;
    the 500 is stored over nothing. (nginx 1.22 applies stale-if-error only to an origin
    it cannot reach: docs/cdn.md.)"""
    env = {"SERVESTATIC_MAX_AGE": str(MAX_AGE), "SERVESTATIC_STALE_IF_ERROR": "60"}
    origin = Origin(site, env=env).start()
    proxy = start_proxy("varnish", tmp_path, origin)
    expected = {"/no/such/page": (404, (site / "404.html").read_bytes()),
                "/index.html": (200, (site / "index.html").read_bytes())}
    failing = None
    try:
        assert answers(proxy, expected)
        assert origin.stop() == 0
        failing = FailingOrigin(origin.port)
        time.sleep(MAX_AGE + 0.5)  # the 404 page's freshness runs out: the property under test
        for _ in range(3):
            assert answers(proxy, expected)
        assert failing.failed >= 1  # the failing origin was asked, and said 500
    finally:
        proxy.stop()
        if failing is not None:
            failing.close()


def test_varnish_tries_a_failed_fetch_once_more_before_answering_503(tmp_path: Path) -> None:
    origin = ResettingOrigin("/app.js")
    proxy = Varnish(tmp_path / "varnish", origin.port).start()
    try:
        response = get(proxy, "/app.js", "identity")
        assert (response.status_code, response.text) == (200, "ok")
        assert origin.requests_for_path == 2
    finally:
        proxy.stop()
        origin.close()


# --- purge by tag (docs/cdn/varnish-xkey.vcl) and CDN-Cache-Control (SERVESTATIC_CDN_MAX_AGE)

CDN_ENV = {"SERVESTATIC_CACHE_TAG_HEADER": "cache-tag", "SERVESTATIC_CDN_MAX_AGE": "86400"}


def purge_tag(proxy: Proxy, tag: str) -> int:
    """PURGE with an xkey header: the number of objects Varnish removed."""
    response = httpx.request("PURGE", proxy.url + "/", headers={"xkey": tag}, timeout=10)
    assert response.status_code == 200, response.text
    return int(response.reason_phrase.split()[1])  # "Invalidated N objects"


def test_purging_a_tag_through_varnish_removes_exactly_the_tagged_objects(site: Path, tmp_path: Path) -> None:
    """Varnish with the recipe's xkey variant: one tag purged, only its objects reach the origin
    again; the release tag purged, everything does. HTML is kept (CDN-Cache-Control), so a
    request that reaches the origin is one the purge caused, not a revalidation."""
    release = f"release-{json.loads((site / MANIFEST_NAME).read_text())['build']}"
    origin = Origin(site, env=CDN_ENV).start()
    proxy = Varnish(tmp_path / "varnish", origin.port, variant="varnish-xkey.vcl").start()
    paths = ["/index.html", "/docs/", "/docs/guide/", "/css/print.css", "/assets/app-3fA9c1bd.js"]
    try:
        def fetch_all() -> dict[str, int]:
            """Each path once; how many times each has reached the origin so far."""
            for path in paths:
                response = get(proxy, path, "gzip, deflate, br")
                assert response.status_code == 200, path
                assert release in response.headers["cache-tag"].split(","), path
            return {path: len(origin.requests(path)) for path in paths}

        assert fetch_all() == dict.fromkeys(paths, 1)
        assert fetch_all() == dict.fromkeys(paths, 1)  # all from the cache
        assert purge_tag(proxy, "/docs/") == 2
        assert fetch_all() == {**dict.fromkeys(paths, 1), "/docs/": 2, "/docs/guide/": 2}
        assert purge_tag(proxy, "asset") == 1
        assert fetch_all() == {**dict.fromkeys(paths, 1), "/docs/": 2, "/docs/guide/": 2,
                               "/assets/app-3fA9c1bd.js": 2}
        assert purge_tag(proxy, release) == len(paths)
        assert fetch_all() == {**dict.fromkeys(paths, 2), "/docs/": 3, "/docs/guide/": 3,
                               "/assets/app-3fA9c1bd.js": 3}
        assert [entry["status"] for entry in origin.requests("/index.html")] == [200, 200]
    finally:
        proxy.stop()
        origin.stop()


OFFLOAD_REQUESTS = 1000  # N; the test sends N, then 10N, each through a fresh cache


def test_with_cdn_cache_control_ten_times_the_traffic_barely_reaches_the_origin(
        site: Path, tmp_path: Path) -> None:
    """The Bar of issue 22 in small (bench/cdn_offload.py is the full run): Zipf-like traffic
    over the site's URLs through the Varnish recipe, with SERVESTATIC_CDN_MAX_AGE on."""
    urls = site_urls(site)
    with Origin(site, env={"SERVESTATIC_CDN_MAX_AGE": "86400"}) as origin:
        small = offload_run(origin, tmp_path / "n", urls, OFFLOAD_REQUESTS)
        large = offload_run(origin, tmp_path / "10n", urls, 10 * OFFLOAD_REQUESTS)
    assert large.origin_requests < 1.5 * small.origin_requests, (small, large)
    assert large.share < 0.05, large


@pytest.mark.parametrize("kind", sorted(PROXIES))
def test_with_cdn_cache_control_html_is_kept_at_the_cache(kind: str, site: Path, tmp_path: Path) -> None:
    """SERVESTATIC_CDN_MAX_AGE: the cache keeps HTML and answers it without asking the origin
    (nginx through the X-Accel-Expires servestatic sends with it), while the client still
    gets `no-cache`; the client's own If-None-Match is answered by the cache."""
    with Origin(site, env={"SERVESTATIC_CDN_MAX_AGE": "86400"}) as origin:
        proxy = start_proxy(kind, tmp_path, origin)
        try:
            responses = [get(proxy, "/docs/", "gzip, deflate, br") for _ in range(3)]
            for response in responses:
                assert response.status_code == 200
                assert response.content == (site / "docs/index.html").read_bytes()
                assert response.headers["cache-control"] == "no-cache, stale-if-error=86400"
            etag = responses[0].headers["etag"]
            conditional = get(proxy, "/docs/", "gzip, deflate, br", **{"If-None-Match": etag})
            assert conditional.status_code == 304
            assert [entry["status"] for entry in origin.requests("/docs/")] == [200]
            if kind == "nginx":
                assert "x-accel-expires" not in responses[0].headers  # nginx keeps it to itself
        finally:
            proxy.stop()
