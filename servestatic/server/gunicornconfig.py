"""gunicorn's configuration for `servestatic serve`, layered the way gunicorn layers it.

From lowest to highest:

1. servestatic's defaults (`servestatic_defaults`), which include `PORT` and
   `WEB_CONCURRENCY` because gunicorn treats those as defaults too;
2. a gunicorn config file: `SERVESTATIC_GUNICORN_CONFIG`, else the `--config` in
   `GUNICORN_CMD_ARGS`, else `./gunicorn.conf.py` as gunicorn finds it;
3. `GUNICORN_CMD_ARGS`;
4. servestatic settings given explicitly, by a flag or a `SERVESTATIC_*` variable.

gunicorn's own environment conventions (`FORWARDED_ALLOW_IPS`, `SENDFILE`) keep
working because servestatic leaves those settings at gunicorn's default. The
layers are applied to a gunicorn `Config` with its own `set` and argument parser,
so every gunicorn setting (max_requests, limit_request_*, statsd_host, hooks)
means what gunicorn's documentation says. gunicorn's `Application.load_config`
is not used as is because it reads `sys.argv` (servestatic's own command line)
and ends a bad config file with a traceback and exit 1 rather than one line.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shlex
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from gunicorn.config import Config

from servestatic.config.settings import Settings

WORKER_CLASS = "servestatic.server.worker.EventLoopWorker"  # gunicorn's ASGI worker, static hits in its loop


class ConfigError(Exception):
    """gunicorn's configuration cannot be used; the message is one line naming its source."""


class Required(NamedTuple):
    """A gunicorn setting servestatic cannot work without, and why."""

    setting: str
    value: Any
    why: str


# gunicorn settings whose other values would break servestatic. Each is read as
# gunicorn's Config reads it (`Config.sendfile` is False when SENDFILE=0 too).
REQUIRED: tuple[Required, ...] = (
    Required("worker_class", WORKER_CLASS, "servestatic answers requests in its own worker"),
    Required("sendfile", True, "servestatic sends files with sendfile"),
    Required("asgi_loop", "asyncio", "servestatic's worker needs asyncio's own loop (docs/design.md)"),
    Required("wsgi_app", None, "servestatic serves the app named by SERVESTATIC_APP"),
)

# The servestatic settings each gunicorn setting is made from. When one of them is
# given explicitly (a flag or a SERVESTATIC_* variable) it wins over gunicorn's layers.
MADE_FROM: dict[str, tuple[str, ...]] = {
    "bind": ("bind", "port"),
    "workers": ("workers",),
    "threads": ("threads",),
    "keepalive": ("keepalive",),
    "timeout": ("timeout",),
    "graceful_timeout": ("graceful_timeout",),
    "loglevel": ("log_level",),
    "accesslog": ("access_log",),
    "logger_class": ("access_log",),
}


def worker_tmp_dir() -> str:
    """Where gunicorn's worker heartbeat files go: memory, so a read-only root works."""
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        return "/dev/shm"
    return tempfile.gettempdir()


def servestatic_defaults(settings: Settings) -> dict[str, Any]:
    """gunicorn settings for an origin behind a CDN (see README, "Serving")."""
    return {
        "bind": [settings.bind_address],
        "workers": settings.worker_count,
        "worker_class": WORKER_CLASS,
        "asgi_loop": "asyncio",  # see REQUIRED
        # gunicorn's ASGI worker has no use for threads; ours sizes a WSGI app's pool with it.
        "threads": settings.threads,
        "keepalive": settings.keepalive,
        "timeout": settings.timeout,
        "graceful_timeout": settings.graceful_timeout,
        "worker_tmp_dir": worker_tmp_dir(),
        # No "sendfile" key: gunicorn uses sendfile unless told otherwise, and its
        # setting is a store_const flag, so setting it to True turns sendfile off.
        "preload_app": True,
        "proc_name": "servestatic",
        "errorlog": "-",
        "loglevel": settings.log_level,
        "accesslog": None if settings.access_log == "off" else "-",
        "logger_class": ("servestatic.server.accesslog.JsonAccessLogger" if settings.access_log == "json"
                         else "servestatic.server.accesslog.AccessLogger"),
        "control_socket_disable": True,
        # No "forwarded_allow_ips": gunicorn's default is FORWARDED_ALLOW_IPS, else the
        # loopback addresses. The CDN in front sets X-Forwarded-*; trusting them is the
        # app's business, and the operator's through that variable.
    }


class Layers:
    """A gunicorn Config being built, remembering which layer set each setting."""

    def __init__(self, environ: Mapping[str, str]):
        self.config = Config(prog="servestatic")
        self.config.env_orig = dict(environ)
        self.sources: dict[str, str] = {}

    def apply(self, values: Mapping[str, Any], source: str) -> None:
        for name, value in values.items():
            try:
                self.config.set(name, value)
            except Exception as error:  # gunicorn's validators raise ValueError, TypeError...
                raise ConfigError(f"{source}: gunicorn setting {name}={value!r}: {error}") from None
            self.sources[name] = source

    def source(self, name: str) -> str:
        return self.sources.get(name, "gunicorn's default")


def build_config(settings: Settings, environ: Mapping[str, str] | None = None) -> Layers:
    """gunicorn's Config from every layer, refused settings checked; raises ConfigError."""
    environ = os.environ if environ is None else environ
    layers = Layers(environ)
    defaults = servestatic_defaults(settings)
    layers.apply(defaults, "servestatic")
    command_line = command_line_arguments(layers.config, environ)
    config_file, file_source = config_location(settings, command_line)
    if config_file is not None:
        layers.apply(read_config_file(config_file, layers.config, file_source), config_file)
    layers.apply({name: value for name, value in command_line.items() if name != "config"},
                 "GUNICORN_CMD_ARGS")
    explicit = {name: value for name, value in defaults.items()
                if any(origin in settings.explicit for origin in MADE_FROM.get(name, ()))}
    layers.apply(explicit, "servestatic settings")
    refuse_breaking_settings(layers)
    return layers


class _ParserError(Exception):
    pass


def _raise(message: str) -> None:
    raise _ParserError(message)


def command_line_arguments(config: Config, environ: Mapping[str, str]) -> dict[str, Any]:
    """GUNICORN_CMD_ARGS parsed by gunicorn's own argument parser: {setting: value}."""
    raw = environ.get("GUNICORN_CMD_ARGS", "")
    parser = config.parser()
    parser.error = _raise  # type: ignore[method-assign]  # one line, not usage + exit 2
    try:
        parsed = parser.parse_args(shlex.split(raw))
    except (ValueError, _ParserError) as error:
        raise ConfigError(f"GUNICORN_CMD_ARGS: {error}; expected gunicorn's command-line "
                          "options, such as --max-requests 1000") from None
    except SystemExit:  # --help, --version: argparse prints and exits
        raise ConfigError("GUNICORN_CMD_ARGS: asks for help or the version; expected settings, "
                          "such as --max-requests 1000") from None
    values = {name: value for name, value in vars(parsed).items() if value is not None}
    if values.pop("args", None):
        raise ConfigError("GUNICORN_CMD_ARGS: names an app; expected options only "
                          "(servestatic serves the app named by SERVESTATIC_APP)")
    return values


def config_location(settings: Settings, command_line: Mapping[str, Any]) -> tuple[str | None, str]:
    """The gunicorn config file to read and the setting that named it."""
    if settings.gunicorn_config:
        return settings.gunicorn_config, "SERVESTATIC_GUNICORN_CONFIG"
    if command_line.get("config"):
        return command_line["config"], "GUNICORN_CMD_ARGS --config"
    default = Path.cwd() / "gunicorn.conf.py"
    return (str(default), "./gunicorn.conf.py") if default.exists() else (None, "")


def read_config_file(location: str, config: Config, source: str) -> dict[str, Any]:
    """The gunicorn settings a config file sets, as gunicorn reads them.

    `python:module.name` imports a module; `file:path` or a path runs a file. Names that
    are not gunicorn settings are ignored, as gunicorn ignores them.
    """
    try:
        if location.startswith("python:"):
            namespace = vars(importlib.import_module(location.removeprefix("python:")))
        else:
            path = location.removeprefix("file:")
            if not os.path.isfile(path):
                raise ConfigError(f"{source}: {path} is not a file; expected a gunicorn config "
                                  "file (gunicorn.conf.py) or python:module.name")
            spec = importlib.util.spec_from_file_location("__config__", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules["__config__"] = module
            spec.loader.exec_module(module)
            namespace = vars(module)
    except ConfigError:
        raise
    except BaseException as error:  # anything the user's file raises, SystemExit included
        detail = str(error).splitlines()[0] if str(error) else ""
        raise ConfigError(f"{source}: {location} failed to load: {type(error).__name__}"
                          + (f": {detail}" if detail else "")) from None
    return {name: value for name, value in namespace.items() if name in config.settings}


def refuse_breaking_settings(layers: Layers) -> None:
    for required in REQUIRED:
        value = getattr(layers.config, required.setting)
        if required.setting == "worker_class":  # as written: Config.worker_class imports it
            value = layers.config.settings["worker_class"].get()
            if isinstance(value, type):
                value = f"{value.__module__}.{value.__qualname__}"
        if value != required.value:
            where = layers.source(required.setting)
            if required.setting == "sendfile" and where == "gunicorn's default":
                where = "SENDFILE"
            raise ConfigError(f"{where}: gunicorn setting {required.setting}={value!r} is refused: "
                              f"{required.why} (expected {required.value!r})")
