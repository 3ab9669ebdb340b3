"""Django's storage makes dictionary deltas at `collectstatic` (docs/django.md), from the older
hashed files a run without `--clear` leaves in STATIC_ROOT, and prints its summary line as
collectstatic prints its own: to the stdout it is given, and not at all with -v0."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import environment
from tests.support.deltas import bundle
from tests.support.site import MANIFEST

pytest.importorskip("django")
pytest.importorskip("zstandard")

# Two collectstatic runs with the bundle changed between them; the summary lines go to a
# buffer given as stdout. The first run's hashed copy is made an hour older, as a
# collectstatic of an earlier deploy would have left it.
SCRIPT = """
import io, os, sys
from pathlib import Path
import django
from django.conf import settings
from django.core.management import call_command

sources, root, verbosity = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
settings.configure(
    INSTALLED_APPS=["django.contrib.staticfiles"], STATIC_URL="/static/",
    STATICFILES_DIRS=[str(sources)], STATIC_ROOT=str(root),
    STORAGES={"staticfiles": {"BACKEND": "servestatic.django.CompressedManifestStaticFilesStorage"}},
)
django.setup()
for release in ("1", "2"):
    (sources / "app.js").write_bytes((sources / f"app.{release}").read_bytes())
    buffer = io.StringIO()
    call_command("collectstatic", "--noinput", verbosity=verbosity, stdout=buffer)
    for hashed in root.glob("app.*.js"):
        os.utime(hashed, (os.stat(hashed).st_mtime - 3600,) * 2)
    print("BUFFER " + repr(buffer.getvalue()))
"""


def run(tmp_path: Path, verbosity: int) -> tuple[str, Path]:
    sources, root = tmp_path / "sources", tmp_path / "static"
    sources.mkdir()
    (sources / "app.1").write_bytes(bundle(1))
    (sources / "app.2").write_bytes(bundle(2))
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(sources), str(root), str(verbosity)],
                            env=environment(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout, root


def test_collectstatic_makes_deltas_from_the_hashed_files_it_left(tmp_path: Path) -> None:
    stdout, root = run(tmp_path, 1)
    lines = stdout.splitlines()
    assert all(line.startswith("BUFFER ") for line in lines), stdout  # nothing printed past the buffer
    assert "servestatic: " in lines[0] and "dcz" not in lines[0]
    assert "dcz: 1 deltas for 1 files" in lines[1], lines[1]
    files = json.loads((root / MANIFEST).read_text())["files"]
    (new,) = [name for name, entry in files.items() if entry.get("deltas")]
    assert files[new]["family"] == "app.*.js"
    assert new in json.loads((root / "staticfiles.json").read_text())["paths"].values()


def test_collectstatic_v0_prints_no_summary(tmp_path: Path) -> None:
    stdout, _root = run(tmp_path, 0)
    assert stdout.splitlines() == ["BUFFER ''", "BUFFER ''"]
