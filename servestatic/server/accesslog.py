"""The access log: one line per request, formatted from a few parts and written in batches.

gunicorn's logger builds a dictionary of some thirty atoms (every request and
response header, every environ key) for each line and passes it through
`logging`; for a small static file that cost about 40% of the request. Here a
line is formatted from the handful of values it shows, and lines are written
in batches by a thread of their own (`LineWriter`): thousands of requests cost
one write, no line waits much longer than a tenth of a second, and a stalled
output never blocks the event loop.

The text format is gunicorn's default (Apache's combined format without the
user), so tools that parse gunicorn's access log parse ours. `json` writes one
object per line with the same values. A gunicorn `access_log_format` set in a
gunicorn config file is honoured by handing such lines to gunicorn's own code.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from gunicorn.config import AccessLogFormat
from gunicorn.instrument.statsd import Statsd

from servestatic.server import metrics

# A str as a JSON string, as json.dumps(..., ensure_ascii=False) writes it.
_json_string = json.encoder.encode_basestring
_EMPTY, _DASH = _json_string(""), _json_string("-")  # the usual query, referer and agent
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# A line waits at most about this long to be written: the writer thread takes what has
# gathered, writes it in one go, and waits this long before the next batch.
FLUSH_AFTER = 0.1
# Lines waiting to be written: past this many (the log's output is stalled, e.g. a stdout
# pipe nobody reads), new lines are dropped and counted rather than held. At some 200 bytes
# a line, about 3 MiB. Half of it wakes the writer early, so a busy worker's lines are
# never dropped while its output takes them.
MAX_WAITING_LINES = 16384
_WRITE_EARLY = MAX_WAITING_LINES // 2
# A worker that exits waits at most this long for its last lines to be written.
EXIT_FLUSH_TIMEOUT = 2.0


class LineWriter:
    """Writes access-log lines to a logging handler's stream, in batches, from a thread
    of its own.

    Why a thread: a write to a pipe whose reader stalls (a log shipper that
    hangs, a terminal scrolled back) blocks, and a blocked event loop answers
    nobody. The thread may block; the loop only appends to a deque.

    Why batches on the thread's clock: a write per line was a system call per
    request; handing the thread every 256 lines (the first version) woke it a few
    hundred times a second on a busy worker, and each wake-up passed the GIL back
    and forth: a 304 cost 2-3 µs more than with the writes made in the loop. Here
    the thread wakes for the first line after a quiet spell, then takes whatever
    gathered every FLUSH_AFTER seconds (or sooner, at _WRITE_EARLY lines): some
    ten wake-ups a second however busy the worker is.

    Lines beyond MAX_WAITING_LINES are dropped and counted (`dropped_total`, and the
    servestatic_access_log_dropped_lines metric), and the thread says how many in one
    warning once its stream takes lines again. The stream is looked up on the handler
    at each write, under the handler's lock: gunicorn's SIGUSR1 (logrotate's
    postrotate) reopens a FileHandler's stream, and the lines after it go to the new
    file.
    """

    def __init__(self, handler: logging.StreamHandler[Any], on_drop: Callable[[int], None] | None = None,
                 warn: Callable[[str], None] | None = None):
        self.handler = handler
        self.on_drop = on_drop
        self.warn = warn
        self.pending: collections.deque[str] = collections.deque()
        self.condition = threading.Condition()
        self.idle = True  # the thread waits for a first line (or is not started): wake it
        self.thread: threading.Thread | None = None
        self.closing = False
        self.writing = 0  # lines in the write under way: they count as waiting until written
        self.dropped = 0  # since the last warning
        self.dropped_total = 0
        _writers.add(self)

    def put(self, line: str) -> None:
        """From any thread: queue a line for writing, or drop it when too many wait.

        The common case is an append and two comparisons: the thread is awake and
        takes the line with the rest of its batch. deque's append and popleft are
        safe between threads without a lock.
        """
        pending = self.pending
        waiting = len(pending)
        if waiting + self.writing >= MAX_WAITING_LINES:
            self._drop()
            return
        pending.append(line)
        if self.idle or waiting == _WRITE_EARLY:
            self._wake()

    def _wake(self) -> None:
        with self.condition:
            if self.thread is None:
                self.closing = False
                self.thread = threading.Thread(target=self._run, name="servestatic-access-log", daemon=True)
                self.thread.start()  # lazily, in the process that writes (a worker, not the master)
            self.condition.notify()

    def _drop(self) -> None:
        with self.condition:
            self.dropped += 1
            self.dropped_total += 1
        if self.on_drop is not None:
            self.on_drop(1)

    def _run(self) -> None:
        pending = self.pending
        condition = self.condition
        while True:
            with condition:
                # idle is set before pending is looked at, under the lock: a line appended
                # after the look finds idle set and notifies once this thread waits.
                self.idle = True
                while not pending and not self.closing:
                    condition.wait()
                self.idle = False
                if not pending:
                    return  # closing, and nothing left
                dropped, self.dropped = self.dropped, 0
            self.writing = len(pending)
            text = "".join([pending.popleft() for _ in range(self.writing)])
            self._write(text)
            self.writing = 0
            if dropped and self.warn is not None:
                self.warn(f"dropped {dropped} access log lines: the log's output was not "
                          f"taking them (more than {MAX_WAITING_LINES} waited)")
            with condition:
                if not self.closing:
                    condition.wait(FLUSH_AFTER)  # let a batch gather; close() ends the wait

    def _write(self, text: str) -> None:
        handler = self.handler
        handler.acquire()
        try:
            stream = handler.stream
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe must not fail requests
            pass
        finally:
            handler.release()

    def close(self, timeout: float = EXIT_FLUSH_TIMEOUT) -> None:
        """Write what waits, for at most `timeout` seconds (a stalled output holds no exit)."""
        thread = self.thread
        if thread is None:
            return
        with self.condition:
            self.closing = True
            self.condition.notify()
        thread.join(timeout)
        self.thread = None
        self.idle = True

    def _forget_thread(self) -> None:
        """In a child just forked: the parent's thread does not exist here, nor are its
        lines this process's to write."""
        self.thread = None
        self.idle = True
        self.closing = False
        self.pending.clear()
        self.condition = threading.Condition()


# Every LineWriter of this process, so that a forked worker starts its own threads.
_writers: weakref.WeakSet[LineWriter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for writer in list(_writers):
        writer._forget_thread()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Clock:
    """The `day/Mon/year:H:M:S +zone` stamp of both formats, made once a second."""

    def __init__(self) -> None:
        self.second = -1
        self.stamp = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self.second:
            self.second = second
            t = time.localtime(second)
            minutes = t.tm_gmtoff // 60
            zone = f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
            self.stamp = (f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon]}/{t.tm_year}:{t.tm_hour:02d}:"
                          f"{t.tm_min:02d}:{t.tm_sec:02d} {zone}")
        return self.stamp


class AccessLogger(Statsd):
    """gunicorn's logger with a cheap `access` (text) and a `line` entry for the worker.

    It is gunicorn's statsd logger, which gunicorn would pick by itself for a
    `statsd_host` were the logger class its default: without a host it sends
    nothing, with one (GUNICORN_CMD_ARGS="--statsd-host ...") every request is
    counted as gunicorn counts it, static hits answered in the loop included.
    """

    json_lines = False

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self.clock = Clock()
        self.writer: LineWriter | None = None
        # Only the default format is ours to make cheaply; a custom one is gunicorn's business.
        self.own_format = cfg.access_log_format == AccessLogFormat.default
        handlers = [h for h in self.access_log.handlers if isinstance(h, logging.StreamHandler)]
        if handlers and self._access_log_enabled:
            self.writer = LineWriter(handlers[0], metrics.dropped_log_lines, self.warning)

    def line(self, remote: str, method: str, uri: str, protocol: str, status: int | str, sent: int,
             referer: str | None, agent: str | None, seconds: float, path: str, query: str) -> None:
        """One request's line; `status` is the code (or the status line)."""
        code = str(status)[:3]
        if self.sock is not None:
            self.timer("gunicorn.request.duration", seconds * 1000)
            self.increment("gunicorn.requests", 1)
            self.increment(f"gunicorn.request.status.{code}", 1)
        writer = self.writer
        if writer is None:
            return
        if self.json_lines:
            # The object json.dumps would make, written out: the dict and the encoder's
            # machinery cost more than the rest of a static hit. Strings from the
            # request are quoted by the json module's own (C) string encoder (all
            # but the protocol, which the server makes from two numbers).
            quote = _json_string
            writer.put(f'{{"time": "{self.clock.now()}", "remote": {quote(remote)}, '
                       f'"method": {quote(method)}, "path": {quote(path)}, '
                       f'"query": {quote(query) if query else _EMPTY}, "protocol": "{protocol}", '
                       f'"status": {code}, "bytes": {sent}, "duration_ms": {seconds * 1000:.3f}, '
                       f'"referer": {quote(referer) if referer else _DASH}, '
                       f'"user_agent": {quote(agent) if agent else _DASH}}}\n')
        else:
            writer.put(f'{remote} - - [{self.clock.now()}] "{method} {uri} {protocol}" {code} '
                       f'{sent if sent else "-"} "{referer or "-"}" "{agent or "-"}"\n')

    def flush_lines(self) -> None:
        """Write the lines still waiting, within EXIT_FLUSH_TIMEOUT (the worker calls this
        as it exits)."""
        if self.writer is not None:
            self.writer.close()

    @property
    def access_log_enabled(self) -> bool:
        """Also with the log off when statsd is on: gunicorn then still reports each request."""
        return super().access_log_enabled or getattr(self, "sock", None) is not None

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        """gunicorn's entry point (the ASGI path); the same line as `line` makes."""
        if not self.own_format:
            super().access(resp, req, environ, request_time)
            return
        try:
            sent = getattr(resp, "sent", None) or 0
            self.line(environ.get("REMOTE_ADDR", "-"), environ["REQUEST_METHOD"], environ["RAW_URI"],
                      environ["SERVER_PROTOCOL"], resp.status, sent, environ.get("HTTP_REFERER"),
                      environ.get("HTTP_USER_AGENT"), request_time.seconds + request_time.microseconds / 1e6,
                      environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""))
        except Exception:  # a log line must never fail a request
            self.exception("cannot write access log line")


class JsonAccessLogger(AccessLogger):
    """One JSON object per line: a User-Agent with a quote cannot break it."""

    json_lines = True


def gunicorn_line(log: Any) -> Any:
    """A `line` for a logger that is not ours, or a custom access_log_format: gunicorn's
    `access` with the request, response and environ it expects (slower, but honoured)."""

    def line(remote: str, method: str, uri: str, protocol: str, status: int | str, sent: int,
             referer: str | None, agent: str | None, seconds: float, path: str, query: str) -> None:
        environ = {"REMOTE_ADDR": remote, "REQUEST_METHOD": method, "RAW_URI": uri,
                   "SERVER_PROTOCOL": protocol, "PATH_INFO": path, "QUERY_STRING": query}
        headers = []
        if referer is not None:
            environ["HTTP_REFERER"] = referer
            headers.append(("REFERER", referer))
        if agent is not None:
            environ["HTTP_USER_AGENT"] = agent
            headers.append(("USER-AGENT", agent))
        response = SimpleNamespace(status=status, sent=sent, headers=[])
        request = SimpleNamespace(headers=headers)
        try:
            log.access(response, request, environ, timedelta(seconds=seconds))
        except Exception:  # a log line must never fail a request
            log.exception("cannot write access log line")

    return line
