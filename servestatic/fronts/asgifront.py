"""The ASGI front: StaticApp's answers as ASGI messages, the user's app (ASGI or WSGI) behind.

`servestatic serve` hands gunicorn's ASGI protocol this app for every request
its worker does not answer in the event loop (server/connection.py): requests for
the user's app, and the static requests the loop leaves alone (other methods,
bodies, upgrades, the SPA fallback, redirects, 404s). It is also
`servestatic.asgi:application`, for people who run an ASGI server themselves.

A request the user's app gets is passed on untouched, scope and all, before
anything is built for it: servestatic must cost nothing on dynamic traffic.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from servestatic.core.answer import Answer, asgi_headers, early_hint_headers
from servestatic.core.decision import APP, StaticApp
from servestatic.fronts.environ import scope_environ, scope_path
from servestatic.fronts.userapp import ASGI
from servestatic.fronts.wsgibridge import WSGIBridge

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGICallable = Callable[[Scope, Receive, Send], Awaitable[None]]

# A file's body goes out in messages of at most this size.
BLOCK_SIZE = 256 * 1024
# A request body that servestatic answers itself (a POST to a file gets 405, a GET with a
# body gets the file) is read and dropped after the answer when its Content-Length is at
# most this, so that the connection can carry the next request; a longer or chunked one is
# not read, and the answer says Connection: close.
DISCARDED_BODY = 64 * 1024


class ASGIApp:
    """servestatic as an ASGI app; see the module docstring.

    `threads` and `timeout` are for a WSGI app: its pool's size, and how long its
    wsgi.input reads and write() calls wait for the client (the worker's timeout).
    """

    def __init__(self, static: StaticApp, threads: int = 8, timeout: float = 30.0,
                 informational: bool = False):
        self.static = static
        # `informational`: the server takes `http.response.informational` messages (a 103
        # Early Hints), as gunicorn's ASGI protocol under `servestatic serve` does; the
        # message is not in the ASGI spec, and other servers refuse it, so it is off for
        # servestatic.asgi.
        self.early_hints = informational and static.early_hints
        user_app = static.user_app
        self.user: ASGICallable | None = None
        self.user_is_asgi = user_app is not None and user_app.interface == ASGI
        if user_app is not None:
            self.user = (user_app.callable if self.user_is_asgi
                         else WSGIBridge(user_app.callable, threads, timeout, informational))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope_path(scope)
            await self.http(path, self.static.route(path, scope["method"]), scope, receive, send)
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

    async def http(self, path: str, route: str, scope: Scope, receive: Receive, send: Send) -> None:
        """An HTTP request whose table key (`path`) and route (`StaticApp.route`) are known."""
        if route == APP:
            assert self.user is not None
            await self.user(scope, receive, send)
            return
        answer = self.static.decide(scope_environ(scope, path))
        if self.early_hints and scope["method"] == "GET":
            hints = early_hint_headers(answer)  # gunicorn's protocol sends no 1xx to HTTP/1.0
            if hints:
                await send({"type": "http.response.informational", "status": 103,
                            "headers": asgi_headers(hints)})
        length = body_length(scope)
        if length == 0:
            await send_answer(answer, send)
            return
        # A body servestatic does not use. Left unread, the server would announce
        # keep-alive and then close (an unread body cannot be told from the next
        # request), and a client that pipelined behind it would lose its next request.
        # So: answer first (the client may wait for it before sending the rest), then
        # read and drop a small body; a large or chunked one is announced as a close.
        small = 0 < length <= DISCARDED_BODY
        await send_answer(answer, send, close=not small)
        if small:
            while (message := await receive())["type"] == "http.request" and message.get("more_body"):
                pass


def body_length(scope: Scope) -> int:
    """The request body's Content-Length, 0 for none, -1 for chunked (RFC 9112 6.3)."""
    length = 0
    for name, value in scope["headers"]:
        if name == b"transfer-encoding":
            return -1
        if name == b"content-length":
            length = int(value) if value.isdigit() else -1
    return length


async def send_answer(answer: Answer, send: Send, close: bool = False) -> None:
    """Send an Answer as ASGI messages; a file's range in blocks (core/answer.py).

    A file that shrank ends its body early (the last message has fewer bytes
    than Content-Length): the server sees the missing bytes and closes the
    connection. `close` adds Connection: close (a request body left unread).
    """
    try:
        headers = asgi_headers(answer.headers)
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": int(answer.status[:3]), "headers": headers})
        if answer.fd is None:
            await send({"type": "http.response.body", "body": answer.body or b""})
            return
        body = answer.take_range()
        try:
            while True:
                block = body.read(BLOCK_SIZE)
                more = bool(block) and not body.complete
                await send({"type": "http.response.body", "body": block, "more_body": more})
                if not more:
                    return
        finally:
            body.close()
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
