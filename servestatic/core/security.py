"""The security headers and the https redirect of static answers, decided once at start-up.

servestatic answers static files before the user's app, so the headers a Django
project's middleware puts on every response (SecurityMiddleware's HSTS,
Referrer-Policy, Cross-Origin-Opener-Policy; XFrameOptionsMiddleware's
X-Frame-Options) and its SECURE_SSL_REDIRECT would be missing from them. A
`SecurityPolicy` holds them as data: built from the project's settings
(fronts/security.py) or from the header rules file's [https] table, it is folded into the
precomputed header lists of the table (core/table.py), and only the request's
scheme is looked at per request, and only when HSTS or the redirect is on
(core/decision.py swaps in its scheme-aware `decide` then; otherwise nothing).

The request's scheme is Django's: the SECURE_PROXY_SSL_HEADER field when one is
named and present (its first comma-separated value), else the server's
`wsgi.url_scheme` (gunicorn: TLS, or its secure_scheme_headers from a peer in
forwarded_allow_ips).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

Pair = tuple[str, str]

# What Django's get_full_path leaves unescaped in a path (django.utils.encoding.escape_uri_path).
_PATH_SAFE = "/:@&+$,-_.!~*'()"
_HOST = re.compile(r"(?P<domain>[a-z0-9.-]+|\[[a-f0-9:.]+\])(?::\d+)?")


@dataclass(frozen=True)
class SecurityPolicy:
    """Security headers and the https redirect; the default adds nothing and redirects nothing."""

    # Added to every static response (before header rules, which may replace them).
    headers: tuple[Pair, ...] = ()
    # Added to the https redirect: with Django, those of the middleware the redirect passes
    # back through (SecurityMiddleware's own, and any listed before it).
    redirect_headers: tuple[Pair, ...] = ()
    # Strict-Transport-Security's value, sent on https requests only (browsers ignore it over http).
    hsts: str | None = None
    ssl_redirect: bool = False
    # Where the redirect goes (SECURE_SSL_HOST); None: the request's own host.
    ssl_host: str | None = None
    # Paths never redirected: regular expressions searched in the path without its leading '/'.
    redirect_exempt: tuple[str, ...] = ()
    # (environ key, value): the request is https when that field's first value is this.
    proxy_ssl_header: Pair | None = None
    # Hosts a redirect may name when it uses the request's Host (Django's ALLOWED_HOSTS).
    allowed_hosts: tuple[str, ...] = ("*",)
    # Take the host from X-Forwarded-Host (Django's USE_X_FORWARDED_HOST).
    forwarded_host: bool = False

    @property
    def needs_scheme(self) -> bool:
        """Whether answers depend on the request's scheme (HSTS or the redirect is on)."""
        return self.ssl_redirect or self.hsts is not None

    @property
    def hsts_pair(self) -> Pair | None:
        return ("Strict-Transport-Security", self.hsts) if self.hsts else None

    def is_secure(self, environ: dict[str, Any]) -> bool:
        """Django's request.is_secure() on a WSGI environ."""
        if self.proxy_ssl_header is not None:
            key, secure_value = self.proxy_ssl_header
            value = environ.get(key)
            if value is not None:
                return value.split(",", 1)[0].strip() == secure_value
        return environ.get("wsgi.url_scheme") == "https"

    def exempt(self, path: str) -> bool:
        """Whether a PATH_INFO key (UTF-8 bytes as latin-1) is exempt from the redirect."""
        if not self.redirect_exempt:
            return False
        text = path.encode("latin-1").decode("utf-8", "replace").lstrip("/")
        return any(re.search(pattern, text) for pattern in self.redirect_exempt)

    def https_location(self, environ: dict[str, Any]) -> str | None:
        """The https URL Django's SecurityMiddleware redirects to, or None when the host is
        not one a redirect may name (Django answers 400 then)."""
        host = self.ssl_host or self.request_host(environ)
        if host is None:
            return None
        path = quote(environ.get("SCRIPT_NAME", "") + environ["PATH_INFO"], safe=_PATH_SAFE,
                     encoding="latin-1")
        query = environ.get("QUERY_STRING")
        return f"https://{host}{path}" + (f"?{query}" if query else "")

    def request_host(self, environ: dict[str, Any]) -> str | None:
        """Django's request.get_host(): the Host (or X-Forwarded-Host) when ALLOWED_HOSTS has it."""
        host = environ.get("HTTP_X_FORWARDED_HOST") if self.forwarded_host else None
        host = host or environ.get("HTTP_HOST")
        if not host:
            return None
        matched = _HOST.fullmatch(host.lower())
        if matched is None:
            return None
        domain = matched.group("domain").removesuffix(".")
        return host if any(_host_matches(domain, pattern) for pattern in self.allowed_hosts) else None


def _host_matches(domain: str, pattern: str) -> bool:
    """Django's is_same_domain: '*', the name itself, or '.example.com' for it and its subdomains."""
    pattern = pattern.lower()
    if pattern == "*":
        return True
    if pattern.startswith("."):
        return domain == pattern[1:] or domain.endswith(pattern)
    return domain == pattern


def with_https_table(policy: SecurityPolicy, https: dict[str, Any]) -> SecurityPolicy:
    """The policy with a header rules file's [https] table (core/headerrules.py) applied over it."""
    changes: dict[str, Any] = {}
    if "hsts" in https:
        changes["hsts"] = https["hsts"] or None
    if "redirect" in https:
        changes["ssl_redirect"] = https["redirect"]
    if "host" in https:
        changes["ssl_host"] = https["host"]
    return replace(policy, **changes)


def forwarded_scheme(environ: dict[str, Any], tls: bool, trusted: tuple[Pair, ...]) -> str:
    """gunicorn's wsgi.url_scheme: the first of the trusted secure-scheme fields present
    decides (https when its value is the secure one), else the connection's TLS. Heads
    whose fields disagree never reach this: gunicorn answers them 400."""
    for key, secure_value in trusted:
        value = environ.get(key)
        if value is not None:
            return "https" if value == secure_value else "http"
    return "https" if tls else "http"
