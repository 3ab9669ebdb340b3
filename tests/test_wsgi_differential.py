"""A WSGI app gets from servestatic what plain gunicorn gives it (issue 20).

The apps of tests/apps/wsgi_cases.py run under gunicorn's own `sync` and `gthread`
workers and under `servestatic serve` (SERVESTATIC_APP: the WSGI bridge,
servestatic/fronts/wsgibridge.py). Each request goes as raw bytes on a socket; the
answers are compared: status line, headers (less Date and Server), body, whether the
body was complete, and how many times the app's close() ran (the apps append a line per
close() to a log file, which works across processes).

What differs for a reason, and is normalised here rather than ignored:

- header names: gunicorn's ASGI protocol sends them in lower case, its WSGI workers as
  the app wrote them; names are compared lower-cased;
- order: the WSGI workers write Connection and Transfer-Encoding before the app's
  headers, the ASGI protocol after; those two are compared by value, the app's headers
  in their order; a kept-alive HTTP/1.1 answer says `Connection: keep-alive` under the
  WSGI workers and nothing under the ASGI protocol (the same thing in HTTP/1.1);
- chunk sizes: the body of a chunked answer is compared decoded;
- start_response(..., exc_info) before anything was sent: PEP 3333 says the new status
  and headers replace the first ones, but gunicorn's Response.process_headers appends,
  so gunicorn sends the first call's headers too (a Content-Type twice). The bridge
  replaces, as PEP 3333 says; the first call's headers are taken out of gunicorn's answer.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.apps.wsgi_cases import FIRST_CALL
from tests.support import REPO
from tests.support.server import ServerProcess

APP = "tests.apps.wsgi_cases:application"
FILE_SIZE = 3 * 1024 * 1024 + 5
FRAMING = ("connection", "transfer-encoding")
IGNORED = ("date", "server")  # each server's own; the issue compares everything else


@dataclass
class Answer:
    status_line: str
    headers: list[tuple[str, str]]
    body: bytes
    complete: bool  # the body's framing ended it (not a connection closed early)

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)

    def compared(self) -> tuple[str, list[tuple[str, str]], dict[str, str | None], bytes, bool]:
        """The answer as the test compares it (see the module docstring)."""
        app_headers = [(key, value) for key, value in self.headers if key not in FRAMING + IGNORED]
        framing = {key: self.header(key) for key in FRAMING}
        if framing["connection"] is None and self.status_line.startswith("HTTP/1.1 "):
            framing["connection"] = "keep-alive"  # HTTP/1.1's default, which gunicorn's WSGI says
        return self.status_line, app_headers, framing, self.body, self.complete


def parse(data: bytes, method: str) -> tuple[Answer, bytes]:
    """One answer from the start of `data` (what a connection sent until it closed), and the rest."""
    head, separator, rest = data.partition(b"\r\n\r\n")
    assert separator, f"no complete head in {data[:300]!r}"
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = [(name.strip().lower(), value.strip())
               for name, value in (line.split(":", 1) for line in lines)]
    answer = Answer(status_line, headers, b"", True)
    code = int(status_line.split(" ")[1])
    if method == "HEAD" or code in (204, 304) or 100 <= code < 200:
        return answer, rest
    if answer.header("transfer-encoding") == "chunked":
        body = []
        while True:
            size_line, separator, after = rest.partition(b"\r\n")
            if not separator:
                answer.complete = False
                break
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                rest = after[2:]  # the final CRLF (no trailers here)
                break
            if len(after) < size + 2:
                body.append(after[:size])
                answer.complete = False
                rest = b""
                break
            body.append(after[:size])
            rest = after[size + 2:]
        answer.body = b"".join(body)
        return answer, rest
    length = answer.header("content-length")
    if length is None:
        answer.body = rest
        return answer, b""
    answer.body = rest[:int(length)]
    answer.complete = len(answer.body) == int(length)
    return answer, rest[int(length):]


def exchange(port: int, raw: bytes, timeout: float = 20.0) -> bytes:
    """Send raw bytes, read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        chunks = []
        while True:
            try:
                chunk = sock.recv(1 << 20)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def request_bytes(method: str, target: str, headers: dict[str, str] | None = None,
                  body: bytes | list[bytes] = b"", close: bool = True) -> bytes:
    """A request as written; a list body is sent chunked, one chunk per item."""
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if isinstance(body, list):
        lines.append("Transfer-Encoding: chunked")
        payload = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in body) + b"0\r\n\r\n"
    else:
        if body:
            lines.append(f"Content-Length: {len(body)}")
        payload = body
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


class Gunicorn(ServerProcess):
    """Plain gunicorn from the venv running the cases app, with a worker class."""

    def __init__(self, worker: str, env: dict[str, str]):
        super().__init__(None, env=env)
        gunicorn = Path(sys.executable).parent / "gunicorn"
        self.args = [str(gunicorn), "--bind", f"127.0.0.1:{self.port}", "--workers", "1",
                     "--worker-class", worker, *(["--threads", "4"] if worker == "gthread" else []),
                     "--timeout", "30", APP]
        self.cwd = REPO

    name = "gunicorn"

    def ready_path(self) -> str:
        return "/hello"


@dataclass
class Servers:
    log: Path
    file: Path
    running: dict[str, ServerProcess]

    def closes(self, token: str) -> int:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return sum(1 for line in lines if line == f"{token} close")

    def lines(self, token: str) -> list[str]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [line.partition(" ")[2] for line in lines if line.partition(" ")[0] == token]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    where = tmp_path_factory.mktemp("wsgi-cases")
    root = where / "root"
    root.mkdir()
    (root / "index.html").write_text("<p>static</p>\n")
    data = where / "data.bin"
    data.write_bytes(os.urandom(FILE_SIZE))
    env = {"WSGI_CASES_LOG": str(where / "closes.log"), "WSGI_CASES_FILE": str(data)}
    running: dict[str, ServerProcess] = {}
    try:
        running["sync"] = Gunicorn("sync", env).start()
        running["gthread"] = Gunicorn("gthread", env).start()
        running["servestatic"] = ServerProcess(root, env={**env, "SERVESTATIC_APP": APP},
                                               cwd=REPO).start()
        yield Servers(where / "closes.log", data, running)
    finally:
        codes = {name: server.stop() for name, server in running.items()}
    assert codes == dict.fromkeys(running, 0), {name: running[name].log()[-3000:] for name in running}


CASES = [
    ("GET", "/hello", {}, b""),
    ("HEAD", "/hello", {}, b""),
    ("GET", "/write", {}, b""),
    ("HEAD", "/write", {}, b""),
    ("GET", "/write-only", {}, b""),
    ("GET", "/exc-info-before", {}, b""),
    ("GET", "/exc-info-after", {}, b""),
    ("GET", "/raise-before", {}, b""),
    ("GET", "/raise-after", {}, b""),
    ("GET", "/raise-in-app", {}, b""),
    ("GET", "/two-start-responses", {}, b""),
    ("GET", "/empty", {}, b""),
    ("GET", "/empty-blocks", {}, b""),
    ("GET", "/no-content", {}, b""),
    ("GET", "/blocks", {}, b""),
    ("HEAD", "/blocks", {}, b""),
    ("GET", "/file", {}, b""),
    ("HEAD", "/file", {}, b""),
    ("GET", "/hop-by-hop", {}, b""),
    ("GET", "/early-hints", {}, b""),
    ("POST", "/upload", {"Content-Type": "application/octet-stream"}, b"small body"),
    ("POST", "/upload", {}, os.urandom(1024 * 1024 + 7)),  # over the bridge's buffered size
    ("POST", "/upload", {}, [os.urandom(100_000), os.urandom(300_000), b"end"]),  # chunked
]


def without_first_call(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """gunicorn's headers less those of the first start_response, which it keeps (see the
    module docstring): the first occurrence of each."""
    left = list(headers)
    for name, value in FIRST_CALL:
        left.remove((name.lower(), value))
    return left


def case_id(case: tuple) -> str:
    method, path, _, body = case
    kind = "chunked" if isinstance(body, list) else f"{len(body)}" if body else ""
    return f"{method}-{path.strip('/')}{'-' + kind if kind else ''}"


@pytest.mark.parametrize("case", CASES, ids=[case_id(case) for case in CASES])
def test_the_same_answer_and_closes_as_gunicorn(servers: Servers, case: tuple) -> None:
    method, path, headers, body = case
    answers = {}
    closes = {}
    interims: dict[str, list[object]] = {}
    for name, server in servers.running.items():
        token = f"t={name}-{case_id(case)}-{time.monotonic_ns()}"
        raw = exchange(server.port, request_bytes(method, f"{path}?{token}", headers, body))
        answer, rest = parse(raw, method)
        interim = []  # 1xx answers before the final one (wsgi.early_hints)
        while answer.status_line.split(" ")[1].startswith("1"):
            interim.append(answer.compared())
            answer, rest = parse(rest, method)
        assert rest == b"", f"{name}: bytes after the answer: {rest[:200]!r}"
        interims[name] = interim
        if path == "/exc-info-before" and name != "servestatic":
            answer.headers = without_first_call(answer.headers)
        answers[name] = answer
        closes[name] = servers.closes(token)
    for name in ("gthread", "servestatic"):
        assert answers[name].compared() == answers["sync"].compared(), name
        assert interims[name] == interims["sync"], name
        assert closes[name] == closes["sync"], (name, closes)


def test_the_cases_say_what_the_issue_says(servers: Servers) -> None:
    """The figures the issue names, so the differential cannot pass by both being wrong."""
    port = servers.running["sync"].port
    write, _ = parse(exchange(port, request_bytes("GET", "/write?x")), "GET")
    assert write.body == b"ABCD"
    page, _ = parse(exchange(port, request_bytes("GET", "/exc-info-before?x")), "GET")
    assert page.status_line == "HTTP/1.1 500 Internal Server Error" and page.body == b"our own error page\n"
    assert ("x-first-call", "replaced") in page.headers  # what without_first_call takes out
    token = f"t=sanity-{time.monotonic_ns()}"
    exchange(port, request_bytes("GET", f"/write?{token}"))
    assert servers.closes(token) == 1
    data, _ = parse(exchange(port, request_bytes("GET", "/file?x")), "GET")
    assert data.body == servers.file.read_bytes()
    hint, rest = parse(exchange(port, request_bytes("GET", "/early-hints?x")), "GET")
    assert hint.status_line == "HTTP/1.1 103 Early Hints"
    assert hint.headers == [("link", "</style.css>; rel=preload; as=style")]
    second, rest = parse(rest, "GET")
    assert ("x-hint", "second") in second.headers
    page, _ = parse(rest, "GET")
    assert page.status_line == "HTTP/1.1 200 OK" and page.body == b"page body\n"


def test_keep_alive_answers_like_gthread(servers: Servers) -> None:
    """Three requests on one connection (gthread keeps it alive, sync does not)."""
    raw = (request_bytes("GET", "/write?k", close=False) + request_bytes("GET", "/blocks?k", close=False)
           + request_bytes("GET", "/exc-info-before?k"))
    answers = {}
    for name in ("gthread", "servestatic"):
        data = exchange(servers.running[name].port, raw)
        answers[name] = []
        for _ in range(3):
            answer, data = parse(data, "GET")
            if answer.status_line.startswith("HTTP/1.1 500") and name == "gthread":
                answer.headers = without_first_call(answer.headers)
            answers[name].append(answer.compared())
        assert data == b""
    assert answers["servestatic"] == answers["gthread"]


def wait_for(condition: object, timeout: float = 15.0) -> bool:
    """Poll a condition with a deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_a_file_wrapper_is_read_in_large_blocks(servers: Servers) -> None:
    """wsgi.file_wrapper: gunicorn uses sendfile (no read at all); the bridge reads 1 MiB at a
    time, not the app's 4096-byte block_size (a pool hop each)."""
    reads = {}
    for name in ("sync", "servestatic"):
        token = f"t=reads-{name}-{time.monotonic_ns()}"
        answer, _ = parse(exchange(servers.running[name].port, request_bytes("GET", f"/file?{token}")), "GET")
        assert answer.body == servers.file.read_bytes()
        reads[name] = next(int(line.split()[1]) for line in servers.lines(token) if line.startswith("reads"))
    assert reads["sync"] == 0
    assert 0 < reads["servestatic"] <= FILE_SIZE // (1024 * 1024) + 2, reads


@pytest.mark.parametrize("name", ["sync", "servestatic"])
def test_close_runs_when_the_client_goes_while_the_app_runs(tmp_path: Path, name: str) -> None:
    """The client leaves while the app is in its thread; gunicorn's protocol then cancels
    the request's task (at once, with a grace period of 0): close() still runs, once,
    after the app's step returns."""
    env = {"WSGI_CASES_LOG": str(tmp_path / "closes.log"), "WSGI_CASES_FILE": __file__}
    if name == "sync":
        server: ServerProcess = Gunicorn("sync", env)
    else:
        server = ServerProcess(tmp_path, cwd=REPO, env={
            **env, "SERVESTATIC_APP": APP, "GUNICORN_CMD_ARGS": "--asgi-disconnect-grace-period 0"})
    servers = Servers(tmp_path / "closes.log", tmp_path, {name: server.start()})
    try:
        token = f"t=gone-{name}"
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(request_bytes("GET", f"/slow-start?{token}", {"X-Sleep": "1.5"}, close=False))
            time.sleep(0.3)  # the app is in its sleep: not a readiness guess, the case itself
        assert wait_for(lambda: servers.closes(token) >= 1), server.log()[-3000:]
        # And once only: another request through the same worker comes after it.
        exchange(server.port, request_bytes("GET", "/hello?after"))
        assert servers.closes(token) == 1
    finally:
        assert server.stop() == 0, server.log()[-3000:]


def test_a_request_body_that_stops_coming_raises_in_the_app(tmp_path: Path) -> None:
    """A client that sends part of a streamed body and then nothing: wsgi.input raises an
    OSError after the worker's timeout (SERVESTATIC_TIMEOUT), as gunicorn's workers raise
    socket.timeout, instead of handing the app a short body as if it were whole; the app's
    error is then gunicorn's 500 page."""
    env = {"WSGI_CASES_LOG": str(tmp_path / "closes.log"), "WSGI_CASES_FILE": __file__,
           "SERVESTATIC_APP": APP, "SERVESTATIC_TIMEOUT": "2"}
    server = ServerProcess(tmp_path, cwd=REPO, env=env).start()
    servers = Servers(tmp_path / "closes.log", tmp_path, {"servestatic": server})
    try:
        token = "t=stalled"
        head = request_bytes("POST", f"/upload?{token}", {"Content-Length": str(1024 * 1024)}, close=False)
        with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
            sock.sendall(head + b"x" * 100_000)
            started = time.monotonic()
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            waited = time.monotonic() - started
        assert servers.lines(token) == ["input-error RequestBodyError"]
        answer, _ = parse(data, "POST")
        assert answer.status_line == "HTTP/1.1 500 Internal Server Error"
        assert 1.5 < waited < 10
    finally:
        assert server.stop() == 0, server.log()[-3000:]


def test_the_pool_holds_at_most_two_steps_per_thread() -> None:
    """In process: with one thread, a blocked app and ten requests, two steps are in the pool
    (one running, one queued) and eight requests wait in the loop; one cancelled while waiting
    leaves the line, and every other one is answered once the app is unblocked."""
    import asyncio
    import threading

    from servestatic.fronts.wsgibridge import WSGIBridge

    gate = threading.Event()

    def app(environ: dict, start_response: object) -> list[bytes]:
        gate.wait(10)
        start_response("200 OK", [("Content-Length", "2")])  # type: ignore[operator]
        return [b"ok"]

    scope = {"type": "http", "method": "GET", "path": "/", "raw_path": b"/", "query_string": b"",
             "headers": [], "http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 80),
             "client": ("127.0.0.1", 1), "root_path": ""}

    async def run() -> None:
        bridge = WSGIBridge(app, 1)
        bodies: list[bytes] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.body":
                bodies.append(message["body"])

        tasks = [asyncio.create_task(bridge(scope, receive, send)) for _ in range(10)]
        while len(bridge.waiters) < 8:
            await asyncio.sleep(0.01)
        assert bridge.busy == 2 and bridge.pool is not None
        assert bridge.pool.steps.qsize() <= 1
        tasks[5].cancel()
        await asyncio.sleep(0)
        gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert sum(isinstance(result, asyncio.CancelledError) for result in results) == 1
        assert bodies == [b"ok"] * 9
        assert bridge.busy == 0 and not bridge.waiters

    asyncio.run(run())


def test_a_step_cancelled_in_the_pool_never_runs_and_one_cancelled_running_still_closes() -> None:
    """In process, the pool of fronts/steppool.py with one thread: the running step's request
    is cancelled (its close() still runs, after the step) and the queued step's request is
    cancelled before its thread took it (the app is never called for it); both slots come back."""
    import asyncio
    import threading

    from servestatic.fronts.wsgibridge import WSGIBridge

    gate = threading.Event()
    called: list[str] = []
    closed: list[str] = []

    class Body(list):
        def close(self) -> None:
            closed.append(self[0].decode())

    def app(environ: dict, start_response: object) -> list[bytes]:
        called.append(environ["PATH_INFO"])
        gate.wait(10)
        start_response("200 OK", [("Content-Length", "1")])  # type: ignore[operator]
        return Body([environ["PATH_INFO"][1:].encode()])

    def scope(path: str) -> dict:
        return {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b"",
                "headers": [], "http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 80),
                "client": ("127.0.0.1", 1), "root_path": ""}

    async def run() -> None:
        bridge = WSGIBridge(app, 1)

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            pass

        running = asyncio.create_task(bridge(scope("/a"), receive, send))
        queued = asyncio.create_task(bridge(scope("/b"), receive, send))
        while not called or bridge.busy < 2:
            await asyncio.sleep(0.01)
        running.cancel()
        queued.cancel()
        await asyncio.gather(running, queued, return_exceptions=True)
        assert bridge.busy == 1  # the queued step gave its slot back; the running one holds its own
        gate.set()
        while bridge.busy:
            await asyncio.sleep(0.01)
        while not closed:
            await asyncio.sleep(0.01)
        assert called == ["/a"] and closed == ["a"]

    asyncio.run(run())
