"""gunicorn embedded as a library, configured from Settings and gunicorn's own
config layers (servestatic.gunicornconfig).

`prepare` does everything that can fail before a socket is opened (the root,
the manifest, the header rules, the user's app), so a bad deployment stops in
the master with one line instead of in a crash loop of workers. The table is
built here, before gunicorn forks, so workers share it.
"""

from __future__ import annotations

import gc
import logging
import os

from gunicorn.app.base import BaseApplication
from gunicorn.config import Config

from servestatic import __version__, metrics
from servestatic.app import StaticApp
from servestatic.asgiapp import ASGIApp
from servestatic.gunicornconfig import ConfigError, Layers, build_config
from servestatic.headerrules import HeaderRulesError
from servestatic.manifest import ManifestError
from servestatic.settings import Settings
from servestatic.table import load_table
from servestatic.userapp import AppImportError, load_user_app


class StartupError(Exception):
    """servestatic cannot start; the message is one line naming what to fix."""


def prepare(settings: Settings) -> StaticApp:
    """Validate the roots, load the table, import the user's app: the app to serve."""
    # The variable the user set: SERVESTATIC_MOUNTS names every directory when it is set.
    variable = "SERVESTATIC_MOUNTS" if settings.mounts else "SERVESTATIC_ROOT"
    for mount in settings.all_mounts:
        if not mount.root.is_dir():
            raise StartupError(f"{variable}: {mount.root} is not a directory")
        if not os.access(mount.root, os.R_OK | os.X_OK):
            raise StartupError(f"{variable}: {mount.root} is not readable")
    if settings.headers_file is not None and not settings.headers_file.is_file():
        raise StartupError(f"SERVESTATIC_HEADERS_FILE: {settings.headers_file} is not a file")
    try:
        table = load_table(settings)
    except ManifestError as error:
        raise StartupError(f"{variable}: {error}") from None
    except HeaderRulesError as error:
        raise StartupError(f"SERVESTATIC_HEADERS_FILE: {error}") from None
    user_app = None
    if settings.app:
        try:
            user_app = load_user_app(settings.app, settings.app_interface)
        except AppImportError as error:
            raise StartupError(str(error)) from None
    return StaticApp(table, settings, user_app)


class Server(BaseApplication):
    """gunicorn's BaseApplication around the ASGI front of a prepared StaticApp, and a built Config."""

    def __init__(self, application: ASGIApp, config: Config):
        self.application = application
        self.prepared_config = config
        super().__init__(prog="servestatic")

    def load_default_config(self) -> None:
        # The Config is built, layered and checked before gunicorn starts (see
        # servestatic.gunicornconfig), so a SIGHUP reload reuses it as it is.
        self.cfg = self.prepared_config

    def load_config(self) -> None:
        pass

    def load(self) -> ASGIApp:
        return self.application


def configure(settings: Settings) -> Layers:
    """gunicorn's Config from every layer; a bad layer is a StartupError."""
    try:
        layers = build_config(settings)
    except ConfigError as error:
        raise StartupError(str(error)) from None
    if settings.metrics_bind:
        public = metrics.overlaps_public(settings.metrics_bind, layers.config.bind)
        if public is not None:
            raise StartupError(f"SERVESTATIC_METRICS_BIND: {settings.metrics_bind} is the public "
                               f"address ({public}); expected a separate HOST:PORT, so that a CDN "
                               "never reaches /metrics")
    return layers


def announce_workers(settings: Settings, layers: Layers) -> None:
    """Say how many workers start and why: the number most worth knowing in a container."""
    source = layers.source("workers")
    if source == "servestatic":
        source = "WEB_CONCURRENCY" if settings.workers else "one per CPU this process may use"
    logging.getLogger("servestatic").info("workers: %d (%s)", layers.config.workers, source)


def run(settings: Settings) -> None:
    """Configure and prepare, then hand the process to gunicorn's arbiter until it exits."""
    layers = configure(settings)
    if settings.metrics_bind:
        try:
            metrics.start(settings.metrics_bind, layers.config)
        except metrics.MetricsError as error:
            raise StartupError(str(error)) from None
    application = prepare(settings)
    announce_workers(settings, layers)
    # Move everything built so far out of the collector's reach, so that a
    # worker's garbage collection does not touch (and copy) the shared table.
    # No gc.collect() first: there is little garbage, and for 100,000 files the
    # walk over the table would cost 40-80 ms of start-up.
    gc.freeze()
    server = Server(ASGIApp(application, layers.config.threads), layers.config)
    server.cfg.set("default_proc_name", f"servestatic {__version__}")
    server.run()
