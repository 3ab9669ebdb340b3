"""Several mounts: /static/ and / from two directories, each with its own manifest and
variants, the longest prefix answering, and every miss reaching the app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import compress, environment, run_compress
from tests.support.server import ServerProcess, client, serving
from tests.support.site import MANIFEST, copy_site, manifest_entry

CSS = b"body { color: #123456; margin: 0 auto; padding: 1rem; }\n" * 40
ROBOTS = b"User-agent: *\nDisallow: /private/\n" * 20
HASHED = "app.0123456789ab.css"
MOUNTS = "/static/=staticfiles,/=public"


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """staticfiles/ (collectstatic output) and public/ (site-root files), compressed together."""
    base = tmp_path_factory.mktemp("mounts")
    write(base / "staticfiles" / "app.css", CSS)
    write(base / "staticfiles" / HASHED, CSS)
    write(base / "public" / "robots.txt", ROBOTS)
    write(base / "public" / ".well-known" / "security.txt", b"Contact: mailto:security@example.com\n")
    write(base / "public" / "404.html", b"<!doctype html><title>Not here</title><p>public 404</p>\n")
    # Under /static/, so never served: that prefix belongs to staticfiles/ alone.
    write(base / "public" / "static" / "shadowed.css", CSS)
    result = run_compress("--mount", "/static/=staticfiles", "--mount", "/=public", "--json",
                          cwd=base)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert [(mount["prefix"], mount["root"]) for mount in summary["mounts"]] == [
        ("/static/", "staticfiles"), ("/", "public")]
    return base


@pytest.fixture(scope="module")
def chained(base: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(None, cwd=base, env={"SERVESTATIC_MOUNTS": MOUNTS,
                                                "SERVESTATIC_APP": "tests.apps.echo:application"})
    with server:
        yield server


def test_each_mount_has_its_own_manifest_and_variants(base: Path) -> None:
    static, public = base / "staticfiles", base / "public"
    assert set(manifest_entry(static, "app.css")["variants"]) == {"br", "gzip"}
    assert manifest_entry(static, HASHED)["immutable"] is True
    assert set(manifest_entry(public, "robots.txt")["variants"]) == {"br", "gzip"}
    assert (static / "app.css.br").is_file() and (public / "robots.txt.gz").is_file()
    static_files = json.loads((static / MANIFEST).read_text())["files"]
    assert "robots.txt" not in static_files and "app.css" in static_files


def test_both_mounts_answer_with_their_variants(chained: ServerProcess) -> None:
    with client(chained) as http:
        css = http.get(f"/static/{HASHED}", headers={"Accept-Encoding": "br"})
        assert css.status_code == 200
        assert css.headers["content-encoding"] == "br"
        assert css.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert css.content == CSS  # httpx decoded the br body
        robots = http.get("/robots.txt", headers={"Accept-Encoding": "gzip"})
        assert robots.status_code == 200
        assert robots.headers["content-encoding"] == "gzip"
        assert robots.headers["cache-control"] == "public, max-age=60, stale-if-error=86400"
        assert http.get("/.well-known/security.txt").status_code == 200
        # Different files, different validators: each mount's own manifest.
        assert css.headers["etag"] != robots.headers["etag"]


def test_a_miss_in_every_mount_reaches_the_app(chained: ServerProcess) -> None:
    with client(chained) as http:
        for path in ("/hello/", "/static/missing.css", "/static/shadowed.css", "/robots.txt.br",
                     "/static/robots.txt"):
            response = http.get(path)
            assert response.headers.get("x-echo") == "yes", path
            assert response.json()["path"] == path
        assert http.get("/healthz").text == "ok\n"  # never the app


def test_without_an_app_a_miss_gets_the_site_root_404_page(base: Path) -> None:
    absolute = f"/static/={base / 'staticfiles'},/={base / 'public'}"
    with serving(None, env={"SERVESTATIC_MOUNTS": absolute}) as server, client(server) as http:
        for path in ("/nothing", "/static/missing.css"):
            response = http.get(path)
            assert response.status_code == 404
            assert b"public 404" in response.content
        assert http.get(f"/static/{HASHED}").status_code == 200


def test_check_reads_every_mount(base: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "servestatic", "check"], cwd=base,
                            env=environment({"SERVESTATIC_MOUNTS": MOUNTS}),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "/static/: 2 from the manifest" in result.stdout
    assert "/: 4 from the manifest" in result.stdout
    assert "scanning" not in result.stderr
    assert "under a longer mount's prefix" in result.stderr  # public/static/ is never served


def test_a_second_compress_of_the_mounts_compresses_nothing(base: Path) -> None:
    result = run_compress("--json", env={"SERVESTATIC_MOUNTS": MOUNTS}, cwd=base)
    assert result.returncode == 0, result.stderr
    for mount in json.loads(result.stdout)["mounts"]:
        assert all(stats["compressed"] == 0 for stats in mount["encodings"].values()), mount


@pytest.mark.parametrize(("args", "env", "message"), [
    (["serve", "public", "--mount", "/=public"], {},
     "servestatic: error: ROOT cannot be combined with --mount or SERVESTATIC_MOUNTS; "
     "name every directory as a mount"),
    (["check", "--prefix", "/x/"], {"SERVESTATIC_MOUNTS": MOUNTS},
     "servestatic: error: --prefix cannot be combined with --mount or SERVESTATIC_MOUNTS; "
     "name every directory as a mount"),
    (["check", "--mount", "static=staticfiles"], {},
     "servestatic: error: --mount: got 'static=staticfiles'; expected comma-separated PREFIX=DIR "
     "pairs, such as /static/=staticfiles,/=public (bad prefix 'static')"),
    (["check"], {"SERVESTATIC_MOUNTS": "/static/=staticfiles,/static=public"},
     "servestatic: error: SERVESTATIC_MOUNTS: got '/static/=staticfiles,/static=public'; expected "
     "comma-separated PREFIX=DIR pairs, such as /static/=staticfiles,/=public, each prefix once "
     "(/static/ twice)"),
    (["check"], {"SERVESTATIC_MOUNTS": "/static/=staticfiles,/=nowhere"},
     "servestatic: error: SERVESTATIC_MOUNTS: nowhere is not a directory"),
])
def test_wrong_mounts_stop_with_one_line(base: Path, args: list[str], env: dict[str, str],
                                         message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "servestatic", *args], cwd=base,
                            env=environment({**env, "SERVESTATIC_BIND": "127.0.0.1:0"}),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [message]
    assert os.path.isdir(base / "public")


def test_spa_and_header_rules_across_mounts(base: Path, tmp_path: Path) -> None:
    """SPA routes get the index.html of the mount nearest the site root; a rule's glob is
    matched against the path below each mount's directory, not against the URL."""
    public = copy_site(tmp_path / "public", base / "public")
    (public / "index.html").write_bytes(b"<!doctype html><title>app</title><div id=app></div>\n")
    compress(public)
    rules = tmp_path / "headers.toml"
    # Were globs matched against the URL, the second rule would win for /static/app.css.
    rules.write_text('[[rule]]\nglob = "app.css"\nheaders = { X-Rule = "below-the-mount" }\n\n'
                     '[[rule]]\nglob = "static/*"\nheaders = { X-Rule = "url-path" }\n')
    env = {"SERVESTATIC_MOUNTS": f"/static/={base / 'staticfiles'},/={public}",
           "SERVESTATIC_SPA": "true", "SERVESTATIC_HEADERS_FILE": str(rules)}
    with serving(None, env=env) as server, client(server) as http:
        route = http.get("/settings/profile")
        assert route.status_code == 200
        assert b"<div id=app>" in route.content
        assert http.get("/static/missing.css").status_code == 404  # has an extension
        assert http.get("/static/app.css").headers["x-rule"] == "below-the-mount"
        assert "x-rule" not in http.get("/robots.txt").headers
