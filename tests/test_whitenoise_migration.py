"""docs/django.md's "Migrating from WhiteNoise", followed top to bottom on examples/django set up
as a WhiteNoise project first: nothing the site served is lost.

The project is copied and made a WhiteNoise project (its storage, its middleware after
SecurityMiddleware, WHITENOISE_ROOT for public/), collected and served by gunicorn as
WhiteNoise's docs say; what it serves is recorded. Then the checklist's steps are applied
with the very strings the doc shows (the test fails if the doc stops showing them), and
the same requests are made of servestatic: every page the same status and bytes, every
static URL the pages link the same bytes, and every security header WhiteNoise's static
answers had still there.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from servestatic.site.links import static_links
from tests.support import DJANGO_PROJECT, REPO
from tests.support.cli import environment
from tests.support.server import ServerProcess, free_port, wait_until_answering
from tests.support.venvs import django_venv

DOC = (REPO / "docs" / "django.md").read_text(encoding="utf-8")
PAGES = ("/", "/hello/?name=CDN", "/robots.txt", "/nope/")
SECURITY = ("strict-transport-security", "referrer-policy", "cross-origin-opener-policy",
            "x-content-type-options", "x-frame-options")
HTTPS = {"X-Forwarded-Proto": "https"}  # from 127.0.0.1, which gunicorn trusts by default


def step(old: str, new: str = "") -> tuple[str, str]:
    """A checklist edit, as the doc shows it: both strings must be in docs/django.md."""
    for text in filter(None, (old, new)):
        assert f"`{text}`" in DOC, f"docs/django.md no longer shows {text!r}"
    return old, new


def whitenoise_project(target: Path) -> Path:
    """examples/django as a WhiteNoise project, the way WhiteNoise's docs set one up."""
    shutil.copytree(DJANGO_PROJECT, target, ignore=shutil.ignore_patterns("staticfiles", "media",
                                                                           "__pycache__"))
    settings = target / "mysite" / "settings.py"
    text = settings.read_text()
    text = text.replace('"servestatic.django.CompressedManifestStaticFilesStorage"',
                        '"whitenoise.storage.CompressedManifestStaticFilesStorage"')
    text = text.replace('    "django.middleware.security.SecurityMiddleware",\n',
                        '    "django.middleware.security.SecurityMiddleware",\n'
                        '    "whitenoise.middleware.WhiteNoiseMiddleware",\n')
    text += '\nWHITENOISE_ROOT = BASE_DIR / "public"\n'
    settings.write_text(text)
    return target


def record(base_url: str) -> dict[str, Any]:
    """What the site serves: the pages, and each static URL the home page links, over http and https."""
    seen: dict[str, Any] = {}
    for path in PAGES:
        answer = httpx.get(base_url + path, headers={"Accept-Encoding": "identity"})
        seen[path] = (answer.status_code, answer.content)
    home = httpx.get(base_url + "/").text
    links = static_links(home)
    assert len(links) == 2, links  # the stylesheet and the script
    for link in links:
        for name, headers in (("http", {}), ("https", HTTPS)):
            answer = httpx.get(base_url + link, headers={"Accept-Encoding": "identity", **headers})
            security = {key: answer.headers[key] for key in SECURITY if key in answer.headers}
            seen[f"{name} {link}"] = (answer.status_code, answer.content, security)
    return seen


def collect(python: Path, project: Path, static_root: Path) -> str:
    result = subprocess.run([str(python), "manage.py", "collectstatic", "--noinput"], cwd=project,
                            env=environment({"DJANGO_STATIC_ROOT": str(static_root)}),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def serve_with_whitenoise(python: Path, project: Path, static_root: Path) -> dict[str, Any]:
    """`gunicorn mysite.wsgi`, as a WhiteNoise project runs; what it serves."""
    port = free_port()
    log = project / "gunicorn.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(python), "-m", "gunicorn", "mysite.wsgi:application", "-b", f"127.0.0.1:{port}", "-w", "1"],
            cwd=project, env=environment({"DJANGO_STATIC_ROOT": str(static_root)}), stdout=output,
            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_answering("gunicorn", process, f"http://127.0.0.1:{port}/hello/", log.read_text, 30)
        return record(f"http://127.0.0.1:{port}")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def test_the_checklist_moves_a_whitenoise_project_losing_nothing(tmp_path: Path) -> None:
    python = django_venv("django>=5,<6", (3, 11), ("whitenoise>=6.6",))
    project = whitenoise_project(tmp_path / "project")
    static_root = tmp_path / "staticfiles"
    collect(python, project, static_root)
    before = serve_with_whitenoise(python, project, static_root)
    assert before["/robots.txt"][0] == 200 and before["/nope/"][0] == 404

    settings = project / "mysite" / "settings.py"
    text = settings.read_text()
    for old, new in (
        # 1. the storage
        step("whitenoise.storage.CompressedManifestStaticFilesStorage",
             "servestatic.django.CompressedManifestStaticFilesStorage"),
        # 2. the middleware (runserver_nostatic is not in this project)
        step('"whitenoise.middleware.WhiteNoiseMiddleware",'),
    ):
        assert old in text
        text = re.sub(rf"[ \t]*{re.escape(old)}\n", "", text) if not new else text.replace(old, new)
    # 3. WHITENOISE_* settings, translated by the table: WHITENOISE_ROOT is a mount (step 8).
    assert "`WHITENOISE_ROOT` | a second mount" in DOC
    text = text.replace('\nWHITENOISE_ROOT = BASE_DIR / "public"\n', "\n")
    assert "whitenoise" not in text.lower()
    settings.write_text(text)
    # 5. collect, into the root WhiteNoise's collectstatic left (its .br and .gz files included).
    output = collect(python, project, static_root)
    assert re.search(r"^servestatic: \d+ files", output, re.MULTILINE), output
    # 8. the site-root files as a second mount, compressed at build time.
    mounts = f"/static/={static_root},/={project / 'public'}"
    assert "servestatic compress public" in DOC
    subprocess.run([str(python), "-m", "servestatic", "compress", "public"], cwd=project,
                   env=environment(), check=True, capture_output=True, timeout=120)
    env = {"DJANGO_STATIC_ROOT": str(static_root), "SERVESTATIC_MOUNTS": mounts,
           "SERVESTATIC_APP": "mysite.wsgi:application"}
    # 6. check: ok
    assert "must print `ok: …`" in DOC
    checked = subprocess.run([str(python), "-m", "servestatic", "check"], cwd=project,
                             env=environment(env), capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("ok: ")
    # 7. serve
    with ServerProcess(None, cwd=project, python=python, env=env) as server:
        after = record(server.url)

    for key, was in before.items():
        now = after[key]
        assert now[:2] == was[:2], key  # status and bytes
        if len(was) == 3:  # a static URL: every security header WhiteNoise's answer had
            assert was[2].items() <= now[2].items(), (key, was[2], now[2])
    # And more: what Django's XFrameOptionsMiddleware, listed after WhiteNoise, never added.
    https_static = next(value for key, value in after.items() if key.startswith("https /static/"))
    assert https_static[2]["x-frame-options"] == "SAMEORIGIN"
    assert https_static[2]["strict-transport-security"] == "max-age=3600; includeSubDomains"


@pytest.fixture(autouse=True)
def _no_developer_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
