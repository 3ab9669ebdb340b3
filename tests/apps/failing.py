"""A WSGI app that imports fine and then answers every request 500, as an app whose
database is down does: the readiness tests use it to show that servestatic's own health
path stays 200 while the app's health path, asked through servestatic, does not."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = b"database unavailable\n"
    start_response("500 Internal Server Error", [("Content-Type", "text/plain"),
                                                 ("Content-Length", str(len(body)))])
    return [body]
