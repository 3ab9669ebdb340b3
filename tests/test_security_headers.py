"""Security headers and the https redirect on static answers (core/security.py).

With a Django project, held against Django itself: the example project (its
SecurityMiddleware and XFrameOptionsMiddleware settings) serves a page through
Django and a file through servestatic from the same server, and the file must
carry what the page carries, over http and over https, through the event loop
and through the ASGI front; with SECURE_SSL_REDIRECT on, a plain-http request
for a file must be redirected as one for a page is.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import DJANGO_PROJECT
from tests.support.cli import SERVESTATIC, compress, environment
from tests.support.django import collectstatic
from tests.support.http import raw_request
from tests.support.server import ServerProcess

SECURITY_HEADERS = ("strict-transport-security", "x-frame-options", "referrer-policy",
                    "cross-origin-opener-policy", "x-content-type-options")


@pytest.fixture(scope="module")
def static_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    static_root = tmp_path_factory.mktemp("django-security") / "staticfiles"
    collectstatic(static_root)
    return static_root


def django_server(static_root: Path, **env: str) -> ServerProcess:
    return ServerProcess(static_root, cwd=DJANGO_PROJECT, env={
        "DJANGO_STATIC_ROOT": str(static_root), "SERVESTATIC_PREFIX": "/static/",
        "SERVESTATIC_APP": "mysite.wsgi:application", **env})


@pytest.fixture(scope="module", params=["loop", "asgi-front"])
def server(static_root: Path, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    fast_path = "true" if request.param == "loop" else "false"
    with django_server(static_root, SERVESTATIC_FAST_PATH=fast_path) as running:
        yield running


def stylesheet(base_url: str) -> str:
    """The hashed stylesheet Django's page links."""
    found = re.search(r'href="(/static/hello/style\.[0-9a-f]{12}\.css)"', httpx.get(base_url + "/").text)
    assert found
    return found.group(1)


def security(response: httpx.Response) -> dict[str, str]:
    return {name: response.headers[name] for name in SECURITY_HEADERS if name in response.headers}


@pytest.mark.parametrize("forwarded", [{}, {"X-Forwarded-Proto": "https"}], ids=["http", "https"])
def test_a_static_file_carries_what_django_puts_on_a_page(server: ServerProcess,
                                                          forwarded: dict[str, str]) -> None:
    page = httpx.get(server.url + "/hello/", headers=forwarded)
    static = httpx.get(server.url + stylesheet(server.url), headers=forwarded)
    assert static.headers["etag"] and "etag" not in page.headers  # servestatic's, and Django's
    assert security(static) == security(page)
    expected = {"x-frame-options": "SAMEORIGIN", "referrer-policy": "strict-origin-when-cross-origin",
                "cross-origin-opener-policy": "same-origin-allow-popups", "x-content-type-options": "nosniff"}
    if forwarded:  # gunicorn trusts X-Forwarded-Proto from 127.0.0.1: https, so HSTS
        expected["strict-transport-security"] = "max-age=3600; includeSubDomains"
    assert security(static) == expected


def test_a_not_modified_answer_over_https_keeps_hsts(server: ServerProcess) -> None:
    url = server.url + stylesheet(server.url)
    etag = httpx.get(url).headers["etag"]
    answer = httpx.get(url, headers={"If-None-Match": etag, "X-Forwarded-Proto": "https"})
    assert answer.status_code == 304
    assert answer.headers["strict-transport-security"] == "max-age=3600; includeSubDomains"
    assert "strict-transport-security" not in httpx.get(url, headers={"If-None-Match": etag}).headers


@pytest.fixture(scope="module", params=["loop", "asgi-front"])
def redirecting(static_root: Path, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    fast_path = "true" if request.param == "loop" else "false"
    with django_server(static_root, DJANGO_SSL_REDIRECT="1", SERVESTATIC_FAST_PATH=fast_path) as running:
        yield running


def test_a_plain_http_static_request_is_redirected_as_a_page_is(redirecting: ServerProcess,
                                                                static_root: Path) -> None:
    path = stylesheet_from_root(static_root)
    for target in (path + "?v=1", "/hello/?name=CDN"):
        answer = httpx.get(redirecting.url + target)
        assert answer.status_code == 301, target
        assert answer.headers["location"] == f"https://127.0.0.1:{redirecting.port}{target}"
    page = httpx.get(redirecting.url + "/hello/?name=CDN")
    static = httpx.get(redirecting.url + path + "?v=1")
    assert security(static) == security(page)
    assert "strict-transport-security" not in static.headers  # not over http
    # Over https (forwarded by a trusted peer) both are answered.
    https = {"X-Forwarded-Proto": "https"}
    assert httpx.get(redirecting.url + path, headers=https).status_code == 200
    assert httpx.get(redirecting.url + "/hello/", headers=https).status_code == 200
    # The health path is never redirected: load balancers probe it over http.
    assert httpx.get(redirecting.url + "/healthz").status_code == 200


def test_a_host_django_does_not_allow_is_not_redirected_to(redirecting: ServerProcess,
                                                           static_root: Path) -> None:
    path = stylesheet_from_root(static_root)
    static = raw_request(redirecting, path, headers={"Host": "evil.example"})
    page = raw_request(redirecting, "/hello/", headers={"Host": "evil.example"})
    assert page.status == 400
    assert static.status == 400
    assert static.header("Location") is None


def test_the_proxy_ssl_header_decides_as_in_django(static_root: Path) -> None:
    path = stylesheet_from_root(static_root)
    with django_server(static_root, DJANGO_SSL_REDIRECT="1",
                       DJANGO_PROXY_SSL_HEADER="HTTP_X_SCHEME") as server:
        for headers, status in (({"X-Scheme": "https"}, 200),
                                ({"X-Scheme": "http", "X-Forwarded-Proto": "https"}, 301),
                                ({"X-Forwarded-Proto": "https"}, 200)):  # absent: gunicorn's scheme
            assert httpx.get(server.url + "/hello/", headers=headers).status_code == status, headers
            assert httpx.get(server.url + path, headers=headers).status_code == status, headers


def test_an_untrusted_peer_cannot_claim_https(static_root: Path) -> None:
    path = stylesheet_from_root(static_root)
    with django_server(static_root, DJANGO_SSL_REDIRECT="1", FORWARDED_ALLOW_IPS="10.9.9.9") as server:
        https = {"X-Forwarded-Proto": "https"}
        assert httpx.get(server.url + "/hello/", headers=https).status_code == 301
        assert httpx.get(server.url + path, headers=https).status_code == 301


def stylesheet_from_root(static_root: Path) -> str:
    """The hashed stylesheet's URL path, from the collected root (without asking the server)."""
    name = next(static_root.glob("hello/style.*.css")).name
    assert re.fullmatch(r"style\.[0-9a-f]{12}\.css", name), name
    return f"/static/hello/{name}"


# --- any app: the settings


def https_rules(tmp_path: Path, table: str) -> str:
    path = tmp_path / "headers.toml"
    path.write_text(table)
    return str(path)


def test_hsts_and_redirect_from_the_rules_file_without_django(site: Path, tmp_path: Path) -> None:
    compress(site)
    rules = https_rules(tmp_path, '[https]\nhsts = "max-age=600; preload"\nredirect = true\n'
                                  'host = "www.example.com"\n'
                                  '[[rule]]\nglob = "*"\nheaders = { X-Frame-Options = "DENY" }\n')
    with ServerProcess(site, env={"SERVESTATIC_HEADERS_FILE": rules}) as server:
        plain = httpx.get(server.url + "/robots.txt?x=1")
        assert plain.status_code == 301
        assert plain.headers["location"] == "https://www.example.com/robots.txt?x=1"
        secure = httpx.get(server.url + "/robots.txt", headers={"X-Forwarded-Proto": "https"})
        assert secure.status_code == 200
        assert secure.headers["strict-transport-security"] == "max-age=600; preload"
        assert secure.headers["x-frame-options"] == "DENY"
        missing = httpx.get(server.url + "/nope.txt", headers={"X-Forwarded-Proto": "https"})
        assert missing.status_code == 404
        assert missing.headers["strict-transport-security"] == "max-age=600; preload"
        assert httpx.get(server.url + "/healthz").status_code == 200


def test_the_rules_file_overrides_the_django_settings(static_root: Path, tmp_path: Path) -> None:
    rules = https_rules(tmp_path, '[https]\nhsts = ""\n[[rule]]\nglob = "*"\n'
                                  'headers = { X-Frame-Options = "" }\n')
    path = stylesheet_from_root(static_root)
    with django_server(static_root, SERVESTATIC_HEADERS_FILE=rules) as server:
        static = httpx.get(server.url + path, headers={"X-Forwarded-Proto": "https"})
        assert "strict-transport-security" not in static.headers
        assert "x-frame-options" not in static.headers
        assert static.headers["referrer-policy"] == "strict-origin-when-cross-origin"


def test_without_hsts_or_redirect_nothing_is_added(site: Path) -> None:
    compress(site)
    with ServerProcess(site) as server:
        answer = httpx.get(server.url + "/robots.txt", headers={"X-Forwarded-Proto": "https"})
        assert answer.status_code == 200
        assert "strict-transport-security" not in answer.headers
        assert httpx.get(server.url + "/robots.txt").status_code == 200


def test_a_wrong_https_table_stops_startup_with_one_line(site: Path, tmp_path: Path) -> None:
    compress(site)
    rules = https_rules(tmp_path, '[https]\nhsts = "3600"\n')
    result = subprocess.run([*SERVESTATIC, "check", str(site)], capture_output=True, text=True,
                            env=environment({"SERVESTATIC_HEADERS_FILE": rules}), timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"servestatic: error: SERVESTATIC_HEADERS_FILE: {rules}: [https] hsts = '3600'; expected '' or "
        "max-age=SECONDS with optional '; includeSubDomains' and '; preload'"]
