"""What one connection, or a stalled log, can cost a worker: each bound with a real socket.

docs/operations.md documents the bounds; servestatic/server/connection.py and
servestatic/server/accesslog.py hold the constants. Both modes where the path
differs: static hits answered in the loop, and SERVESTATIC_FAST_PATH=false
(every request through gunicorn's protocol). Each wait is a poll with a
deadline, never a sleep standing in for readiness.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import wait_for
from tests.support.cli import compress
from tests.support.flood import PipelineFlood
from tests.support.grammar import Reader
from tests.support.http import read_response
from tests.support.server import ServerProcess, worker_pids

MODES = {"loop": {}, "asgi": {"SERVESTATIC_FAST_PATH": "false"}}
HELLO = "tests.apps.echo:application"
BLOB = 60 * 1024


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.fixture(scope="module")
def blob_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site with one 60 KiB file that does not compress (so every answer is 60 KiB)."""
    site = tmp_path_factory.mktemp("blob")
    (site / "blob.bin").write_bytes(random.Random(1).randbytes(BLOB))
    (site / "index.html").write_bytes(b"<!doctype html><title>t</title>")
    compress(site)
    return site


@contextlib.contextmanager
def server_in(site: Path, mode: str, env: dict[str, str] | None = None,
              workers: int = 1) -> Iterator[ServerProcess]:
    with ServerProcess(site, env={"SERVESTATIC_APP": HELLO, **MODES[mode], **(env or {})},
                       workers=workers) as server:
        yield server


def healthy(server: ServerProcess) -> float:
    """Seconds a fresh client waits for /healthz (raises if it is not answered in 2 s)."""
    started = time.monotonic()
    assert httpx.get(server.url + "/healthz", timeout=2).status_code == 200
    return time.monotonic() - started


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize(("clients", "bound_mib"), [(1, 16), (20, 64)])
def test_pipelining_clients_that_never_read_cost_bounded_memory(blob_site: Path, mode: str, clients: int,
                                                                bound_mib: int) -> None:
    with server_in(blob_site, mode) as server:
        (worker,) = worker_pids(server)
        before = rss_mib(worker)
        slowest = 0.0

        def probe() -> None:
            nonlocal slowest
            slowest = max(slowest, healthy(server))

        with PipelineFlood(server.port, clients) as flood:
            flood.run(3.0, probe, 0.5)
        growth = rss_mib(worker) - before
        print(f"\n{mode}, {clients} clients: +{growth:.1f} MiB, {flood.sent // 1024} KiB of heads taken, "
              f"slowest /healthz {slowest:.3f} s")
        assert growth < bound_mib, f"worker grew by {growth:.1f} MiB"
        assert slowest < 1.0
        healthy(server)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_held_pipelined_requests_are_answered_in_order_once_the_client_reads(blob_site: Path,
                                                                             mode: str) -> None:
    """Reading paused while the client does not read must lose nothing: 300 pipelined
    requests (6 MiB of answers, past every buffer), mixing the file, the app and a small
    page, are all answered, in order, once the client reads."""
    targets = [("/blob.bin", 200), ("/app?x=1", 200), ("/index.html", 200)] * 100
    heads = b"".join(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path.encode() for path, _ in targets)
    with server_in(blob_site, mode) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
        client.sendall(heads)
        reader = Reader(client)
        for path, status in targets:
            answer = reader.answer("GET")
            assert answer is not None and answer.complete, path
            assert answer.version == b"HTTP/1.1" and answer.status == status, (path, answer.status)
            if path == "/blob.bin":
                assert len(answer.body) == BLOB
            elif path == "/app?x=1":
                assert b'"query": "x=1"' in answer.body


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("pieces", [1, 17])
def test_a_head_over_64_kib_gets_431_whole_or_in_pieces(blob_site: Path, mode: str, pieces: int) -> None:
    head = b"GET /index.html HTTP/1.1\r\nHost: t\r\n" + b"".join(
        b"X-Filler-%d: %s\r\n" % (n, b"a" * 4000) for n in range(17)) + b"\r\n"
    assert len(head) > 64 * 1024
    with server_in(blob_site, mode) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
        size = -(-len(head) // pieces)
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            for start in range(0, len(head), size):
                client.sendall(head[start:start + size])
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := client.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]


def test_a_trickled_head_gets_408_when_keepalive_is_shorter(blob_site: Path) -> None:
    from servestatic.server.connection import HEAD_TIMEOUT

    with server_in(blob_site, "loop", {"SERVESTATIC_KEEPALIVE": "2"}) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=HEAD_TIMEOUT + 5) as client:
        # One request first: the keep-alive timer then runs for the next one.
        client.sendall(b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n")
        read_response(client)
        started = time.monotonic()
        client.sendall(b"GET /index.html HTTP/1.1\r\n")
        answer = b""
        deadline = started + HEAD_TIMEOUT + 4
        client.settimeout(0.5)
        for byte in b"X-Slow: " + b"a" * 200:
            if answer or time.monotonic() > deadline:
                break
            with contextlib.suppress(OSError):
                client.sendall(bytes([byte]))
            with contextlib.suppress(TimeoutError):
                answer += client.recv(4096)
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), (answer[:100], elapsed)
    assert HEAD_TIMEOUT - 0.5 <= elapsed <= HEAD_TIMEOUT + 3


def test_worker_connections_is_enforced(blob_site: Path) -> None:
    """At worker_connections the worker stops accepting (the kernel backlog holds the
    next client) and accepts again when one closes."""
    with server_in(blob_site, "loop", {"GUNICORN_CMD_ARGS": "--worker-connections 4"}) as server:
        wait_for(lambda: healthy(server) is not None, 5, "the first heartbeat")
        held = []
        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n")
            read_response(sock)
            held.append(sock)
        waiting = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        waiting.sendall(b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n")
        waiting.settimeout(1.5)
        with pytest.raises(TimeoutError):
            waiting.recv(4096)  # not accepted: no answer while four connections are open
        held.pop().close()
        waiting.settimeout(5)
        head, _ = read_response(waiting)
        assert head.startswith(b"HTTP/1.1 200 ")
        for sock in [*held, waiting]:
            sock.close()


def access_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_sigusr1_reopens_the_access_and_error_logs_after_a_rename(blob_site: Path, tmp_path: Path) -> None:
    """What logrotate does: move the files, SIGUSR1 the master; the next lines are in new
    files at the old names, from every worker and both paths."""
    access, errors = tmp_path / "access.log", tmp_path / "error.log"
    server = ServerProcess(blob_site, env={
        "SERVESTATIC_APP": HELLO,
        "GUNICORN_CMD_ARGS": f"--access-logfile {access} --error-logfile {errors}"}, workers=2)
    del server.env["SERVESTATIC_ACCESS_LOG"]  # gunicorn's --access-logfile decides
    with server:
        assert httpx.get(server.url + "/index.html?before=1").status_code == 200
        wait_for(lambda: any("before=1" in line for line in access_lines(access)), 5, "the first line")
        access.rename(tmp_path / "access.log.1")
        errors.rename(tmp_path / "error.log.1")
        assert server.process is not None
        server.process.send_signal(signal.SIGUSR1)
        wait_for(lambda: probes_land_in(server, access, tmp_path / "access.log.1"), 10,
                 "every worker to write to the new access log")
        for n in range(20):  # fresh connections: over both workers, on both paths
            assert httpx.get(f"{server.url}/index.html?after={n}").status_code == 200
            assert httpx.get(f"{server.url}/app?after={n}").status_code == 200
        wait_for(lambda: sum("after=" in line for line in access_lines(access)) == 40, 5,
                 "all 40 lines in the new access log")
        assert not any("after=" in line for line in access_lines(tmp_path / "access.log.1"))
        server.process.send_signal(signal.SIGUSR1)  # the master's own line, in the new error log
        wait_for(lambda: errors.exists() and "usr1" in errors.read_text().lower(), 5,
                 "the master's line in the new error log")


def probes_land_in(server: ServerProcess, new: Path, old: Path) -> bool:
    """Ten requests on fresh connections; True once all ten lines are in `new` (a worker
    that has not reopened yet still writes to `old`)."""
    marker = f"probe-{time.monotonic_ns()}"
    for n in range(10):
        httpx.get(f"{server.url}/index.html?{marker}-{n}")
    wait_for(lambda: sum(marker in line for line in access_lines(new) + access_lines(old)) == 10, 5,
             "the probes' lines")
    return sum(marker in line for line in access_lines(new)) == 10


def test_a_stalled_stdout_never_stalls_the_worker(blob_site: Path) -> None:
    """The access log goes to a pipe nobody reads: requests keep being answered, the
    lines past the bound are dropped and counted, and one warning says how many."""
    from servestatic.server.accesslog import MAX_WAITING_LINES

    metrics_port = _free_port()
    server = ServerProcess(blob_site, env={"SERVESTATIC_ACCESS_LOG": "text",
                                           "SERVESTATIC_METRICS_BIND": f"127.0.0.1:{metrics_port}"})
    read_end, write_end = os.pipe()
    server.process = subprocess.Popen(server.args, env=server.env, stdout=write_end, stderr=write_end,
                                      start_new_session=True)
    os.close(write_end)
    try:
        wait_for(lambda: _answers(server), 20, "the server to answer")
        requests = MAX_WAITING_LINES + 5000
        slowest = 0.0
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
            batch = b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n" * 100
            reader = Reader(client)
            for _ in range(requests // 100):
                started = time.monotonic()
                client.sendall(batch)
                for _ in range(100):
                    answer = reader.answer("GET")
                    assert answer is not None and answer.complete
                slowest = max(slowest, time.monotonic() - started)
        assert slowest < 1.0, f"a batch of 100 requests took {slowest:.2f} s"
        counted = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        dropped = re.search(r"^servestatic_access_log_dropped_lines_total (\S+)", counted, re.M)
        assert dropped is not None and float(dropped.group(1)) >= requests - MAX_WAITING_LINES - 2000, counted
        # Now read the pipe: the waiting lines come out, then the one warning with the count.
        output = b""
        os.set_blocking(read_end, False)

        def warned() -> bool:
            nonlocal output
            with contextlib.suppress(BlockingIOError):
                while chunk := os.read(read_end, 1 << 20):
                    output += chunk
            return b"access log lines" in output

        wait_for(warned, 10, "the dropped-lines warning")
        assert output.count(b"dropped ") == 1
    finally:
        server.process.send_signal(signal.SIGTERM)
        with contextlib.suppress(BlockingIOError, OSError):
            os.set_blocking(read_end, False)
            while os.read(read_end, 1 << 20):
                pass
        server.process.wait(30)
        os.close(read_end)


def _answers(server: ServerProcess) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(server.url + "/healthz", timeout=1).status_code == 200
    return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
