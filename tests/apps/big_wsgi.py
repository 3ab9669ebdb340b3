"""A WSGI app streaming a large answer (?mb=N megabytes, from a generator) for the stall tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

BLOCK = b"x" * (1024 * 1024)


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
    megabytes = int(parse_qs(environ.get("QUERY_STRING", "")).get("mb", ["1"])[0])
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(megabytes * len(BLOCK)))])
    for _ in range(megabytes):
        yield BLOCK
