"""`servestatic check`'s findings: a setup that starts but serves the wrong thing.

The settings can be valid and the roots readable while every asset 404s: a
prefix that is not Django's STATIC_URL (files served at `/css/...`, linked as
`/static/css/...`), a root that is the project's sources rather than
collectstatic's output, a media mount under another URL than MEDIA_URL. Each
finding is one line naming the setting to change and what to set it to; the
command exits non-zero when there is one.

Two sources of truth are read, both without a server: a Django project's settings
(when SERVESTATIC_APP is one, or DJANGO_SETTINGS_MODULE names one), and the pages
the check can read (the HTML files of the mounts, and the app's own `/`), whose
static links must be served by a mount or by the app.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from servestatic.config.settings import Mount, Settings
from servestatic.core.decision import STATIC, StaticApp
from servestatic.fronts.security import django_settings
from servestatic.fronts.userapp import ASGI
from servestatic.site.links import static_links

# At most this many pages are read, and this many missing links asked of the app.
MAX_PAGES = 200
MAX_APP_REQUESTS = 50


class CheckError(Exception):
    """The check itself cannot run (Django cannot be set up); the message is one line."""


@dataclass(frozen=True)
class Finding:
    """One problem: the setting to change, what is wrong, and what to set (when it is known)."""

    setting: str
    message: str
    fix: str = ""

    def line(self) -> str:
        return f"{self.setting}: {self.message}" + (f"; {self.fix}" if self.fix else "")


def findings(settings: Settings, static: StaticApp) -> list[Finding]:
    """Everything wrong with this setup that start-up does not catch, one finding each."""
    found: list[Finding] = []
    project = django_settings() or _django_from_environment()
    if project is not None:
        found += django_findings(settings, project)
    fixes = {(finding.setting, finding.fix) for finding in found if finding.fix}
    # A link finding with the fix a Django finding gave already is the same problem seen twice.
    found += [finding for finding in link_findings(settings, static)
              if not finding.fix or (finding.setting, finding.fix) not in fixes]
    return found


def _variables(settings: Settings) -> tuple[str, str]:
    """The variables that name a root and a prefix in this setup."""
    if settings.mounts:
        return "SERVESTATIC_MOUNTS", "SERVESTATIC_MOUNTS"
    return "SERVESTATIC_ROOT", "SERVESTATIC_PREFIX"


def _set_prefix(settings: Settings, mount: Mount, prefix: str) -> str:
    if settings.mounts:
        return f"mount it as {prefix}={mount.root}"
    return f"set SERVESTATIC_PREFIX={prefix}"


# --- Django


def _django_from_environment() -> Any | None:
    """Django's settings when DJANGO_SETTINGS_MODULE names a project and no app set it up."""
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        return None
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        import django

        django.setup()
    except Exception as error:  # the project's own import-time failure
        raise CheckError(f"DJANGO_SETTINGS_MODULE={os.environ['DJANGO_SETTINGS_MODULE']}: cannot set up "
                         f"Django: {type(error).__name__}: {error}") from None
    return django_settings()


def django_findings(settings: Settings, project: Any) -> list[Finding]:
    """The mounts held against STATIC_URL and STATIC_ROOT, MEDIA_URL and MEDIA_ROOT."""
    root_variable, prefix_variable = _variables(settings)
    mounts = {mount.root.resolve(): mount for mount in (*settings.all_mounts, *settings.live_mounts)}
    sources = _source_directories(project)
    found = [Finding(root_variable, f"{mount.root} is {sources[root]}, the sources collectstatic copies "
                                    f"from; serve STATIC_ROOT ({project.STATIC_ROOT}) after "
                                    "`manage.py collectstatic`")
             for root, mount in mounts.items() if root in sources]
    static_root = Path(project.STATIC_ROOT).resolve() if project.STATIC_ROOT else None
    static_url = urlsplit(project.STATIC_URL or "").path or None
    mount = mounts.get(static_root) if static_root is not None else None
    if static_root is not None and mount is None and not found:
        found.append(Finding(root_variable, f"no mount serves Django's STATIC_ROOT ({static_root}); "
                                            f"serve it at {static_url or '/'}"))
    if mount is not None and static_url and mount.prefix != static_url:
        found.append(Finding(prefix_variable, f"{mount.root} is served at {mount.prefix} but Django's "
                                              f"STATIC_URL is {static_url}",
                             _set_prefix(settings, mount, static_url)))
    if mount is not None:
        manifest = _django_manifest(static_root)
        if manifest is not None and not manifest.exists():
            found.append(Finding(root_variable, f"{mount.root} has no {manifest.name}: its storage writes "
                                                "one, so this is not collectstatic's output; run "
                                                "`manage.py collectstatic`"))
    media_root = Path(project.MEDIA_ROOT).resolve() if project.MEDIA_ROOT else None
    media_url = urlsplit(project.MEDIA_URL or "").path or None
    media = mounts.get(media_root) if media_root is not None else None
    if media is not None and media_url and media.prefix != media_url:
        found.append(Finding(prefix_variable, f"{media.root} is served at {media.prefix} but Django's "
                                              f"MEDIA_URL is {media_url}",
                             _set_prefix(settings, media, media_url)))
    return found


def _source_directories(project: Any) -> dict[Path, str]:
    """The directories collectstatic copies from, each with what it is."""
    from django.apps import apps

    found: dict[Path, str] = {}
    for entry in project.STATICFILES_DIRS:
        directory = entry[1] if isinstance(entry, (list, tuple)) else entry
        found[Path(directory).resolve()] = "a STATICFILES_DIRS entry"
    for config in apps.get_app_configs():
        directory = Path(config.path) / "static"
        if directory.is_dir():
            found.setdefault(directory.resolve(), f"the static directory of the app {config.label!r}")
    return found


def _django_manifest(static_root: Path | None) -> Path | None:
    """Where the project's staticfiles storage keeps its manifest, if it keeps one."""
    from django.contrib.staticfiles.storage import ManifestFilesMixin, staticfiles_storage

    storage = getattr(staticfiles_storage, "_wrapped", staticfiles_storage)
    if static_root is None or not isinstance(staticfiles_storage, ManifestFilesMixin):
        return None
    return static_root / getattr(storage, "manifest_name", "staticfiles.json")


# --- the pages' links


def link_findings(settings: Settings, static: StaticApp) -> list[Finding]:
    """Static URLs that the readable pages link and nobody serves, grouped by the fix."""
    root_variable = _variables(settings)[0]
    missing: dict[str, str] = {}  # link -> the first page that links it
    for page, html in _pages(static):
        for link in static_links(html):
            if static.route(link, "GET") != STATIC:
                missing.setdefault(link, page)
    if static.user_app is not None:
        for link in list(missing)[:MAX_APP_REQUESTS]:
            if _app_page(static, link) is not None:  # the app serves it (media, a view)
                del missing[link]
    fixes: dict[tuple[str, str], list[str]] = {}
    for link in missing:
        fixes.setdefault(_moved(static, settings, link) or (root_variable, ""), []).append(link)
    found = []
    for (variable, fix), links in fixes.items():
        example = f"{links[0]} on {missing[links[0]]}"
        if fix:
            found.append(Finding(variable, f"pages link {len(links)} static URL(s) that are served under "
                                           f"another prefix (such as {example})", fix))
        else:
            found.append(Finding(variable, f"pages link {len(links)} static URL(s) that no mount serves "
                                           f"(such as {example})"))
    return found


def _moved(static: StaticApp, settings: Settings, link: str) -> tuple[str, str] | None:
    """(variable, fix) when the linked file is served under another prefix: the link is
    WANTED + REST and a mount serves REST, so that mount's prefix should be WANTED."""
    segments = link.lstrip("/").split("/")
    for served in static.table.mounts:
        for cut in range(len(segments)):
            wanted = "/" + "".join(segment + "/" for segment in segments[:cut])
            candidate = served.key_prefix + "/".join(segments[cut:])
            if (wanted != served.prefix and static.route(candidate, "GET") == STATIC
                    and static.table.mount_of(candidate) is served):
                mount = Mount(served.prefix, Path(served.root.rstrip("/")))
                return _variables(settings)[1], _set_prefix(settings, mount, wanted)
    return None


def _pages(static: StaticApp) -> list[tuple[str, str]]:
    """(URL path, text) of the HTML files the mounts serve, then of the app's `/`."""
    pages: list[tuple[str, str]] = []
    seen: set[str] = set()
    for key in list(static.paths):
        if len(pages) >= MAX_PAGES:
            break
        static_file = static.lookup(key)
        if static_file is None:
            continue
        identity = next((item for item in static_file.by_size if item.coding == "identity"), None)
        if identity is None or identity.path in seen or not _is_html(identity.headers):
            continue
        seen.add(identity.path)
        try:
            text = Path(identity.path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        pages.append((key.encode("latin-1").decode("utf-8", "replace"), text))
    if static.user_app is not None and static.route("/", "GET") != STATIC:
        home = _app_page(static, "/")
        if home is not None:
            pages.append(("/ (the app's)", home))
    return pages


def _is_html(headers: list[tuple[str, str]]) -> bool:
    return any(name == "Content-Type" and value.startswith("text/html") for name, value in headers)


def _app_page(static: StaticApp, path: str) -> str | None:
    """The user's app's answer to GET path as text, when it is a 200; None otherwise."""
    host, scheme, extra = _request_identity()
    app = static.user_app
    logging.disable(logging.WARNING)  # the app's "Not Found: ..." for a link is the check's to say
    try:
        if app.interface == ASGI:
            status, body = asyncio.run(_asgi_get(app.callable, path, host, scheme, extra))
        else:
            status, body = _wsgi_get(app.callable, path, host, scheme, extra)
    except Exception:  # the app's failure is the app's: this page is not readable
        return None
    finally:
        logging.disable(logging.NOTSET)
    return body.decode("utf-8", "replace") if status == 200 else None


def _request_identity() -> tuple[str, str, dict[str, str]]:
    """A Host the project allows, https (so that no redirect answers), and the proxy header
    a Django project reads it from."""
    project = django_settings()
    host, extra = "localhost", {}
    if project is not None:
        allowed = [name.lstrip(".") for name in project.ALLOWED_HOSTS if name != "*"]
        host = allowed[0] if allowed else host
        if project.SECURE_PROXY_SSL_HEADER:
            key, value = project.SECURE_PROXY_SSL_HEADER
            extra[key] = value
    return host, "https", extra


def _wsgi_get(app: Any, path: str, host: str, scheme: str, extra: dict[str, str]) -> tuple[int, bytes]:
    import io

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
               "SERVER_NAME": host, "SERVER_PORT": "443", "SERVER_PROTOCOL": "HTTP/1.1",
               "HTTP_HOST": host, "wsgi.url_scheme": scheme, "wsgi.input": io.BytesIO(),
               "wsgi.errors": sys.stderr, "wsgi.version": (1, 0), "wsgi.multithread": False,
               "wsgi.multiprocess": False, "wsgi.run_once": False, **extra}
    status: list[int] = []
    body = app(environ, lambda line, headers, exc_info=None: status.append(int(line.split()[0])))
    try:
        data = b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()
    return status[0], data


async def _asgi_get(app: Any, path: str, host: str, scheme: str,
                    extra: dict[str, str]) -> tuple[int, bytes]:
    headers = [(b"host", host.encode())]
    headers += [(key.removeprefix("HTTP_").replace("_", "-").lower().encode(), value.encode())
                for key, value in extra.items()]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": scheme, "path": path, "raw_path": path.encode("latin-1"), "query_string": b"",
             "root_path": "", "headers": headers, "server": (host, 443), "client": ("127.0.0.1", 0)}
    status, chunks = [0], []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status[0], b"".join(chunks)
