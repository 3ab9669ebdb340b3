"""gunicorn's gthread worker, hardened against slow and idle clients.

Stock gthread hands every new connection to a pool thread, which then blocks
until the whole request head has arrived. A client that connects and sends
nothing holds a thread for 5 s; one that sends half a head holds it until it
gives up. With 2 workers of 8 threads, 16 such clients stopped every other
request (measured: 300 idle connections delayed a request by 45 s, 300
half-sent heads stopped the server outright).

This worker reads request heads in the worker's event loop, without a thread,
and hands a connection to the pool only once a whole head is buffered. A head
must arrive within HEAD_TIMEOUT seconds of its first byte (else 408 and close)
and be at most MAX_HEAD bytes (else 431 and close). Threads are then spent only
on requests ready to be answered, so idle and trickling clients cost a file
descriptor each, up to gunicorn's worker_connections. Once a request is in a
thread, a client that stalls (stops reading the response, or sending its body)
for `timeout` seconds (SERVESTATIC_TIMEOUT) is dropped, so it cannot keep the
thread either.

On SIGTERM the worker also closes its listening socket as soon as it stops
accepting, after taking what is already in the backlog: a client then gets a
clean "connection refused" (which a proxy retries on another backend) rather
than a connection that sits in the backlog and is reset when the worker exits.

It relies on gunicorn 27's gthread internals (pending_conns, _cap_keepalive),
checked by the test suite (tests/test_resilience.py).
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import socket
import struct
import time
from collections import deque
from functools import partial
from typing import Any

from gunicorn.workers import gthread

from servestatic.app import StaticApp
from servestatic.fastpath import FastPath

HEAD_TIMEOUT = 10.0
MAX_HEAD = 64 * 1024
RECV_SIZE = 64 * 1024

_COMPLETE, _PARTIAL, _EMPTY, _CLOSED, _TOO_LARGE = range(5)
_REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_TOO_LARGE_RESPONSE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n"
                       b"Content-Length: 0\r\n\r\n")


def _has_head(data: bytes) -> bool:
    return b"\r\n\r\n" in data or b"\n\n" in data


class ClientSocket(socket.socket):
    """A client socket whose blocking mode gives up after `io_timeout` s without progress.

    gthread switches a connection to blocking mode (no timeout) in the pool
    thread, so a client that stops reading a response, or stops sending a
    body, would hold that thread for ever. The limit is set in the kernel
    (SO_SNDTIMEO, SO_RCVTIMEO) rather than with `settimeout`: Python's timeout
    mode makes the socket non-blocking and goes back to Python to poll each time
    the send buffer fills, where the kernel can simply block (a 5 MiB sendfile
    cost about 10% less CPU measured with bench/serve_bench.py). A send or
    receive that makes no progress for `io_timeout` seconds fails with EAGAIN,
    an OSError, and the connection is dropped.
    """

    io_timeout: float | None = None

    def setblocking(self, flag: bool) -> None:
        super().setblocking(flag)
        if flag and self.io_timeout:
            seconds = int(self.io_timeout)
            timeval = struct.pack("ll", seconds, int((self.io_timeout - seconds) * 1_000_000))
            self.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
            self.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """`os.sendfile` until done, failing on a stalled client.

        socket.sendfile on a blocking socket waits for writability without a
        limit after EAGAIN, which would undo SO_SNDTIMEO.
        """
        source = file.fileno()
        total = os.fstat(source).st_size - offset if count is None else count
        sent = 0
        while sent < total:
            try:
                done = os.sendfile(self.fileno(), source, offset + sent, total - sent)
            except BlockingIOError:
                raise TimeoutError(errno.ETIMEDOUT, "client stopped reading") from None
            if done == 0:
                break  # the file is shorter than it was: the caller's length check tells
            sent += done
        file.seek(offset + sent)
        return sent


class ThreadWorker(gthread.ThreadWorker):
    """gthread that gives a connection a thread only when its request head is complete."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Connections with part of a head, oldest first: their deadlines are in order.
        self.head_conns: deque[gthread.TConn] = deque()
        self.fast_path: FastPath | None = None

    def init_process(self) -> None:
        # self.wsgi is the app loaded in the master (preload_app), before the loop starts.
        app = self.app.wsgi()
        if isinstance(app, StaticApp) and app.fast_path:
            self.fast_path = FastPath(app, self)
        super().init_process()

    def handle(self, conn: gthread.TConn) -> Any:
        """Pool thread: a static hit goes by the fast path; anything else to gunicorn."""
        fast_path = self.fast_path
        if fast_path is not None and conn.initialized and not conn.is_http2:
            unreader = conn.parser.unreader
            data = unreader.take_buffered()
            conn.sock.setblocking(True)  # as gthread's handle does: blocking, with io_timeout
            try:
                keep_alive = fast_path.serve(conn, data)
            except OSError:
                return False  # the client went away mid-answer
            if keep_alive is not None:
                return keep_alive
            unreader.unread(data)
        return super().handle(conn)

    def enqueue_req(self, conn: gthread.TConn) -> None:
        """Main thread: read what the client has sent; queue the request once its head is whole."""
        if not conn.initialized:
            if not isinstance(conn.sock, ClientSocket):
                conn.sock = ClientSocket(fileno=conn.sock.detach())
                conn.sock.io_timeout = self.cfg.timeout
            conn.init()  # builds the HTTP/1 parser; without TLS or h2c it does no I/O
        conn.sock.setblocking(False)
        state = self._fill(conn)
        if state == _COMPLETE:
            conn.data_ready = True
            super().enqueue_req(conn)
        elif state == _EMPTY:
            # Nothing yet: wait on the poller like gthread's deferred connections.
            conn.timeout = time.monotonic() + self.cfg.keepalive
            self.pending_conns.append(conn)
            self.poller.register(conn.sock, selectors.EVENT_READ,
                                 partial(self.on_pending_socket_readable, conn))
        elif state == _PARTIAL:
            conn.timeout = time.monotonic() + HEAD_TIMEOUT
            self.head_conns.append(conn)
            self.poller.register(conn.sock, selectors.EVENT_READ,
                                 partial(self.on_head_readable, conn))
        else:
            self._drop(conn, _TOO_LARGE_RESPONSE if state == _TOO_LARGE else b"")

    def on_head_readable(self, conn: gthread.TConn, client: socket.socket) -> None:
        state = self._fill(conn)
        if state in (_PARTIAL, _EMPTY):
            return
        self.poller.unregister(client)
        self.head_conns.remove(conn)
        if state == _COMPLETE:
            conn.data_ready = True
            super().enqueue_req(conn)
        else:
            self._drop(conn, _TOO_LARGE_RESPONSE if state == _TOO_LARGE else b"")

    def _fill(self, conn: gthread.TConn) -> int:
        """Move what the socket holds into the parser's buffer, without blocking."""
        unreader = conn.parser.unreader
        buffered = unreader.take_buffered()
        closed = False
        while not _has_head(buffered) and len(buffered) <= MAX_HEAD:
            try:
                data = conn.sock.recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                closed = True
                break
            if not data:
                closed = True
                break
            buffered += data
        unreader.unread(buffered)
        if _has_head(buffered):
            return _COMPLETE  # even after EOF: a half-closed client still gets its answer
        if closed:
            return _CLOSED
        if len(buffered) > MAX_HEAD:
            return _TOO_LARGE
        return _PARTIAL if buffered else _EMPTY

    def _drop(self, conn: gthread.TConn, response: bytes) -> None:
        if response:
            with contextlib.suppress(OSError):
                conn.sock.send(response)
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        while self.head_conns and self.head_conns[0].timeout <= now:
            conn = self.head_conns.popleft()
            with contextlib.suppress(OSError, KeyError, ValueError):
                self.poller.unregister(conn.sock)
            self._drop(conn, _REQUEST_TIMEOUT)

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:
            self._close_listeners()

    def _close_listeners(self) -> None:
        """Stopping: take the connections already in the backlog, then close the listeners."""
        for listener in self.sockets:
            while True:
                try:
                    client, address = listener.accept()
                except OSError as error:
                    if error.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ECONNABORTED):
                        self.log.debug("accept while stopping: %s", error)
                    break
                self.nr_conns += 1
                self.enqueue_req(gthread.TConn(self.cfg, client, address, listener.getsockname()))
            listener.close()

    def _cap_keepalive(self, deadline: float) -> None:
        """Stopping: idle connections that never sent a byte go at the same deadline."""
        super()._cap_keepalive(deadline)
        for conn in self.pending_conns:
            conn.timeout = min(conn.timeout, deadline)
