"""`servestatic healthcheck`: ask the local server whether it is ready, as a probe would.

The image's HEALTHCHECK runs it, so the check follows the same settings as the
server (PORT, SERVESTATIC_BIND, SERVESTATIC_READY_PATH, SERVESTATIC_APP_HEALTH_PATH)
instead of repeating them in a shell line, and needs nothing (curl, wget) the image
does not have. It asks the readiness path rather than the health path: a container
that answers but has nothing to serve (an image built without its site) is not
healthy; and, when there is one, the app's own health path through servestatic, so
that a container whose app fails is not healthy either.
"""

from __future__ import annotations

import http.client
import socket

from servestatic.config.settings import Settings

TIMEOUT = 3.0


class HealthCheckError(Exception):
    """The server did not answer 200; one line saying what it did instead."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=TIMEOUT)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(self.unix_path)


def _connection(bind: str) -> http.client.HTTPConnection:
    """A connection to where the server listens; a wildcard address means this host."""
    if bind.startswith("unix:"):
        return _UnixConnection(bind[len("unix:"):])
    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)


def check_health(settings: Settings) -> None:
    """Raise HealthCheckError unless the readiness path, then the app's health path (if
    set), answer 200."""
    for path in (settings.ready_path, settings.app_health_path):
        if path is not None:
            _ask(settings.bind_address, path)


def _ask(bind: str, path: str) -> None:
    connection = _connection(bind)
    try:
        connection.request("GET", path, headers={"User-Agent": "servestatic-healthcheck"})
        status = connection.getresponse().status
    except OSError as error:
        raise HealthCheckError(f"{bind}{path}: {error}") from None
    finally:
        connection.close()
    if status != 200:
        raise HealthCheckError(f"{bind}{path} answered {status}")
