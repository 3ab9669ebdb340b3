"""A WSGI app called from the event loop, in a pool of threads, as every ASGI server runs WSGI.

Why not a2wsgi (the well-kept library for this): it streams every request and
response through queues between the loop and the thread, which halved the
throughput of a hello-world app against gunicorn's gthread worker in our
measurements (docs/design.md). A request without a body, answered with a list
of bytes (most WSGI responses), costs here one hop to a thread and one back.

The app must get what gunicorn's own workers give it (tests/test_wsgi_differential.py
runs the same apps under both and compares the bytes):

- Request bodies up to BUFFERED_BODY bytes are read in the loop before the app
  runs (wsgi.input is then a BytesIO); larger or chunked ones are streamed:
  wsgi.input reads block the app's thread while the loop receives. A body that
  stops coming (the client gone, or silent for the worker's `timeout`) raises
  RequestBodyError, an OSError, as a socket read does under gunicorn's workers.
- The response is sent as the app produces it: the first block together with
  the status line, the rest one block per hop for generators. Data given to
  write() goes out in order with the blocks, before and after the first one;
  past WRITE_BUFFER bytes write() sends from the app's thread and waits, so an
  app that streams through write() is held back by a slow client, not buffered.
- start_response follows PEP 3333: with exc_info it replaces the status and
  headers until the headers are sent (the first non-empty block, or write()),
  and re-raises after; a second call without exc_info is an error.
- An app that fails before its headers are sent gets gunicorn's own 500 page,
  and the connection is closed, as gunicorn's workers do.
- The iterable's close() runs, in the pool, on every path: normal, an app
  that raises, a client that goes away, the request's task cancelled (at a
  SIGTERM's graceful timeout too) while the app runs in its thread: close()
  then runs in that thread after the app's step returns.
- wsgi.file_wrapper (FileWrapper) is recognised: the file goes out in FILE_BLOCK
  reads per hop (a Django FileResponse would otherwise cost a hop per 4 KiB), or in
  one `http.response.zerocopysend` message when the server offers that extension.
- wsgi.early_hints (gunicorn's extension) sends a 103 Early Hints before the response,
  under `servestatic serve`, whose ASGI protocol takes informational messages.
- At most STEPS_PER_THREAD steps per thread are handed to the pool at once; the
  requests beyond wait in the loop, each holding only its coroutine, in arrival
  order (gunicorn's `worker_connections` bounds how many there can be).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from functools import partial
from typing import Any, TypeVar

from servestatic.fronts.environ import wsgi_environ
from servestatic.fronts.steppool import StepPool

T = TypeVar("T")

BUFFERED_BODY = 64 * 1024
# write() data held before the app's thread sends it itself and waits for the client.
WRITE_BUFFER = 256 * 1024
# A wsgi.file_wrapper's file is read this much per hop to the pool.
FILE_BLOCK = 1024 * 1024
# Steps handed to the pool at once, per thread: one running and one queued, so that a
# thread that finishes takes the next without waiting for a turn of the loop.
STEPS_PER_THREAD = 2
ZEROCOPY = "http.response.zerocopysend"

# Response headers gunicorn's WSGI workers drop from an app's list (gunicorn.util.is_hoppish):
# hop-by-hop headers are the server's to send (PEP 3333 forbids them to apps), and Server
# and Date are gunicorn's own. gunicorn ignores an app's `Connection: close` too: sent on, it
# would close the connection (servestatic's worker honours it for ASGI apps).
DROPPED_HEADERS = frozenset((b"connection", b"keep-alive", b"proxy-authenticate",
                             b"proxy-authorization", b"te", b"trailers", b"transfer-encoding",
                             b"upgrade", b"server", b"date"))

# gunicorn's page for an app that failed before its headers were sent (gunicorn.util.write_error).
ERROR_PAGE = (b"<html>\n  <head>\n    <title>Internal Server Error</title>\n  </head>\n  <body>\n"
              b"    <h1><p>Internal Server Error</p></h1>\n    \n  </body>\n</html>\n")
ERROR_HEADERS = [(b"connection", b"close"), (b"content-type", b"text/html"),
                 (b"content-length", str(len(ERROR_PAGE)).encode())]

_STATUS_CODES: dict[str, int] = {}
log = logging.getLogger("servestatic")


class RequestBodyError(OSError):
    """wsgi.input cannot be read to its end: the client went away, or sent nothing more
    for the worker's timeout. An OSError like the socket errors gunicorn's workers raise
    from wsgi.input (Django turns it into UnreadablePostError)."""


class FileWrapper:
    """wsgi.file_wrapper (PEP 3333): a file-like object as the app's response.

    Iterated, it reads `block_size` bytes at a time, as PEP 3333 says; the bridge
    recognises it and reads FILE_BLOCK bytes per hop instead. close() closes the file
    (Django sets it to the response's close, which sends request_finished).
    """

    def __init__(self, filelike: Any, block_size: int = 8192):
        self.filelike = filelike
        self.block_size = block_size

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        data = self.filelike.read(self.block_size)
        if data:
            return data
        raise StopIteration

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


class WSGIBridge:
    """An ASGI callable around a WSGI app; the pool is made in the worker, on first use.

    `timeout` is the worker's (gunicorn's --timeout): how long a wsgi.input read or a
    write() from the app's thread waits for the client.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], threads: int, timeout: float = 30.0,
                 informational: bool = False):
        self.app = app
        # The server takes http.response.informational (fronts/asgifront.py): the app gets
        # wsgi.early_hints, as gunicorn's own workers give it.
        self.informational = informational
        self.threads = threads
        self.timeout = timeout
        self.pool: StepPool | None = None  # fronts/steppool.py
        # The pool's bound: steps handed to it (`busy`), at most `limit`; the callers
        # beyond wait in `waiters`, first come first served. A counter rather than an
        # asyncio.Semaphore, whose acquire costs a generator per call on the hot path.
        self.limit = threads * STEPS_PER_THREAD
        self.busy = 0
        self.waiters: deque[asyncio.Future[None]] = deque()

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any],
                       send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1000})
            return
        loop = asyncio.get_running_loop()
        if self.pool is None:
            self.pool = StepPool(self.threads, loop)
        environ = wsgi_environ(scope)
        environ["wsgi.input"] = await request_body(scope, receive, loop, self.timeout)
        environ["wsgi.file_wrapper"] = FileWrapper
        call = Call(self.app, environ, loop, send, self.timeout)
        if self.informational:
            environ["wsgi.early_hints"] = call.early_hints
        try:
            chunks = await self.hop(call, call.start)
            if call.file is not None:
                await self.send_file(call, scope, chunks)
            else:
                while True:
                    more = call.iterator is not None
                    if not call.started:  # Call.send_start, written out: the hot path
                        call.started = True
                        await send({"type": "http.response.start", "status": call.status_code,
                                    "headers": call.headers})
                    await send({"type": "http.response.body", "more_body": more,
                                "body": b"".join(chunks) if len(chunks) != 1 else chunks[0]})
                    if not more:
                        break
                    chunks = await self.hop(call, call.next_block)
        except asyncio.CancelledError:
            # Nothing of this call runs in the pool now (hop hands a running step's
            # close over to its thread): close it there without waiting.
            call.abandoned = True
            if call.closable is not None and not call.handed_over:
                assert self.pool is not None
                self.pool.submit(call.close_logged)
            raise
        except Exception:
            if call.closable is not None:
                await self.hop(call, call.close_logged)
            if not call.started:
                # gunicorn's page; the final message is not sent, so gunicorn logs the
                # error and closes the connection, as its workers do.
                await send({"type": "http.response.start", "status": 500, "headers": ERROR_HEADERS})
                await send({"type": "http.response.body", "body": ERROR_PAGE, "more_body": True})
            raise
        if call.closable is not None:
            await self.hop(call, call.close_logged)

    async def hop(self, call: Call, step: Callable[[], T]) -> T:
        """Run one step of a call in the pool, at most STEPS_PER_THREAD per thread at once.

        Cancelled while the step runs, the thread cannot be stopped: the call's close()
        and the release of its slot are handed to the step's completion instead.
        """
        pool = self.pool
        assert pool is not None
        if self.busy < self.limit and not self.waiters:
            self.busy += 1
        else:
            await self.take_slot()
        try:
            queued, future = pool.run(step)
            result = await future
        except asyncio.CancelledError:
            if not pool.cancel(queued):  # running or done: not stopped
                call.abandoned = True
                call.handed_over = True
                if queued.delivered:
                    self.finish_abandoned(call)
                else:
                    queued.after = partial(self.finish_abandoned, call)
                raise
            self.release_slot()
            raise
        except BaseException:
            self.release_slot()
            raise
        self.release_slot()
        return result

    async def take_slot(self) -> None:
        """Wait for a step to leave the pool; its slot is handed over, `busy` unchanged."""
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release_slot()  # handed a slot, but cancelled: pass it on
            else:
                self.waiters.remove(waiter)
            raise

    def release_slot(self) -> None:
        """Loop: a step left the pool; its slot goes to the first caller still waiting."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.busy -= 1

    def finish_abandoned(self, call: Call) -> None:
        """Loop, after the step of a cancelled call: its close() in the pool, its slot back."""
        assert self.pool is not None
        if call.closable is not None:
            self.pool.submit(call.close_logged)
        self.release_slot()

    async def send_file(self, call: Call, scope: dict[str, Any], chunks: list[bytes]) -> None:
        """A FileWrapper's file: zero-copy when the server offers it, else FILE_BLOCK per hop."""
        wrapper = call.file
        assert wrapper is not None
        if chunks:  # write() data before the file
            await call.send_body(b"".join(chunks), True)
        if scope["method"] == "HEAD":
            await call.send_body(b"", False)
            return
        length = next((int(value) for name, value in call.headers
                       if name == b"content-length" and value.isdigit()), None)
        fileno = getattr(wrapper.filelike, "fileno", None)
        if ZEROCOPY in scope.get("extensions", {}) and fileno is not None:
            try:
                fd = fileno()
                offset = os.lseek(fd, 0, os.SEEK_CUR)
                count = os.fstat(fd).st_size - offset
            except (OSError, ValueError):
                pass
            else:
                await call.send_start()
                await call.send({"type": ZEROCOPY, "file": wrapper.filelike, "offset": offset,
                                 "count": count if length is None else min(count, length),
                                 "more_body": False})
                return
        call.file_left = length
        while True:
            block = await self.hop(call, call.next_file_block)
            await call.send_body(block, bool(block))
            if not block:
                return


class Call:
    """One WSGI call, run step by step in pool threads; its sends happen in the loop."""

    __slots__ = ("abandoned", "app", "closable", "closed", "environ", "file", "file_left", "handed_over",
                 "headers", "headers_sent", "iterator", "loop", "send", "started", "status_code",
                 "timeout", "written", "written_size")

    def __init__(self, app: Callable[..., Iterable[bytes]], environ: dict[str, Any],
                 loop: asyncio.AbstractEventLoop, send: Callable[..., Any], timeout: float):
        self.app = app
        self.environ = environ
        self.loop = loop
        self.send = send
        self.timeout = timeout
        self.status_code = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_sent = False  # PEP 3333's sense: a non-empty block taken, or write() called
        self.started = False  # http.response.start is out
        self.iterator: Iterator[bytes] | None = None
        self.file: FileWrapper | None = None
        self.file_left: int | None = None
        self.closable: Any = None
        self.closed = False
        self.written: list[bytes] = []
        self.written_size = 0
        self.abandoned = False  # the loop stopped waiting for this call (cancelled)
        self.handed_over = False  # close() is left to the thread of a running step

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])  # PEP 3333: too late to change
            finally:
                exc_info = None
        elif self.status_code:
            raise AssertionError("start_response called a second time without exc_info")
        code = _STATUS_CODES.get(status)
        if code is None:
            code = int(status[:3])
            if len(_STATUS_CODES) < 256:
                _STATUS_CODES[status] = code
        self.status_code = code
        # core/answer.asgi_headers, less what gunicorn drops (DROPPED_HEADERS).
        self.headers = [(key, value.encode("latin-1")) for name, value in headers
                        if (key := name.lower().encode("latin-1")) not in DROPPED_HEADERS]
        return self.write

    def early_hints(self, headers: list[tuple[str, str]]) -> None:
        """gunicorn's `wsgi.early_hints`: a 103 with these headers before the response, sent
        from the app's thread and waited for; ignored once the headers count as sent
        (write() called, a block taken), as gunicorn's workers have sent them then. gunicorn's
        protocol checks the headers (the same errors as its workers raise) and sends
        nothing to an HTTP/1.0 client."""
        if self.headers_sent or self.started:
            return
        self.wait(self.send({"type": "http.response.informational", "status": 103,
                             "headers": [(name.encode("latin-1") if isinstance(name, str) else name,
                                          value.encode("latin-1") if isinstance(value, str) else value)
                                         for name, value in headers]}))

    def write(self, data: bytes) -> None:
        """PEP 3333's write(): in order with the blocks; sent from this thread past WRITE_BUFFER."""
        if not self.status_code:
            raise AssertionError("write() before start_response")
        if not isinstance(data, bytes):
            raise TypeError(f"write() takes bytes, not {type(data).__name__}")
        self.headers_sent = True
        if data:
            self.written.append(data)
            self.written_size += len(data)
            if self.written_size >= WRITE_BUFFER:
                self.wait(self.send_body(self.take_written(), True))

    def take_written(self) -> bytes:
        data = b"".join(self.written)
        self.written = []
        self.written_size = 0
        return data

    def wait(self, coroutine: Any) -> Any:
        """Thread: run a coroutine in the loop and wait for it, at most the worker's timeout."""
        if self.abandoned:
            coroutine.close()
            raise RequestBodyError("the request was abandoned (the client went away)")
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        except RuntimeError:  # the loop is closed
            coroutine.close()
            raise RequestBodyError("the worker is stopping") from None
        try:
            return future.result(self.timeout)
        except TimeoutError:
            future.cancel()
            raise RequestBodyError(f"the client made no progress for {self.timeout} s") from None

    async def send_start(self) -> None:
        """Loop: the status line and headers, once."""
        if not self.started:
            self.started = True
            await self.send({"type": "http.response.start", "status": self.status_code,
                             "headers": self.headers})

    async def send_body(self, body: bytes, more: bool) -> None:
        """Loop: a body message, after the status line if it is not out yet."""
        if not self.started:
            await self.send_start()
        await self.send({"type": "http.response.body", "body": body, "more_body": more})

    def start(self) -> list[bytes]:
        """Thread: call the app and take its first block (start_response has run by then)."""
        result = self.app(self.environ, self.start_response)
        if hasattr(result, "close"):
            self.closable = result
        if isinstance(result, (list, tuple)):
            chunks = result if not self.written else [self.take_written(), *result]
        elif isinstance(result, FileWrapper):
            self.file = result
            chunks = [self.take_written()] if self.written else []
        else:
            self.iterator = iter(result)
            chunks = self.next_block()
        if not self.status_code:
            raise RuntimeError("the WSGI app returned without calling start_response")
        return chunks

    def next_block(self) -> list[bytes]:
        """Thread: the next non-empty block with the write() data before it, or what write()
        gave at an empty block; [] (and no iterator) at the end."""
        assert self.iterator is not None
        for block in self.iterator:
            if block:
                self.headers_sent = True
                if self.written:
                    return [self.take_written(), block]
                return [block]
            if self.written:
                return [self.take_written()]
        self.iterator = None
        return [self.take_written()] if self.written else []

    def next_file_block(self) -> bytes:
        """Thread: the next FILE_BLOCK of a FileWrapper's file, within its Content-Length."""
        assert self.file is not None
        size = FILE_BLOCK if self.file_left is None else min(FILE_BLOCK, self.file_left)
        block = self.file.filelike.read(size) if size else b""
        if self.file_left is not None:
            self.file_left -= len(block)
        return block

    def close_logged(self) -> None:
        """Thread: the iterable's close(), once; an error in it is logged, as it cannot change
        the answer."""
        if self.closed:
            return
        self.closed = True
        try:
            self.closable.close()
        except Exception:
            log.exception("close() of the WSGI app's response failed")


async def request_body(scope: dict[str, Any], receive: Callable[..., Any],
                       loop: asyncio.AbstractEventLoop, timeout: float = 30.0
                       ) -> io.RawIOBase | io.BytesIO:
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
    return io.BufferedReader(StreamedBody(receive, loop, timeout), BUFFERED_BODY)


class StreamedBody(io.RawIOBase):
    """A request body read from the app's thread: each read waits for the loop's next message,
    at most `timeout` seconds (gunicorn's receive gives up after the same time)."""

    def __init__(self, receive: Callable[..., Any], loop: asyncio.AbstractEventLoop,
                 timeout: float = 30.0):
        self.receive = receive
        self.loop = loop
        self.timeout = timeout
        self.pending = b""
        self.done = False
        self.lock = threading.Lock()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with self.lock:
            while not self.pending and not self.done:
                message = self.next_message()
                if message["type"] != "http.request":
                    raise RequestBodyError("the client sent no more of the request body "
                                           "(gone, or silent for the worker's timeout)")
                self.pending = message.get("body", b"")
                self.done = not message.get("more_body", False)
            size = min(len(buffer), len(self.pending))
            buffer[:size] = self.pending[:size]
            self.pending = self.pending[size:]
            return size

    def next_message(self) -> dict[str, Any]:
        try:
            future: Future[dict[str, Any]] = asyncio.run_coroutine_threadsafe(self.receive(), self.loop)
        except RuntimeError:  # the loop is closed: the worker is stopping
            raise RequestBodyError("the worker is stopping") from None
        try:
            return future.result(self.timeout)
        except TimeoutError:
            future.cancel()
            raise RequestBodyError(f"no request body data for {self.timeout} s") from None
