"""`servestatic check` catches the setups that start but serve the wrong thing (fronts/checks.py):
one line per finding naming the setting to change, and a non-zero exit."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import DJANGO_PROJECT
from tests.support.cli import SERVESTATIC, compress, environment
from tests.support.django import collectstatic


def check(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SERVESTATIC, "check", *args], capture_output=True, text=True,
                          env=environment(env), cwd=cwd, timeout=120)


def findings(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The finding lines, without servestatic's scanning warning."""
    return [line for line in result.stderr.splitlines() if line.startswith("servestatic: error: ")]


@pytest.fixture(scope="module")
def static_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    static_root = tmp_path_factory.mktemp("check") / "staticfiles"
    collectstatic(static_root)
    return static_root


def django_env(static_root: Path, **env: str) -> dict[str, str]:
    return {"DJANGO_STATIC_ROOT": str(static_root), "SERVESTATIC_APP": "mysite.wsgi:application", **env}


def test_the_right_django_setup_is_ok(static_root: Path) -> None:
    result = check(str(static_root), env=django_env(static_root, SERVESTATIC_PREFIX="/static/"),
                   cwd=DJANGO_PROJECT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: ")
    assert "Not Found" not in result.stderr


def test_a_prefix_that_is_not_static_url_fails_naming_the_prefix(static_root: Path) -> None:
    result = check(str(static_root), env=django_env(static_root), cwd=DJANGO_PROJECT)
    assert result.returncode == 1
    assert findings(result) == [
        f"servestatic: error: SERVESTATIC_PREFIX: {static_root} is served at / but Django's STATIC_URL "
        "is /static/; set SERVESTATIC_PREFIX=/static/"]
    assert "Not Found" not in result.stderr  # the check's own requests to the app are not logged
    assert result.stdout == ""


def test_the_same_mistake_with_only_django_settings_module(static_root: Path) -> None:
    result = check(str(static_root), env={"DJANGO_STATIC_ROOT": str(static_root),
                                          "DJANGO_SETTINGS_MODULE": "mysite.settings"}, cwd=DJANGO_PROJECT)
    assert result.returncode == 1
    assert [line.split(": ")[2] for line in findings(result)] == ["SERVESTATIC_PREFIX"]


def test_a_root_of_sources_fails_naming_the_root(static_root: Path) -> None:
    result = check("hello/static", env=django_env(static_root, SERVESTATIC_PREFIX="/static/"),
                   cwd=DJANGO_PROJECT)
    assert result.returncode == 1
    lines = findings(result)
    assert lines[0] == (
        "servestatic: error: SERVESTATIC_ROOT: hello/static is the static directory of the app 'hello', "
        f"the sources collectstatic copies from; serve STATIC_ROOT ({static_root}) after "
        "`manage.py collectstatic`")
    # And the page's links, which only the collected root has (hashed names), say so too.
    assert lines[1].startswith("servestatic: error: SERVESTATIC_ROOT: pages link 2 static URL(s) that no "
                               "mount serves (such as /static/hello/style.")


def test_a_collected_root_without_djangos_manifest_is_not_collectstatic_output(
        static_root: Path, tmp_path: Path) -> None:
    copy = tmp_path / "staticfiles"
    shutil.copytree(static_root, copy)
    (copy / "staticfiles.json").unlink()
    result = check(str(copy), env=django_env(copy, SERVESTATIC_PREFIX="/static/"), cwd=DJANGO_PROJECT)
    assert result.returncode == 1
    assert f"servestatic: error: SERVESTATIC_ROOT: {copy} has no staticfiles.json" in findings(result)[0]


def test_a_media_mount_that_is_not_media_url_fails(static_root: Path, tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    result = check(env=django_env(static_root, DJANGO_MEDIA_ROOT=str(media),
                                  SERVESTATIC_MOUNTS=f"/static/={static_root},/uploads/={media}"),
                   cwd=DJANGO_PROJECT)
    assert result.returncode == 1
    assert findings(result) == [
        f"servestatic: error: SERVESTATIC_MOUNTS: {media} is served at /uploads/ but Django's MEDIA_URL is "
        f"/media/; mount it as /media/={media}"]


def test_pages_that_link_files_under_another_prefix(site: Path) -> None:
    compress(site)
    result = check(str(site), env={"SERVESTATIC_PREFIX": "/static/"})
    assert result.returncode == 1
    assert findings(result) == [
        "servestatic: error: SERVESTATIC_PREFIX: pages link 9 static URL(s) that are served under another "
        "prefix (such as /site.webmanifest on /static/index.html); set SERVESTATIC_PREFIX=/"]


def test_pages_that_link_a_missing_file(site: Path) -> None:
    (site / "css" / "print.css").unlink()
    compress(site)
    result = check(str(site))
    assert result.returncode == 1
    assert findings(result) == [
        "servestatic: error: SERVESTATIC_ROOT: pages link 1 static URL(s) that no mount serves "
        "(such as /css/print.css on /index.html)"]
