"""Reliability under hostile or unlucky conditions, against a real `servestatic serve`.

Symlinks and files changed after start-up, slow and idle clients, shutdown
while requests are in flight, a worker killed outright, and start-up errors.
Every wait is a poll for a condition with a deadline; the only sleep is in the
test app below, where it stands for a slow view that shutdown must let finish.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import REPO, wait_for
from tests.support.cli import SERVESTATIC, compress
from tests.support.http import read_response
from tests.support.server import ServerProcess, worker_pids

CANARY = b"CANARY-outside-the-root-6f1d2c"
PLAIN_ASGI = "tests.apps.plain_asgi:app"


def raw_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """One GET on a fresh connection; (status, body). Raises OSError as the socket does."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as client:
        client.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := client.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the root holding a canary file that must never be served."""
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "secret.txt").write_bytes(CANARY * 20)
    (directory / "secret.css").write_bytes(CANARY * 20)
    return directory


def same_size_canary(size: int) -> bytes:
    return (CANARY * (size // len(CANARY) + 1))[:size]


# --- symlinks and files that change under a running server


def test_symlink_leaving_the_root_before_compress_is_never_served(site: Path, outside: Path) -> None:
    (site / "leak.txt").symlink_to(outside / "secret.txt")
    (site / "leakdir").symlink_to(outside, target_is_directory=True)
    compress(site)
    with ServerProcess(site) as server:
        for path in ("/leak.txt", "/leakdir/secret.txt", "/leakdir/"):
            response = httpx.get(server.url + path, headers={"Accept-Encoding": "br, gzip"})
            assert response.status_code == 404, path
            assert CANARY not in response.content
        assert not (site / "leak.txt.br").exists()


def test_served_file_replaced_by_outward_symlink_after_start_is_not_followed(
    site: Path, outside: Path
) -> None:
    compress(site)
    with ServerProcess(site) as server:
        assert httpx.get(server.url + "/css/print.css").status_code == 200
        # Replace the file, then its brotli variant, with links out of the root
        # to files of the same sizes, so that only the path can give them away.
        (outside / "secret.css").write_bytes(same_size_canary((site / "css/print.css").stat().st_size))
        (outside / "secret.txt").write_bytes(same_size_canary((site / "css/print.css.br").stat().st_size))
        (site / "css/print.css").unlink()
        (site / "css/print.css").symlink_to(outside / "secret.css")
        (site / "css/print.css.br").unlink()
        (site / "css/print.css.br").symlink_to(outside / "secret.txt")
        # And a whole directory: the link is in the middle of the path.
        (site / "data").rename(site.parent / "data-moved")
        (site / "data").symlink_to(outside, target_is_directory=True)
        size = (site.parent / "data-moved/feed.json").stat().st_size
        (outside / "feed.json").write_bytes(same_size_canary(size))
        for path, coding in [("/css/print.css", "identity"), ("/css/print.css", "br"),
                             ("/data/feed.json", "identity")]:
            response = httpx.get(server.url + path, headers={"Accept-Encoding": coding})
            assert CANARY not in response.content, (path, coding)
            assert response.status_code == 404, (path, coding)
        assert httpx.get(server.url + "/index.html").status_code == 200


def test_a_kept_small_file_rewritten_in_place_is_read_again(site: Path) -> None:
    """A small file's bytes are kept after its first request (core/smallfiles.py); the
    same file rewritten with other bytes of the same size is served as it is now, whole
    and by range, as before the bytes were kept (its lstat's modification time moved)."""
    compress(site)
    path = site / "css/print.css"
    first = path.read_bytes()
    with ServerProcess(site) as server:
        identity = {"Accept-Encoding": "identity"}
        assert httpx.get(server.url + "/css/print.css", headers=identity).content == first
        assert httpx.get(server.url + "/css/print.css", headers=identity).content == first  # kept
        second = bytes(reversed(first))
        assert second != first
        stat = path.stat()
        path.write_bytes(second)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # however coarse the clock
        assert httpx.get(server.url + "/css/print.css", headers=identity).content == second
        ranged = httpx.get(server.url + "/css/print.css", headers={**identity, "Range": "bytes=2-9"})
        assert ranged.status_code == 206
        assert ranged.content == second[2:10]


def test_symlink_inside_the_root_still_works(site: Path) -> None:
    (site / "latest.css").symlink_to("css/print.css")
    compress(site)
    with ServerProcess(site) as server:
        response = httpx.get(server.url + "/latest.css")
        assert response.status_code == 200
        assert response.content == (site / "css/print.css").read_bytes()


def test_file_removed_after_start_is_404_and_the_worker_survives(site: Path) -> None:
    compress(site)
    with ServerProcess(site) as server:
        workers = worker_pids(server)
        for name in ("css/print.css", "css/print.css.br", "css/print.css.gz"):
            (site / name).unlink()
        for coding in ("br", "gzip", "identity"):
            response = httpx.get(server.url + "/css/print.css", headers={"Accept-Encoding": coding})
            assert response.status_code == 404
        assert httpx.head(server.url + "/index.html").status_code == 200
        assert httpx.get(server.url + "/index.html").status_code == 200
        assert worker_pids(server) == workers
    assert server.returncode == 0


# --- slow and idle clients


def test_idle_and_half_sent_connections_do_not_hold_up_other_clients(site: Path) -> None:
    """300 idle or slowloris connections; with the default settings others are still served.

    Measured before the hardened worker (gthread, 2 workers x 8 threads): 300 idle
    connections delayed a request by 45 s, 300 half-sent heads stopped the server.
    """
    compress(site)
    expected = (site / "index.html").read_bytes()
    with ServerProcess(site, workers=0) as server:  # 0: one worker per core, the default
        hostile: list[socket.socket] = []
        try:
            for number in range(300):
                client = socket.create_connection(("127.0.0.1", server.port))
                if number % 3 == 1:  # slowloris: a head that never ends
                    client.sendall(b"GET /index.html HTTP/1.1\r\nHost: t\r\nX-a: ")
                elif number % 3 == 2:  # a kept-alive connection that goes quiet
                    client.sendall(b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n")
                    client.recv(65536)
                hostile.append(client)
            with httpx.Client(base_url=server.url, timeout=2.0) as client:
                started = time.monotonic()
                for _ in range(20):
                    response = client.get("/index.html", headers={"Connection": "close"})
                    assert response.status_code == 200
                    assert response.content == expected
                elapsed = time.monotonic() - started
            print(f"\n20 requests beside 300 idle/slowloris connections: {elapsed:.3f} s")
            assert elapsed < 5
        finally:
            for client in hostile:
                client.close()


def test_keep_alive_timeout_counts_from_the_last_static_answer(site: Path) -> None:
    """A connection busy with static hits for longer than the keep-alive timeout stays
    open (the loop leaves the timer armed and it moves when due); once quiet, it is
    closed about SERVESTATIC_KEEPALIVE seconds after its last answer."""
    compress(site)
    with ServerProcess(site, env={"SERVESTATIC_KEEPALIVE": "1"}) as server, \
            socket.create_connection(("127.0.0.1", server.port)) as client:
        client.settimeout(10)
        started = time.monotonic()
        while time.monotonic() - started < 2.5:  # requests 0.3 s apart, 2.5 s in all
            client.sendall(b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_response(client)[0].startswith(b"HTTP/1.1 200 ")
            last_answer = time.monotonic()
            time.sleep(0.3)  # the client's pace, the subject of the test
        assert client.recv(1) == b""  # closed by the server, not by the 10 s timeout
        quiet = time.monotonic() - last_answer
    print(f"\nclosed {quiet:.2f} s after the last answer (keep-alive 1 s)")
    assert 0.9 <= quiet <= 2.5


def connections_by_worker(server: ServerProcess) -> dict[int, int]:
    """How many established connections to the server each worker holds (from /proc)."""
    established = {f"socket:[{fields[9]}]" for fields in server_sockets(server.port) if fields[3] == "01"}
    counts = {}
    for pid in worker_pids(server):
        descriptors = Path(f"/proc/{pid}/fd")
        counts[pid] = sum(1 for fd in descriptors.iterdir()
                          if os.readlink(fd) in established)
    return counts


def test_a_burst_of_kept_alive_connections_is_spread_over_the_workers(site: Path) -> None:
    """Workers accept one connection at a time: 32 clients that connect at once and
    stay (a CDN's pool, wrk) are served by both workers, not all by whichever woke
    first (asyncio's own accept took up to 100 at a time: 32 to one, 0 to the other).

    The workers are stopped while the 32 connect, so that all wait in the backlog
    when both wake together: how the connections fall then depends on the accept
    policy, not on which worker a busy machine happened to be running.
    """
    compress(site)
    with ServerProcess(site, workers=2) as server:
        wait_for(lambda: server.log().count("ASGI server listening on") == 2, 20, "both workers to listen")
        workers = worker_pids(server)
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        try:
            clients = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(32)]
        finally:
            for pid in workers:
                os.kill(pid, signal.SIGCONT)
        try:
            for client in clients:
                client.settimeout(10)
                client.sendall(b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n")
            for client in clients:
                assert read_response(client)[0].startswith(b"HTTP/1.1 200 ")
            counts = connections_by_worker(server)
        finally:
            for client in clients:
                client.close()
    print(f"\n32 connections per worker: {sorted(counts.values())}")
    assert sum(counts.values()) == 32 and len(counts) == 2
    # One at a time: 4-16 to the fewer-served worker seen, also with two busy loops on the
    # two cores; asyncio's accept: 0 or 1, every time.
    assert min(counts.values()) >= 3, counts


def open_descriptors(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def test_clients_gone_in_the_middle_of_a_large_body_are_released(site: Path) -> None:
    """Clients that close while a large file is being sent, unread bytes and all (the
    kernel resets such a connection; wrk does this at the end of every run): their
    connections are released, descriptor and all, and SIGTERM is not kept waiting for
    them until the graceful timeout (20 s). Before the fix: 8 descriptors leaked, 20 s."""
    (site / "big.zip").write_bytes(os.urandom(16 * 1024 * 1024))  # .zip: not compressed
    compress(site)
    server = ServerProcess(site)
    with server:
        (worker,) = worker_pids(server)
        baseline = open_descriptors(worker)
        for _ in range(8):
            with socket.create_connection(("127.0.0.1", server.port)) as client:
                client.sendall(b"GET /big.zip HTTP/1.1\r\nHost: t\r\n\r\n")
                assert client.recv(65536).startswith(b"HTTP/1.1 200 ")
        wait_for(lambda: open_descriptors(worker) <= baseline, 10, "the reset connections to be released")
        started = time.monotonic()
        assert server.stop() == 0, server.log()
        stopping = time.monotonic() - started
    print(f"\nshutdown after 8 clients left mid-body: {stopping:.2f} s")
    assert stopping < 5, server.log()


def test_head_that_never_completes_gets_408_and_is_closed(site: Path) -> None:
    from servestatic.server.connection import HEAD_TIMEOUT

    compress(site)
    with ServerProcess(site) as server, socket.create_connection(("127.0.0.1", server.port)) as client:
        started = time.monotonic()
        client.sendall(b"GET /index.html HTTP/1.1\r\n")
        client.settimeout(HEAD_TIMEOUT + 5)
        # Trickle a header byte at a time: each byte must not restart the clock.
        for byte in b"X-Slow: 1":
            client.sendall(bytes([byte]))
        data = b""
        while chunk := client.recv(4096):
            data += chunk
        elapsed = time.monotonic() - started
    assert data.startswith(b"HTTP/1.1 408 ")
    assert HEAD_TIMEOUT - 0.5 <= elapsed <= HEAD_TIMEOUT + 3


def test_oversized_head_gets_431(site: Path) -> None:
    compress(site)
    with ServerProcess(site) as server, socket.create_connection(("127.0.0.1", server.port)) as client:
        client.settimeout(10)
        client.sendall(b"GET /index.html HTTP/1.1\r\nHost: t\r\n")
        try:
            for _ in range(100):
                client.sendall(b"X-Filler: " + b"a" * 1000 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may already have answered and closed
        data = client.recv(4096)
    assert data.startswith(b"HTTP/1.1 431 ")


def server_sockets(server_port: int) -> Iterator[list[str]]:
    """The rows of /proc/net/tcp{,6} for the server's end of its connections, split."""
    local = f":{server_port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(local):
                yield fields


def server_side_open(server_port: int, client_port: int) -> bool:
    """Whether the server still holds its end of a connection (from /proc/net/tcp{,6})."""
    remote = f":{client_port:04X}"
    # TIME_WAIT (06): the server closed its end; the kernel lingers.
    return any(fields[2].endswith(remote) and fields[3] != "06" for fields in server_sockets(server_port))


@pytest.mark.parametrize(("app", "target"), [(None, b"/big.zip"), (PLAIN_ASGI, b"/big?mb=64"),
                                             ("tests.apps.big_wsgi:application", b"/big?mb=64")])
def test_client_that_stops_reading_is_dropped_after_the_timeout(site: Path, app: str | None,
                                                                 target: bytes) -> None:
    """A reader that stalls (of a static file, of an app's streamed answer) is dropped after
    SERVESTATIC_TIMEOUT; meanwhile and afterwards everyone else is served."""
    (site / "big.zip").write_bytes(os.urandom(64 * 1024 * 1024))  # .zip: not compressed
    compress(site)
    env = {"SERVESTATIC_TIMEOUT": "2", **({"SERVESTATIC_APP": app} if app else {})}
    with ServerProcess(site, env=env) as server, \
            socket.create_connection(("127.0.0.1", server.port)) as stall:
        stall.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stall.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        assert stall.recv(1024).startswith(b"HTTP/1.1 200 ")  # it has started; now never read again
        stalled_at = time.monotonic()
        status, body = raw_get(server.port, "/index.html", timeout=15)
        assert status == 200 and body == (site / "index.html").read_bytes()
        client_port = stall.getsockname()[1]
        wait_for(lambda: not server_side_open(server.port, client_port), 15,
                 "the stalled reader to be dropped")
        dropped = time.monotonic() - stalled_at
        assert raw_get(server.port, "/index.html")[0] == 200
    print(f"\nstalled reader of {target.decode()} dropped after {dropped:.2f} s (timeout 2 s)")
    assert 1.5 <= dropped <= 8


# --- shutdown and crashes

SLOW_APPS = {
    "wsgi": '''
import os, threading, time

def application(environ, start_response):
    marker = os.path.join(os.environ["SLOWAPP_MARKERS"], f"{os.getpid()}-{threading.get_ident()}")
    open(marker + "-" + str(time.monotonic_ns()), "w").close()
    time.sleep(float(os.environ.get("SLOWAPP_SECONDS", "1.5")))  # a slow view, not a wait
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
    return [b"done"]
''',
    "asgi": '''
import asyncio, os, time

async def application(scope, receive, send):
    if scope["type"] != "http":
        return
    marker = os.path.join(os.environ["SLOWAPP_MARKERS"], f"{os.getpid()}-{time.monotonic_ns()}")
    open(marker, "w").close()
    await asyncio.sleep(float(os.environ.get("SLOWAPP_SECONDS", "1.5")))  # a slow view, not a wait
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"4")]})
    await send({"type": "http.response.body", "body": b"done"})
''',
}


@pytest.mark.parametrize("interface", sorted(SLOW_APPS))
def test_sigterm_under_load_finishes_in_flight_requests_and_refuses_cleanly(
    site: Path, tmp_path: Path, interface: str
) -> None:
    compress(site)
    (tmp_path / "slowapp.py").write_text(SLOW_APPS[interface])
    markers = tmp_path / "markers"
    markers.mkdir()
    in_flight = 12
    env = {"SERVESTATIC_APP": "slowapp:application", "SLOWAPP_MARKERS": str(markers),
           "SERVESTATIC_THREADS": "16"}
    server = ServerProcess(site, env=env, cwd=tmp_path, workers=2).start()
    slow_results: list[object] = []
    newcomer_results: list[str] = []
    stop_newcomers = threading.Event()
    terminated_at: list[float] = []

    def slow_request() -> None:
        try:
            slow_results.append(raw_get(server.port, "/slow", timeout=30))
        except OSError as error:
            slow_results.append(error)

    def newcomers() -> None:
        """Fresh connections in a loop through the shutdown: each is served or refused."""
        while not stop_newcomers.is_set():
            try:
                status, _ = raw_get(server.port, "/index.html", timeout=10)
                outcome = "ok" if status == 200 else f"status {status}"
            except ConnectionRefusedError:
                outcome = "refused"
            except OSError as error:
                outcome = f"error {type(error).__name__}: {error}"
            after = bool(terminated_at)
            newcomer_results.append(f"{'after' if after else 'before'} {outcome}")
            if after and outcome == "refused":
                return

    try:
        slow_threads = [threading.Thread(target=slow_request) for _ in range(in_flight)]
        for thread in slow_threads:
            thread.start()
        wait_for(lambda: len(list(markers.iterdir())) >= in_flight, 15, "all slow requests to start")
        newcomer = threading.Thread(target=newcomers)
        newcomer.start()
        wait_for(lambda: len(newcomer_results) >= 5, 10, "newcomers to be served")
        assert server.process is not None
        terminated_at.append(time.monotonic())
        server.process.send_signal(signal.SIGTERM)
        for thread in slow_threads:
            thread.join(30)
        newcomer.join(30)
        stop_newcomers.set()
        assert server.process.wait(30) == 0
        stopped = time.monotonic() - terminated_at[0]
    finally:
        stop_newcomers.set()
        server.stop()

    assert slow_results == [(200, b"done")] * in_flight
    after = [result for result in newcomer_results if result.startswith("after")]
    served_after = after.count("after ok")
    print(f"\nSIGTERM with {in_flight} requests in flight: all completed; exit 0 after {stopped:.2f} s; "
          f"newcomers after SIGTERM: {served_after} served, then {after[-1:]}")
    # Every newcomer was either served or cleanly refused: none hung or got a 5xx. One reset
    # is tolerated: a connection whose handshake the kernel completes in the microseconds
    # between a worker's last accept and its closing the listening socket is reset by the
    # kernel, whatever the server does (nginx has the same window). More would be a bug, like
    # the one fixed in the worker's stop_accepting: connections asyncio had accepted but not
    # yet set up were reset, about one at every shutdown of a client connecting in a loop.
    resets = [result for result in after if result.startswith("after error ConnectionResetError")]
    assert len(resets) <= 1, newcomer_results
    assert set(newcomer_results) - set(resets) <= {"before ok", "after ok", "after refused"}, newcomer_results
    assert after[-1] == "after refused"
    assert stopped < 10


def test_sigkilled_worker_is_replaced_and_service_continues(site: Path) -> None:
    compress(site)
    with ServerProcess(site, workers=2) as server:
        before = wait_for(lambda: len(worker_pids(server)) == 2 and worker_pids(server), 10, "2 workers")
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        started = time.monotonic()
        after = wait_for(lambda: (pids := worker_pids(server)) and victim not in pids and len(pids) == 2
                         and pids, 15, "a replacement worker")
        replaced = time.monotonic() - started
        with httpx.Client(base_url=server.url) as client:
            statuses = [client.get("/index.html", headers={"Connection": "close"}).status_code
                        for _ in range(50)]
        print(f"\nSIGKILLed worker replaced in {replaced:.2f} s; then 50/50 requests: "
              f"{statuses.count(200)} x 200")
        assert statuses == [200] * 50
        assert len(after - before) == 1
    assert server.returncode == 0


# --- start-up errors


def start_failure(env: dict[str, str], args: list[str], cwd: Path) -> tuple[int, str, float]:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "SERVESTATIC_BIND": "127.0.0.1:0", **env}
    started = time.monotonic()
    result = subprocess.run([*SERVESTATIC, "serve", *args], env=full_env, cwd=cwd,
                            capture_output=True, text=True, timeout=30)
    return result.returncode, result.stderr, time.monotonic() - started


@pytest.mark.parametrize("case", ["bad setting", "missing root", "broken app import", "app raises"])
def test_startup_error_exits_nonzero_with_one_line_fast(case: str, site: Path, tmp_path: Path) -> None:
    compress(site)
    (tmp_path / "brokenapp.py").write_text("import not_a_module_anywhere\n")
    (tmp_path / "raisingapp.py").write_text("raise RuntimeError('settings are wrong')\n")
    env, args = {
        "bad setting": ({"SERVESTATIC_THREADS": "lots"}, [str(site)]),
        "missing root": ({}, [str(tmp_path / "nowhere")]),
        "broken app import": ({"SERVESTATIC_APP": "brokenapp:application"}, [str(site)]),
        "app raises": ({"SERVESTATIC_APP": "raisingapp:application"}, [str(site)]),
    }[case]
    code, stderr, seconds = start_failure(env, args, tmp_path)
    lines = [line for line in stderr.splitlines() if line.strip()]
    print(f"\nstart-up error '{case}': exit {code} in {seconds:.2f} s: {lines}")
    assert code != 0
    assert len(lines) == 1, stderr
    assert lines[0].startswith("servestatic: error: ")
    assert "Traceback" not in stderr
    assert seconds < 5


def test_sigterm_while_a_worker_boots_stops_at_once(site: Path, tmp_path: Path) -> None:
    """A SIGTERM that reaches a worker between its fork and its own signal handlers (a
    `podman stop` right after the first of two workers answered) stops it as soon as it
    has booted, not after the graceful timeout. A post_fork hook of the user's that takes
    two seconds holds the worker in that window while the master is told to stop."""
    compress(site)
    config = tmp_path / "gunicorn.conf.py"
    config.write_text("import time\n\ndef post_fork(server, worker):\n    time.sleep(2)\n")
    server = ServerProcess(site, workers=1, env={"SERVESTATIC_GUNICORN_CONFIG": str(config),
                                                 "SERVESTATIC_GRACEFUL_TIMEOUT": "20"})
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        server.process = subprocess.Popen(server.args, env=server.env, stdout=output,
                                          stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: "Booting worker" in log.read_text(errors="replace"), 20, "the worker's fork")
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(30) == 0, log.read_text(errors="replace")
        took = time.monotonic() - started
    finally:
        if server.process.poll() is None:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()
    print(f"\nstopped {took:.2f} s after SIGTERM (the hook holds the worker 2 s)")
    assert took < 8, log.read_text(errors="replace")
