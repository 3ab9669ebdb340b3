"""The HTTP contract (docs/http.md), black-box over a real socket: methods, HEAD, media types,
cache policy, index files and redirects, the 404 page, the health endpoint, and what is
never served, however the request is written.

Encoding, conditional requests, ranges, CORS, configuration and chaining have their own
tests/test_http_*.py modules.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import httpx
import pytest

from tests.support.cli import compress
from tests.support.http import raw_request
from tests.support.server import ServerProcess, serving
from tests.support.site import copy_site, manifest_entry

SECRET = b"TOP-SECRET-OUTSIDE-THE-ROOT"
SPECIAL_NAMES = {"my file.txt": "my%20file.txt", "a%20b.txt": "a%2520b.txt", "c+d.txt": "c+d.txt",
                 "e;f.txt": "e;f.txt", "g'h.txt": "g'h.txt", "日本.txt": "%E6%97%A5%E6%9C%AC.txt"}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example site plus hostile and edge-case files, compressed."""
    base = tmp_path_factory.mktemp("contract")
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    site = copy_site(base / "site")
    (site / "downloads").mkdir()
    (site / "downloads" / "notes.txt.gz").write_bytes(gzip.compress(b"notes " * 100))
    (site / "gone.txt").write_text("this file is deleted after start-up\n")
    (site / "escape.txt").symlink_to(outside / "secret.txt")
    (site / "escapedir").symlink_to(outside)
    (site / "alias.txt").symlink_to(site / "robots.txt")
    (site / "names").mkdir()
    for name in SPECIAL_NAMES:
        (site / "names" / name).write_text(f"file {name}\n")
    (site / "données").mkdir()
    (site / "données" / "index.html").write_text("<!doctype html><title>données</title>\n")
    (site / "swapped.txt").write_text("a listed file, replaced by a symlink after compress\n")
    (site / "shrunk.txt").write_text("a listed file, cut short after compress\n")
    (site / "swapdir").mkdir()
    (site / "swapdir" / "same.txt").write_bytes(b"x" * len(SECRET))  # the secret's size
    compress(site)
    # A listed directory swapped for a link out of the root, holding a file of the same size.
    shutil.rmtree(site / "swapdir")
    (outside / "same.txt").write_bytes(SECRET)
    (site / "swapdir").symlink_to(outside)
    (site / "swapped.txt").unlink()
    (site / "swapped.txt").symlink_to(outside / "secret.txt")
    (site / "shrunk.txt").write_text("short\n")
    # Created after the manifest was written: the server must not find them either.
    (site / "late.txt").symlink_to(outside / "secret.txt")
    (site / "latedir").symlink_to(outside)
    (site / "late-plain.txt").write_text("not in the manifest\n")
    return site


# --- GET and HEAD


def test_get_serves_the_file_with_every_header(http: httpx.Client, root: Path) -> None:
    response = http.get("/index.html")
    entry = manifest_entry(root, "index.html")
    assert response.status_code == 200
    assert response.content == (root / "index.html").read_bytes()
    headers = response.headers
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["content-length"] == str(entry["size"])
    assert headers["etag"] == f'"{entry["hash"]}"'
    assert headers["cache-control"] == "no-cache, stale-if-error=86400"
    assert headers["vary"] == "Accept-Encoding"
    assert headers["accept-ranges"] == "bytes"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["access-control-allow-origin"] == "*"
    assert "content-encoding" not in headers
    assert "last-modified" in headers


@pytest.mark.parametrize("path", ["/index.html", "/img/banner.png", "/css/site.0123456789ab.css"])
@pytest.mark.parametrize("encoding", ["identity", "br, gzip", "gzip"])
def test_head_has_the_headers_of_get_and_no_body(server: ServerProcess, path: str,
                                                 encoding: str) -> None:
    request = {"Accept-Encoding": encoding}
    get = raw_request(server, path, "GET", request)
    head = raw_request(server, path, "HEAD", request)
    assert head.status == get.status == 200
    assert head.body == b""
    assert len(get.body) == int(get.header("Content-Length"))
    drop = {"date"}
    assert [(k, v) for k, v in head.headers if k.lower() not in drop] == [
        (k, v) for k, v in get.headers if k.lower() not in drop]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "TRACE", "PROPFIND", "FOO"])
def test_other_methods_on_a_static_path_get_405_with_allow(http: httpx.Client, method: str) -> None:
    response = http.request(method, "/css/print.css", content=b"x=1")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_options_without_preflight_headers_gets_405(http: httpx.Client) -> None:
    response = http.options("/css/print.css")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


# --- media types, nosniff, cache policy


@pytest.mark.parametrize(("path", "media_type"), [
    ("/index.html", "text/html; charset=utf-8"),
    ("/css/print.css", "text/css; charset=utf-8"),
    ("/js/analytics.js", "text/javascript; charset=utf-8"),
    ("/assets/app-3fA9c1bd.js", "text/javascript; charset=utf-8"),
    ("/assets/app-3fA9c1bd.js.map", "application/json; charset=utf-8"),
    ("/img/logo.svg", "image/svg+xml; charset=utf-8"),
    ("/site.webmanifest", "application/manifest+json; charset=utf-8"),
    ("/fonts/open-sans-700.woff2", "font/woff2"),
    ("/img/banner.png", "image/png"),
    ("/data/feed.json", "application/json; charset=utf-8"),
    ("/robots.txt", "text/plain; charset=utf-8"),
    ("/downloads/notes.txt.gz", "application/gzip"),
])
def test_media_types_with_charset_on_text_and_nosniff(http: httpx.Client, path: str,
                                                      media_type: str) -> None:
    response = http.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(("path", "cache_control"), [
    ("/css/site.0123456789ab.css", "public, max-age=31536000, immutable"),  # Django
    ("/assets/app-3fA9c1bd.js", "public, max-age=31536000, immutable"),  # Vite/Rollup
    ("/assets/format-Bq7xK2pL.js", "public, max-age=31536000, immutable"),
    ("/index.html", "no-cache, stale-if-error=86400"),
    ("/docs/", "no-cache, stale-if-error=86400"),
    ("/docs/guide/index.html", "no-cache, stale-if-error=86400"),
    ("/css/print.css", "public, max-age=60, stale-if-error=86400"),
    ("/js/analytics.js", "public, max-age=60, stale-if-error=86400"),
    ("/img/banner.png", "public, max-age=60, stale-if-error=86400"),
    ("/robots.txt", "public, max-age=60, stale-if-error=86400"),
])
def test_cache_control_by_kind_of_file(http: httpx.Client, path: str, cache_control: str) -> None:
    response = http.get(path, headers={"Accept-Encoding": "br, gzip"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == cache_control


@pytest.mark.parametrize("target", ["/css/print.css?v=123", "/css/print%2Ecss", "/css/%70rint.css"])
def test_query_strings_and_encoded_unreserved_characters_reach_the_file(server: ServerProcess,
                                                                       root: Path, target: str) -> None:
    response = raw_request(server, target)
    assert response.status == 200
    assert response.body == (root / "css/print.css").read_bytes()


def test_head_then_get_on_one_keep_alive_connection(http: httpx.Client, root: Path) -> None:
    """A HEAD answer announces a length but sends no body; the next answer must not be garbled."""
    for _ in range(3):
        assert http.head("/index.html").status_code == 200
        assert http.get("/index.html").content == (root / "index.html").read_bytes()


@pytest.mark.parametrize(("name", "encoded"), SPECIAL_NAMES.items())
def test_names_with_spaces_percent_signs_and_punctuation(server: ServerProcess, name: str,
                                                         encoded: str) -> None:
    response = raw_request(server, "/names/" + encoded)
    assert response.status == 200
    assert response.body == f"file {name}\n".encode()


def test_non_ascii_file_name(http: httpx.Client, root: Path) -> None:
    response = http.get("/data/r%C3%A9sum%C3%A9.txt")
    assert response.status_code == 200
    assert response.content == (root / "data" / "résumé.txt").read_bytes()
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    # The same name in latin-1 is another name, not this file.
    assert http.get("/data/r%E9sum%E9.txt").status_code == 404


def test_a_lone_compressed_file_is_served_as_itself(http: httpx.Client, root: Path) -> None:
    response = http.get("/downloads/notes.txt.gz", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert response.content == (root / "downloads" / "notes.txt.gz").read_bytes()


@pytest.mark.parametrize("path", ["/index.html.br", "/index.html.gz", "/css/print.css.gz",
                                  "/assets/app-3fA9c1bd.js.br", "/docs/index.html.gz"])
def test_a_variant_is_never_a_path_of_its_own(http: httpx.Client, path: str) -> None:
    assert http.get(path, headers={"Accept-Encoding": "br, gzip"}).status_code == 404


# --- index files, redirects, 404


def test_root_serves_index_html(http: httpx.Client, root: Path) -> None:
    response = http.get("/")
    assert response.status_code == 200
    assert response.content == (root / "index.html").read_bytes()
    assert response.headers["etag"] == http.get("/index.html").headers["etag"]


@pytest.mark.parametrize("directory", ["docs", "docs/guide"])
def test_directory_with_slash_serves_its_index(http: httpx.Client, root: Path, directory: str) -> None:
    response = http.get(f"/{directory}/")
    assert response.status_code == 200
    assert response.content == (root / directory / "index.html").read_bytes()


@pytest.mark.parametrize(("target", "location"), [
    ("/docs", "/docs/"),
    ("/docs?page=2&q=a%20b", "/docs/?page=2&q=a%20b"),
    ("/docs/guide", "/docs/guide/"),
    ("/docs/guide?x", "/docs/guide/?x"),
])
def test_directory_without_slash_redirects_keeping_the_query(server: ServerProcess, target: str,
                                                             location: str) -> None:
    response = raw_request(server, target)
    assert response.status == 301
    assert response.header("Location") == location


def test_non_ascii_directory_redirect_is_percent_encoded(server: ServerProcess, root: Path) -> None:
    response = raw_request(server, "/donn%C3%A9es?x=%C3%A9")
    assert response.status == 301
    assert response.header("Location") == "/donn%C3%A9es/?x=%C3%A9"
    index = raw_request(server, "/donn%C3%A9es/")
    assert index.status == 200
    assert index.body == (root / "données" / "index.html").read_bytes()


def test_only_get_and_head_are_redirected(server: ServerProcess) -> None:
    assert raw_request(server, "/docs", "HEAD").status == 301
    assert raw_request(server, "/docs", "POST").status == 404


def test_missing_file_gets_the_404_page(http: httpx.Client, root: Path) -> None:
    response = http.get("/no/such/page")
    assert response.status_code == 404
    assert response.content == (root / "404.html").read_bytes()
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    head = http.head("/no/such/page")
    assert head.status_code == 404
    assert head.content == b""


def test_404_page_is_sent_compressed_when_accepted(http: httpx.Client, root: Path) -> None:
    response = httpx.get(http.base_url.join("/no/such/page"), headers={"Accept-Encoding": "br"})
    assert response.status_code == 404
    assert response.headers["content-encoding"] == "br"
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.content == (root / "404.html").read_bytes()  # httpx decoded it


def test_plain_404_without_a_404_page(tmp_path: Path) -> None:
    site = copy_site(tmp_path / "site")
    (site / "404.html").unlink()
    compress(site)
    with serving(site) as server:
        response = httpx.get(server.url + "/missing")
    assert response.status_code == 404
    assert response.text == "404 Not Found\n"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


# --- never served


@pytest.mark.parametrize("path", [
    "/.env", "/.servestatic-manifest.json", "/.well-known/../.env", "/docs/.hidden",
    "/escape.txt", "/escapedir/secret.txt", "/late.txt", "/latedir/secret.txt", "/late-plain.txt",
])
def test_never_served_paths_get_404(http: httpx.Client, path: str) -> None:
    response = http.get(path)
    assert response.status_code == 404
    assert SECRET not in response.content
    assert b"SECRET_KEY" not in response.content


def test_without_a_manifest_the_scan_applies_the_same_rules(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    site = copy_site(tmp_path / "site")
    (site / "escape.txt").symlink_to(outside / "secret.txt")
    (site / "escapedir").symlink_to(outside)
    (site / "alias.txt").symlink_to(site / "robots.txt")
    (site / "index.html.gz").write_bytes(gzip.compress((site / "index.html").read_bytes()))
    with serving(site) as server:
        for path in ("/escape.txt", "/escapedir/secret.txt", "/.env", "/index.html.gz"):
            response = raw_request(server, path)
            assert response.status == 404, path
            assert SECRET not in response.body and b"SECRET_KEY" not in response.body
        assert raw_request(server, "/alias.txt").body == (site / "robots.txt").read_bytes()
        assert raw_request(server, "/.well-known/security.txt").status == 200
        gz = raw_request(server, "/index.html", headers={"Accept-Encoding": "gzip"})
        assert gz.header("Content-Encoding") == "gzip"
        assert gzip.decompress(gz.body) == (site / "index.html").read_bytes()
    assert "scanning" in server.log()


def test_a_tampered_manifest_cannot_open_paths_outside_the_root(tmp_path: Path) -> None:
    """Defence in depth: the server checks manifest paths too, not only the compressor."""
    import json

    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_bytes(SECRET)
    site = copy_site(tmp_path / "site")
    compress(site)
    manifest_path = site / ".servestatic-manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    entry = {**manifest["files"]["robots.txt"], "size": len(SECRET), "variants": {}}
    hostile = {"../outside/secret.txt": "/../outside/secret.txt",
               "docs/../../outside/secret.txt": "/docs/../../outside/secret.txt",
               ".env": "/.env", ".well-known/../.env": "/.well-known/../.env",
               str(tmp_path / "outside" / "secret.txt"): "/" + str(tmp_path / "outside" / "secret.txt"),
               "docs\\..\\..\\outside\\secret.txt": "/docs%5c..%5c..%5coutside%5csecret.txt",
               "./.env": "/./.env"}
    for relative in hostile:
        manifest["files"][relative] = entry
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    with serving(site) as server:
        for target in hostile.values():
            response = raw_request(server, target)
            assert 400 <= response.status < 500, target
            assert SECRET not in response.body and b"SECRET_KEY" not in response.body
        assert raw_request(server, "/robots.txt").status == 200
    assert "never served" in server.log()


def test_well_known_is_served(http: httpx.Client, root: Path) -> None:
    response = http.get("/.well-known/security.txt")
    assert response.status_code == 200
    assert response.content == (root / ".well-known" / "security.txt").read_bytes()


def test_symlink_inside_the_root_is_served(http: httpx.Client, root: Path) -> None:
    response = http.get("/alias.txt")
    assert response.status_code == 200
    assert response.content == (root / "robots.txt").read_bytes()


HOSTILE_TARGETS = [
    "/../outside/secret.txt", "/docs/../../outside/secret.txt", "/%2e%2e/outside/secret.txt",
    "/%2E%2E/%2E%2E/etc/passwd", "/docs/%2e%2e/%2e%2e/outside/secret.txt",
    "/%252e%252e/outside/secret.txt", "/..%2foutside/secret.txt", "/..%2Foutside%2Fsecret.txt",
    "/docs/..%5c..%5coutside%5csecret.txt", "/docs\\..\\..\\outside\\secret.txt", "/%5c.env",
    "/index.html%00", "/index.html%00.png", "/%00", "/./.env", "/docs/./../.env", "//.env",
    "/.%65nv", "/%2eenv", "/.servestatic-manifest.json%00", "/escape.txt/", "/.well-known/%2e%2e/.env",
    "/index.html/", "/index.html/.", "/./index.html/..", "http://127.0.0.1/../.env",
]


@pytest.mark.parametrize("target", HOSTILE_TARGETS)
def test_hostile_paths_get_4xx_never_a_file_or_500(server: ServerProcess, target: str) -> None:
    response = raw_request(server, target)
    assert 400 <= response.status < 500, (target, response.status)
    assert SECRET not in response.body
    assert b"SECRET_KEY" not in response.body
    assert b'"files"' not in response.body  # the manifest


@pytest.mark.parametrize("target", [b"/index.html\x00", b"/\x00/.env", b"/docs/\xff\xfe", b"/\xc3"])
def test_raw_control_and_invalid_bytes_in_the_path(server: ServerProcess, target: bytes) -> None:
    response = raw_request(server, target)
    assert 400 <= response.status < 500
    assert b"SECRET_KEY" not in response.body


def test_http_1_0_request(server: ServerProcess, root: Path) -> None:
    request = b"GET /robots.txt HTTP/1.0\r\n\r\n"
    response = raw_request(server, "", raw=request)
    assert response.status == 200
    assert response.body == (root / "robots.txt").read_bytes()
    ranged = raw_request(server, "", raw=b"GET /robots.txt HTTP/1.0\r\nRange: bytes=0-3\r\n\r\n")
    assert ranged.status == 206
    assert ranged.body == (root / "robots.txt").read_bytes()[:4]


def test_overlong_header_is_a_4xx_and_long_lists_are_parsed(server: ServerProcess) -> None:
    too_long = raw_request(server, "/index.html", headers={"Accept-Encoding": "x" * 20_000})
    assert too_long.status in (400, 431)  # 431 from gunicorn 24 on
    many = ", ".join(f"coding{i};q=0.5" for i in range(400)) + ", br"
    response = raw_request(server, "/index.html", headers={"Accept-Encoding": many})
    assert response.status == 200
    assert response.header("Content-Encoding") == "br"
    tags = ", ".join(f'"tag{i}"' for i in range(500))
    assert raw_request(server, "/index.html", headers={"If-None-Match": tags}).status == 200


@pytest.mark.parametrize(("request_line", "status"), [
    (b"OPTIONS * HTTP/1.1", None),
    (b"get /index.html HTTP/1.1", None),
    (b"GET index.html HTTP/1.1", None),
    (b"GET /index.html HTTP/2.0", None),
    (b"GET /index.html;x=1 HTTP/1.1", 404),
    (b"GET http://other.example/index.html HTTP/1.1", 200),
])
def test_odd_request_lines_get_an_answer_never_500(server: ServerProcess, request_line: bytes,
                                                   status: int | None) -> None:
    response = raw_request(server, "", raw=request_line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
    if status is None:
        assert 400 <= response.status < 500
    else:
        assert response.status == status


def test_overlong_path_is_a_4xx_never_500(server: ServerProcess) -> None:
    response = raw_request(server, "/" + "a" * 10_000)
    assert 400 <= response.status < 500
    response = raw_request(server, "/" + "a/" * 2000)
    assert 400 <= response.status < 500


@pytest.mark.parametrize(("name", "value"), [
    ("Range", "bytes=garbage"), ("Range", "bytes=--1"), ("Range", "pages=1-2"), ("Range", "bytes=1-2-3"),
    ("Range", "bytes=99999999999999999999999-"), ("Range", "bytes=0-1,"), ("Range", "bytes=,0-1"),
    ("If-Modified-Since", "yesterday"), ("If-Modified-Since", "Sun, 99 Foo 99999 99:99:99 GMT"),
    ("If-Modified-Since", "x" * 2000), ("If-Unmodified-Since", "Mon, 32 Jan 2020 00:00:00 GMT"),
    ("If-None-Match", '"unterminated'), ("If-None-Match", "W/"), ("If-None-Match", ",,,"),
    ("If-Match", '"no-such-tag'), ("If-Range", "garbage"), ("If-Range", 'W/"x"'),
    ("Accept-Encoding", "br;q=garbage"), ("Accept-Encoding", ";;;,,,==="), ("Accept-Encoding", "gzip;q=2"),
    ("Accept-Encoding", "\xff\xfe"), ("Accept-Encoding", "gzip;q=1e400"),
])
def test_garbage_headers_never_give_500(server: ServerProcess, name: str, value: str) -> None:
    response = raw_request(server, "/index.html", headers={name: value})
    if name == "If-Match":
        assert response.status == 412
    else:
        assert response.status == 200, (name, value, response.status)


@pytest.mark.parametrize("name", ["Range", "If-None-Match", "Accept-Encoding", "If-Modified-Since"])
def test_control_bytes_in_a_header_are_refused_with_400(server: ServerProcess, name: str) -> None:
    assert raw_request(server, "/index.html", headers={name: "\x7f\x01"}).status == 400


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_listed_file_replaced_by_an_escaping_symlink_is_not_served(server: ServerProcess,
                                                                   method: str) -> None:
    response = raw_request(server, "/swapped.txt", method)
    assert response.status == 404
    assert SECRET not in response.body


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_listed_directory_replaced_by_an_escaping_symlink_is_not_served(server: ServerProcess,
                                                                        method: str) -> None:
    response = raw_request(server, "/swapdir/same.txt", method, {"Range": "bytes=0-3"})
    assert response.status == 404
    assert SECRET not in response.body and SECRET[:4] not in response.body


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_file_changed_since_start_up_is_404_not_a_short_answer(server: ServerProcess,
                                                               method: str) -> None:
    """Its Content-Length and ETag no longer describe it; sending it would cut the answer short."""
    response = raw_request(server, "/shrunk.txt", method)
    assert response.status == 404


def test_file_deleted_after_start_up_is_404_not_500(server: ServerProcess, root: Path) -> None:
    assert raw_request(server, "/gone.txt").status == 200
    content = (root / "gone.txt").read_bytes()
    os.unlink(root / "gone.txt")
    try:
        assert raw_request(server, "/gone.txt").status == 404
        assert raw_request(server, "/gone.txt", "HEAD").status == 404
        assert raw_request(server, "/gone.txt", headers={"Range": "bytes=0-3"}).status == 404
    finally:
        (root / "gone.txt").write_bytes(content)  # the module's next server finds it again


# --- health endpoint


def test_health_endpoint(http: httpx.Client) -> None:
    response = http.get("/healthz")
    assert response.status_code == 200
    assert response.text == "ok\n"
    assert response.headers["cache-control"] == "no-store"
    head = http.head("/healthz")
    assert head.status_code == 200
    assert head.headers["cache-control"] == "no-store"
    assert head.content == b""
    post = http.post("/healthz")
    assert post.status_code == 405
    assert post.headers["allow"] == "GET, HEAD"
