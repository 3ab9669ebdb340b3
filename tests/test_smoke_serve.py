"""A first end-to-end check: compress the example site, serve it, read a few answers."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.cli import compress
from tests.support.server import ServerProcess


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
