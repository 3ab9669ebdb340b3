"""A mount that changes at run time (`PREFIX=live:DIR`, core/livemount.py): user uploads, served
as they appear, with the safety rules of every mount and nothing immutable by its name."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import DJANGO_PROJECT
from tests.support.cli import run_compress
from tests.support.django import collectstatic
from tests.support.http import raw_request
from tests.support.server import ServerProcess

# A Wagtail rendition's name: it looks hashed, but the file behind it may be replaced.
RENDITION = "images/Akranes.4487efaa.format-avif.avif"


@pytest.fixture(scope="module", params=["loop", "asgi-front"])
def django_with_media(tmp_path_factory: pytest.TempPathFactory,
                      request: pytest.FixtureRequest) -> Iterator[tuple[ServerProcess, Path]]:
    base = tmp_path_factory.mktemp("live")
    static_root, media = base / "staticfiles", base / "media"
    collectstatic(static_root)
    media.mkdir()
    with ServerProcess(None, cwd=DJANGO_PROJECT, env={
        "DJANGO_STATIC_ROOT": str(static_root), "DJANGO_MEDIA_ROOT": str(media),
        "SERVESTATIC_MOUNTS": f"/static/={static_root},/media/=live:{media}",
        "SERVESTATIC_APP": "mysite.wsgi:application",
        "SERVESTATIC_FAST_PATH": "true" if request.param == "loop" else "false",
    }) as server:
        yield server, media


def test_a_file_written_after_startup_is_served(django_with_media: tuple[ServerProcess, Path]) -> None:
    server, media = django_with_media
    url = f"{server.url}/media/{RENDITION}"
    before = httpx.get(url)
    assert before.status_code == 404  # not there yet: Django's 404
    (media / "images").mkdir(exist_ok=True)
    (media / RENDITION).write_bytes(b"\x00avif" * 100)
    answer = httpx.get(url, headers={"Accept-Encoding": "br, gzip"})
    assert answer.status_code == 200
    assert answer.content == b"\x00avif" * 100
    assert answer.headers["content-type"] == "image/avif"
    # Never immutable by name.
    assert answer.headers["cache-control"] == "public, max-age=60, stale-if-error=86400"
    assert "content-encoding" not in answer.headers
    etag = answer.headers["etag"]
    assert httpx.get(url, headers={"If-None-Match": etag}).status_code == 304
    # Replaced (a new upload under the same name): a new validator, the new bytes.
    (media / RENDITION).write_bytes(b"\x01avif" * 120)
    replaced = httpx.get(url, headers={"If-None-Match": etag})
    assert replaced.status_code == 200
    assert replaced.content == b"\x01avif" * 120
    assert replaced.headers["etag"] != etag
    # Removed: Django's 404 again.
    (media / RENDITION).unlink()
    assert httpx.get(url).status_code == 404


def test_the_static_mount_is_still_served_from_its_manifest(
        django_with_media: tuple[ServerProcess, Path]) -> None:
    server, _media = django_with_media
    home = httpx.get(server.url + "/")
    assert home.status_code == 200
    assert "scanning" not in server.log()


@pytest.fixture(scope="module")
def media_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    base = tmp_path_factory.mktemp("live-only")
    media = base / "media"
    media.mkdir()
    (base / "secret.txt").write_text("outside the root\n")
    with ServerProcess(None, env={"SERVESTATIC_MOUNTS": f"/media/=live:{media}"}) as server:
        yield server, media


def test_the_safety_rules_of_every_mount(media_only: tuple[ServerProcess, Path]) -> None:
    server, media = media_only
    (media / "ok.txt").write_text("fine\n")
    (media / ".env").write_text("SECRET=1\n")
    (media / "dir").mkdir()
    (media / "dir" / ".hidden").write_text("hidden\n")
    os.symlink(media.parent / "secret.txt", media / "escape.txt")
    os.symlink(media.parent, media / "up")
    (media / "page.css").write_text("body{}\n" * 100)
    (media / "page.css.gz").write_bytes(b"not served as a path of its own")
    assert httpx.get(server.url + "/media/ok.txt").text == "fine\n"
    for target in ("/media/.env", "/media/dir/.hidden", "/media/escape.txt", "/media/up/secret.txt",
                   "/media/dir", "/media/dir/", "/media/page.css.gz", "/media/%2e%2e/secret.txt",
                   "/media/..%2fsecret.txt", "/media/ok.txt%00", "/media/%5c..%5csecret.txt",
                   "/media/%ff.txt"):
        answer = raw_request(server, target)
        assert 400 <= answer.status < 500, (target, answer.status)
        assert b"outside" not in answer.body and b"SECRET" not in answer.body, target
    assert "Traceback" not in server.log()


def test_a_live_mount_is_never_compressed(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    (media / "big.txt").write_text("words " * 1000)
    result = run_compress(env={"SERVESTATIC_MOUNTS": f"/media/=live:{media}"})
    assert result.returncode == 2
    assert result.stderr.strip() == ("servestatic: error: no mount to compress: a live: mount changes at "
                                     "run time and is never compressed")
    assert not (media / "big.txt.br").exists()


def test_the_mount_setting_reads_live() -> None:
    from servestatic.config.settings import Mount, SettingError, load_settings

    settings = load_settings({"SERVESTATIC_MOUNTS": "/static/=staticfiles,/media/=live:media"})
    assert settings.all_mounts == (Mount("/static/", Path("staticfiles")),)
    assert settings.live_mounts == (Mount("/media/", Path("media"), live=True),)
    with pytest.raises(SettingError, match=r"^SERVESTATIC_MOUNTS: got '/media/=live:'; expected .*live:DIR"):
        load_settings({"SERVESTATIC_MOUNTS": "/media/=live:"})
