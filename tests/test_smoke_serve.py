"""A first end-to-end check: compress the example site, serve it, read a few answers."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support import REPO
from tests.support.cli import compress, environment
from tests.support.server import ServerProcess, free_port, wait_until_answering


def test_example_site_is_served_compressed_and_cached(site: Path) -> None:
    compress(site)
    with ServerProcess(site) as server:
        response = httpx.get(server.url + "/assets/app-3fA9c1bd.js",
                             headers={"Accept-Encoding": "br, gzip"})
        assert response.status_code == 200
        assert response.headers["content-encoding"] == "br"
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.content == (site / "assets/app-3fA9c1bd.js").read_bytes()
        assert httpx.get(server.url + "/.env").status_code == 404
    assert server.returncode == 0


def test_serve_example_serves_on_loopback_only() -> None:
    """scripts/serve-example, as the README's first block runs it: the example site on
    127.0.0.1:PORT, and on no other address (127.0.0.2 is loopback too, so a wildcard bind
    would answer there)."""
    port = free_port()
    process = subprocess.Popen([str(REPO / "scripts" / "serve-example")], cwd=REPO,
                               env={**environment(), "PORT": str(port)}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_answering("serve-example", process, f"http://127.0.0.1:{port}/healthz",
                             lambda: "", timeout=120)
        page = httpx.get(f"http://127.0.0.1:{port}/", headers={"Accept-Encoding": "br"})
        assert (page.status_code, page.headers["content-encoding"]) == (200, "br")
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.2:{port}/healthz")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(30) == 0
