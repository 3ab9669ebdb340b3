"""The ASGI front: StaticApp's answers as ASGI messages, the user's app (ASGI or WSGI) behind.

`servestatic serve` hands gunicorn's ASGI protocol this app for every request
its worker does not answer in the event loop (worker.py): requests for the
user's app, and the static requests the loop leaves alone (other methods,
bodies, upgrades, the SPA fallback, redirects, 404s). It is also
`servestatic.asgi:application`, for people who run an ASGI server themselves.

A request the user's app gets is passed on untouched, scope and all, before
anything is built for it: servestatic must cost nothing on dynamic traffic.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from servestatic import metrics
from servestatic.app import Answer, StaticApp
from servestatic.http import add_headers, request_path
from servestatic.userapp import ASGI
from servestatic.wsgibridge import WSGIBridge

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGICallable = Callable[[Scope, Receive, Send], Awaitable[None]]

BLOCK_SIZE = 256 * 1024


class ASGIApp:
    """servestatic as an ASGI app; see the module docstring."""

    def __init__(self, static: StaticApp, threads: int = 8):
        self.static = static
        user_app = static.user_app
        self.user: ASGICallable | None = None
        self.user_is_asgi = user_app is not None and user_app.interface == ASGI
        if user_app is not None:
            self.user = user_app.callable if self.user_is_asgi else WSGIBridge(user_app.callable, threads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if metrics.recording():
                await self.observed(scope, receive, send)
            else:
                await self.http(scope, receive, send)
        elif kind == "lifespan":
            if self.user_is_asgi:
                assert self.user is not None
                await self.user(scope, receive, send)
            else:
                await lifespan_without_app(receive, send)
        elif self.user_is_asgi:  # websocket, and whatever later ASGI versions add
            assert self.user is not None
            await self.user(scope, receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})  # the server answers 403

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = path_key(scope)
        await self.dispatch(path, self.goes_to_app(path, scope), scope, receive, send)

    async def observed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`http` with its answer recorded in the metrics (servestatic.metrics)."""
        started = time.monotonic()
        answer = {"status": 500, "sent": 0, "encoding": ""}

        async def counting_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["encoding"] = next((value.decode("latin-1") for name, value in message["headers"]
                                           if name.lower() == b"content-encoding"), "")
            elif message["type"] == "http.response.body":
                answer["sent"] += len(message.get("body", b""))
            await send(message)

        path = path_key(scope)
        to_app = self.goes_to_app(path, scope)
        try:
            await self.dispatch(path, to_app, scope, receive, counting_send)
        finally:
            metrics.observe(self.where(path, to_app), answer["status"], answer["sent"], answer["encoding"],
                            time.monotonic() - started)

    def goes_to_app(self, path: str, scope: Scope) -> bool:
        return self.user is not None and not self.static.claims(path, scope["method"])

    async def dispatch(self, path: str, to_app: bool, scope: Scope, receive: Receive, send: Send) -> None:
        if to_app:
            assert self.user is not None
            await self.user(scope, receive, send)
        else:
            await send_answer(self.static.decide(environ_for(scope, path)), send)

    def where(self, path: str, to_app: bool) -> str:
        """Which part of servestatic a request went to, for the metrics."""
        static = self.static
        if to_app:
            return metrics.APP
        if path == static.health_key:
            return metrics.HEALTH
        return metrics.STATIC if path in static.paths else metrics.MISS


def path_key(scope: Scope) -> str:
    """The table key of a request: its percent-decoded path bytes as latin-1, like PATH_INFO.

    From `raw_path` when the server gives it, so bytes that are not UTF-8 find
    (or miss) the same entries as through WSGI.
    """
    raw = scope.get("raw_path")
    path = request_path(raw) if raw else None
    if path is None:
        return scope["path"].encode("utf-8", "surrogateescape").decode("latin-1")
    return path


def environ_for(scope: Scope, path: str) -> dict[str, Any]:
    """The little of a WSGI environ StaticApp.decide reads, from an ASGI scope."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "PATH_INFO": path,
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SCRIPT_NAME": scope.get("root_path", ""),
    }
    add_headers(environ, scope["headers"])
    return environ


async def send_answer(answer: Answer, send: Send) -> None:
    """Send an Answer as ASGI messages; a file range is read in blocks."""
    try:
        await send({
            "type": "http.response.start",
            "status": int(answer.status[:3]),
            "headers": [(name.lower().encode("latin-1"), value.encode("latin-1"))
                        for name, value in answer.headers],
        })
        if answer.fd is None:
            await send({"type": "http.response.body", "body": answer.body or b""})
            return
        offset, remaining = answer.first, answer.length
        while True:
            block = os.pread(answer.fd, min(BLOCK_SIZE, remaining), offset) if remaining else b""
            offset += len(block)
            remaining -= len(block)
            # A file shorter than it was ends the body early: the server sees the
            # missing bytes against Content-Length and closes the connection.
            more = bool(block) and remaining > 0
            await send({"type": "http.response.body", "body": block, "more_body": more})
            if not more:
                return
    finally:
        answer.close()


async def lifespan_without_app(receive: Receive, send: Send) -> None:
    """Lifespan for a WSGI app or none: nothing to start or stop, say so at once."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
