"""CORS for static files (SERVESTATIC_CORS): '*', off, or an allow-list of origins.

With '*' the header is the same for every request, so the table puts it in each
file's precomputed headers. With an allow-list the answer depends on the
request's Origin: the table adds `Vary: Origin` and each answer echoes an
allowed origin. Preflights (OPTIONS with Access-Control-Request-Method) for
static paths allow GET and HEAD.
"""

from __future__ import annotations

import re
from typing import Any

Headers = list[tuple[str, str]]

ANY_ORIGIN = ("Access-Control-Allow-Origin", "*")
ANY_TIMING = ("Timing-Allow-Origin", "*")
_HEADER_LIST = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:[ \t]*,[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*")


class CorsPolicy:
    """What SERVESTATIC_CORS asks for, decided once."""

    def __init__(self, origins: tuple[str, ...], timing: str = "cors"):
        self.enabled = bool(origins)
        self.any_origin = origins == ("*",)
        # Non-empty only for an allow-list: answers then depend on the request.
        self.allowed = frozenset(origins) if self.enabled and not self.any_origin else frozenset()
        # Timing-Allow-Origin (SERVESTATIC_TIMING_ALLOW_ORIGIN): without it a page on another
        # origin (a CDN host for assets) sees 0 for every size in Resource Timing.
        self.any_timing = timing == "*" or (timing == "cors" and self.any_origin)
        self.echo_timing = timing == "cors" and bool(self.allowed)

    def fixed_headers(self) -> Headers:
        """The headers every answer carries whatever the request (the table precomputes them)."""
        headers = []
        if self.any_origin:
            headers.append(ANY_ORIGIN)
        if self.any_timing:
            headers.append(ANY_TIMING)
        return headers

    @property
    def varies_by_origin(self) -> bool:
        return bool(self.allowed)

    def echo(self, environ: dict[str, Any]) -> Headers:
        """The Allow-Origin header for an allowed Origin of an allow-list, else nothing."""
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and origin in self.allowed:
            if self.echo_timing:
                return [("Access-Control-Allow-Origin", origin), ("Timing-Allow-Origin", origin)]
            return [("Access-Control-Allow-Origin", origin)]
        return []

    def is_preflight(self, method: str, environ: dict[str, Any]) -> bool:
        return method == "OPTIONS" and self.enabled and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ

    def preflight_headers(self, environ: dict[str, Any], allow: tuple[str, str]) -> Headers:
        """A preflight's answer for a static path: GET and HEAD, any simple headers asked."""
        headers = [allow, ("Access-Control-Allow-Methods", "GET, HEAD"),
                   ("Access-Control-Max-Age", "86400")]
        if self.any_origin:
            headers.append(ANY_ORIGIN)
        else:
            headers += self.echo(environ)
            headers.append(("Vary", "Origin"))
        requested = environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "").strip()
        if requested and len(requested) <= 1024 and _HEADER_LIST.fullmatch(requested):
            headers.append(("Access-Control-Allow-Headers", requested))
        return headers
