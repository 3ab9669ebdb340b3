"""What clients that pipeline GETs and never read cost one worker, in RSS.

    .venv/bin/python bench/pipeline_memory.py                 # 1 and 20 clients, both modes
    .venv/bin/python bench/pipeline_memory.py --clients 1 --seconds 3
    .venv/bin/python bench/pipeline_memory.py --package DIR   # another copy of the package

One `servestatic serve` per mode (static hits in the loop, and
SERVESTATIC_FAST_PATH=false), each with one worker and the defaults a user gets
(access log on, bench/serve_hello.py chained), on a site holding one 60 KiB file
that does not compress. Each client opens a connection to 127.0.0.1 and, for
`--seconds`, writes `GET /blob.bin` heads as fast as its socket takes them and
reads nothing. The worker's RSS is read from /proc before and at the end; a
separate client asks for /healthz once a second meanwhile, so the table says
whether the server kept answering others. Every loop is bounded in time and
every client is closed at the end; nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SERVESTATIC = REPO / ".venv" / "bin" / "servestatic"
sys.path.insert(0, str(REPO))

from tests.support.flood import PipelineFlood  # noqa: E402

MODES = {"loop": {}, "asgi": {"SERVESTATIC_FAST_PATH": "false"}}
FILE_SIZE = 60 * 1024


def make_site(directory: Path) -> Path:
    site = directory / "site"
    site.mkdir()
    (site / "blob.bin").write_bytes(random.Random(1).randbytes(FILE_SIZE))
    subprocess.run([SERVESTATIC, "compress", str(site)], check=True, capture_output=True)
    return site


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return int(children[0])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def healthy(port: int) -> tuple[bool, float]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            ok = response.status == 200
    except OSError:
        ok = False
    return ok, time.monotonic() - started


def start_server(site: Path, mode: dict[str, str], log: Path,
                 package: str | None) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    pythonpath = os.pathsep.join(filter(None, [package, str(BENCH)]))
    env = {**os.environ, "SERVESTATIC_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1",
           "SERVESTATIC_APP": "serve_hello:application", "PYTHONPATH": pythonpath, **mode}
    with log.open("ab") as output:
        process = subprocess.Popen([SERVESTATIC, "serve", str(site)], env=env, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 20
    while not healthy(port)[0]:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server did not start; see {log}")
        time.sleep(0.1)
    return process, port


def flood(port: int, clients: int, seconds: float, pid: int) -> dict[str, float]:
    """`clients` connections writing pipelined heads and reading nothing, for `seconds`."""
    worst_health = 0.0
    failed_health = 0

    def probe() -> None:
        nonlocal worst_health, failed_health
        ok, took = healthy(port)
        failed_health += not ok
        worst_health = max(worst_health, took)

    with PipelineFlood(port, clients) as pipelining:
        pipelining.run(seconds, probe, 1.0)
        rss = rss_mib(pid)
    return {"rss_end": rss, "requests_sent": pipelining.requests_sent,
            "worst_health_s": worst_health, "failed_health": failed_health}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="1,20", help="comma-separated client counts")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--package", help="a directory holding another servestatic package to run "
                        "(git archive REV servestatic | tar -x -C DIR), first on PYTHONPATH")
    args = parser.parse_args()
    counts = [int(count) for count in args.clients.split(",")]
    print("| mode | clients | worker RSS before | at the end | growth | heads sent | "
          "/healthz meanwhile |")
    print("|---|--:|--:|--:|--:|--:|---|")
    with tempfile.TemporaryDirectory(prefix="servestatic-pipeline-") as scratch:
        site = make_site(Path(scratch))
        log = Path(scratch) / "server.log"
        for name, mode in MODES.items():
            for count in counts:
                process, port = start_server(site, mode, log, args.package)
                try:
                    pid = worker_pid(process.pid)
                    before = rss_mib(pid)
                    result = flood(port, count, args.seconds, pid)
                finally:
                    os.killpg(process.pid, 15)
                    try:
                        process.wait(timeout=40)
                    except subprocess.TimeoutExpired:
                        os.killpg(process.pid, 9)
                        process.wait()
                health = (f"{result['failed_health']:.0f} failed, slowest {result['worst_health_s']:.2f} s")
                print(f"| {name} | {count} | {before:.1f} MiB | {result['rss_end']:.1f} MiB | "
                      f"+{result['rss_end'] - before:.1f} MiB | {result['requests_sent']:,.0f} | {health} |",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
