"""gunicorn embedded as a library, configured from Settings and gunicorn's own
config layers (servestatic.server.gunicornconfig).

`run` configures gunicorn, then prepares the site (servestatic.fronts.prepare)
in the master, before gunicorn forks, so workers share the table and a bad
deployment stops with one line instead of in a crash loop of workers.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.config import Config

from servestatic import __version__
from servestatic.config.settings import Settings
from servestatic.fronts.asgifront import ASGIApp
from servestatic.fronts.prepare import StartupError, prepare
from servestatic.server import metrics
from servestatic.server.gunicornconfig import ConfigError, Layers, build_config
from servestatic.server.worker import keep_early_signals


class Server(BaseApplication):
    """gunicorn's BaseApplication around the ASGI front of a prepared StaticApp, and a built Config."""

    def __init__(self, application: ASGIApp | metrics.ObservedApp, config: Config):
        self.application = application
        self.prepared_config = config
        super().__init__(prog="servestatic")

    def load_default_config(self) -> None:
        # The Config is built, layered and checked before gunicorn starts (see
        # servestatic.server.gunicornconfig), so a SIGHUP reload reuses it as it is.
        self.cfg = self.prepared_config

    def load_config(self) -> None:
        pass

    def load(self) -> ASGIApp | metrics.ObservedApp:
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


def chain_post_fork(config: Any) -> None:
    """Our post_fork hook (worker.keep_early_signals), then any the user's config sets."""
    theirs = config.post_fork

    def post_fork(arbiter: Any, worker: Any) -> None:
        keep_early_signals(arbiter, worker)
        theirs(arbiter, worker)

    config.set("post_fork", post_fork)


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
    chain_post_fork(layers.config)
    # Move everything built so far out of the collector's reach, so that a
    # worker's garbage collection does not touch (and copy) the shared table.
    # No gc.collect() first: there is little garbage, and for 100,000 files the
    # walk over the table would cost 40-80 ms of start-up.
    gc.freeze()
    # gunicorn's ASGI protocol (pinned, server/worker.py) sends http.response.informational.
    front = ASGIApp(application, layers.config.threads, layers.config.timeout, informational=True)
    server = Server(metrics.ObservedApp(front) if metrics.recording() else front, layers.config)
    server.cfg.set("default_proc_name", f"servestatic {__version__}")
    server.run()
