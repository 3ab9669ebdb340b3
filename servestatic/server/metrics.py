"""Prometheus metrics, summed over every gunicorn worker, on a listener of their own.

`SERVESTATIC_METRICS_BIND=HOST:PORT` (off by default) turns them on. Each worker
records its requests with `observe`, which costs one global lookup when metrics
are off. prometheus_client's multiprocess mode, the library's own answer for
gunicorn, keeps each process's values in a memory-mapped file in a directory
named by PROMETHEUS_MULTIPROC_DIR; a scrape sums the files of every worker, the
dead ones' counters included, so counts do not go back when a worker restarts.

Where /metrics is served: a thread in gunicorn's master, on its own socket. The
master outlives every worker, is idle between signals, and can read every
worker's files; a thread needs no supervision of its own, unlike a separate
process. It reads files only and shares no lock with request handling, so
gunicorn's forks of new workers cannot inherit a lock it holds that a worker
would need. The public port never serves /metrics: a CDN in front would cache
and expose it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler

from servestatic.core.decision import APP, HEALTH, MISS, STATIC
from servestatic.fronts.asgifront import ASGIApp, Receive, Scope, Send
from servestatic.fronts.environ import scope_path

# observe's `where` is who answered, as `StaticApp.route` says (core/decision.py); its
# names are exported here with the rest of what a worker calls.
__all__ = ["APP", "HEALTH", "MISS", "STATIC", "ObservedApp", "observe", "recording", "start"]

# Request durations: a static hit takes tens of microseconds, an app's view milliseconds or more.
DURATION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class MetricsError(Exception):
    """The metrics listener cannot start; the message is one line."""


class Recorder:
    """The metrics a worker writes, with each label combination's child kept for speed."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        # registry=None: the values live in the multiprocess files, which the master's
        # collector reads; nothing is registered in a process-wide registry.
        self.requests = Counter("servestatic_requests", "HTTP requests answered, by kind and status class.",
                                ["kind", "status"], registry=None)
        self.response_bytes = Counter("servestatic_response_body_bytes",
                                      "Response body bytes sent, by content coding.",
                                      ["encoding"], registry=None)
        self.duration = Histogram("servestatic_request_duration_seconds",
                                  "Time from a request's head to the end of its answer, by kind.",
                                  ["kind"], buckets=DURATION_BUCKETS, registry=None)
        self.worker_restarts = Counter("servestatic_worker_restarts",
                                       "Worker processes that exited (gunicorn's master replaces them).",
                                       registry=None)
        self.workers = Gauge("servestatic_workers", "Worker processes running.", registry=None,
                             multiprocess_mode="livesum")
        self.dropped_log_lines = Counter("servestatic_access_log_dropped_lines",
                                         "Access log lines dropped because the log's output "
                                         "did not take them (a stalled stdout pipe).", registry=None)
        # Label children by what observe is given, so a request costs dict lookups and the
        # increments themselves (each a write to this process's memory-mapped file).
        self._by_answer: dict[tuple[str, int | str], tuple[Any, Any]] = {}
        self._by_encoding: dict[str, Any] = {}

    def observe(self, where: str, status: int | str, body_bytes: int, encoding: str,
                seconds: float) -> None:
        children = self._by_answer.get((where, status))
        if children is None:
            code = int(str(status)[:3])
            kind = kind_of(where, code)
            children = (self.requests.labels(kind, f"{code // 100}xx"), self.duration.labels(kind))
            self._by_answer[(where, status)] = children
        children[0].inc()
        children[1].observe(seconds)
        if body_bytes:
            sent = self._by_encoding.get(encoding)
            if sent is None:
                sent = self._by_encoding[encoding] = self.response_bytes.labels(encoding or "identity")
            sent.inc(body_bytes)


def kind_of(where: str, code: int) -> str:
    """The `kind` label of an answer from `where` with status `code`: hit, not_modified,
    range, app, not_found, health or other."""
    if where == STATIC:
        if code == 200:
            return "hit"
        if code == 304:
            return "not_modified"
        if code in (206, 416):
            return "range"
        return "other"
    if where == APP:
        return "app"
    if where == HEALTH:
        return "health"
    return "not_found" if code == 404 else "other"


_recorder: Recorder | None = None


def recording() -> bool:
    """Whether this process records metrics (a front end asks before it counts anything)."""
    return _recorder is not None


def observe(where: str, status: int | str, body_bytes: int, encoding: str, seconds: float) -> None:
    """Record one answered request: `where` is STATIC, HEALTH, APP or MISS, `status` the
    code (or status line), `body_bytes` the body bytes sent, `encoding` the Content-Encoding
    ("" or "identity" for none), `seconds` from the request's head to the answer's end.

    A worker calls it once per request. With metrics off it returns at once.
    """
    recorder = _recorder
    if recorder is not None:
        recorder.observe(where, status, body_bytes, encoding, seconds)


def dropped_log_lines(count: int) -> None:
    """Count access log lines the log's output did not take (server/accesslog.py)."""
    recorder = _recorder
    if recorder is not None:
        recorder.dropped_log_lines.inc(count)


class ObservedApp:
    """The ASGI front with each HTTP request it answers recorded by `observe`.

    `servestatic serve` puts it around the front only when metrics are on, so
    that with them off a request for the app costs nothing more. Static hits
    answered in the event loop are recorded by the worker itself.
    """

    def __init__(self, front: ASGIApp):
        self.front = front
        self.static = front.static  # what the worker reads of the app it serves

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.front(scope, receive, send)
            return
        started = time.monotonic()
        answer: dict[str, Any] = {"status": 500, "sent": 0, "encoding": ""}

        async def counting_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["encoding"] = next((value.decode("latin-1") for name, value in message["headers"]
                                           if name.lower() == b"content-encoding"), "")
            elif message["type"] == "http.response.body":
                answer["sent"] += len(message.get("body", b""))
            await send(message)

        path = scope_path(scope)
        route = self.static.route(path, scope["method"])
        try:
            await self.front.http(path, route, scope, receive, counting_send)
        finally:
            observe(route, answer["status"], answer["sent"], answer["encoding"], time.monotonic() - started)


# --- the master's side -------------------------------------------------------------


def parse_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def overlaps_public(address: str, binds: Iterable[str]) -> str | None:
    """The public bind address that `address` would collide with, if any."""
    host, port = parse_address(address)
    wildcard = {"", "0.0.0.0", "::"}
    for bind in binds:
        if bind.startswith(("unix:", "fd://")):
            continue
        public_host, public_port = parse_address(bind if ":" in bind else bind + ":8000")
        if public_port == port and (host == public_host or host in wildcard or public_host in wildcard):
            return bind
    return None


def start(address: str, config: Any) -> None:
    """Turn metrics on: the listener, the multiprocess directory, the recorder, the hooks.

    Runs in the master before the app is imported (so an app that uses prometheus_client
    gets multiprocess mode too) and before gunicorn forks. Raises MetricsError.
    """
    global _recorder, _listener
    _listener = listen(address)
    multiprocess_directory()
    _recorder = Recorder()
    serve_in_thread(_listener)

    their_post_worker_init = config.post_worker_init
    their_child_exit = config.child_exit

    def post_worker_init(worker: Any) -> None:
        worker_started(worker)
        their_post_worker_init(worker)

    def child_exit(server: Any, worker: Any) -> None:
        worker_exited(server, worker)
        their_child_exit(server, worker)

    config.set("post_worker_init", post_worker_init)
    config.set("child_exit", child_exit)


_listener: socket.socket | None = None


def multiprocess_directory() -> str:
    """PROMETHEUS_MULTIPROC_DIR: the operator's, or a fresh one removed when the master exits.

    prometheus_client picks multiprocess mode when it is imported, from this variable,
    so it is set here, before anything imports the library, and workers inherit it.
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
            raise MetricsError(f"PROMETHEUS_MULTIPROC_DIR: {directory} is not a writable directory")
        return directory
    parent = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # memory; a read-only root works
    directory = tempfile.mkdtemp(prefix="servestatic-metrics-", dir=parent)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    master = os.getpid()

    def remove() -> None:
        if os.getpid() == master:  # a worker that runs exit handlers must not remove it
            shutil.rmtree(directory, ignore_errors=True)

    atexit.register(remove)
    return directory


def listen(address: str) -> socket.socket:
    """The metrics socket, bound now so that an address in use stops start-up."""
    host, port = parse_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host or "0.0.0.0", port))
        listener.listen(64)
    except OSError as error:
        listener.close()
        raise MetricsError(f"SERVESTATIC_METRICS_BIND: cannot listen on {address}: "
                           f"{error.strerror or error}") from None
    return listener


def metrics_app() -> Callable[..., Iterable[bytes]]:
    """prometheus_client's WSGI exposition of every worker's files, at /metrics only."""
    from prometheus_client import CollectorRegistry, make_wsgi_app, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    exposition = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "10")])
            return [b"not found\n"]
        with _files_lock:
            return list(exposition(environ, start_response))

    return app


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every few seconds is not worth a log line


def serve_in_thread(listener: socket.socket) -> None:
    """prometheus_client's threading WSGI server, on the socket `listen` bound."""
    from prometheus_client.exposition import ThreadingWSGIServer

    host, port = listener.getsockname()[:2]
    server = ThreadingWSGIServer((host, port), QuietHandler, bind_and_activate=False)
    server.socket.close()
    server.socket = listener
    server.server_name, server.server_port = host, port
    server.setup_environ()
    server.set_app(metrics_app())
    threading.Thread(target=server.serve_forever, name="servestatic-metrics", daemon=True).start()


def worker_started(worker: Any) -> None:
    if _listener is not None:
        _listener.close()  # the master's; a worker only inherited it
    if _recorder is not None:
        _recorder.workers.set(1)


def worker_exited(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
    fold_into_archive(os.environ["PROMETHEUS_MULTIPROC_DIR"], worker.pid)
    if _recorder is not None:
        _recorder.worker_restarts.inc()


# Held while a scrape reads the files and while a dead worker's values move to the
# archive, so that no scrape sees them twice or not at all (a counter that went down
# would read as a reset).
_files_lock = threading.Lock()
_archives: dict[str, Any] = {}


def fold_into_archive(directory: str, pid: int) -> None:
    """Add a dead worker's counters and histograms to the master's archive files, then
    remove its files.

    prometheus_client keeps a dead process's files so that its counts stay in the
    sums; under worker recycling (max_requests) they would pile up, three 64 KiB files
    a worker life, in a /dev/shm that containers often cap at 64 MiB. The archive keeps
    the counts in one file per metric type. The collector reads `counter_archive.db`
    like any `counter_PID.db`: only the part before the first underscore says the type.
    """
    from prometheus_client.mmap_dict import MmapedDict

    with _files_lock:
        for kind in ("counter", "histogram"):
            dead = os.path.join(directory, f"{kind}_{pid}.db")
            if not os.path.exists(dead):
                continue
            archive = _archives.get(kind)
            if archive is None:
                archive = _archives[kind] = MmapedDict(os.path.join(directory, f"{kind}_archive.db"))
            for key, value, timestamp, _position in MmapedDict.read_all_values_from_file(dead):
                total, _ = archive.read_value(key)
                archive.write_value(key, total + value, timestamp)
            os.remove(dead)
