"""Soak test: sustained load on a real `servestatic serve`, watching errors, worker memory
and descriptors.

    .venv/bin/python bench/soak.py                   # 60 s on a copy of examples/site
    .venv/bin/python bench/soak.py --seconds 300 --connections 16 --root path/to/site
    .venv/bin/python bench/soak.py --mode app --seconds 600    # the 10-minute run, ASGI path

Keep-alive raw-socket clients on 127.0.0.1 request every file of the site in
turn with varied Accept-Encoding, Range and If-None-Match, and check each
answer (status, full body length); one more asks the chained app
(tests/support/digest_app.py) with GETs and POSTs. Beside them, the clients a
server meets in the wild: slow readers (a 4 MiB file read at a trickle),
pipeliners (eight GETs of a 60 KiB file at a time, read slowly but steadily)
and idle connections (opened and held; some after one request). `--mode app`
(SERVESTATIC_FAST_PATH=false) sends the static files through gunicorn's ASGI
protocol too.

Each worker's RSS and open descriptors are sampled from /proc every two seconds
after a warm-up; growth is the mean of the last three samples less the mean of the
first three, per worker for RSS and summed over the workers for descriptors (an idle
connection closed and opened again may land on the other worker). The run is
bounded in time and in requests and stops by itself; it exits 1 on any error, a
worker replaced, or growth above --max-growth-mb or --max-fd-growth, and prints one
JSON summary.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import random
import select
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from servestatic.site.manifest import load as load_manifest  # noqa: E402
from tests.support.cli import compress  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402

DIGEST_APP = "tests.support.digest_app:application"
SLOW_FILE = "soak-slow.bin"  # 4 MiB, read at a trickle
PIPELINE_FILE = "soak-pipeline.txt"  # ~60 KiB, pipelined eight at a time
SAMPLE_EVERY = 2.0

VARIANTS = [
    [("Accept-Encoding", "br, gzip")],
    [("Accept-Encoding", "gzip")],
    [],
    [("Accept-Encoding", "br"), ("Range", "bytes=0-99")],
    [("Accept-Encoding", "gzip"), ("If-None-Match", '"not-the-etag"')],
]


def worker_fds(server: ServerProcess) -> dict[int, int]:
    """Open descriptors of each gunicorn worker."""
    assert server.process is not None
    pid = server.process.pid
    counts = {}
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        with contextlib.suppress(FileNotFoundError):  # a worker that just went away
            counts[int(child)] = len(list(Path(f"/proc/{child}/fd").iterdir()))
    return counts


def worker_rss_kib(server: ServerProcess) -> dict[int, int]:
    """VmRSS of each gunicorn worker (the master's children), in KiB."""
    assert server.process is not None
    pid = server.process.pid
    rss = {}
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        for line in Path(f"/proc/{child}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss[int(child)] = int(line.split()[1])
    return rss


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.errors: list[str] = []
        self.statuses: dict[int, int] = {}
        self.slow_reader_bytes = 0
        self.pipelined = 0
        self.app_requests = 0
        self.idle_reopened = 0

    def add(self, status: int | None, error: str | None = None) -> None:
        with self.lock:
            self.requests += 1
            if status is not None:
                self.statuses[status] = self.statuses.get(status, 0) + 1
            if error and len(self.errors) < 20:
                self.errors.append(error)
            elif error:
                self.errors.append("...")


def read_answer(sock: socket.socket, buffer: bytes) -> tuple[int, int, bytes]:
    """(status, body length, leftover) of one answer with Content-Length."""
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(1 << 20)
        if not data:
            raise ConnectionError("closed mid-answer")
        buffer += data
    head, _, buffer = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    if status == 304:
        length = 0
    while len(buffer) < length:
        data = sock.recv(1 << 20)
        if not data:
            raise ConnectionError("closed mid-body")
        buffer += data
    return status, length, buffer[length:]


def client_loop(port: int, paths: list[str], stop_at: float, max_requests: int, stats: Stats,
                offset: int) -> None:
    requests = itertools.cycle(itertools.product(paths, VARIANTS))
    for _ in range(offset):
        next(requests)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    buffer = b""
    try:
        while time.monotonic() < stop_at and (not max_requests or stats.requests < max_requests):
            path, headers = next(requests)
            lines = [f"GET {path} HTTP/1.1", "Host: soak", *(f"{n}: {v}" for n, v in headers)]
            try:
                sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
                status, _, buffer = read_answer(sock, buffer)
            except OSError as error:
                stats.add(None, f"{path}: {type(error).__name__}: {error}")
                sock.close()
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                buffer = b""
                continue
            expected = {206} if any(name == "Range" for name, _ in headers) else {200}
            stats.add(status, None if status in expected else f"{path} {headers}: {status}")
    finally:
        sock.close()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def app_client(port: int, stop_at: float, stats: Stats) -> None:
    """GETs and POSTs (up to 100 KiB) to the chained app, each digest checked."""
    rng = random.Random(1)
    sock = connect(port)
    buffer = b""
    count = 0
    try:
        while time.monotonic() < stop_at:
            count += 1
            body = rng.randbytes(rng.choice([0, 100, 5000, 100_000]))
            head = f"POST /api/soak?n={count} HTTP/1.1\r\nHost: soak\r\nContent-Length: {len(body)}\r\n\r\n"
            try:
                sock.sendall(head.encode() + body)
                status, length, buffer = read_answer(sock, buffer)
            except OSError as error:
                stats.add(None, f"app: {type(error).__name__}: {error}")
                sock.close()
                sock, buffer = connect(port), b""
                continue
            with stats.lock:
                stats.app_requests += 1
            # The digest itself is checked by the grammar run; here the status and a body.
            stats.add(status, None if status == 200 and length > 0 else f"app: {status}")
    finally:
        sock.close()


def slow_reader(port: int, stop_at: float, stats: Stats, size: int) -> None:
    """GET the 4 MiB file and read it at about 256 KiB/s (16 KiB every 60 ms), again and
    again: well within the stall timeout, so the server must keep serving it."""
    while time.monotonic() < stop_at:
        try:
            with connect(port) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
                sock.sendall(f"GET /{SLOW_FILE} HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n".encode())
                received = 0
                while chunk := sock.recv(16384):
                    received += len(chunk)
                    with stats.lock:
                        stats.slow_reader_bytes += len(chunk)
                    time.sleep(0.06)  # the trickle is the client's pace, the subject of the test
            head_end = size  # the head is a few hundred bytes on top of the body
            stats.add(200 if received > head_end else None,
                      None if received > head_end else f"slow reader: {received} bytes of {size}")
        except OSError as error:
            stats.add(None, f"slow reader: {type(error).__name__}: {error}")


def pipeliner(port: int, stop_at: float, stats: Stats, size: int) -> None:
    """Eight GETs of the 60 KiB file in one write, answers read 32 KiB at a time with a
    pause between reads: slower than the server writes, but never stopped."""
    request = f"GET /{PIPELINE_FILE} HTTP/1.1\r\nHost: soak\r\nAccept-Encoding: identity\r\n\r\n".encode()
    sock = connect(port)
    try:
        while time.monotonic() < stop_at:
            try:
                sock.sendall(request * 8)
                buffer = b""
                for _ in range(8):
                    while b"\r\n\r\n" not in buffer:
                        chunk = sock.recv(32768)
                        if not chunk:
                            raise ConnectionError("closed mid-pipeline")
                        buffer += chunk
                        time.sleep(0.005)  # a steady, slow reader
                    head, _, buffer = buffer.partition(b"\r\n\r\n")
                    while len(buffer) < size:
                        chunk = sock.recv(32768)
                        if not chunk:
                            raise ConnectionError("closed mid-body")
                        buffer += chunk
                        time.sleep(0.005)
                    buffer = buffer[size:]
                    status = int(head.split(b" ", 2)[1])
                    stats.add(status, None if status == 200 else f"pipeliner: {status}")
                    with stats.lock:
                        stats.pipelined += 1
            except OSError as error:
                stats.add(None, f"pipeliner: {type(error).__name__}: {error}")
                sock.close()
                sock = connect(port)
    finally:
        sock.close()


def idle_holder(port: int, stop_at: float, stats: Stats, count: int) -> None:
    """`count` connections held open: half silent from the start, half quiet after one
    request. One the server closes (its keep-alive timeout) is opened again."""
    def open_one(number: int) -> socket.socket:
        sock = connect(port)
        if number % 2:
            sock.sendall(b"GET /robots.txt HTTP/1.1\r\nHost: soak\r\n\r\n")
        return sock

    held = {open_one(number): number for number in range(count)}
    try:
        while time.monotonic() < stop_at:
            readable, _, _ = select.select(list(held), [], [], 1.0)
            for sock in readable:
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:  # closed by the server: hold a new one
                    number = held.pop(sock)
                    sock.close()
                    held[open_one(number)] = number
                    with stats.lock:
                        stats.idle_reopened += 1
    finally:
        for sock in held:
            sock.close()


def growth(samples: list[dict[int, int]]) -> float:
    """Per worker, the mean of the last three samples less the mean of the first three;
    the largest, over workers present throughout."""
    if len(samples) < 2:
        return 0.0
    pids = set(samples[0]).intersection(*samples)
    window = min(3, len(samples) // 2)
    return max((statistics.mean(sample[pid] for sample in samples[-window:])
                - statistics.mean(sample[pid] for sample in samples[:window]) for pid in pids), default=0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, help="site to serve (default: a copy of examples/site)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-requests", type=int, default=0,
                        help="stop the clients after this many requests (0: run for --seconds)")
    parser.add_argument("--max-growth-mb", type=float, default=5.0)
    parser.add_argument("--mode", choices=["loop", "app"], default="loop",
                        help="static hits in the event loop, or all through the ASGI path")
    parser.add_argument("--slow-readers", type=int, default=2)
    parser.add_argument("--pipeliners", type=int, default=2)
    parser.add_argument("--idle", type=int, default=50, help="idle connections held")
    parser.add_argument("--max-fd-growth", type=float, default=20.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="servestatic-soak-") as scratch:
        root = args.root
        if root is None:
            root = Path(scratch) / "site"
            outputs = shutil.ignore_patterns("*.br", "*.gz", "*.zst", ".servestatic-manifest.json")
            shutil.copytree(REPO / "examples/site", root, ignore=outputs)
            (root / SLOW_FILE).write_bytes(random.Random(3).randbytes(4 * 1024 * 1024))
            (root / PIPELINE_FILE).write_bytes(b"".join(b"soak line %06d\n" % n for n in range(3600)))
            compress(root)
        extras = {SLOW_FILE, PIPELINE_FILE}
        paths = [("/" + relative).replace(" ", "%20") for relative in load_manifest(root).files
                 if not relative.endswith("404.html") and relative not in extras]
        paths = [path.encode("utf-8").decode("latin-1") for path in paths]
        paths = ["".join(c if ord(c) < 128 else f"%{ord(c):02X}" for c in path) for path in paths]
        stats = Stats()
        slow_size = (root / SLOW_FILE).stat().st_size if (root / SLOW_FILE).exists() else 0
        pipeline_size = (root / PIPELINE_FILE).stat().st_size if (root / PIPELINE_FILE).exists() else 0
        env = {"SERVESTATIC_APP": DIGEST_APP}
        if args.mode == "app":
            env["SERVESTATIC_FAST_PATH"] = "false"
        with ServerProcess(root, workers=args.workers, env=env, cwd=REPO) as server:
            start = time.monotonic()
            stop_at = start + args.warmup + args.seconds
            threads = [threading.Thread(target=client_loop,
                                        args=(server.port, paths, stop_at, args.max_requests, stats, n))
                       for n in range(args.connections)]
            others = [threading.Thread(target=app_client, args=(server.port, stop_at, stats)),
                      threading.Thread(target=idle_holder, args=(server.port, stop_at, stats, args.idle))]
            if slow_size:
                others += [threading.Thread(target=slow_reader, args=(server.port, stop_at, stats, slow_size))
                           for _ in range(args.slow_readers)]
            if pipeline_size:
                others += [threading.Thread(target=pipeliner,
                                            args=(server.port, stop_at, stats, pipeline_size))
                           for _ in range(args.pipeliners)]
            for thread in threads + others:
                thread.daemon = True
                thread.start()
            while time.monotonic() < start + args.warmup and any(t.is_alive() for t in threads):
                time.sleep(0.1)  # pacing the warm-up, not waiting for readiness
            rss_before = worker_rss_kib(server)
            fds_before = worker_fds(server)
            requests_before = stats.requests
            measured_from = time.monotonic()
            rss_samples = [rss_before]
            fd_samples = [fds_before]
            while any(thread.is_alive() for thread in threads):
                for thread in threads:
                    thread.join(timeout=SAMPLE_EVERY)  # the sampling period
                rss_samples.append(worker_rss_kib(server))
                fd_samples.append(worker_fds(server))
            measured = time.monotonic() - measured_from
            rss_after = worker_rss_kib(server)
            fds_after = worker_fds(server)
            for thread in others:
                thread.join(timeout=60)
        exit_code = server.returncode

    growth_mb = growth(rss_samples) / 1024
    # Descriptors summed over the workers: an idle connection the server closes and the
    # client opens again may land on the other worker, which moves a count, not a leak.
    fd_growth = growth([{0: sum(sample.values())} for sample in fd_samples])
    summary = {
        "seconds": round(measured, 1),
        "connections": args.connections,
        "workers": args.workers,
        "requests": stats.requests,
        "requests_per_second": round((stats.requests - requests_before) / measured),
        "statuses": stats.statuses,
        "errors": len(stats.errors),
        "first_errors": stats.errors[:5],
        "worker_rss_kib_before": rss_before,
        "worker_rss_kib_after": rss_after,
        "max_worker_growth_mb": round(growth_mb, 2),
        "worker_rss_kib_peak": {pid: max(sample.get(pid, 0) for sample in rss_samples) for pid in rss_before},
        "worker_fds_before": fds_before,
        "worker_fds_after": fds_after,
        "max_worker_fd_growth": round(fd_growth, 1),
        "mode": args.mode,
        "app_requests": stats.app_requests,
        "slow_reader_bytes": stats.slow_reader_bytes,
        "pipelined": stats.pipelined,
        "idle_connections": args.idle,
        "idle_reopened": stats.idle_reopened,
        "samples": len(rss_samples),
        "workers_unchanged": set(rss_before) == set(rss_after),
        "server_exit_code": exit_code,
    }
    print(json.dumps(summary, indent=1))
    ok = (not stats.errors and growth_mb <= args.max_growth_mb and fd_growth <= args.max_fd_growth
          and exit_code == 0 and summary["workers_unchanged"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
