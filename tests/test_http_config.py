"""Settings that change answers: cache max-ages, per-glob header rules (SERVESTATIC_HEADERS_FILE),
SPA mode, a URL prefix and the health path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.http import raw_request
from tests.support.server import ServerProcess, serving

CSP = "default-src 'self'; img-src 'self' data:"
RULES = f"""
[[rule]]
glob = "*.html"
headers = {{ Content-Security-Policy = "{CSP}" }}

[[rule]]
glob = "img/*"
headers = {{ Cache-Control = "public, max-age=600", Access-Control-Allow-Origin = "" }}

[[rule]]
glob = "docs/guide/*"
headers = {{ Cache-Control = "private, max-age=5", X-Frame-Options = "DENY" }}
"""


@pytest.fixture(scope="module")
def configured(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    rules = tmp_path_factory.mktemp("rules") / "headers.toml"
    rules.write_text(RULES, encoding="utf-8")
    env = {"SERVESTATIC_HEADERS_FILE": str(rules), "SERVESTATIC_MAX_AGE": "300",
           "SERVESTATIC_IMMUTABLE_MAX_AGE": "86400",
           "SERVESTATIC_HTML_CACHE_CONTROL": "no-cache, must-revalidate",
           "SERVESTATIC_STALE_IF_ERROR": "600"}
    with serving(root, env) as running:
        yield running


@pytest.fixture(scope="module")
def spa(root: Path) -> Iterator[ServerProcess]:
    with serving(root, {"SERVESTATIC_SPA": "true", "SERVESTATIC_IMMUTABLE_PATTERN": "banner"}) as running:
        yield running


@pytest.fixture(scope="module")
def prefixed(root: Path) -> Iterator[ServerProcess]:
    env = {"SERVESTATIC_PREFIX": "/static/", "SERVESTATIC_HEALTH_PATH": "/_ready",
           "SERVESTATIC_IMMUTABLE_PATTERN": "none"}
    with serving(root, env) as running:
        yield running


# --- cache settings and header rules


@pytest.mark.parametrize(("path", "cache_control"), [
    ("/css/print.css", "public, max-age=300, stale-if-error=600"),
    ("/css/site.0123456789ab.css", "public, max-age=86400, immutable"),
    ("/assets/app-3fA9c1bd.js", "public, max-age=86400, immutable"),
    ("/index.html", "no-cache, must-revalidate"),  # must-revalidate forbids serving it stale
    ("/img/banner.png", "public, max-age=600"),  # a rule overrides the policy
    ("/img/logo.svg", "public, max-age=600"),
    ("/docs/guide/", "private, max-age=5"),  # a later rule for an HTML file
])
def test_cache_control_settings_and_rules(configured: ServerProcess, path: str, cache_control: str) -> None:
    response = raw_request(configured, path, headers={"Accept-Encoding": "br"})
    assert response.status == 200
    assert response.header("Cache-Control") == cache_control
    # A revalidation keeps the same caching instructions.
    revalidated = raw_request(configured, path, headers={"Accept-Encoding": "br",
                                                        "If-None-Match": response.header("ETag")})
    assert revalidated.status == 304
    assert revalidated.header("Cache-Control") == cache_control


@pytest.mark.parametrize("path", ["/index.html", "/", "/docs/", "/docs/guide/index.html"])
def test_csp_rule_on_html(configured: ServerProcess, path: str) -> None:
    for encoding in ("identity", "br"):
        response = raw_request(configured, path, headers={"Accept-Encoding": encoding})
        assert response.header("Content-Security-Policy") == CSP


@pytest.mark.parametrize("path", ["/css/print.css", "/img/banner.png", "/robots.txt"])
def test_csp_rule_not_on_other_files(configured: ServerProcess, path: str) -> None:
    assert raw_request(configured, path).header("Content-Security-Policy") is None


def test_rules_add_and_remove_headers(configured: ServerProcess) -> None:
    guide = raw_request(configured, "/docs/guide/")
    assert guide.header("X-Frame-Options") == "DENY"
    assert guide.header("Access-Control-Allow-Origin") == "*"
    banner = raw_request(configured, "/img/banner.png")
    assert banner.header("Access-Control-Allow-Origin") is None  # "" removes it
    assert banner.header("X-Content-Type-Options") == "nosniff"
    assert raw_request(configured, "/index.html").header("X-Frame-Options") is None


def test_the_404_page_gets_the_rules_of_its_file(configured: ServerProcess) -> None:
    """404.html is HTML: the CSP meant for every HTML page must come with it."""
    response = raw_request(configured, "/no/such/page")
    assert response.status == 404
    assert response.header("Content-Security-Policy") == CSP
    assert response.header("X-Content-Type-Options") == "nosniff"
    assert response.header("ETag") is None
    assert response.header("Cache-Control") == "public, max-age=300, stale-if-error=600"


@pytest.mark.parametrize(("rules", "message"), [
    ("[[rule]]\nglob = '*'\nheaders = { ETag = 'x' }\n", "ETag"),
    ("[[rule]]\nglob = '*'\n", "glob"),
    ("not toml at all [", "TOML"),
])
def test_a_bad_rules_file_stops_start_up_with_one_line(root: Path, tmp_path: Path, rules: str,
                                                       message: str) -> None:
    path = tmp_path / "headers.toml"
    path.write_text(rules, encoding="utf-8")
    server = ServerProcess(root, env={"SERVESTATIC_HEADERS_FILE": str(path)})
    with pytest.raises(RuntimeError, match="exited with 2"):
        server.start()
    errors = [line for line in server.log().splitlines() if line.startswith("servestatic: error:")]
    assert len(errors) == 1
    assert "SERVESTATIC_HEADERS_FILE" in errors[0] and message in errors[0]


# --- SPA mode


@pytest.mark.parametrize("path", ["/some/route", "/app", "/users/42/edit", "/deep/route/"])
def test_spa_serves_index_for_unknown_extensionless_paths(spa: ServerProcess, root: Path,
                                                          path: str) -> None:
    response = raw_request(spa, path)
    assert response.status == 200
    assert response.body == (root / "index.html").read_bytes()
    assert response.header("Content-Type") == "text/html; charset=utf-8"
    assert response.header("Cache-Control") == "no-cache, stale-if-error=86400"
    assert response.header("ETag") == raw_request(spa, "/index.html").header("ETag")


@pytest.mark.parametrize("path", ["/missing.js", "/img/missing.png", "/some/route/data.json", "/.env"])
def test_spa_still_404s_for_missing_files(spa: ServerProcess, root: Path, path: str) -> None:
    response = raw_request(spa, path)
    assert response.status == 404
    assert response.body == (root / "404.html").read_bytes()


def test_spa_keeps_files_index_pages_and_redirects(spa: ServerProcess, root: Path) -> None:
    assert raw_request(spa, "/docs/").body == (root / "docs/index.html").read_bytes()
    assert raw_request(spa, "/docs").status == 301
    assert raw_request(spa, "/robots.txt").body == (root / "robots.txt").read_bytes()
    assert raw_request(spa, "/some/route", "POST").status == 404


def test_spa_is_off_by_default(configured: ServerProcess) -> None:
    assert raw_request(configured, "/some/route").status == 404


# --- prefix and health path


@pytest.mark.parametrize(("path", "file"), [
    ("/static/css/print.css", "css/print.css"),
    ("/static/", "index.html"),
    ("/static/docs/", "docs/index.html"),
    ("/static/data/r%C3%A9sum%C3%A9.txt", "data/résumé.txt"),
    ("/static/.well-known/security.txt", ".well-known/security.txt"),
])
def test_files_are_served_under_the_prefix(prefixed: ServerProcess, root: Path, path: str,
                                           file: str) -> None:
    response = raw_request(prefixed, path)
    assert response.status == 200
    assert response.body == (root / file).read_bytes()


@pytest.mark.parametrize("path", ["/css/print.css", "/index.html", "/robots.txt", "/static/.env",
                                  "/static/index.html.br", "/static/../robots.txt", "/staticcss/print.css",
                                  "/healthz"])
def test_nothing_outside_the_prefix(prefixed: ServerProcess, path: str) -> None:
    assert raw_request(prefixed, path).status == 404


def test_redirect_under_the_prefix(prefixed: ServerProcess) -> None:
    response = raw_request(prefixed, "/static/docs?a=1")
    assert response.status == 301
    assert response.header("Location") == "/static/docs/?a=1"


def test_health_path_is_configurable(prefixed: ServerProcess) -> None:
    for method in ("GET", "HEAD"):
        response = raw_request(prefixed, "/_ready", method)
        assert response.status == 200
        assert response.header("Cache-Control") == "no-store"
    assert raw_request(prefixed, "/_ready").body == b"ok\n"
    assert raw_request(prefixed, "/_ready", "POST").status == 405


# --- which names count as hashed, decided at serve time


def test_immutable_pattern_none_caches_hashed_names_briefly(prefixed: ServerProcess) -> None:
    for path in ("/static/assets/app-3fA9c1bd.js", "/static/css/site.0123456789ab.css"):
        cache_control = raw_request(prefixed, path).header("Cache-Control")
        assert cache_control == "public, max-age=60, stale-if-error=86400"


def test_immutable_pattern_regex_replaces_auto(spa: ServerProcess) -> None:
    immutable = "public, max-age=31536000, immutable"
    assert raw_request(spa, "/img/banner.png").header("Cache-Control") == immutable
    cache_control = raw_request(spa, "/assets/app-3fA9c1bd.js").header("Cache-Control")
    assert cache_control == "public, max-age=60, stale-if-error=86400"
    assert raw_request(spa, "/index.html").header("Cache-Control") == "no-cache, stale-if-error=86400"
