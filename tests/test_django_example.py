"""The Django example: collectstatic (servestatic's storage) output served by servestatic,
views by Django; and the storage with each supported Django series."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from servestatic.site.hashednames import has_content_hash
from tests.support import DJANGO_PROJECT, REPO
from tests.support.cli import compress, environment
from tests.support.django import (
    assert_collected_and_compressed,
    assert_site_root_files_come_from_servestatic,
    assert_static_files_come_from_servestatic,
    assert_views_come_from_django,
    collectstatic,
    django_behind_servestatic,
)
from tests.support.server import ServerProcess
from tests.support.site import copy_site, manifest_entry
from tests.support.venvs import django_venv


@pytest.fixture(scope="module")
def static_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    static_root = tmp_path_factory.mktemp("django") / "staticfiles"
    collectstatic(static_root)
    return static_root


# The same project through Django's WSGI handler and through its ASGI handler.
ENTRY_POINTS = {"wsgi": "mysite.wsgi:application", "asgi": "mysite.asgi:application"}


@pytest.fixture(scope="module", params=sorted(ENTRY_POINTS))
def django_server(static_root: Path, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with django_behind_servestatic(static_root, app=ENTRY_POINTS[request.param]) as server:
        yield server


def test_collectstatic_alone_compresses_and_writes_the_manifest(static_root: Path) -> None:
    assert_collected_and_compressed(static_root)


def test_served_from_the_manifest_without_a_scan(django_server: ServerProcess) -> None:
    assert_static_files_come_from_servestatic(django_server.url)
    assert "scanning" not in django_server.log(), django_server.log()


def test_site_root_files_beside_static_through_two_mounts(static_root: Path, tmp_path: Path) -> None:
    public = copy_site(tmp_path / "public", DJANGO_PROJECT / "public")
    compress(public)
    with ServerProcess(None, cwd=DJANGO_PROJECT, env={
        "DJANGO_STATIC_ROOT": str(static_root),
        "SERVESTATIC_MOUNTS": f"/static/={static_root},/={public}",
        "SERVESTATIC_APP": "mysite.wsgi:application",
    }) as server:
        assert_site_root_files_come_from_servestatic(server.url)
        assert_static_files_come_from_servestatic(server.url)
        assert_views_come_from_django(server.url)


def test_views_come_from_django(django_server: ServerProcess) -> None:
    assert_views_come_from_django(django_server.url)


def test_static_misses_and_other_paths_reach_django(django_server: ServerProcess) -> None:
    # Not a static file: Django answers (its own 404), not servestatic's page.
    response = httpx.get(django_server.url + "/static/hello/missing.css")
    assert response.status_code == 404
    assert "servestatic" not in response.text.lower()
    assert httpx.post(django_server.url + "/hello/").status_code == 200


def test_django_log_lines_are_printed_once(django_server: ServerProcess) -> None:
    # The example's LOGGING prints django's warnings on the console; they propagate to the
    # root logger, where servestatic's handler must not print them again.
    path = f"/nope-{django_server.port}/"
    assert httpx.get(django_server.url + path).status_code == 404
    lines = [line for line in django_server.log().splitlines() if f"Not Found: {path}" in line]
    assert lines == [f"Not Found: {path}"], django_server.log()


def test_health_never_reaches_django(django_server: ServerProcess) -> None:
    response = httpx.get(django_server.url + "/healthz")
    assert response.status_code == 200
    assert response.text == "ok\n"


def test_unimportable_app_stops_startup_with_one_line(site: Path, tmp_path: Path) -> None:
    compress(site)
    result = subprocess.run(
        [sys.executable, "-m", "servestatic", "serve", str(site)],
        env={**os.environ, "PYTHONPATH": str(REPO), "SERVESTATIC_APP": "nosuchmodule.wsgi:application",
             "SERVESTATIC_BIND": "127.0.0.1:0"},
        capture_output=True, text=True, timeout=30, cwd=tmp_path,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "servestatic: error: SERVESTATIC_APP=nosuchmodule.wsgi:application: cannot import "
        "'nosuchmodule.wsgi': ModuleNotFoundError: No module named 'nosuchmodule'"
    ]


def test_a_second_collectstatic_compresses_nothing(static_root: Path) -> None:
    output = collectstatic(static_root)
    summary = next(line for line in output.splitlines() if line.startswith("servestatic: "))
    assert "br: " in summary and "gzip: " in summary
    assert len(re.findall(r"; 0 compressed, 0 cached, [1-9][0-9]* kept", summary)) == 2, summary


def test_a_wrong_compress_setting_fails_collectstatic_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=DJANGO_PROJECT,
        env=environment({"DJANGO_STATIC_ROOT": str(tmp_path / "static"), "SERVESTATIC_GZIP_EFFORT": "huge"}),
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert ("CommandError: servestatic compress: SERVESTATIC_GZIP_EFFORT: got 'huge'; "
            "expected one of fast, balanced, max") in result.stderr
    assert "Traceback" not in result.stderr
    assert "Post-processing" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# Django hashes a name with the first 12 hex digits of an MD5; one in 280 of those is
# digits only, which the name test cannot tell from a version or a date.
DIGITS_ONLY_SCRIPT = """
import sys
import django
from django.conf import settings
from django.core.management import call_command

settings.configure(
    INSTALLED_APPS=["django.contrib.staticfiles"], STATIC_URL="/static/",
    STATICFILES_DIRS=[sys.argv[1]], STATIC_ROOT=sys.argv[2],
    STORAGES={"staticfiles": {"BACKEND": "servestatic.django.CompressedManifestStaticFilesStorage"}},
)
django.setup()
call_command("collectstatic", "--noinput", verbosity=0)
"""


def test_names_django_hashed_are_immutable_even_when_the_hash_is_digits_only(tmp_path: Path) -> None:
    body = next(body for body in (f"var build = {n};\n".encode() * 40 for n in range(100_000))
                if hashlib.md5(body).hexdigest()[:12].isdigit())
    hashed = f"build.{hashlib.md5(body).hexdigest()[:12]}.js"
    assert not has_content_hash(hashed), "the name test alone would not find this hash"
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "build.js").write_bytes(body)
    static_root = tmp_path / "static"
    result = subprocess.run([sys.executable, "-c", DIGITS_ONLY_SCRIPT, str(sources), str(static_root)],
                            env=environment(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert manifest_entry(static_root, hashed)["immutable"] is True
    assert manifest_entry(static_root, "build.js")["immutable"] is False


# The newest release of each series on the index: 4.2 LTS, 5.x, 6.x (which needs Python 3.12).
SERIES = [
    pytest.param("django>=4.2,<4.3", (3, 11), id="django-4.2"),
    pytest.param("django>=5,<6", (3, 11), id="django-5"),
    pytest.param("django>=6,<7", (3, 12), id="django-6"),
]


@pytest.mark.parametrize(("requirement", "minimum_python"), SERIES)
def test_storage_with_each_django_series(requirement: str, minimum_python: tuple[int, int],
                                         tmp_path: Path) -> None:
    python = django_venv(requirement, minimum_python)
    static_root = tmp_path / "staticfiles"
    collectstatic(static_root, python)
    assert_collected_and_compressed(static_root)
    with django_behind_servestatic(static_root, python) as server:
        assert_static_files_come_from_servestatic(server.url)
        assert_views_come_from_django(server.url)
        assert "scanning" not in server.log(), server.log()


SRI_SCRIPT = """
import sys
import django
from django.conf import settings
from django.core.management import call_command
from django.template import engines

settings.configure(
    INSTALLED_APPS=["django.contrib.staticfiles", "servestatic"], STATIC_URL="/static/",
    STATICFILES_DIRS=[sys.argv[1]], STATIC_ROOT=sys.argv[2],
    STORAGES={"staticfiles": {"BACKEND": sys.argv[3]}},
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}],
)
django.setup()
call_command("collectstatic", "--noinput", verbosity=0)
page = ("{% load static servestatic %}"
        "<link rel=stylesheet href=\\"{% static 'site.css' %}\\" {% sri 'site.css' %}>")
print(engines["django"].from_string(page).render({}))
"""


@pytest.mark.parametrize("storage", ["servestatic.django.CompressedManifestStaticFilesStorage",
                                     "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"])
def test_the_sri_tag_pins_the_hashed_file_it_links(tmp_path: Path, storage: str) -> None:
    """{% sri %} writes the sha384 of the very file {% static %} links (the hashed copy), as
    a browser computes it; with a storage that records none, nothing."""
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "site.css").write_text("body { color: #123456; }\n" * 40)
    static_root = tmp_path / "static"
    result = subprocess.run([sys.executable, "-c", SRI_SCRIPT, str(sources), str(static_root), storage],
                            env=environment(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    page = result.stdout.strip()
    href = page.split('href="/static/')[1].split('"')[0]
    assert href != "site.css" and href.startswith("site.")  # the hashed copy
    if storage.startswith("servestatic"):
        digest = base64.b64encode(hashlib.sha384((static_root / href).read_bytes()).digest()).decode()
        assert page.endswith(f' integrity="sha384-{digest}" crossorigin="anonymous">'), page
    else:
        assert page == f'<link rel=stylesheet href="/static/{href}" >', page
