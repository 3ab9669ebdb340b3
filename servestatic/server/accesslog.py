"""The access log: one line per request, formatted from a few parts and written in batches.

gunicorn's logger builds a dictionary of some thirty atoms (every request and
response header, every environ key) for each line and passes it through
`logging`; for a small static file that cost about 40% of the request. Here a
line is formatted from the handful of values it shows, and lines are gathered
and written in batches (`LineBuffer`): hundreds of requests cost one write,
and no line waits longer than a tenth of a second.

The text format is gunicorn's default (Apache's combined format without the
user), so tools that parse gunicorn's access log parse ours. `json` writes one
object per line with the same values. A gunicorn `access_log_format` set in a
gunicorn config file is honoured by handing such lines to gunicorn's own code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
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


# A line waits at most this long for the next write, and at most this many wait.
FLUSH_AFTER = 0.1
FLUSH_LINES = 256
# Lines handed to the writer thread and not yet written: past this many (the log's
# output is stalled, e.g. a stdout pipe nobody reads), new lines are dropped and
# counted rather than held. At some 200 bytes a line, about 3 MiB.
MAX_WAITING_LINES = 16384
# A worker that exits waits at most this long for its last lines to be written.
EXIT_FLUSH_TIMEOUT = 2.0


class LineBuffer:
    """Lines gathered in the event loop and handed, in batches, to a `LineWriter`: when
    FLUSH_LINES are waiting, FLUSH_AFTER seconds after the first of them, and when the
    worker exits.

    A write per line, or per turn of a busy event loop, was a system call for
    every request or two; batched, it is a few hundred lines a write. The price
    is that a line appears up to FLUSH_AFTER late, and that a worker killed
    outright (SIGKILL, an out-of-memory kill) loses what it had not written.
    """

    def __init__(self, writer: LineWriter):
        self.writer = writer
        self.lines: list[str] = []
        self.timer: asyncio.TimerHandle | None = None

    def add(self, line: str) -> None:
        lines = self.lines
        if not lines:
            try:
                self.timer = asyncio.get_running_loop().call_later(FLUSH_AFTER, self.flush)
            except RuntimeError:  # no loop here (the master, a thread): hand it over at once
                self.writer.put([line])
                return
        lines.append(line)
        if len(lines) >= FLUSH_LINES:
            self.flush()

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        lines, self.lines = self.lines, []
        if lines:
            self.writer.put(lines)


class LineWriter:
    """Writes batches of lines to a logging handler's stream from a thread of its own.

    Why a thread: a write to a pipe whose reader stalls (a log shipper that
    hangs, a terminal scrolled back) blocks, and a blocked event loop answers
    nobody. The thread may block; the loop only appends to a list. Lines beyond
    MAX_WAITING_LINES are dropped and counted (`dropped`, and the
    servestatic_access_log_dropped_lines metric), and the thread says how many
    in one warning once its stream takes lines again.

    The stream is looked up on the handler at each write, under the handler's
    lock: gunicorn's SIGUSR1 (logrotate's postrotate) reopens a FileHandler's
    stream, and the lines after it go to the new file.
    """

    def __init__(self, handler: logging.StreamHandler[Any], on_drop: Callable[[int], None] | None = None,
                 warn: Callable[[str], None] | None = None):
        self.handler = handler
        self.on_drop = on_drop
        self.warn = warn
        self.batches: list[list[str]] = []
        self.waiting = 0
        self.dropped = 0  # since the last warning
        self.dropped_total = 0
        self.condition = threading.Condition()
        self.thread: threading.Thread | None = None
        self.pid = 0
        self.closing = False

    def put(self, lines: list[str]) -> None:
        """From any thread: queue lines for writing, or drop them when too many wait."""
        with self.condition:
            if self.waiting + len(lines) > MAX_WAITING_LINES:
                self.dropped += len(lines)
                self.dropped_total += len(lines)
                dropped = len(lines)
            else:
                dropped = 0
                self.batches.append(lines)
                self.waiting += len(lines)
                if self.thread is None or self.pid != os.getpid():
                    self._start()  # lazily, in the process that writes (a worker, not the master)
                self.condition.notify()
        if dropped and self.on_drop is not None:
            self.on_drop(dropped)

    def _start(self) -> None:
        self.pid = os.getpid()
        self.closing = False
        self.thread = threading.Thread(target=self._run, name="servestatic-access-log", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            with self.condition:
                while not self.batches and not self.closing:
                    self.condition.wait()
                if not self.batches:
                    return
                batches, self.batches = self.batches, []
                self.waiting = 0
                dropped, self.dropped = self.dropped, 0
            text = "".join(line for batch in batches for line in batch)
            self._write(text)
            if dropped and self.warn is not None:
                self.warn(f"dropped {dropped} access log lines: the log's output was not "
                          f"taking them (more than {MAX_WAITING_LINES} waited)")

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
        if thread is None or self.pid != os.getpid():
            return
        with self.condition:
            self.closing = True
            self.condition.notify()
        thread.join(timeout)
        self.thread = None


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
        self.buffer: LineBuffer | None = None
        # Only the default format is ours to make cheaply; a custom one is gunicorn's business.
        self.own_format = cfg.access_log_format == AccessLogFormat.default
        handlers = [h for h in self.access_log.handlers if isinstance(h, logging.StreamHandler)]
        if handlers and self._access_log_enabled:
            self.buffer = LineBuffer(LineWriter(handlers[0], metrics.dropped_log_lines, self.warning))

    def line(self, remote: str, method: str, uri: str, protocol: str, status: int | str, sent: int,
             referer: str | None, agent: str | None, seconds: float, path: str, query: str) -> None:
        """One request's line; `status` is the code (or the status line)."""
        code = str(status)[:3]
        if self.sock is not None:
            self.timer("gunicorn.request.duration", seconds * 1000)
            self.increment("gunicorn.requests", 1)
            self.increment(f"gunicorn.request.status.{code}", 1)
        buffer = self.buffer
        if buffer is None:
            return
        if self.json_lines:
            # The object json.dumps would make, written out: the dict and the encoder's
            # machinery cost more than the rest of a static hit. Strings from the
            # request are quoted by the json module's own (C) string encoder (all
            # but the protocol, which the server makes from two numbers).
            quote = _json_string
            buffer.add(f'{{"time": "{self.clock.now()}", "remote": {quote(remote)}, '
                       f'"method": {quote(method)}, "path": {quote(path)}, '
                       f'"query": {quote(query) if query else _EMPTY}, "protocol": "{protocol}", '
                       f'"status": {code}, "bytes": {sent}, "duration_ms": {seconds * 1000:.3f}, '
                       f'"referer": {quote(referer) if referer else _DASH}, '
                       f'"user_agent": {quote(agent) if agent else _DASH}}}\n')
        else:
            buffer.add(f'{remote} - - [{self.clock.now()}] "{method} {uri} {protocol}" {code} '
                       f'{sent if sent else "-"} "{referer or "-"}" "{agent or "-"}"\n')

    def flush_lines(self) -> None:
        """Write the lines still waiting, within EXIT_FLUSH_TIMEOUT (the worker calls this
        as it exits)."""
        if self.buffer is not None:
            self.buffer.flush()
            self.buffer.writer.close()

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
