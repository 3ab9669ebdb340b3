"""A WSGI app called from the event loop, in a pool of threads, as every ASGI server runs WSGI.

Why not a2wsgi (the well-kept library for this): it streams every request and
response through queues between the loop and the thread, which halved the
throughput of a hello-world app against gunicorn's gthread worker in our
measurements (docs/design.md). A request without a body, answered with a list
of bytes (most WSGI responses), costs here one hop to a thread and one back.

- Request bodies up to BUFFERED_BODY bytes are read in the loop before the app
  runs (wsgi.input is then a BytesIO); larger or chunked ones are streamed:
  wsgi.input reads block the app's thread while the loop receives.
- The response is sent as the app produces it: the first block together with
  the status line, the rest one block per hop for generators.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from servestatic.core.answer import asgi_headers
from servestatic.fronts.environ import wsgi_environ

BUFFERED_BODY = 64 * 1024
_STATUS_CODES: dict[str, int] = {}


class WSGIBridge:
    """An ASGI callable around a WSGI app; the pool is made in the worker, on first use."""

    def __init__(self, app: Callable[..., Iterable[bytes]], threads: int):
        self.app = app
        self.threads = threads
        self.executor: ThreadPoolExecutor | None = None

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any],
                       send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1000})
            return
        loop = asyncio.get_running_loop()
        if self.executor is None:
            self.executor = ThreadPoolExecutor(self.threads, thread_name_prefix="servestatic-wsgi")
        environ = wsgi_environ(scope)
        environ["wsgi.input"] = await request_body(scope, receive, loop)
        call = Call(self.app, environ)
        chunks = await loop.run_in_executor(self.executor, call.start)
        try:
            await send({"type": "http.response.start", "status": call.status_code,
                        "headers": call.headers})
            while True:
                more = call.iterator is not None
                body = b"".join(chunks) if len(chunks) != 1 else chunks[0]
                await send({"type": "http.response.body", "body": body, "more_body": more})
                if not more:
                    break
                chunks = await loop.run_in_executor(self.executor, call.next_block)
        finally:
            if call.closable is not None:
                await loop.run_in_executor(self.executor, call.close)


class Call:
    """One WSGI call, run step by step in pool threads."""

    __slots__ = ("app", "closable", "environ", "headers", "iterator", "status_code", "written")

    def __init__(self, app: Callable[..., Iterable[bytes]], environ: dict[str, Any]):
        self.app = app
        self.environ = environ
        self.status_code = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.iterator: Iterator[bytes] | None = None
        self.closable: Any = None
        self.written: list[bytes] = []

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None and self.status_code and self.iterator is None:
            raise exc_info[1].with_traceback(exc_info[2])  # PEP 3333: too late to change
        code = _STATUS_CODES.get(status)
        if code is None:
            code = int(status[:3])
            if len(_STATUS_CODES) < 256:
                _STATUS_CODES[status] = code
        self.status_code = code
        self.headers = asgi_headers(headers)
        return self.written.append

    def start(self) -> list[bytes]:
        """Thread: call the app and take its first block (start_response has run by then)."""
        result = self.app(self.environ, self.start_response)
        if hasattr(result, "close"):
            self.closable = result
        if isinstance(result, (list, tuple)):
            chunks = [*self.written, *result]
        else:
            self.iterator = iter(result)
            chunks = [*self.written, *self.next_block()]
        if not self.status_code:
            raise RuntimeError("the WSGI app returned without calling start_response")
        return chunks

    def next_block(self) -> list[bytes]:
        """Thread: the next non-empty block, or [] (and no iterator) at the end."""
        assert self.iterator is not None
        for block in self.iterator:
            if block:
                return [block]
        self.iterator = None
        return []

    def close(self) -> None:
        self.closable.close()


async def request_body(scope: dict[str, Any], receive: Callable[..., Any],
                       loop: asyncio.AbstractEventLoop) -> io.RawIOBase | io.BytesIO:
    """wsgi.input: the body read in the loop when it is small and framed, else a stream."""
    length = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            length = int(value) if value.isdigit() else None
        elif name == b"transfer-encoding":
            chunked = True
    if not chunked and not length:
        return io.BytesIO(b"")
    if not chunked and length is not None and length <= BUFFERED_BODY:
        parts = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # disconnected: the app reads what came
            parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        return io.BytesIO(b"".join(parts))
    return io.BufferedReader(StreamedBody(receive, loop), BUFFERED_BODY)


class StreamedBody(io.RawIOBase):
    """A request body read from the app's thread: each read waits for the loop's next message."""

    def __init__(self, receive: Callable[..., Any], loop: asyncio.AbstractEventLoop):
        self.receive = receive
        self.loop = loop
        self.pending = b""
        self.done = False
        self.lock = threading.Lock()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with self.lock:
            while not self.pending and not self.done:
                message = asyncio.run_coroutine_threadsafe(self.receive(), self.loop).result()
                if message["type"] != "http.request":
                    self.done = True
                    break
                self.pending = message.get("body", b"")
                self.done = not message.get("more_body", False)
            size = min(len(buffer), len(self.pending))
            buffer[:size] = self.pending[:size]
            self.pending = self.pending[size:]
            return size
