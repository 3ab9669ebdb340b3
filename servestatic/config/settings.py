"""Every setting servestatic has, declared once.

Each `Setting` names its environment variable, its CLI flag, its default and
what it accepts. The CLI builds its options from this table, the server and the
compressor read the parsed `Settings`, and the image, the buildpack and the Helm
chart only ever set the environment variables named here. A wrong value raises
`SettingError` with one line naming the variable (or flag) and what it accepts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from servestatic.config.cpus import available_cpus
from servestatic.site.names import MANIFEST_NAME


class SettingError(ValueError):
    """A setting has a value it does not accept; the message is one line for the user."""


# --- parsers: each takes the raw string and returns the value or raises ValueError
# with the "what it accepts" half of the message.


def _parse_int(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip(), 10)
        except ValueError:
            value = None
        upper = "" if maximum is None else f" and at most {maximum}"
        if value is None or value < minimum or (maximum is not None and value > maximum):
            raise ValueError(f"a whole number at least {minimum}{upper}")
        return value

    return parse


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("one of true, false, 1, 0, yes, no, on, off")


def _parse_choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        lowered = raw.strip().lower()
        if lowered not in choices:
            raise ValueError("one of " + ", ".join(choices))
        return lowered

    return parse


def _parse_text(raw: str) -> str:
    return raw.strip()


def _parse_optional_text(raw: str) -> str | None:
    return raw.strip() or None


def _parse_path(raw: str) -> Path:
    if not raw.strip():
        raise ValueError("a path")
    return Path(raw.strip())


def _parse_optional_path(raw: str) -> Path | None:
    return Path(raw.strip()) if raw.strip() else None


def _parse_prefix(raw: str) -> str:
    value = raw.strip() or "/"
    if not value.startswith("/") or "//" in value or any(c in value for c in "?#\\ \x00"):
        raise ValueError("a URL path starting with '/', such as / or /static/")
    return value if value.endswith("/") else value + "/"


@dataclass(frozen=True)
class Mount:
    """A directory served under a URL prefix, with its own manifest and variants; or, `live`,
    one whose files change at run time (uploads), looked up on each request (core/livemount.py)."""

    prefix: str
    root: Path
    live: bool = False


# A mount's directory written as live:DIR changes at run time.
LIVE = "live:"
_MOUNTS_EXPECTED = "comma-separated PREFIX=DIR pairs, such as /static/=staticfiles,/=public"


def _parse_mounts(raw: str) -> tuple[Mount, ...]:
    """SERVESTATIC_MOUNTS (or --mount, repeated, joined with commas): each prefix once."""
    mounts: list[Mount] = []
    for part in filter(None, (piece.strip() for piece in raw.split(","))):
        prefix, equals, directory = part.partition("=")
        if not equals or not directory.strip():
            raise ValueError(_MOUNTS_EXPECTED)
        directory = directory.strip()
        live = directory.startswith(LIVE)
        if live and not directory.removeprefix(LIVE).strip():
            raise ValueError(f"{_MOUNTS_EXPECTED}, a DIR that changes at run time as live:DIR")
        try:
            mount = Mount(_parse_prefix(prefix), Path(directory.removeprefix(LIVE).strip()), live)
        except ValueError:
            raise ValueError(f"{_MOUNTS_EXPECTED} (bad prefix {prefix.strip()!r})") from None
        if any(other.prefix == mount.prefix for other in mounts):
            raise ValueError(f"{_MOUNTS_EXPECTED}, each prefix once ({mount.prefix} twice)")
        mounts.append(mount)
    return tuple(mounts)


def _parse_url_path(raw: str) -> str:
    value = raw.strip()
    if not re.fullmatch(r"/[A-Za-z0-9._~/-]*", value):
        raise ValueError("a URL path starting with '/', such as /healthz")
    return value


def _parse_optional_url_path(raw: str) -> str | None:
    return _parse_url_path(raw) if raw.strip() else None


def _parse_app(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*(\(\))?", value):
        raise ValueError("an import path 'module:attribute', such as mysite.wsgi:application")
    return value


_CORS_EXPECTED = "'*', 'off', or comma-separated origins like https://example.com"


def _parse_cors(raw: str) -> tuple[str, ...]:
    """'*' (any origin), 'off', or a comma-separated allow-list of origins.

    An empty value is refused rather than read as off: elsewhere an empty variable (or a
    chart value left empty) means "the default", which for CORS is '*', so reading it as
    off would turn CORS off by accident in one place and leave it on in the other.
    """
    value = raw.strip()
    if value.lower() in {"off", "none", "false", "0"}:
        return ()
    if value == "*":
        return ("*",)
    origins = tuple(part.strip() for part in value.split(",") if part.strip())
    if not origins:
        raise ValueError(_CORS_EXPECTED)
    for origin in origins:
        if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?", origin):
            raise ValueError(_CORS_EXPECTED)
    return origins


def _parse_extensions(raw: str) -> frozenset[str]:
    parts = [part.strip().lower().lstrip(".") for part in raw.split(",")]
    if any(not re.fullmatch(r"[a-z0-9_+-]+", part) for part in parts if part):
        raise ValueError("comma-separated file extensions such as jpg,png,woff2")
    return frozenset(part for part in parts if part)


def _parse_immutable(raw: str) -> str:
    value = raw.strip()
    if value in {"auto", "none"}:
        return value
    try:
        re.compile(value)
    except re.error as error:
        raise ValueError(f"'auto', 'none' or a valid regular expression ({error})") from None
    return value


def _parse_bind(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    if not (value.startswith("unix:") or re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[\w.-]*):\d{1,5}", value)):
        raise ValueError("HOST:PORT such as 0.0.0.0:8000, [::]:8000, or unix:/path/to.sock")
    return value


def _parse_host_port(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    if not re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[\w.-]*):\d{1,5}", value) or not (
            0 < int(value.rpartition(":")[2]) <= 65535):
        raise ValueError("HOST:PORT such as 0.0.0.0:9100 or [::]:9100")
    return value


@dataclass(frozen=True)
class Setting:
    """One setting: where it comes from, what it defaults to, and how it is read."""

    name: str
    env: str
    default: str
    parse: Callable[[str], Any]
    help: str
    flag: str = ""
    commands: tuple[str, ...] = ("serve", "check", "healthcheck")
    # A flag given several times, its values joined with commas (--mount).
    repeatable: bool = False

    @property
    def option(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


_SERVE = ("serve", "check", "healthcheck")
_COMPRESS = ("compress",)
_ALL = ("serve", "check", "healthcheck", "compress")


def setting(
    env: str,
    default: str,
    parse: Callable[[str], Any],
    help: str,
    *,
    flag: str = "",
    commands: tuple[str, ...] = _SERVE,
    repeatable: bool = False,
) -> Any:
    """Declare one `Settings` field and its `Setting` together.

    The field's default is `parse(default)`, so the default is written once, as
    the text a user would write; the field's name is the setting's name.
    """
    declared = Setting("", env, default, parse, help, flag, commands, repeatable)
    return field(default=parse(default), metadata={"setting": declared})


# Formats whose bytes are already compressed, and only those: a format that may be
# stored raw (.ico, often uncompressed bitmaps; .bmp, .tiff, .svg) is compressed, and
# the probe in buildtime/compress.py drops the variants of any file that does not shrink.
DEFAULT_SKIP_EXTENSIONS = (
    "jpg,jpeg,png,gif,webp,avif,jxl,heic,heif,woff,woff2,zip,gz,tgz,bz2,xz,zst,br,7z,rar,"
    "mp3,mp4,m4a,m4v,webm,ogg,oga,ogv,opus,flac,aac,mov,avi,mkv,pdf,jar,whl,apk,dmg,"
    "docx,xlsx,pptx,odt,epub"
)


@dataclass(frozen=True)
class Settings:
    """Parsed settings, one field per setting. Build it with `load_settings`.

    To add a setting, add one field here; the CLI option, the README's table
    (checked by tests) and `SETTINGS` follow from it.
    """

    root: Path = setting(
        "SERVESTATIC_ROOT", ".", _parse_path,
        "Directory of static files to serve or compress.", commands=_ALL)
    prefix: str = setting(
        "SERVESTATIC_PREFIX", "/", _parse_prefix,
        "URL path under which the root is served, such as /static/.")
    mounts: tuple[Mount, ...] = setting(
        "SERVESTATIC_MOUNTS", "", _parse_mounts,
        "Several directories, each under its own URL prefix, as PREFIX=DIR pairs "
        "(/static/=staticfiles,/=public); live:DIR for files that change at run time "
        "(/media/=live:media); replaces ROOT and PREFIX.",
        flag="--mount", commands=_ALL, repeatable=True)
    app: str | None = setting(
        "SERVESTATIC_APP", "", _parse_app,
        "Your WSGI or ASGI app as module:attribute; requests that are not static hits go to it.")
    app_interface: str = setting(
        "SERVESTATIC_APP_INTERFACE", "auto", _parse_choice("auto", "wsgi", "asgi"),
        "Whether SERVESTATIC_APP is a WSGI or an ASGI app; auto tells them apart.")
    port: int = setting(
        "PORT", "8000", _parse_int(1, 65535),
        "Port to listen on (on all interfaces), as PaaS platforms set it.")
    bind: str | None = setting(
        "SERVESTATIC_BIND", "", _parse_bind,
        "Address to listen on, HOST:PORT or unix:PATH; overrides PORT.")
    workers: int = setting(
        "WEB_CONCURRENCY", "0", _parse_int(0, 1024),
        "Worker processes; 0 means one per CPU the process may use (cgroup quota, affinity).")
    threads: int = setting(
        "SERVESTATIC_THREADS", "8", _parse_int(1, 1024),
        "Threads per worker that run a WSGI app; an ASGI app runs in the event loop.")
    keepalive: int = setting(
        "SERVESTATIC_KEEPALIVE", "75", _parse_int(0, 3600),
        "Seconds an idle keep-alive connection is kept; longer than a CDN's origin idle timeout.")
    timeout: int = setting(
        "SERVESTATIC_TIMEOUT", "30", _parse_int(1, 3600),
        "Seconds a worker may be silent before it is restarted.")
    graceful_timeout: int = setting(
        "SERVESTATIC_GRACEFUL_TIMEOUT", "20", _parse_int(1, 3600),
        "Seconds in-flight requests get to finish after SIGTERM.")
    max_age: int = setting(
        "SERVESTATIC_MAX_AGE", "60", _parse_int(0),
        "max-age in seconds for files whose names carry no content hash.")
    immutable_max_age: int = setting(
        "SERVESTATIC_IMMUTABLE_MAX_AGE", "31536000", _parse_int(0),
        "max-age in seconds for files whose names carry a content hash (sent as immutable).")
    html_cache_control: str = setting(
        "SERVESTATIC_HTML_CACHE_CONTROL", "no-cache", _parse_text,
        "Cache-Control for HTML files.")
    stale_if_error: int = setting(
        "SERVESTATIC_STALE_IF_ERROR", "86400", _parse_int(0),
        "Seconds a cache may keep serving its copy while the origin is down or failing: "
        "stale-if-error, added to the Cache-Control of HTML, unhashed files and 404s; 0: off.")
    preload_links: int = setting(
        "SERVESTATIC_PRELOAD_LINKS", "8", _parse_int(0, 16),
        "Most Link preload headers on an HTML page, for the stylesheets, scripts and fonts "
        "its head loads (found by compress); 0: none.")
    early_hints: bool = setting(
        "SERVESTATIC_EARLY_HINTS", "false", _parse_bool,
        "Send an HTML page's preload Link header in a 103 Early Hints before its 200 "
        "(HTTP/1.1 GETs), for CDNs and browsers that act on early hints.")
    cors: tuple[str, ...] = setting(
        "SERVESTATIC_CORS", "*", _parse_cors,
        "Access-Control-Allow-Origin: '*', 'off', or comma-separated allowed origins.")
    timing_allow_origin: str = setting(
        "SERVESTATIC_TIMING_ALLOW_ORIGIN", "cors", _parse_choice("cors", "*", "off"),
        "Timing-Allow-Origin, so that real-user monitoring on another origin sees the sizes and "
        "timings of files: 'cors' (whatever SERVESTATIC_CORS allows), '*' or 'off'.")
    # --- for the CDN in front (core/cdnheaders.py; docs/cdn.md)
    cache_tag_header: str = setting(
        "SERVESTATIC_CACHE_TAG_HEADER", "off",
        _parse_choice("off", "cache-tag", "surrogate-key", "edge-cache-tag"),
        "Header naming each file's cache tags (its build, its kind and its directories) for a "
        "CDN's purge by tag: cache-tag (Cloudflare), surrogate-key (Fastly), edge-cache-tag "
        "(Akamai) or off.")
    cdn_max_age: int = setting(
        "SERVESTATIC_CDN_MAX_AGE", "0", _parse_int(0),
        "Seconds a CDN may keep HTML, unhashed files and 404s without asking the origin "
        "(CDN-Cache-Control, RFC 9213) while browsers still revalidate; purge on deploy with "
        "`servestatic diff`; 0: off.")
    spa: bool = setting(
        "SERVESTATIC_SPA", "false", _parse_bool,
        "Single-page app mode: unknown extension-less paths get /index.html.")
    headers_file: Path | None = setting(
        "SERVESTATIC_HEADERS_FILE", "", _parse_optional_path,
        "TOML file of per-glob response header rules (for CSP and the like).")
    health_path: str = setting(
        "SERVESTATIC_HEALTH_PATH", "/healthz", _parse_url_path,
        "Path answered 200 while the server runs, for liveness probes; never reaches your app.")
    ready_path: str = setting(
        "SERVESTATIC_READY_PATH", "/readyz", _parse_url_path,
        "Path answered 200 when there is something to serve (files or an app), else 503, for "
        "readiness probes; never reaches your app.")
    app_health_path: str | None = setting(
        "SERVESTATIC_APP_HEALTH_PATH", "", _parse_optional_url_path,
        "Your app's own health check path, asked through servestatic by `servestatic healthcheck` "
        "(and by the chart's readiness probe); needs SERVESTATIC_APP.")
    fast_path: bool = setting(
        "SERVESTATIC_FAST_PATH", "true", _parse_bool,
        "Answer plain static GET/HEAD requests in the worker's event loop, not through ASGI.")
    access_log: str = setting(
        "SERVESTATIC_ACCESS_LOG", "text", _parse_choice("text", "json", "off"),
        "Access log to stdout: text, json or off.")
    gunicorn_config: str | None = setting(
        "SERVESTATIC_GUNICORN_CONFIG", "", _parse_optional_text,
        "gunicorn config file (or python:module) read under the SERVESTATIC_* settings; "
        "default: ./gunicorn.conf.py if there is one.")
    metrics_bind: str | None = setting(
        "SERVESTATIC_METRICS_BIND", "", _parse_host_port,
        "Serve Prometheus metrics at /metrics on this separate HOST:PORT; unset: no metrics.")
    log_level: str = setting(
        "SERVESTATIC_LOG_LEVEL", "info", _parse_choice("debug", "info", "warning", "error", "critical"),
        "Error log level (to stderr).")
    immutable_pattern: str = setting(
        "SERVESTATIC_IMMUTABLE_PATTERN", "auto", _parse_immutable,
        "Which names carry a content hash: 'auto' (Django, Vite/Rollup, webpack), 'none', "
        "or a regular expression searched in the URL path.", commands=_ALL)
    zstd: bool = setting(
        "SERVESTATIC_ZSTD", "false", _parse_bool,
        "Also write .zst variants (zstd: Python 3.14+, or the zstd extra).", commands=_COMPRESS)
    min_size: int = setting(
        "SERVESTATIC_MIN_SIZE", "256", _parse_int(0),
        "Files smaller than this many bytes are not compressed.", commands=_COMPRESS)
    skip_extensions: frozenset[str] = setting(
        "SERVESTATIC_SKIP_EXTENSIONS", DEFAULT_SKIP_EXTENSIONS, _parse_extensions,
        "Comma-separated extensions that are never compressed.", commands=_COMPRESS)
    gzip_effort: str = setting(
        "SERVESTATIC_GZIP_EFFORT", "balanced", _parse_choice("fast", "balanced", "max"),
        "Effort for .gz: fast (libdeflate 9), balanced (libdeflate 12) or max (zopfli).",
        commands=_COMPRESS)
    compress_workers: int = setting(
        "SERVESTATIC_COMPRESS_WORKERS", "0", _parse_int(0, 1024),
        "Compression processes; 0 means one per CPU the process may use.",
        flag="--workers", commands=_COMPRESS)
    cache_dir: Path | None = setting(
        "SERVESTATIC_CACHE_DIR", "", _parse_optional_path,
        "Content-addressed cache of compressed outputs, reused across builds.", commands=_COMPRESS)
    # --- dictionary deltas (RFC 9842 dcz; buildtime/deltas.py, issue 21)
    delta_versions: int = setting(
        "SERVESTATIC_DELTA_VERSIONS", "3", _parse_int(0, 32),
        "Earlier versions of each content-hashed file kept (in the cache dir) and made dcz "
        "deltas against, for browsers holding one; 0: no deltas.", commands=_COMPRESS)
    delta_min_saving: int = setting(
        "SERVESTATIC_DELTA_MIN_SAVING", "10", _parse_int(0, 99),
        "Percent a dcz delta must be smaller than the br variant to be kept.", commands=_COMPRESS)
    dictionaries_from: Path | None = setting(
        "SERVESTATIC_DICTIONARIES_FROM", "", _parse_optional_path,
        "A previous release's root, whose hashed files are earlier versions to make deltas "
        "against (for builds without a cache dir).", commands=_COMPRESS)
    html_dictionary: bool = setting(
        "SERVESTATIC_HTML_DICTIONARY", "false", _parse_bool,
        "Train a site-wide zstd dictionary from the HTML pages, announce it with Link "
        "rel=compression-dictionary and write each page's dcz delta against it.",
        commands=_COMPRESS)

    # Not a setting: the settings given by a flag or a SERVESTATIC_* variable, which win
    # over gunicorn's config file and GUNICORN_CMD_ARGS. A default, PORT and
    # WEB_CONCURRENCY lose to them: gunicorn treats those two variables as defaults.
    explicit: frozenset[str] = field(default=frozenset(), compare=False)

    @property
    def worker_count(self) -> int:
        return self.workers or available_cpus()

    @property
    def compress_worker_count(self) -> int:
        return self.compress_workers or available_cpus()

    @property
    def bind_address(self) -> str:
        return self.bind or f"0.0.0.0:{self.port}"

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_NAME

    @property
    def all_mounts(self) -> tuple[Mount, ...]:
        """What is compressed and served from a manifest: the mounts but the live ones, or ROOT
        under PREFIX."""
        if self.mounts:
            return tuple(mount for mount in self.mounts if not mount.live)
        return (Mount(self.prefix, self.root),)

    @property
    def live_mounts(self) -> tuple[Mount, ...]:
        """The mounts whose files change at run time: never compressed, looked up per request."""
        return tuple(mount for mount in self.mounts if mount.live)


SETTINGS: tuple[Setting, ...] = tuple(
    replace(item.metadata["setting"], name=item.name) for item in fields(Settings) if item.metadata
)
SETTINGS_BY_NAME: dict[str, Setting] = {item.name: item for item in SETTINGS}


def load_settings(
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, str | None] | None = None,
) -> Settings:
    """Parse settings: CLI overrides first, then the environment, then defaults.

    Raises SettingError naming the variable (and flag, when it came from one).
    """
    environ = os.environ if environ is None else environ
    overrides = overrides or {}
    values: dict[str, Any] = {}
    explicit = set()
    for declared in SETTINGS:
        raw = overrides.get(declared.name)
        source = declared.option
        if raw is None:
            raw = environ.get(declared.env)
            source = declared.env
        if raw is not None and (source == declared.option or source.startswith("SERVESTATIC_")):
            explicit.add(declared.name)
        if raw is None:
            raw = declared.default
            source = f"{declared.env} (default)"
        try:
            values[declared.name] = declared.parse(raw)
        except ValueError as error:
            raise SettingError(f"{source}: got {raw!r}; expected {error}") from None
    if values["mounts"]:
        # SERVESTATIC_MOUNTS replaces SERVESTATIC_ROOT and _PREFIX (an image may set
        # ROOT as its default); a ROOT or --prefix given on the command line with it
        # is a contradiction, not a default.
        given = [shown for name, shown in (("root", "ROOT"), ("prefix", "--prefix")) if overrides.get(name)]
        if given:
            raise SettingError(f"{' and '.join(given)} cannot be combined with --mount "
                               "or SERVESTATIC_MOUNTS; name every directory as a mount")
    _check_health_paths(values)
    return Settings(**values, explicit=frozenset(explicit))


def _check_health_paths(values: Mapping[str, Any]) -> None:
    """The three probe paths are answered by different parts, so they must differ; the app's
    needs an app. Checked here, with the settings, so that `check`, `serve` and
    `healthcheck` refuse them alike."""
    health, ready, app_health = values["health_path"], values["ready_path"], values["app_health_path"]
    if ready == health:
        raise SettingError(f"SERVESTATIC_READY_PATH: got {ready!r}, the health path; expected "
                           "another path than SERVESTATIC_HEALTH_PATH")
    if app_health is None:
        return
    if app_health in (health, ready):
        raise SettingError(f"SERVESTATIC_APP_HEALTH_PATH: got {app_health!r}, which servestatic answers "
                           "itself; expected a path of your app other than SERVESTATIC_HEALTH_PATH "
                           "and SERVESTATIC_READY_PATH")
    if values["app"] is None:
        raise SettingError(f"SERVESTATIC_APP_HEALTH_PATH: got {app_health!r} without an app; expected "
                           "SERVESTATIC_APP to be set too, or no app health path")
