"""What every Django setup the tests run (plain, per Django version, buildpack) must show."""

from __future__ import annotations

import re

import httpx


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
