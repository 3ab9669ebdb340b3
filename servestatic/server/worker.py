"""One event-loop worker for everything: static hits in the loop, the user's app through ASGI.

`EventLoopWorker` is gunicorn's own ASGI worker (asyncio, HTTP/1.1 keep-alive,
WebSockets, lifespan, its C request parser when gunicorn-h1c is installed) whose
connections are `StaticProtocol`s (server/connection.py): static hits are answered
in the loop, and every other request goes to gunicorn's protocol and reaches
`ASGIApp` (fronts/asgifront.py), which runs an ASGI app natively and a WSGI app in a
thread pool (fronts/wsgibridge.py). docs/design.md says why this design and what it
measured.

What the worker adds to gunicorn's (docs/operations.md):
- past `worker_connections` the worker stops accepting until one closes;
- on SIGTERM accepted connections are set up and the backlog is taken before
  the listeners close, and idle keep-alive connections are closed at once, so
  shutdown waits only for requests in flight and resets no accepted connection.

Both build on gunicorn 27's ASGI internals, each named in GUNICORN_INTERNALS and
checked by tests/test_gunicorn_internals.py, so an upgrade that moves one fails
a test instead of misbehaving.
"""

from __future__ import annotations

import asyncio
import errno
import queue
import signal
import socket
import ssl
from http import HTTPStatus
from typing import Any

from gunicorn import arbiter as gunicorn_arbiter
from gunicorn.asgi import protocol as gunicorn_protocol
from gunicorn.workers import gasgi

from servestatic.core.decision import StaticApp
from servestatic.server import filesend
from servestatic.server.accesslog import gunicorn_line
from servestatic.server.connection import StaticProtocol

# Out of descriptors, a worker stops accepting for this long (asyncio's own pause).
ACCEPT_RETRY_DELAY = 1.0

# What this module and server/connection.py use of gunicorn's ASGI worker and protocol besides their
# public methods: attributes read or set, and methods overridden or called.
# tests/test_gunicorn_internals.py checks that each is there; tests/test_gunicorn_overrides.py
# names, for each override and each flag read, the behavioural test that fails if it is
# bypassed or changes meaning. pyproject pins gunicorn to the releases those ran on.
GUNICORN_INTERNALS = {
    gasgi: ("ASGIProtocol",),
    gunicorn_arbiter.Arbiter: ("SIG_QUEUE",),  # keep_early_signals
    gasgi.ASGIWorker: ("_serve", "_shutdown", "_get_ssl_context", "servers", "worker_connections", "loop",
                       "asgi"),
    gunicorn_protocol: ("_CACHED_SERVER_HEADER", "_REASON_PHRASES", "_get_cached_date_header"),
    gunicorn_protocol.ASGIProtocol: (
        "_on_headers_complete", "_feed_callback_parser", "_callback_parser", "_current_request",
        "_request_ready", "_websocket", "_h2c_buffer", "_closed", "_will_close",
        "_arm_keepalive_timer", "_cancel_keepalive_timer", "_keepalive_handle", "_pause_reading",
        "_resume_reading", "_maybe_resume_reading", "_http1_buffered", "_max_buffer_size", "_reading_paused",
        "_close_transport", "_finishing_calls", "_check_h1c_protocol_available", "req_count",
        "_keepalive", "_keepalive_timeout", "reader", "_build_environ", "_post_request",
        "_send_response_start",
    ),
}

class EventLoopWorker(gasgi.ASGIWorker):
    """gunicorn's ASGI worker serving StaticProtocol connections; see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any):
        self._alive = True
        self._stopping_accept = False
        self._accepting_one_at_a_time = False
        self._ssl_context: Any = None
        super().__init__(*args, **kwargs)
        self.protocols: set[StaticProtocol] = set()
        self.static: StaticApp | None = None
        self.access_line: Any = None
        self.lean_environ = False  # see StaticProtocol._build_environ
        self.file_send_usable = False  # set in load_wsgi, from the worker's loop
        self.early_hints = False  # SERVESTATIC_EARLY_HINTS, set in load_wsgi
        # gunicorn's secure_scheme_headers as environ keys: heads where they may disagree
        # are gunicorn's to answer (a 400 from a trusted peer), not the loop's.
        self.scheme_headers: tuple[tuple[str, str], ...] = ()
        self._connecting = 0  # accepted, transport not made yet
        self._early_signals: Any = None  # the arbiter's signal queue, as forked (keep_early_signals)
        self._listening = False  # this worker's reader is on the listeners (`_accept_one`)

    def load_wsgi(self) -> None:
        super().load_wsgi()  # self.asgi: the ASGIApp built in the master (preload_app)
        static = getattr(self.asgi, "static", None)
        if isinstance(static, StaticApp) and static.fast_path:
            self.static = static
            self.early_hints = static.early_hints
        log = self.log
        self.lean_environ = getattr(log, "own_format", False)
        self.file_send_usable = filesend.usable(self.loop)  # the loop's, once: see FileSend
        self.scheme_headers = tuple(("HTTP_" + name.upper().replace("-", "_"), value)
                                    for name, value in self.cfg.secure_scheme_headers.items())
        if log.access_log_enabled:  # a log line, or statsd's count, per request
            self.access_line = log.line if self.lean_environ else gunicorn_line(log)

    @property
    def alive(self) -> bool:
        return self._alive

    @alive.setter
    def alive(self, value: bool) -> None:
        """Stop accepting the moment the worker is told to stop (SIGTERM, max_requests).

        gunicorn's ASGI worker notices `alive` only at its next heartbeat, up to
        a second later, and accepts new connections meanwhile; a recycled
        worker would then keep answering. Whoever sets it (gunicorn's signal
        handler, its request loop, ours), the listeners close now and the other
        workers take new connections.
        """
        was_alive, self._alive = self._alive, value
        if was_alive and not value and self.loop is not None and self.servers:
            self.loop.call_soon(self.stop_accepting)

    def stop_accepting(self) -> None:
        """Stop taking new connections without resetting any the kernel has accepted.

        A connection waiting in the backlog is reset when the listener closes,
        and so is one accepted whose transport is not made yet (before the first
        heartbeat asyncio accepts, and makes it in a task of its own, which fails
        once its server is closed). So: first stop accepting more (the reader on
        each listener, asyncio's or `_accept_one`), let the transports already
        under way be made, then take what waits in the backlog and close the
        listeners in one step. A client arriving after that is
        refused at once, which a proxy retries on another backend.
        """
        if self._stopping_accept or not any(server.is_serving() for server in self.servers):
            return
        self._stopping_accept = True
        for listener in self.sockets:  # gunicorn's listeners, the sockets the servers serve
            self.loop.remove_reader(listener.sock.fileno())
        self._listening = False
        self.loop.call_soon(self._close_listeners)

    def _close_listeners(self) -> None:
        taken = []
        for listener in self.sockets:
            while True:
                try:
                    taken.append(listener.sock.accept()[0])
                except OSError:  # BlockingIOError: the backlog is empty
                    break
        for server in self.servers:  # at once: a connection arriving meanwhile would be reset
            server.close()
        for client in taken:
            self._adopt(client)

    def notify(self) -> None:
        """gunicorn's heartbeat; the first comes right after the listeners start serving,
        and makes them accept one connection at a time (see `_accept_one`) with
        gunicorn's backlog."""
        super().notify()
        if not self._accepting_one_at_a_time and self.servers and not self._stopping_accept:
            self._accepting_one_at_a_time = True
            serving = {sock.fileno() for server in self.servers for sock in server.sockets}
            for listener in self.sockets:
                fd = listener.sock.fileno()
                if fd in serving:
                    self.loop.remove_reader(fd)  # asyncio's: up to 100 at a time
                    # asyncio's create_server listen()s again with its own backlog of 100;
                    # the shared socket gets gunicorn's `backlog` (2048) back.
                    listener.sock.listen(self.cfg.backlog)
            self._watch_listeners()

    def _watch_listeners(self) -> None:
        """Accept again (`_accept_one`), unless stopping or at worker_connections."""
        if (self._listening or self._stopping_accept or not self.alive
                or not self._accepting_one_at_a_time or self._full()):
            return
        self._listening = True
        for listener in self.sockets:
            self.loop.add_reader(listener.sock.fileno(), self._accept_one, listener.sock)

    def _unwatch_listeners(self) -> None:
        if self._listening:
            self._listening = False
            for listener in self.sockets:
                self.loop.remove_reader(listener.sock.fileno())

    def _full(self) -> bool:
        """At `worker_connections`: new connections wait in the backlog for another
        worker, or for one of this worker's to close (nginx's worker_connections)."""
        return len(self.protocols) + self._connecting >= self.worker_connections

    def connection_ended(self) -> None:
        """A connection closed: below the limit again, accept again."""
        if not self._listening:
            self._watch_listeners()

    def _accept_one(self, listener: socket.socket) -> None:
        """Take one new connection, and leave the next to whichever worker wakes first.

        The workers all wait on the one listening socket. asyncio's own reader
        accepts up to a hundred connections each time it wakes, so the first
        worker to wake took a whole burst: under wrk's 32 connections, or a CDN's
        pool of kept-alive ones, every connection went to one worker while the
        others idled. One at a time, a busy worker comes back to the socket
        later than an idle one, and connections spread by load (as nginx does
        with multi_accept off).
        """
        try:
            client, _ = listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # another worker was quicker
        except OSError as error:
            if error.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                raise
            # Out of descriptors or memory: the socket stays readable, so stop
            # watching it for a while rather than spinning (as asyncio does).
            self.log.error("cannot accept connections for now: %s", error)
            self._unwatch_listeners()
            self.loop.call_later(ACCEPT_RETRY_DELAY, self._watch_listeners)
            return
        self._adopt(client)
        if self._full():
            self._unwatch_listeners()

    def _adopt(self, client: socket.socket) -> None:
        """Serve an accepted connection with a StaticProtocol."""
        client.setblocking(False)
        self._connecting += 1
        self.loop.create_task(self._connect(client))

    async def _connect(self, client: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(lambda: StaticProtocol(self), client,
                                                    ssl=self._ssl_context)
        except (OSError, ssl.SSLError) as error:  # a client gone, a failed TLS handshake
            self.log.debug("connection not set up: %r", error)
            client.close()
        finally:
            self._connecting -= 1
            self.connection_ended()

    def run(self) -> None:
        try:
            super().run()
        finally:
            flush_lines = getattr(self.log, "flush_lines", None)  # ours, not a custom logger_class
            if flush_lines is not None:
                flush_lines()

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        """No warning about `threads`, as gunicorn's ASGI worker gives: it sizes a WSGI app's pool."""

    def init_process(self) -> None:
        # gunicorn's _serve makes each connection's protocol from the name
        # ASGIProtocol in its module; in this worker process that name is ours.
        gasgi.ASGIProtocol = StaticProtocol
        # gunicorn caches whether its C parser is there on the class it is asked
        # through but reads the cache from ASGIProtocol: ask through that class.
        gunicorn_protocol.ASGIProtocol._check_h1c_protocol_available()
        # gunicorn's reason phrases stop at a few dozen codes and say "406 Unknown",
        # "412 Unknown", "416 Unknown" for the rest: complete them from the standard library.
        for status in HTTPStatus:
            gunicorn_protocol._REASON_PHRASES.setdefault(status.value, status.phrase)
        # For the connections this worker accepts itself (`_adopt`), from the first one:
        # the backlog taken at a SIGTERM before the first heartbeat included.
        self._ssl_context = self._get_ssl_context()
        super().init_process()

    def init_signals(self) -> None:
        """gunicorn's, then the stop signals that arrived before it (see `keep_early_signals`)."""
        super().init_signals()
        early = self._early_signals
        self._early_signals = None
        while early is not None:
            try:
                sig = early.get_nowait()
            except queue.Empty:
                break
            if sig == signal.SIGTERM:
                self.handle_exit_signal()
            elif sig in (signal.SIGINT, signal.SIGQUIT):
                self.handle_quit_signal()

    async def _shutdown(self) -> None:
        # Idle keep-alive connections would hold the shutdown for the whole
        # graceful timeout: close them now; busy ones close after their answer
        # (worker.alive is False, so they announce Connection: close).
        self.stop_accepting()
        while any(server.is_serving() for server in self.servers):
            await asyncio.sleep(0)  # the listeners close on the loop's next turn
        for protocol in list(self.protocols):
            protocol.stop_when_idle()
        await super()._shutdown()


def keep_early_signals(arbiter: Any, worker: Any) -> None:
    """gunicorn's post_fork hook: hand the worker the arbiter's signal queue as it was forked.

    From the fork until the worker installs its own handlers, a SIGTERM reaches the
    arbiter's handler, copied into the child, which only queues it in the child's copy
    of the arbiter's queue: the worker never learned it should stop, and the master
    waited the whole graceful timeout for it (a `podman stop` right after the first
    worker answered, the second still booting, was killed after 20 s). The worker's
    `init_signals` acts on what that queue holds.
    """
    if isinstance(worker, EventLoopWorker):
        worker._early_signals = arbiter.SIG_QUEUE
