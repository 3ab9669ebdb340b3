"""How the serving benchmark starts, probes, measures and stops each server.

Every server runs as its own process tree on 127.0.0.1 with 2 worker
processes and no access log: ours (`servestatic serve`), gunicorn + WhiteNoise
and gunicorn + PyPI ServeStatic (each in its own venv, same gunicorn version,
sync or gthread workers), and nginx (gzip_static, brotli_static, sendfile).
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENVS = REPO / ".cache" / "bench-venvs"
WORKERS = 2
THREADS = 8  # ours' default; the peers' gthread runs get the same
NGINX_MODULE = Path("/usr/lib/nginx/modules/ngx_http_brotli_static_module.so")


@dataclass
class ServerSpec:
    """A way to start one server on a port, serving a root."""

    name: str
    kind: str  # ours | whitenoise | servestatic | nginx
    worker_class: str = "gthread"
    preload: bool = False
    pythonpath: str | None = None  # ours from a patched copy of the package
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def chains(self) -> bool:
        return self.kind != "nginx"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Running:
    """A started server: its process, port, and the start time for start-up measurements."""

    def __init__(self, spec: ServerSpec, process: subprocess.Popen, port: int, started: float,
                 workdir: tempfile.TemporaryDirectory | None):
        self.spec = spec
        self.process = process
        self.port = port
        self.started = started
        self.workdir = workdir

    def pids(self) -> list[int]:
        """The master and its worker processes."""
        master = self.process.pid
        try:
            children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        except OSError:
            children = []
        return [master, *map(int, children)]

    def memory(self) -> dict[str, object]:
        """RSS and PSS in KiB of the master, each worker, and all of them (from /proc)."""
        per_process = []
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue
            rss = _field_kib(status, "VmRSS:")
            pss = _field_kib(rollup, "Pss:")
            per_process.append({"pid": pid, "rss_kib": rss, "pss_kib": pss})
        workers = per_process[1:]
        return {
            "master": per_process[0] if per_process else None,
            "workers": workers,
            "total_rss_kib": sum(p["rss_kib"] for p in per_process),
            "total_pss_kib": sum(p["pss_kib"] for p in per_process),
            "max_worker_rss_kib": max((p["rss_kib"] for p in workers), default=0),
            "max_worker_pss_kib": max((p["pss_kib"] for p in workers), default=0),
        }

    def cpu_seconds(self) -> float:
        """User + system CPU of the master and workers so far (from /proc/PID/stat)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / ticks

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT if self.spec.kind == "nginx" else signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.workdir is not None:
            self.workdir.cleanup()


def _field_kib(text: str, name: str) -> int:
    for line in text.splitlines():
        if line.startswith(name):
            return int(line.split()[1])
    return 0


def start(spec: ServerSpec, root: Path, log_path: Path) -> Running:
    """Start a server on a free port; returns at once (see `wait_ready`)."""
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("SERVESTATIC_", "WEB_CONCURRENCY", "PORT", "GUNICORN"))}
    workdir = None
    if spec.kind == "ours":
        argv = [str(REPO / ".venv" / "bin" / "servestatic"), "serve", str(root)]
        env.update({
            "SERVESTATIC_BIND": f"127.0.0.1:{port}",
            "WEB_CONCURRENCY": str(WORKERS),
            "SERVESTATIC_ACCESS_LOG": "off",
            "SERVESTATIC_APP": "serve_hello:application",
            "SERVESTATIC_LOG_LEVEL": "warning",
        })
        if spec.pythonpath:
            env["PYTHONPATH"] = spec.pythonpath
    elif spec.kind in ("whitenoise", "servestatic"):
        venv = VENVS / f"serve-{spec.kind}"
        argv = [str(venv / "bin" / "gunicorn"), "serve_peer_app:application",
                "--chdir", str(BENCH), "--bind", f"127.0.0.1:{port}",
                "--workers", str(WORKERS), "--worker-class", spec.worker_class,
                "--keep-alive", "75", "--worker-tmp-dir", "/dev/shm", "--log-level", "warning"]
        if spec.worker_class == "gthread":
            argv += ["--threads", str(THREADS)]
        if spec.preload:
            argv.append("--preload")
        env.update({"BENCH_PEER": spec.kind, "BENCH_ROOT": str(root)})
    elif spec.kind == "nginx":
        workdir = tempfile.TemporaryDirectory(prefix="bench-nginx-")
        config = Path(workdir.name) / "nginx.conf"
        template = (BENCH / "nginx.conf.template").read_text()
        config.write_text(template.format(
            module=NGINX_MODULE, workers=WORKERS, prefix=workdir.name, port=port, root=root))
        argv = ["nginx", "-e", str(Path(workdir.name) / "error.log"), "-p", workdir.name,
                "-c", str(config)]
    else:
        raise ValueError(spec.kind)
    env.update(spec.extra_env)
    log = log_path.open("ab")
    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=BENCH, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return Running(spec, process, port, started, workdir)


def get(port: int, path: str, headers: dict[str, str] | None = None,
        timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """One GET over a new connection: status, lower-cased headers, body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        connection.close()


def wait_ready(server: Running, path: str, deadline_seconds: float = 60.0) -> float:
    """Poll `path` until it answers 200; returns seconds from process start to that answer."""
    deadline = time.perf_counter() + deadline_seconds
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.spec.name} exited with {server.process.returncode}")
        try:
            status, _, _ = get(server.port, path, timeout=deadline_seconds)
            if status == 200:
                return time.perf_counter() - server.started
        except OSError:
            pass
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{server.spec.name} did not answer 200 on {path} in time")
        time.sleep(0.002)  # a poll interval: connection refused until the socket listens


def wait_workers(server: Running, deadline_seconds: float = 60.0) -> None:
    """Wait until the master has forked all its workers."""
    deadline = time.perf_counter() + deadline_seconds
    while len(server.pids()) < WORKERS + 1:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{server.spec.name}: workers did not start")
        time.sleep(0.01)
