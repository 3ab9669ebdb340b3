"""One client connection of the event-loop worker: its heads read, its static hits answered,
its flow controlled.

`StaticProtocol` is gunicorn's ASGI protocol with one addition. When bytes arrive on a
connection that gunicorn has no request in progress on, it reads the whole request heads
at their start itself (servestatic/server/requesthead.py), and a plain GET or HEAD for a
path in the table, or the health path, is answered right there, in the loop:
`StaticApp.decide` makes the answer, the precomputed header bytes and a small body go out
with one write, a large body by sendfile (server/filesend.py). No task, no ASGI messages,
no scope. From the first request that is not such a hit, the bytes go to gunicorn's
protocol untouched (the user's app, other methods, bodies, upgrades, redirects, 404s, a
head that arrives in pieces). `Phase` says, in one place, who reads the next bytes.

What gunicorn's ASGI protocol does not bound, this one does (docs/operations.md):
- a new connection that sends nothing is closed after the keep-alive timeout;
- a request head must be complete within HEAD_TIMEOUT seconds of its first
  byte (else 408, whatever the keep-alive) and be at most MAX_HEAD bytes (else
  431), whole or in pieces;
- while a client does not read, its connection reads nothing more, so what it
  holds is bounded (MAX_HELD_PER_CONNECTION) however much it pipelines;
- a client that stops reading a response for `timeout` seconds is reset.

The worker that accepts these connections is server/worker.py's `EventLoopWorker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import socket
import struct
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from gunicorn.asgi import protocol as gunicorn_protocol

from servestatic.core.answer import (
    EARLY_HINTS_LINE,
    Answer,
    FileRange,
    early_hint_headers,
    encode_headers,
    header_block,
)
from servestatic.fronts.environ import request_environ
from servestatic.server import metrics
from servestatic.server.filesend import FileSend
from servestatic.server.requesthead import StaticRequest, parse_head
from servestatic.server.scheme import scheme_reader

if TYPE_CHECKING:
    from servestatic.server.worker import EventLoopWorker

HEAD_TIMEOUT = 10.0
MAX_HEAD = 64 * 1024
# Bodies up to this size go out with their headers in one write; larger ones by sendfile.
INLINE_BODY = 64 * 1024
# Where loop.sendfile sends a large body (TLS; see `_send_file`), it is given this much at a
# time, each piece within the stall timeout: a client slower than SENDFILE_PIECE bytes per
# `timeout` seconds is dropped. FileSend (server/filesend.py) drops one that takes nothing
# for `timeout` seconds.
SENDFILE_PIECE = 256 * 1024
# On SIGTERM, a connection that has not sent its first request yet gets this long for it.
SHUTDOWN_GRACE = 1.0
# Closing after an answer, the worker reads and drops what the client still sends until it
# closes its side, or for this long after its last byte (RFC 9112 9.6; nginx's
# lingering_timeout), and at most `timeout` seconds in all (nginx's lingering_time).
LINGER_TIMEOUT = 2.0
# What one connection can make a worker hold, whatever its client sends (docs/operations.md):
# while the client does not read, the connection reads nothing more either, so it holds
# at most the transport's write buffer (asyncio's high-water mark, 64 KiB, plus the one
# answer that crossed it: up to INLINE_BODY and its head), the bytes of one read held
# unanswered (asyncio reads at most READ_SIZE at a time), and gunicorn's own parser
# buffer for a request it is reading (256 KiB before it pauses reading).
READ_SIZE = 256 * 1024
MAX_HELD_PER_CONNECTION = 64 * 1024 + INLINE_BODY + MAX_HEAD + READ_SIZE + 256 * 1024 + READ_SIZE



class Phase(enum.Enum):
    """Who reads a connection's next bytes. `StaticProtocol.phase()` works it out, in one
    place, from gunicorn's flags and the worker's own; every decision reads it."""

    HEADS = "between requests: the loop reads the next request head"
    HEAD = "gunicorn's parser holds part of a request head"
    REQUEST = "gunicorn has a request in progress (its body, the app's answer, a pipelined replay)"
    SENDING = "a static body is going out with sendfile: later bytes wait"
    UPGRADED = "no longer HTTP/1 requests: WebSocket, HTTP/2, or a preface not yet decided"
    CLOSED = "closed"

# The same Server header as gunicorn's answers (and, per request, its cached Date header).
_SERVER = gunicorn_protocol._CACHED_SERVER_HEADER
_PROTOCOLS = {(1, 1): "HTTP/1.1", (1, 0): "HTTP/1.0"}
_STATUS_LINES = {version: (name + " ").encode("ascii") for version, name in _PROTOCOLS.items()}
# The request headers servestatic's access log shows (servestatic/server/accesslog.py).
_LOGGED_HEADERS = (b"user-agent", b"referer")
_TCP_CORK = getattr(socket, "TCP_CORK", None)  # Linux only: see StaticProtocol._cork



class StaticProtocol(gunicorn_protocol.ASGIProtocol):
    """gunicorn's HTTP/1 protocol, answering static hits itself; see the module docstring.

    Flow control is in three methods: `pause_writing` (the client stopped reading:
    read nothing more), `_hold` (bytes read ahead wait, with reading paused) and
    `_release` (the connection can answer again: the held bytes first, then read on).
    """

    def __init__(self, worker: EventLoopWorker):
        super().__init__(worker)
        self.static = worker.static
        # gunicorn's parser holds part of a head: the next bytes are its, not ours.
        self._partial = False
        self._limits = (self.cfg.limit_request_line, self.cfg.limit_request_fields,
                        self.cfg.limit_request_field_size)
        if self.static is not None:
            self._route = self.static.route
        self._sending = False  # a large body is on its way: the next request waits
        self._file_send: FileSend | None = None  # how it goes, without TLS (server/filesend.py)
        self._socket_fd: int | None = None  # the connection's socket, where FileSend may write
        self._socket: Any = None
        self._output_blocked = False  # the transport's writes are paused: the client is not reading
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._stall_timer: asyncio.TimerHandle | None = None
        self._unread = b""  # requests read ahead, answered once the connection can (`_hold`)
        self._closing_idle = False  # closing a connection with no request in progress: no linger
        self._lingering = False
        self._linger_timer: asyncio.TimerHandle | None = None
        self._linger_until = 0.0
        self._answered = 0  # static requests answered in the loop
        self._idle_since = 0.0  # when the loop last answered (see _keepalive_timeout)

    def phase(self) -> Phase:
        """Who reads this connection's next bytes (Phase); the only reader of gunicorn's
        per-connection flags besides the overrides that keep them."""
        if self._closed:
            return Phase.CLOSED
        if (self._websocket is not None or self._h2c_buffer is not None or self.reader is not None
                or self._callback_parser is None):
            return Phase.UPGRADED
        if self._sending:
            return Phase.SENDING
        if self._current_request is not None or self._request_ready.is_set():
            return Phase.REQUEST
        if self._partial:
            return Phase.HEAD
        return Phase.HEADS

    # --- connection life

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.worker.protocols.add(self)
        peer = transport.get_extra_info("peername")
        self._remote = peer[0] if isinstance(peer, tuple) else "-"  # for the access log
        self._scheme_of = scheme_reader(self, peer)  # None unless HSTS or the https redirect is on
        sock = transport.get_extra_info("socket")
        # Large bodies go straight to the socket (FileSend), except under TLS.
        plain = (sock is not None and transport.get_extra_info("sslcontext") is None
                 and self.worker.file_send_usable)
        self._socket_fd = sock.fileno() if plain else None
        self._socket = sock if plain else None  # for TCP_CORK around a FileSend (`_cork`)
        if self._request_ready is not None:
            # gunicorn arms its keep-alive timer only from the second request on:
            # a connection that never sends a byte would otherwise stay for ever.
            self._arm_keepalive_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.worker.protocols.discard(self)
        if self._file_send is not None:
            self._file_send.abandon()  # before the socket is closed: its descriptor may be reused
        self._cancel_head_timer()
        if self._stall_timer is not None:
            self._stall_timer.cancel()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        self._unread = b""
        super().connection_lost(exc)
        self.worker.connection_ended()

    def _close_transport(self) -> None:
        """gunicorn's close, but one that also closes a connection whose client is gone.

        gunicorn's calls write_eof() and then close() in one try block: when the
        client has already reset the connection, write_eof() raises and close()
        is skipped, so the connection was never released; with reading paused
        (a large body under way) nothing noticed the reset either. Each such
        connection kept its descriptor and counted in the worker's connections,
        which shutdown then waited for until the graceful timeout.
        """
        transport = self.transport
        if transport is None or self._closed:
            return
        self._closed = True
        try:
            if transport.can_write_eof():
                transport.write_eof()
                if not self._closing_idle:
                    self._linger()
                    return
        except OSError:
            transport.abort()  # the client is gone: nothing left to flush
        else:
            transport.close()

    def _linger(self) -> None:
        """Close in stages after an answer: the write side is shut (write_eof), and what
        the client still sends is read and dropped until it closes its side.

        Closed at once instead, with bytes the client had pipelined still unread,
        the kernel resets the connection, and a reset discards whatever of the
        answer the client had not read yet: a 4 MiB file followed by a request
        saying Connection: close and one more request arrived cut short.
        """
        self._lingering = True
        self._linger_until = self.worker.loop.time() + self.worker.cfg.timeout
        self._linger_timer = self.worker.loop.call_later(LINGER_TIMEOUT, self._end_linger)
        with contextlib.suppress(AttributeError, RuntimeError):
            self.transport.resume_reading()  # gunicorn's or the flow control's pause

    def _end_linger(self) -> None:
        self._linger_timer = None
        self.transport.close()

    def _lingered(self) -> None:
        """Bytes arrived while lingering: dropped, and the clock starts again (up to a cap)."""
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            delay = min(LINGER_TIMEOUT, self._linger_until - self.worker.loop.time())
            self._linger_timer = self.worker.loop.call_later(max(delay, 0), self._end_linger)

    def _close_and_wake(self) -> None:
        """Close, and wake gunicorn's request loop for this connection, which waits for
        its next request: it sees the connection closed and ends now rather than when
        connection_lost's cancellation reaches it (asgi_disconnect_grace_period later)."""
        self._close_transport()
        if self._request_ready is not None:
            self._request_ready.set()

    def is_idle(self) -> bool:
        """No request in progress: nothing is lost if the connection is closed now."""
        return self.phase() is Phase.HEADS and not self._finishing_calls and not self._unread

    def stop_when_idle(self) -> None:
        """Shutting down: close an idle keep-alive connection now.

        A busy one closes after its answer (which says Connection: close, as
        the worker is no longer alive). A new one that has not sent its first
        request yet gets SHUTDOWN_GRACE seconds for it: its client certainly
        means to send one, while a kept-alive client may or may not.
        """
        if not self.is_idle():
            return
        if self._answered or self.req_count > 1:
            self._closing_idle = True
            self._close_and_wake()
        else:
            self._cancel_keepalive_timer()
            self._keepalive_handle = self.worker.loop.call_later(SHUTDOWN_GRACE, self._keepalive_timeout)

    # --- flow control

    def pause_writing(self) -> None:
        """The client stopped reading: read nothing more from it either, and give it
        `timeout` seconds to start again.

        Every request read now would only make another answer it does not take:
        a client pipelining requests without reading would otherwise grow the
        worker without bound (gunicorn's own protocol waits for the drain per
        response, but went on reading and parsing the requests behind it).
        """
        super().pause_writing()
        self._output_blocked = True
        self._pause_reading()
        if self._stall_timer is None:
            self._stall_timer = self.worker.loop.call_later(self.worker.cfg.timeout, self._stalled)

    def resume_writing(self) -> None:
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        self._output_blocked = False
        super().resume_writing()
        # Not from inside the transport's own write path, which calls this.
        self.worker.loop.call_soon(self._release)

    def _resume_reading(self) -> None:
        """gunicorn resumes reading after each request, whatever its parser holds: not
        while the client is not reading our answers, nor while a static body is on its
        way, nor while pipelined requests already read fill half of gunicorn's buffer.

        gunicorn pauses reading past its buffer limit, but resumed after every
        request, so each request answered (some forty bytes of the buffer) let
        another read (up to 256 KiB) in: a client pipelining GETs grew the
        buffer by megabytes a second. Here reading resumes once the requests
        already read are mostly answered, as gunicorn's `_maybe_resume_reading`
        does for a body.
        """
        if not self._reading_paused or self._output_blocked or self._sending:
            return  # not paused (the usual case after a request: nothing to do), or must stay paused
        if (self._callback_parser is not None and self.reader is None
                and self._http1_buffered() > self._max_buffer_size // 2):
            return
        super()._resume_reading()

    def _hold(self, rest: bytes) -> None:
        """Keep the bytes read ahead until the connection can answer them; read no more
        meanwhile, so what it holds is at most one read (READ_SIZE)."""
        self._unread += rest
        self._pause_reading()

    def _release(self) -> None:
        """The connection can answer again: the bytes held first, then read on (when
        gunicorn's own buffers allow: it may have paused reading for a body)."""
        if self._output_blocked or self._sending or self._closed:
            return
        self._maybe_resume_reading()
        held, self._unread = self._unread, b""
        if held:
            self.data_received(held)

    def _stalled(self) -> None:
        self._stall_timer = None
        self._drop_stalled()

    def _drop_stalled(self) -> None:
        """Reset the connection of a client that stopped reading, and free what it held.

        A plain close would leave the kernel holding the unsent bytes (megabytes,
        for a large file) and retrying them for minutes; a reset (SO_LINGER 0)
        frees them now.
        """
        self.log.info("dropping a client that read nothing for %s s", self.worker.cfg.timeout)
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    # --- request heads

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._lingered()
            return
        phase = self.phase()
        if phase is Phase.HEADS or phase is Phase.SENDING:
            if self._sending or self._output_blocked or self._unread:
                self._hold(data)  # read before reading paused took effect: in order, later
                return
            if self.static is not None:
                data = self._answer_heads(data)
                if not data:
                    return
        super().data_received(data)

    def _answer_heads(self, data: bytes) -> bytes:
        """Answer the static requests whose whole heads start `data`; return the rest.

        The rest (a head that is not a static hit, a head in pieces, a body) goes to
        gunicorn's parser: from the first byte of the first request that is not ours.
        While the client is not reading (or a large body is on its way), the rest
        waits (`_hold`) and is answered from `_release`.
        """
        start = 0
        while True:
            end = data.find(b"\r\n\r\n", start)
            if end < 0 or end + 4 - start > MAX_HEAD:
                return data[start:]  # gunicorn's, bounded by `_bound_head`
            request = parse_head(data, start, end, self._limits, self._route, self.worker.scheme_headers)
            if request is None:
                return data[start:]
            start = end + 4
            keep_alive = self._answer(request)
            if not keep_alive or self._closed:
                self._close_and_wake()
                return b""
            if start == len(data):
                return b""
            if self._sending or self._output_blocked:
                self._hold(data[start:])
                return b""

    def _bound_head(self, data: bytes) -> bool:
        """Bytes of a request head for gunicorn: bound how large it may be and how long it
        may take, whether it comes whole or in pieces; False once refused.

        A head that is whole in these bytes needs no clock (the usual case: it saves
        a timer per request for the app). While one is under way, its own clock
        replaces the keep-alive timer: a client trickling a head gets a 408 after
        HEAD_TIMEOUT seconds whatever the keep-alive setting.
        """
        end = data.find(b"\r\n\r\n")
        if self._head_bytes + (len(data) if end < 0 else end + 4) > MAX_HEAD:
            self._refuse(b"431 Request Header Fields Too Large")
            return False
        if end < 0:
            self._head_bytes += len(data)
            if self._head_timer is None:
                self._cancel_keepalive_timer()
                self._head_timer = self.worker.loop.call_later(HEAD_TIMEOUT, self._head_timed_out)
        return True

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.phase() in (Phase.HEADS, Phase.HEAD):
            self._refuse(b"408 Request Timeout")

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self._head_bytes = 0

    def _refuse(self, status: bytes) -> None:
        self._cancel_head_timer()
        with contextlib.suppress(Exception):
            self.transport.write(b"HTTP/1.1 %s\r\nConnection: close\r\nContent-Length: 0\r\n\r\n" % status)
        self._close_and_wake()

    def _on_headers_complete(self) -> Any:
        self._cancel_head_timer()
        return super()._on_headers_complete()

    def _feed_callback_parser(self, data: bytes) -> bool:
        # Every byte for gunicorn's parser passes here, gunicorn's own replay of a
        # pipelined request included: bound a head, and note whether the parser now
        # holds part of one.
        if self._current_request is None and not self._bound_head(data):
            return False
        keep_reading = super()._feed_callback_parser(data)
        self._partial = (keep_reading and self._current_request is None
                         and not self._request_ready.is_set())
        return keep_reading

    def _send_response_start(self, status: int, headers: Any, request: Any, close: bool = False) -> None:
        """gunicorn's, and an app's own `Connection: close` ends the connection after this
        answer, as gunicorn's WSGI workers do; gunicorn's ASGI protocol sent the header
        and kept the connection open. The ASGI front says it when it answers a request
        whose body it does not read (fronts/asgifront.py)."""
        if not close:
            for name, value in headers:
                if name.lower() == b"connection" and b"close" in value.lower():
                    self._keepalive = 0  # gunicorn's loop ends after this request
                    break
        super()._send_response_start(status, headers, request, close)

    def _build_environ(self, request: Any, sockname: Any, peername: Any) -> dict[str, Any]:
        """What gunicorn hands the access log for a request through ASGI.

        gunicorn's version decodes every request header into the dictionary; the
        access log's line uses two of them. With servestatic's own log format and
        no post_request hook (which gets this environ too), only those are made.
        """
        if not self.worker.lean_environ or self._post_request is not None:
            return super()._build_environ(request, sockname, peername)
        environ = request_environ(request.method, request.path, request.query or "",
                                  [pair for pair in request.headers_bytes if pair[0] in _LOGGED_HEADERS])
        environ["RAW_URI"] = request.uri
        environ["SERVER_PROTOCOL"] = f"HTTP/{request.version[0]}.{request.version[1]}"
        environ["REMOTE_ADDR"] = peername[0] if peername else "-"
        return environ

    # --- answering in the loop

    def _answer(self, request: StaticRequest) -> bool:
        """Decide and send; returns whether the connection stays open (gunicorn's rules)."""
        started = time.monotonic()
        worker = self.worker
        keep_alive = not self._will_close(request, False)
        if self._scheme_of is not None:  # servestatic/server/scheme.py
            request.environ["wsgi.url_scheme"] = self._scheme_of(request.environ)
        try:
            answer = self.static.decide(request.environ)
        except Exception:
            self.log.exception("Error answering %s", request.target)
            self.transport.write(b"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n"
                                 b"Content-Length: 0\r\n\r\n")
            return False
        worker.nr += 1
        self._answered += 1
        if worker.nr >= worker.max_requests and worker.alive:
            self.log.info("Autorestarting worker after current request.")
            worker.alive = False
        head = self._head(request, answer, keep_alive)
        if worker.early_hints and request.method == "GET" and request.version != (1, 0):
            hints = early_hint_headers(answer)  # core/answer.py; an HTTP/1.0 client takes no 1xx
            if hints:
                head = b"".join((EARLY_HINTS_LINE, encode_headers(hints), b"\r\n", head))
        if answer.fd is None:
            body = answer.body or b""
            self.transport.write(head + body)
            self._finished(request, answer, len(body), started)
        elif answer.length <= INLINE_BODY:
            body = answer.read_range()
            self.transport.write(head + body)
            self._finished(request, answer, len(body), started)
            if len(body) < answer.length:
                return False  # the file shrank (core/answer.py): the client must not wait for the rest
        else:
            # Nothing waits in the transport: the head and then the body go straight to the
            # socket, corked so that they leave in full segments (`_cork`).
            corked = (self._socket_fd is not None and not self.transport.get_write_buffer_size()
                      and self._cork(True))
            self.transport.write(head)
            body = answer.take_range()
            first = body.offset
            if corked and not self.transport.get_write_buffer_size():
                # The head is out whole: the socket is the body's alone until it is sent.
                file_send = FileSend(worker.loop, self._socket_fd, body, worker.cfg.timeout,
                                     partial(self._file_sent, request, answer, body, first, keep_alive,
                                             started))
                outcome = file_send.send_now()
                if outcome is None:  # the socket is full: the rest as it drains, reading paused
                    self._cancel_keepalive_timer()  # re-armed when the body is out
                    self._sending = True
                    self._pause_reading()
                    self._file_send = file_send
                    file_send.wait_writable()
                    return True
                # All of it went at once (or the send failed): done like a small answer.
                self._cork(False)
                if outcome == "failed":
                    self.log.debug("static body not sent: the socket refused it")
                self._body_done(request, answer, body, first, started)
                if outcome != "sent":
                    return False
            else:  # TLS, or earlier answers still buffered in the transport
                if corked:
                    self._cork(False)
                self._cancel_keepalive_timer()  # re-armed when the body is out
                self._sending = True
                self._pause_reading()
                worker.loop.create_task(self._send_file(request, answer, body, keep_alive, started))
                return True
        if keep_alive:
            self._idle_since = started
            if self._keepalive_handle is None:
                self._arm_keepalive_timer()
        return keep_alive

    def _cork(self, on: bool) -> bool:
        """TCP_CORK on or off (Linux; nginx's tcp_nopush): while on, the kernel sends only
        full segments, so a large file's head leaves with the start of its body rather than
        alone, which cost a segment (and its receiver's processing) per answer: a 100 KiB
        answer over loopback took 5.1 TCP segments with its ACKs, 4.0 corked. Off pushes out
        what is left."""
        if _TCP_CORK is None:
            return False
        try:
            self._socket.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, on)
        except OSError:  # the client is gone: what follows finds out
            return False
        return True

    def _keepalive_timeout(self) -> None:
        """The keep-alive timer is due: close, unless the loop answered a request since.

        A static answer leaves the timer armed and notes the time instead of
        cancelling and re-arming it (a timer per request was a tenth of a small
        answer's CPU); the timer then only moves when it comes due.
        """
        if self._head_timer is not None:
            self._keepalive_handle = None
            return  # a head is under way: its own clock decides (408)
        remaining = self._idle_since + self._keepalive - self.worker.loop.time()
        if remaining > 0 and self.worker.alive and not self._closed:
            self._keepalive_handle = self.worker.loop.call_later(remaining, self._keepalive_timeout)
            return
        self._keepalive_handle = None
        self._closing_idle = True
        super()._keepalive_timeout()

    def _head(self, request: StaticRequest, answer: Answer, keep_alive: bool) -> bytes:
        version = request.version
        if not keep_alive:
            connection = b"Connection: close\r\n"
        elif version == (1, 0):
            connection = b"Connection: keep-alive\r\n"
        else:
            connection = b""
        return b"".join((_STATUS_LINES[version], answer.status.encode("ascii"), b"\r\n", _SERVER,
                         gunicorn_protocol._get_cached_date_header(), connection, header_block(answer),
                         b"\r\n"))

    def _file_sent(self, request: StaticRequest, answer: Answer, body: FileRange, first: int,
                   keep_alive: bool, started: float, outcome: str) -> None:
        """FileSend's end: the line and the metrics, then the next request or the close."""
        self._file_send = None
        self._cork(False)
        if outcome == "stalled":
            self._drop_stalled()
        elif outcome == "failed":
            self.log.debug("static body not sent: the socket refused it")
        self._body_done(request, answer, body, first, started)
        self._after_body(keep_alive and outcome == "sent")

    async def _send_file(self, request: StaticRequest, answer: Answer, body: FileRange, keep_alive: bool,
                         started: float) -> None:
        """A large body with loop.sendfile (TLS, or behind buffered answers; FileSend
        otherwise), piece by piece, each piece within the stall timeout.

        loop.sendfile takes a file object (its fallback, under TLS, seeks and
        reads it): one is made around the range's descriptor, and owns it.
        """
        loop = self.worker.loop
        first = body.offset
        try:
            with os.fdopen(body.fd, "rb", buffering=0) as stream:
                body.fd = -1
                while not body.complete:
                    piece = min(SENDFILE_PIECE, body.remaining)
                    done = await asyncio.wait_for(loop.sendfile(self.transport, stream, body.offset, piece),
                                                  self.worker.cfg.timeout)
                    if not done:
                        break  # the file shrank (core/answer.py)
                    body.advance(done)
        except TimeoutError:
            self._drop_stalled()
            keep_alive = False
        except (OSError, RuntimeError, ConnectionError) as error:
            self.log.debug("static body not sent: %r", error)
            keep_alive = False
        finally:
            self._body_done(request, answer, body, first, started)
        self._after_body(keep_alive and body.complete)

    def _body_done(self, request: StaticRequest, answer: Answer, body: FileRange, first: int,
                   started: float) -> None:
        body.close()
        self._sending = False
        self._finished(request, answer, body.offset - first, started)

    def _after_body(self, keep_alive: bool) -> None:
        """A large body is out (or is not, and keep_alive is False): close, or read on."""
        if not keep_alive or self._closed or not self.worker.alive:
            self._close_and_wake()
            return
        self._arm_keepalive_timer()
        self._release()

    def _finished(self, request: StaticRequest, answer: Answer, sent: int, started: float) -> None:
        """An answer is out: its access-log line and its metrics."""
        seconds = time.monotonic() - started
        environ = request.environ
        if metrics.recording():
            source = answer.representation
            metrics.observe(request.route, answer.status, sent, source.coding if source is not None else "",
                            seconds)
        line = self.worker.access_line
        if line is not None:
            line(self._remote, request.method, request.target.decode("latin-1"),
                 _PROTOCOLS[request.version], answer.status, sent, environ.get("HTTP_REFERER"),
                 environ.get("HTTP_USER_AGENT"), seconds, environ["PATH_INFO"], environ["QUERY_STRING"])
