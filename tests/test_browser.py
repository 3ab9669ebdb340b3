"""What a real browser (headless Chromium) sees of servestatic's answers.

Timing-Allow-Origin: a page on one origin fetches a file from another (127.0.0.1 and
localhost are two origins: a site and its CDN host, say); Resource Timing reports the
file's size to the page only when the answer allows its origin, which real-user
monitoring needs. The page writes what it saw into the DOM that Chromium dumps.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support import needs_tool
from tests.support.server import ServerProcess

PAGE = """<!doctype html><html><head><title>timing</title></head><body><p id=out>pending</p>
<script>
const url = new URL("/asset.bin", location.href.replace("127.0.0.1", "localhost")).href;
fetch(url, {mode: "no-cors"}).then(() => setTimeout(() => {
  const entry = performance.getEntriesByName(url)[0];
  document.getElementById("out").textContent = "size=" + (entry ? entry.encodedBodySize : "none");
}, 500));
</script></body></html>
"""
ASSET_SIZE = 3000


def seen_size(chromium: str, url: str) -> str:
    """What the page wrote: size=N, as Resource Timing reported the cross-origin file."""
    result = subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                             "--virtual-time-budget=5000", "--dump-dom", url],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    marker = '<p id="out">'
    assert marker in result.stdout, result.stdout[-2000:]
    return result.stdout.split(marker, 1)[1].split("<", 1)[0]


@pytest.mark.parametrize(("timing", "expected"), [("cors", f"size={ASSET_SIZE}"), ("off", "size=0")])
def test_resource_timing_sees_a_cross_origin_file_only_when_allowed(tmp_path: Path, timing: str,
                                                                    expected: str) -> None:
    chromium = needs_tool("chromium")
    site = tmp_path / "site"
    site.mkdir()
    (site / "page.html").write_text(PAGE)
    (site / "asset.bin").write_bytes(os.urandom(ASSET_SIZE))  # random: no compressed variant
    with ServerProcess(site, env={"SERVESTATIC_TIMING_ALLOW_ORIGIN": timing}) as server:
        assert seen_size(chromium, f"http://127.0.0.1:{server.port}/page.html") == expected
