"""Clients that pipeline requests and never read the answers: the attack the worker's
per-connection bound is for (tests/test_connection_bounds.py, bench/pipeline_memory.py)."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from types import TracebackType

LINGER_RESET = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # SO_LINGER on, 0 s: close with a reset


class PipelineFlood:
    """`clients` connections writing pipelined GETs for `path`, 64 heads a write, reading
    nothing. Closed (with a reset, so the server drops what it still holds at once) on
    leaving the `with` block."""

    def __init__(self, port: int, clients: int, path: str = "/blob.bin"):
        self.heads = f"GET {path} HTTP/1.1\r\nHost: flood\r\n\r\n".encode() * 64
        self.sent = 0  # bytes of heads the server took
        self.sockets: list[socket.socket] = []
        try:
            for _ in range(clients):
                sock = socket.create_connection(("127.0.0.1", port))
                sock.setblocking(False)
                self.sockets.append(sock)
        except BaseException:
            self.close()
            raise

    @property
    def requests_sent(self) -> int:
        return self.sent * 64 // len(self.heads)

    def run(self, seconds: float, probe: Callable[[], None], probe_every: float) -> None:
        """Write for `seconds`, calling `probe` (a fresh client's request) every `probe_every`."""
        next_probe = time.monotonic() + probe_every
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            wrote = False
            for sock in self.sockets:
                with contextlib.suppress(BlockingIOError, InterruptedError):
                    self.sent += sock.send(self.heads)
                    wrote = True
            if time.monotonic() >= next_probe:
                probe()
                next_probe = time.monotonic() + probe_every
            if not wrote:
                # Every socket is full: the server reads none of them. Poll again shortly
                # (the client's own pacing, not a wait for the server to be ready).
                time.sleep(0.005)

    def close(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
            sock.close()
        self.sockets = []

    def __enter__(self) -> PipelineFlood:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
