"""A WSGI app that says which worker answered and what gunicorn made of the connection.

For the gunicorn-settings tests: `pid` shows worker recycling (max_requests),
`scheme` and `remote_addr` show which proxy headers gunicorn trusted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    payload = json.dumps({
        "pid": os.getpid(),
        "scheme": environ["wsgi.url_scheme"],
        "remote_addr": environ.get("REMOTE_ADDR", ""),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(payload)))])
    return [payload]
