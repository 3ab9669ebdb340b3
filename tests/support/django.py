"""The Django example project, run the way its README says, and what it must show
in every setup the tests run it in (the test venv, one venv per Django series, the buildpack)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support import DJANGO_PROJECT
from tests.support.cli import environment
from tests.support.server import ServerProcess
from tests.support.site import MANIFEST


def collectstatic(static_root: Path, python: Path | str = sys.executable) -> str:
    """`manage.py collectstatic --noinput` into static_root with the example's storage; its output."""
    result = subprocess.run([os.fspath(python), "manage.py", "collectstatic", "--noinput"],
                            cwd=DJANGO_PROJECT, env=environment({"DJANGO_STATIC_ROOT": str(static_root)}),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"collectstatic failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def django_behind_servestatic(static_root: Path, python: Path | str | None = None,
                              app: str = "mysite.wsgi:application") -> ServerProcess:
    """`servestatic serve` on the collected root with the example project as the app
    (`app`: its WSGI handler, or mysite.asgi:application for its ASGI handler)."""
    return ServerProcess(static_root, cwd=DJANGO_PROJECT, python=python, env={
        "DJANGO_STATIC_ROOT": str(static_root),
        "SERVESTATIC_PREFIX": "/static/",
        "SERVESTATIC_APP": app,
    })


def assert_collected_and_compressed(static_root: Path) -> None:
    """collectstatic alone left hashed names, their br and gz variants, and servestatic's manifest."""
    files = json.loads((static_root / MANIFEST).read_text(encoding="utf-8"))["files"]
    hashed = [name for name in files if re.fullmatch(r"hello/style\.[0-9a-f]{12}\.css", name)]
    assert len(hashed) == 1, sorted(files)
    entry = files[hashed[0]]
    assert entry["immutable"] is True
    assert set(entry["variants"]) == {"br", "gzip"}
    assert (static_root / (hashed[0] + ".br")).is_file()
    assert (static_root / (hashed[0] + ".gz")).is_file()
    assert files["hello/style.css"]["immutable"] is False


def assert_static_files_come_from_servestatic(base_url: str) -> None:
    """Django's page links its hashed stylesheet; servestatic answers it, br and immutable."""
    home = httpx.get(base_url + "/")
    assert home.status_code == 200
    stylesheet = re.search(r'href="(/static/hello/style\.[0-9a-f]{12}\.css)"', home.text)
    assert stylesheet, home.text
    response = httpx.get(base_url + stylesheet.group(1), headers={"Accept-Encoding": "br"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "br"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["etag"].startswith('"')
    assert "body" in response.text


def assert_views_come_from_django(base_url: str) -> None:
    """A view answers, with none of servestatic's static-file headers."""
    response = httpx.get(base_url + "/hello/?name=CDN")
    assert response.status_code == 200
    assert response.text == "Hello from Django, CDN!\n"
    assert "etag" not in response.headers
    assert "accept-ranges" not in response.headers


def assert_site_root_files_come_from_servestatic(base_url: str) -> None:
    """public/robots.txt is served at / by the second mount, compressed; a miss in both
    mounts (under /static/ or not) reaches Django."""
    robots = httpx.get(base_url + "/robots.txt", headers={"Accept-Encoding": "br"})
    assert robots.status_code == 200
    assert robots.headers["content-encoding"] == "br"
    assert robots.text == (DJANGO_PROJECT / "public" / "robots.txt").read_text()
    for path in ("/static/hello/missing.css", "/missing.txt"):
        missing = httpx.get(base_url + path)
        assert missing.status_code == 404
        # Django's own page: servestatic's would be text/plain with a Cache-Control.
        assert missing.headers["content-type"].startswith("text/html"), path
        assert "cache-control" not in missing.headers, path
