"""Mixed load on a running server whose every complete answer is checked, and whose
failures are kept with the worker they happened on, for the worker-kill, reload and
recycling tests (tests/test_reliability.py).

Each client thread opens keep-alive connections; the first request on each asks the
digest app (tests/support/digest_app.py) for its worker's pid, so every later failure
on that connection is known to belong to that worker. The requests mix small static
files, a 60 KiB and a 300 KiB file, a multi-MiB file, and app GETs and POSTs with a
100 KiB body. Every complete answer goes through the grammar model's `check`: a
static body must be the file on disk, an app answer the digest of what was sent. An
answer the connection cut short is a failure, not an answer, and is recorded as one.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from dataclasses import dataclass, field

from tests.support.grammar import GrammarSite, Planned, Reader, accepted, check, closes_connection

STATIC_MIX = ["/robots.txt", "/index.html", "/css/print.css", "/data/medium.txt", "/img/large.bin"]


@dataclass
class Failure:
    """A request that got no complete answer."""

    connection: int
    pid: int | None  # the worker the connection was on, when known
    started: float  # time.monotonic() when the request was sent
    opened: float  # when its connection was opened
    reused: bool  # the connection had answered a request before
    reason: str


@dataclass
class LoadRecord:
    answered: int = 0
    retried: int = 0  # requests retried once on a fresh connection (see `LoadClient.request`)
    failures: list[Failure] = field(default_factory=list)
    bad_answers: list[str] = field(default_factory=list)  # complete answers that were wrong
    pids_seen: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


class LoadClient:
    """Client threads putting mixed, checked load on a server until `stop()`."""

    def __init__(self, port: int, site: GrammarSite, threads: int = 6, seed: int = 0,
                 retry_idle_close: bool = False):
        self.port = port
        self.site = site
        self.record = LoadRecord()
        self.stopping = threading.Event()
        self.retry_idle_close = retry_idle_close
        self.connections = 0
        self.static = [url for url in STATIC_MIX if url in site.files]
        if "/img/huge.bin" in site.files:
            self.static.append("/img/huge.bin")
        self.threads = [threading.Thread(target=self._run, args=(random.Random(seed * 100 + n),), daemon=True)
                        for n in range(threads)]

    def start(self) -> LoadClient:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> LoadRecord:
        self.stopping.set()
        for thread in self.threads:
            thread.join(60)
        return self.record

    def _next_connection(self) -> int:
        with self.record.lock:
            self.connections += 1
            return self.connections

    def _plan(self, rng: random.Random, rid: str, whoami: bool) -> Planned:
        if whoami or rng.random() < 0.3:
            if not whoami and rng.random() < 0.4:
                body = rng.randbytes(100 * 1024)
                head = f"POST /api/load?rid={rid} HTTP/1.1\r\nHost: load\r\nContent-Length: {len(body)}\r\n"
                head += "\r\n"
                return Planned(head.encode() + body, "app-post", "POST", frozenset({200}), False, kind="app",
                               rid=rid, body=body)
            raw = f"GET /api/load?rid={rid} HTTP/1.1\r\nHost: load\r\n\r\n".encode()
            return Planned(raw, "app-get", "GET", frozenset({200}), False, kind="app", rid=rid)
        url = rng.choice(self.static)
        coding = rng.choice(["br, gzip", "gzip", "identity"])
        raw = f"GET {url} HTTP/1.1\r\nHost: load\r\nAccept-Encoding: {coding}\r\n\r\n".encode()
        return Planned(raw, "static", "GET", frozenset({200}), False, kind="static", url=url,
                       accepted_codings=accepted(coding))

    def _run(self, rng: random.Random) -> None:
        count = 0
        while not self.stopping.is_set():
            number = self._next_connection()
            opened = time.monotonic()
            pid: int | None = None
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=20)
            except OSError as error:
                self._fail(Failure(number, None, opened, opened, False, f"connect: {error!r}"))
                continue
            reader = Reader(sock)
            answered_here = 0
            try:
                for _ in range(rng.randint(1, 40)):
                    if self.stopping.is_set():
                        break
                    count += 1
                    planned = self._plan(rng, f"t{id(rng)}-{count}", whoami=answered_here == 0)
                    started = time.monotonic()
                    try:
                        sock.sendall(planned.raw)
                        answer = reader.answer(planned.method)
                    except OSError as error:
                        answer, reason = None, repr(error)
                    else:
                        reason = "the connection ended before an answer"
                    if answer is None or not answer.complete:
                        if answer is not None:
                            reason = f"cut: {answer.status} with {len(answer.body)} bytes of a body"
                        failure = Failure(number, pid, started, opened, answered_here > 0, reason)
                        if (self.retry_idle_close and answer is None and answered_here > 0
                                and self._retry(planned)):
                            with self.record.lock:
                                self.record.retried += 1
                        else:
                            self._fail(failure)
                        break
                    problems = check(planned, answer, self.site)
                    with self.record.lock:
                        self.record.answered += 1
                        self.record.bad_answers += [f"{planned.label} {planned.url or planned.rid}: {problem}"
                                                    for problem in problems]
                    if pid is None and planned.kind == "app" and not problems:
                        pid = json.loads(answer.body)["pid"]
                        with self.record.lock:
                            self.record.pids_seen.add(pid)
                    answered_here += 1
                    if closes_connection(answer, planned):
                        break
            finally:
                sock.close()

    def _retry(self, planned: Planned) -> bool:
        """What HTTP clients do when a kept-alive connection ends before any byte of an
        answer (RFC 9112 9.3.1: the server may close an idle connection at any time):
        send the request once more, on a fresh connection. True when that one is answered
        correctly."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=20) as sock:
                sock.sendall(planned.raw)
                answer = Reader(sock).answer(planned.method)
        except OSError:
            return False
        return answer is not None and answer.complete and not check(planned, answer, self.site)

    def _fail(self, failure: Failure) -> None:
        with self.record.lock:
            self.record.failures.append(failure)
