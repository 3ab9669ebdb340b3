"""Everything that can fail before a socket is opened, done once: the site the fronts serve.

`prepare` checks the roots, loads the table (servestatic.core.table), reads the
header rules and imports the user's app, and turns each failure into one
`StartupError` line naming the setting to fix. `servestatic serve` calls it in
gunicorn's master before the workers fork, so they share the table;
`servestatic.wsgi` and `servestatic.asgi` call it at import, in whatever server
runs them.
"""

from __future__ import annotations

import os

from servestatic.config.settings import Settings
from servestatic.core.decision import APP, StaticApp
from servestatic.core.headerrules import HeaderRulesError
from servestatic.core.table import load_table, wsgi_key
from servestatic.fronts.security import security_policy
from servestatic.fronts.userapp import AppImportError, load_user_app
from servestatic.site.manifest import ManifestError


class StartupError(Exception):
    """servestatic cannot start; the message is one line naming what to fix."""


def prepare(settings: Settings) -> StaticApp:
    """Validate the roots, load the table, import the user's app: the app to serve."""
    # The variable the user set: SERVESTATIC_MOUNTS names every directory when it is set.
    variable = "SERVESTATIC_MOUNTS" if settings.mounts else "SERVESTATIC_ROOT"
    for mount in (*settings.all_mounts, *settings.live_mounts):
        if not mount.root.is_dir():
            raise StartupError(f"{variable}: {mount.root} is not a directory")
        if not os.access(mount.root, os.R_OK | os.X_OK):
            raise StartupError(f"{variable}: {mount.root} is not readable")
    if settings.headers_file is not None and not settings.headers_file.is_file():
        raise StartupError(f"SERVESTATIC_HEADERS_FILE: {settings.headers_file} is not a file")
    # The app first: a Django project's settings decide the security headers the table holds.
    user_app = None
    if settings.app:
        try:
            user_app = load_user_app(settings.app, settings.app_interface)
        except AppImportError as error:
            raise StartupError(str(error)) from None
    try:
        table = load_table(settings, security_policy(settings))
    except ManifestError as error:
        raise StartupError(f"{variable}: {error}") from None
    except HeaderRulesError as error:
        raise StartupError(f"SERVESTATIC_HEADERS_FILE: {error}") from None
    static = StaticApp(table, settings, user_app)
    health = settings.app_health_path
    if health and static.route(wsgi_key(health), "GET") != APP:
        # A file (or a redirect, or an SPA route) there would answer the readiness probe
        # itself, and a broken app would never be seen.
        raise StartupError(f"SERVESTATIC_APP_HEALTH_PATH: {health} is answered by servestatic (a file, "
                           f"a redirect or the SPA index there), not by the app; give a path only the "
                           f"app serves")
    return static
