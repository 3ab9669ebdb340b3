"""The gunicorn configuration `servestatic serve` builds, read back through gunicorn's own Config."""

from __future__ import annotations

from pathlib import Path

from servestatic.config.settings import load_settings
from servestatic.fronts.asgifront import ASGIApp
from servestatic.fronts.prepare import prepare
from servestatic.server.gunicornapp import Server, configure
from tests.support.cli import compress


def test_gunicorn_gets_the_origin_defaults(site: Path) -> None:
    compress(site)
    settings = load_settings(environ={"SERVESTATIC_ROOT": str(site), "WEB_CONCURRENCY": "3",
                                      "PORT": "9123"})
    config = Server(ASGIApp(prepare(settings)), configure(settings).config).cfg
    # gunicorn's sendfile setting is a store_const flag: any value we set would disable it.
    assert config.sendfile is not False
    assert config.worker_class_str == "servestatic.server.worker.EventLoopWorker"
    assert config.asgi_loop == "asyncio"  # loop.sendfile: uvloop's transports have no sendfile
    assert config.workers == 3
    assert config.threads == 8  # the WSGI app's thread pool in each worker
    assert config.keepalive == 75
    assert config.graceful_timeout == 20
    assert config.bind == ["0.0.0.0:9123"]
    assert config.preload_app is True
    assert config.control_socket_disable is True  # no socket file to write on a read-only root
    assert config.worker_tmp_dir in ("/dev/shm", "/tmp") or Path(config.worker_tmp_dir).is_dir()
    assert config.accesslog == "-"


def test_access_log_off_and_json(site: Path) -> None:
    compress(site)
    off = load_settings(environ={"SERVESTATIC_ROOT": str(site), "SERVESTATIC_ACCESS_LOG": "off"})
    assert Server(ASGIApp(prepare(off)), configure(off).config).cfg.accesslog is None
    json_log = load_settings(environ={"SERVESTATIC_ROOT": str(site), "SERVESTATIC_ACCESS_LOG": "json"})
    config = Server(ASGIApp(prepare(json_log)), configure(json_log).config).cfg
    assert config.logger_class.__name__ == "JsonAccessLogger"
