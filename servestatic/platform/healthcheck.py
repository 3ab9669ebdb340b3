"""`servestatic healthcheck`: ask the local server's health endpoint, as a probe would.

The image's HEALTHCHECK runs it, so the check follows the same settings as the
server (PORT, SERVESTATIC_BIND, SERVESTATIC_HEALTH_PATH) instead of repeating
them in a shell line, and needs nothing (curl, wget) the image does not have.
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
    connection = _connection(settings.bind_address)
    try:
        connection.request("GET", settings.health_path, headers={"User-Agent": "servestatic-healthcheck"})
        status = connection.getresponse().status
    except OSError as error:
        raise HealthCheckError(f"{settings.bind_address}{settings.health_path}: {error}") from None
    finally:
        connection.close()
    if status != 200:
        raise HealthCheckError(f"{settings.bind_address}{settings.health_path} answered {status}")
