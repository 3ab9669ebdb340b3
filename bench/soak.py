"""Soak test: sustained load on a real `servestatic serve`, watching errors and worker memory.

    .venv/bin/python bench/soak.py                   # 60 s on a copy of examples/site
    .venv/bin/python bench/soak.py --seconds 300 --connections 16 --root path/to/site

Keep-alive raw-socket clients on 127.0.0.1 request every file of the site in
turn with varied Accept-Encoding, Range and If-None-Match, and check each
answer (status, full body length). Worker RSS is read from /proc after a
warm-up and at the end. The run is bounded in time and in requests and stops
by itself; it exits 1 on any error or when a worker's RSS grew by more than
--max-growth-mb, and prints one JSON summary.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import socket
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

VARIANTS = [
    [("Accept-Encoding", "br, gzip")],
    [("Accept-Encoding", "gzip")],
    [],
    [("Accept-Encoding", "br"), ("Range", "bytes=0-99")],
    [("Accept-Encoding", "gzip"), ("If-None-Match", '"not-the-etag"')],
]


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
        while time.monotonic() < stop_at and stats.requests < max_requests:
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, help="site to serve (default: a copy of examples/site)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-requests", type=int, default=5_000_000)
    parser.add_argument("--max-growth-mb", type=float, default=5.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="servestatic-soak-") as scratch:
        root = args.root
        if root is None:
            root = Path(scratch) / "site"
            outputs = shutil.ignore_patterns("*.br", "*.gz", "*.zst", ".servestatic-manifest.json")
            shutil.copytree(REPO / "examples/site", root, ignore=outputs)
            compress(root)
        paths = [("/" + relative).replace(" ", "%20") for relative in load_manifest(root).files
                 if not relative.endswith("404.html")]
        paths = [path.encode("utf-8").decode("latin-1") for path in paths]
        paths = ["".join(c if ord(c) < 128 else f"%{ord(c):02X}" for c in path) for path in paths]
        stats = Stats()
        with ServerProcess(root, workers=args.workers) as server:
            start = time.monotonic()
            stop_at = start + args.warmup + args.seconds
            threads = [threading.Thread(target=client_loop,
                                        args=(server.port, paths, stop_at, args.max_requests, stats, n))
                       for n in range(args.connections)]
            for thread in threads:
                thread.start()
            while time.monotonic() < start + args.warmup and any(t.is_alive() for t in threads):
                time.sleep(0.1)  # pacing the warm-up, not waiting for readiness
            rss_before = worker_rss_kib(server)
            requests_before = stats.requests
            measured_from = time.monotonic()
            samples = []
            while any(thread.is_alive() for thread in threads):
                for thread in threads:
                    thread.join(timeout=10)
                samples.append(sum(worker_rss_kib(server).values()))
            measured = time.monotonic() - measured_from
            rss_after = worker_rss_kib(server)
        exit_code = server.returncode

    growth_mb = max((rss_after.get(pid, 0) - kib) / 1024 for pid, kib in rss_before.items())
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
        "workers_unchanged": set(rss_before) == set(rss_after),
        "server_exit_code": exit_code,
    }
    print(json.dumps(summary, indent=1))
    ok = (not stats.errors and growth_mb <= args.max_growth_mb and exit_code == 0
          and summary["workers_unchanged"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
