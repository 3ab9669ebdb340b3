"""A WSGI app that answers every request with what it received, as JSON.

Chaining tests name it (SERVESTATIC_APP=tests.apps.echo:application) to see
exactly which requests servestatic hands on, and that they arrive unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    answer = {
        "app": "echo",
        "method": environ["REQUEST_METHOD"],
        "script_name": environ.get("SCRIPT_NAME", ""),
        # PATH_INFO is latin-1 text holding the URL's bytes (PEP 3333).
        "path": environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace"),
        "query": environ.get("QUERY_STRING", ""),
        "body": body.decode("utf-8", "replace"),
        "content_type": environ.get("CONTENT_TYPE", ""),
    }
    payload = json.dumps(answer).encode("utf-8")
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(payload))),
                              ("X-Echo", "yes")])
    return [payload]
