"""103 Early Hints (SERVESTATIC_EARLY_HINTS): a page's preload Link header sent before its 200,
over a real server in both answer paths, read by a raw client; and what other clients make
of it.

Off by default: a 103 reaches clients that misread it (Python's http.client, below, takes it
for the final answer), and what it gains is at a CDN that turns it into early hints of its
own or at a client that waits on a slow origin.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ANSWER_PATHS
from tests.support.server import ServerProcess, WsgiFront, serving
from tests.test_http_preload import INDEX_LINKS
from tests.test_wsgi_differential import exchange, parse, request_bytes

ON = {"SERVESTATIC_EARLY_HINTS": "true"}


@pytest.fixture(scope="module", params=sorted(ANSWER_PATHS))
def hinting(root: Path, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with serving(root, {**ANSWER_PATHS[request.param], **ON}) as running:
        yield running


def answers(server: ServerProcess, method: str, target: str, headers: dict[str, str] | None = None,
            version: str = "HTTP/1.1") -> list[tuple[str, list[tuple[str, str]], bytes]]:
    """Every answer to one request, interim ones first: (status line, headers, body)."""
    raw = request_bytes(method, target, headers).replace(b" HTTP/1.1\r\n", f" {version}\r\n".encode(), 1)
    rest = exchange(server.port, raw)
    found = []
    while rest:
        answer, rest = parse(rest, method)
        found.append((answer.status_line, answer.headers, answer.body))
    return found


def test_a_page_gets_its_preload_links_in_a_103_first(hinting: ServerProcess, root: Path) -> None:
    hint, page = answers(hinting, "GET", "/index.html", {"Accept-Encoding": "identity"})
    assert hint == ("HTTP/1.1 103 Early Hints", [("link", INDEX_LINKS)], b"")
    assert page[0] == "HTTP/1.1 200 OK"
    assert ("link", INDEX_LINKS) in page[1]
    assert page[2] == (root / "index.html").read_bytes()


@pytest.mark.parametrize(("method", "target", "headers", "version"), [
    ("GET", "/index.html", {}, "HTTP/1.0"),  # an HTTP/1.0 client takes no 1xx (RFC 9110 15.2)
    ("HEAD", "/index.html", {}, "HTTP/1.1"),
    ("GET", "/index.html", {"If-None-Match": "*"}, "HTTP/1.1"),  # a 304
    ("GET", "/css/print.css", {}, "HTTP/1.1"),  # no preload links
    ("GET", "/no-such-page", {}, "HTTP/1.1"),
], ids=["http-1.0", "head", "304", "asset", "404"])
def test_no_103_where_it_has_nothing_to_say(hinting: ServerProcess, method: str, target: str,
                                            headers: dict[str, str], version: str) -> None:
    found = answers(hinting, method, target, headers, version)
    assert len(found) == 1, found
    assert found[0][0].split(" ")[1] in ("200", "304", "404")


def test_off_by_default(server: ServerProcess) -> None:
    [page] = answers(server, "GET", "/index.html")
    assert page[0] == "HTTP/1.1 200 OK"


def test_clients_that_know_1xx_get_the_page(hinting: ServerProcess, root: Path) -> None:
    """httpx (h11) reads past the 103 to the 200, as RFC 9110 section 15.2 requires of every
    client; Python's http.client does not, which is why the setting is off by default."""
    response = httpx.get(hinting.url + "/index.html", headers={"Accept-Encoding": "identity"})
    assert (response.status_code, response.content) == (200, (root / "index.html").read_bytes())
    connection = http.client.HTTPConnection("127.0.0.1", hinting.port, timeout=10)
    try:
        connection.request("GET", "/index.html")
        assert connection.getresponse().status == 103
    finally:
        connection.close()


def test_the_wsgi_front_under_plain_gunicorn_sends_them_too(root: Path) -> None:
    """servestatic.wsgi:application uses the server's wsgi.early_hints (gunicorn's)."""
    server = WsgiFront(root, ON).start()
    try:
        hint, page = answers(server, "GET", "/index.html")
        assert hint == ("HTTP/1.1 103 Early Hints", [("link", INDEX_LINKS)], b"")
        assert page[0] == "HTTP/1.1 200 OK"
    finally:
        assert server.stop() == 0, server.log()
