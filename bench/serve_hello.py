"""The trivial WSGI app every server in the serving benchmark falls through to on a miss."""

from collections.abc import Callable, Iterable
from typing import Any

BODY = b"hello from the chained app\n"
HEADERS = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(BODY)))]


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", list(HEADERS))
    return [BODY]
