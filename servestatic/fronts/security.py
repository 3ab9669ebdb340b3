"""Which security policy (core/security.py) the static answers get: the Django project's,
with the header rules file's [https] table over it (core/headerrules.py).

A Django project behind WhiteNoise had its middleware's headers and SECURE_SSL_REDIRECT
on static responses too, because WhiteNoise answered inside Django's middleware stack.
servestatic answers before Django, so it reads the same settings once, at start-up,
and says what the middleware would have added: SecurityMiddleware's HSTS (on https
only), Referrer-Policy, Cross-Origin-Opener-Policy and redirect, and
XFrameOptionsMiddleware's X-Frame-Options, each only when that middleware is in
MIDDLEWARE, as in Django. Any other app gets none of them unless the rules file says so
(header rules for the headers, [https] for HSTS and the redirect).
X-Content-Type-Options: nosniff is on every static answer whatever
SECURE_CONTENT_TYPE_NOSNIFF says (docs/http.md).
"""

from __future__ import annotations

import sys
from typing import Any

from servestatic.config.settings import Settings
from servestatic.core.headerrules import load_https
from servestatic.core.security import SecurityPolicy, with_https_table

SECURITY_MIDDLEWARE = "django.middleware.security.SecurityMiddleware"
XFRAME_MIDDLEWARE = "django.middleware.clickjacking.XFrameOptionsMiddleware"


def django_settings() -> Any | None:
    """django.conf.settings when a Django project is set up in this process (importing its
    WSGI or ASGI application does that), else None. Never imports Django itself."""
    conf = sys.modules.get("django.conf")
    if conf is None:
        return None
    settings = conf.settings
    return settings if settings.configured else None


def security_policy(settings: Settings) -> SecurityPolicy:
    """The policy for this site: the Django project's when SERVESTATIC_APP is one, then the
    header rules file's [https] table over it (HeaderRulesError when that is wrong)."""
    project = django_settings()
    policy = django_policy(project) if project is not None else SecurityPolicy()
    if settings.headers_file is not None:
        policy = with_https_table(policy, load_https(settings.headers_file))
    return policy


def django_policy(project: Any) -> SecurityPolicy:
    """What Django's security and clickjacking middleware add to a response, from its settings.

    SecurityMiddleware's redirect leaves from its request half, so only its own headers and
    those of middleware listed before it are on the redirect (`redirect_headers`).
    """
    middleware = list(project.MIDDLEWARE)
    framing = []
    if XFRAME_MIDDLEWARE in middleware:
        framing.append(("X-Frame-Options", getattr(project, "X_FRAME_OPTIONS", "DENY").upper()))
    if SECURITY_MIDDLEWARE not in middleware:
        return SecurityPolicy(headers=tuple(framing))
    own: list[tuple[str, str]] = []
    if project.SECURE_CONTENT_TYPE_NOSNIFF:
        own.append(("X-Content-Type-Options", "nosniff"))
    referrer = project.SECURE_REFERRER_POLICY
    if referrer:
        values = referrer.split(",") if isinstance(referrer, str) else referrer
        own.append(("Referrer-Policy", ",".join(value.strip() for value in values)))
    opener = getattr(project, "SECURE_CROSS_ORIGIN_OPENER_POLICY", None)  # Django 4.0+
    if opener:
        own.append(("Cross-Origin-Opener-Policy", opener))
    framing_first = bool(framing) and middleware.index(XFRAME_MIDDLEWARE) < middleware.index(
        SECURITY_MIDDLEWARE)
    hsts = None
    if project.SECURE_HSTS_SECONDS:
        hsts = f"max-age={project.SECURE_HSTS_SECONDS}"
        if project.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if project.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
    proxy = project.SECURE_PROXY_SSL_HEADER
    return SecurityPolicy(
        # nosniff is on every static answer already (core/table.py).
        headers=tuple(framing + [pair for pair in own if pair[0] != "X-Content-Type-Options"]),
        redirect_headers=tuple(own + (framing if framing_first else [])),
        hsts=hsts, ssl_redirect=bool(project.SECURE_SSL_REDIRECT),
        ssl_host=project.SECURE_SSL_HOST or None,
        redirect_exempt=tuple(project.SECURE_REDIRECT_EXEMPT),
        proxy_ssl_header=tuple(proxy) if proxy else None,
        allowed_hosts=tuple(_allowed_hosts(project)), forwarded_host=bool(project.USE_X_FORWARDED_HOST))


def _allowed_hosts(project: Any) -> list[str]:
    """ALLOWED_HOSTS as Django's get_host applies it (with DEBUG, empty means local names)."""
    allowed = list(project.ALLOWED_HOSTS)
    if project.DEBUG and not allowed:
        return [".localhost", "127.0.0.1", "[::1]"]
    return allowed
