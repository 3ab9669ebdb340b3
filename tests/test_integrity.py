"""`servestatic integrity`: the SRI values compress recorded, printed for real files."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

from tests.support.cli import SERVESTATIC, compress, environment
from tests.support.site import MANIFEST


def integrity(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SERVESTATIC, "integrity", *args], capture_output=True, text=True,
                          env=environment(), cwd=cwd, timeout=60)


def sri(data: bytes) -> str:
    """The W3C SRI value, computed here from the bytes."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def test_prints_each_value_for_relative_url_and_file_paths(site: Path) -> None:
    compress(site)
    result = integrity("--root", str(site), "css/print.css", "/index.html", str(site / "js/analytics.js"),
                       cwd=site.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{sri((site / 'css/print.css').read_bytes())} css/print.css",
        f"{sri((site / 'index.html').read_bytes())} /index.html",
        f"{sri((site / 'js/analytics.js').read_bytes())} {site / 'js/analytics.js'}",
    ]


def test_root_from_the_environment_variable(site: Path) -> None:
    compress(site)
    result = subprocess.run([*SERVESTATIC, "integrity", "robots.txt"], capture_output=True, text=True,
                            env=environment({"SERVESTATIC_ROOT": str(site)}), cwd=site.parent, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{sri((site / 'robots.txt').read_bytes())} robots.txt\n"


def test_unknown_outside_and_unrecorded_paths_fail_with_one_line(site: Path, tmp_path: Path) -> None:
    compress(site)
    outside = tmp_path / "outside.css"
    outside.write_text("body{}")
    for path in ("nope.css", str(outside)):
        result = integrity("--root", str(site), path, cwd=tmp_path)
        assert result.returncode == 1
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1 and path in result.stderr
    # A manifest written before integrity values: say so, and how to fix it.
    manifest = site / MANIFEST
    data = json.loads(manifest.read_text())
    del data["files"]["robots.txt"]["integrity"]
    manifest.write_text(json.dumps(data))
    result = integrity("--root", str(site), "robots.txt", cwd=tmp_path)
    assert result.returncode == 1
    assert "servestatic compress" in result.stderr


def test_no_manifest(site: Path) -> None:
    result = integrity("--root", str(site), "robots.txt", cwd=site)
    assert result.returncode == 1
    assert "no manifest" in result.stderr
