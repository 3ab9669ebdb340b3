"""A WSGI app that answers with a digest of the request it got: method, path, query, and
the body's length and SHA-256, and the worker's pid, as JSON.

The grammar run (tests/support/grammar.py) chains it so that every answer from the
app can be checked against what the client sent, whatever the framing: the
body is read whole (to the Content-Length, or to the end of a chunked body,
PEP 3333's wsgi.input_terminated), never echoed back, so that a smuggling probe
hidden in a body cannot turn up in an answer by way of the echo. tests/apps/echo.py
reads only Content-Length bodies and echoes them, which would do neither.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from typing import Any

READ_BLOCK = 64 * 1024


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    stream = environ["wsgi.input"]
    digest = hashlib.sha256()
    length = 0
    declared = environ.get("CONTENT_LENGTH")
    remaining = int(declared) if declared and declared.isdigit() else None
    while remaining is None or remaining > 0:
        block = stream.read(READ_BLOCK if remaining is None else min(READ_BLOCK, remaining))
        if not block:
            break
        digest.update(block)
        length += len(block)
        if remaining is not None:
            remaining -= len(block)
    answer = {
        "app": "digest",
        "method": environ["REQUEST_METHOD"],
        "path": environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace"),
        "query": environ.get("QUERY_STRING", ""),
        "length": length,
        "sha256": digest.hexdigest(),
        "pid": os.getpid(),  # which worker answered: the kill test maps connections to workers
    }
    payload = json.dumps(answer).encode("utf-8")
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(payload)))])
    return [payload]
