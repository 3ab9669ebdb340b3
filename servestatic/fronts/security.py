"""Which security policy (core/security.py) the static answers get: the Django project's, or
the SERVESTATIC_* settings'.

A Django project behind WhiteNoise had its middleware's headers and SECURE_SSL_REDIRECT
on static responses too, because WhiteNoise answered inside Django's middleware stack.
servestatic answers before Django, so it reads the same settings once, at start-up,
and says what the middleware would have added: SecurityMiddleware's HSTS (on https
only), Referrer-Policy, Cross-Origin-Opener-Policy and redirect, and
XFrameOptionsMiddleware's X-Frame-Options, each only when that middleware is in
MIDDLEWARE, as in Django. X-Content-Type-Options: nosniff is on every static answer
whatever SECURE_CONTENT_TYPE_NOSNIFF says (docs/http.md).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

from servestatic.config.settings import Settings
from servestatic.core.security import SecurityPolicy, settings_policy

SECURITY_MIDDLEWARE = "django.middleware.security.SecurityMiddleware"
XFRAME_MIDDLEWARE = "django.middleware.clickjacking.XFrameOptionsMiddleware"


class SecuritySettingError(Exception):
    """SERVESTATIC_SECURITY cannot be honoured; the message is one line."""


def django_settings() -> Any | None:
    """django.conf.settings when a Django project is set up in this process (importing its
    WSGI or ASGI application does that), else None. Never imports Django itself."""
    conf = sys.modules.get("django.conf")
    if conf is None:
        return None
    settings = conf.settings
    return settings if settings.configured else None


def security_policy(settings: Settings) -> SecurityPolicy:
    """The policy for this site: Django's (SERVESTATIC_SECURITY auto with a Django project,
    or django), else the SERVESTATIC_* settings'. An explicit SERVESTATIC_HSTS, _SSL_REDIRECT
    or _SSL_HOST wins over the project's value."""
    project = django_settings() if settings.security != "settings" else None
    if settings.security == "django" and project is None:
        raise SecuritySettingError("SERVESTATIC_SECURITY=django: SERVESTATIC_APP is not a Django "
                                   "project (no Django settings were set up importing it); expected "
                                   "auto or settings")
    if project is None:
        return settings_policy(settings.hsts, settings.ssl_redirect, settings.ssl_host)
    policy = django_policy(project)
    overrides = {name: getattr(settings, name) for name in ("hsts", "ssl_redirect", "ssl_host")
                 if name in settings.explicit}
    return replace(policy, **overrides)


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
        return SecurityPolicy(headers=tuple(framing), source="Django settings")
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
        allowed_hosts=tuple(_allowed_hosts(project)), forwarded_host=bool(project.USE_X_FORWARDED_HOST),
        source="Django settings")


def _allowed_hosts(project: Any) -> list[str]:
    """ALLOWED_HOSTS as Django's get_host applies it (with DEBUG, empty means local names)."""
    allowed = list(project.ALLOWED_HOSTS)
    if project.DEBUG and not allowed:
        return [".localhost", "127.0.0.1", "[::1]"]
    return allowed
