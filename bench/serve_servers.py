"""How the serving benchmark starts, probes, measures and stops each server.

Every server runs as its own process tree on 127.0.0.1 with 2 workers and its
own defaults (gunicorn's and Caddy's access logs are off unless asked for; ours
and uvicorn log each request): ours (`servestatic serve`); gunicorn or uvicorn
running a peer (WhiteNoise, PyPI ServeStatic, or the bench's FastAPI app alone),
each from its own venv; nginx (gzip_static, brotli_static, sendfile); and Caddy
(`file_server` with `precompressed br gzip`, one process, GOMAXPROCS left to Go).
Each server's stdout (where access logs go) is a file of its own, which the
bench measures and empties after every scenario; its stderr goes to the run's
log in bench/results/.
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
NGINX_MODULE = Path("/usr/lib/nginx/modules/ngx_http_brotli_static_module.so")
WSGI_APP = "serve_hello:application"
ASGI_APP = "serve_fastapi_app:app"


@dataclass
class ServerSpec:
    """A way to start one server on a port, serving a root."""

    name: str
    kind: str  # ours | gunicorn | uvicorn | granian | nginx | caddy
    app: str = WSGI_APP  # module:attribute that ours chains, or that gunicorn/uvicorn runs
    venv: str = ".venv"  # gunicorn/uvicorn: relative to the repository
    peer: str | None = None  # BENCH_PEER for serve_peer_app: whitenoise | servestatic
    worker_class: str = "gthread"
    threads: int = 1
    preload: bool = False
    serves_static: bool = True  # False: the app alone, the baseline for a miss
    pythonpath: str | None = None  # ours from a patched copy of the package
    extra_env: dict[str, str] = field(default_factory=dict)
    interface: str = "wsgi"  # granian: how it calls the app (wsgi | asgi)
    # Where its static files are served: Granian mounts a directory under a route of
    # its own and cannot mount one at "/", so its static scenarios ask under this prefix.
    static_prefix: str = ""
    # Scenarios it cannot answer as the scenario requires (Granian: no precompressed
    # files, no validators, so no br answer and no 304).
    cannot: tuple[str, ...] = ()
    # nginx: its access log to a file, its stdout (on is nginx's default; issue 24 compares with it on);
    # gunicorn: `--access-logfile -`, to stdout as ours (gunicorn's default is none).
    access_log: bool = False

    @property
    def chains(self) -> bool:
        """Whether a request for no file reaches an app (nginx and Caddy serve files only)."""
        return self.kind in ("ours", "gunicorn", "uvicorn", "granian")

    @property
    def processes(self) -> int:
        """How many serving processes a started server has: Caddy is one Go process."""
        return 1 if self.kind == "caddy" else WORKERS + 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Running:
    """A started server: its process, port, stdout file, and the start time."""

    def __init__(self, spec: ServerSpec, process: subprocess.Popen, port: int, started: float,
                 workdir: tempfile.TemporaryDirectory | None = None, stdout: Path | None = None):
        self.spec = spec
        self.process = process
        self.port = port
        self.started = started
        self.workdir = workdir
        self.stdout = stdout

    def pids(self) -> list[int]:
        """The master and its child processes."""
        master = self.process.pid
        try:
            children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        except OSError:
            children = []
        return [master, *map(int, children)]

    def workers(self) -> list[int]:
        """The children that serve: not multiprocessing's resource tracker, which uvicorn starts."""
        def serves(pid: int) -> bool:
            try:
                return b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                return False
        return [pid for pid in self.pids()[1:] if serves(pid)]

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
        """User + system CPU of the master and its children so far (from /proc/PID/stat)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / ticks

    def take_stdout(self) -> int:
        """Bytes written to stdout (the access log) since the last call; empties the file.

        The server opened it for appending, so after the truncation its next
        write lands at the new end, 0: no file grows across a whole run.
        """
        with self.stdout.open("r+b") as file:
            size = file.seek(0, os.SEEK_END)
            file.truncate(0)
        return size

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


def _fill(template: str, workdir: str, **values: object) -> Path:
    """Write BENCH/`template` into `workdir` with its {placeholders} filled; returns the file."""
    config = Path(workdir) / template.removesuffix(".template")
    config.write_text((BENCH / template).read_text().format(prefix=workdir, **values))
    return config


def command(spec: ServerSpec, root: Path, port: int, workdir: str) -> tuple[list[str], dict[str, str]]:
    """The argv and the environment additions that start `spec` on `port`."""
    env: dict[str, str] = {"BENCH_ROOT": str(root)}
    python_bin = REPO / spec.venv / "bin"
    if spec.kind == "ours":
        argv = [str(REPO / ".venv" / "bin" / "servestatic"), "serve", str(root)]
        env.update({
            "SERVESTATIC_BIND": f"127.0.0.1:{port}",
            "WEB_CONCURRENCY": str(WORKERS),
            "SERVESTATIC_APP": spec.app,
            "SERVESTATIC_LOG_LEVEL": "warning",
        })
        if spec.pythonpath:
            env["PYTHONPATH"] = spec.pythonpath
    elif spec.kind == "gunicorn":
        argv = [str(python_bin / "gunicorn"), spec.app, "--chdir", str(BENCH),
                "--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS),
                "--worker-class", spec.worker_class, "--keep-alive", "75",
                "--worker-tmp-dir", "/dev/shm", "--log-level", "warning"]
        if spec.worker_class == "gthread":
            argv += ["--threads", str(spec.threads)]
        if spec.preload:
            argv.append("--preload")
        if spec.access_log:
            argv += ["--access-logfile", "-"]
    elif spec.kind == "uvicorn":
        argv = [str(python_bin / "uvicorn"), spec.app, "--app-dir", str(BENCH),
                "--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS),
                "--timeout-keep-alive", "75"]  # its default log level, info, logs each request
    elif spec.kind == "granian":
        argv = [str(python_bin / "granian"), "--interface", spec.interface, "--host", "127.0.0.1",
                "--port", str(port), "--workers", str(WORKERS), "--working-dir", str(BENCH),
                "--access-log",  # to stdout, as ours logs by default
                "--log-level", "warning"]
        if spec.serves_static:
            argv += ["--static-path-route", spec.static_prefix, "--static-path-mount", str(root)]
        argv.append(spec.app)
    elif spec.kind == "nginx":
        access_log = "/dev/stdout" if spec.access_log else "off"  # a file: the one take_stdout reads
        config = _fill("nginx.conf.template", workdir, module=NGINX_MODULE, workers=WORKERS,
                       port=port, root=root, access_log=access_log)
        argv = ["nginx", "-e", str(Path(workdir) / "error.log"), "-p", workdir, "-c", str(config)]
    elif spec.kind == "caddy":
        config = _fill("Caddyfile.template", workdir, port=port, root=root)
        argv = ["caddy", "run", "--config", str(config), "--adapter", "caddyfile"]
        env.update({"XDG_CONFIG_HOME": workdir, "XDG_DATA_HOME": workdir, "HOME": workdir})
    else:
        raise ValueError(spec.kind)
    if spec.peer:
        env["BENCH_PEER"] = spec.peer
    env.update(spec.extra_env)
    return argv, env


def start(spec: ServerSpec, root: Path, log_path: Path) -> Running:
    """Start a server on a free port; returns at once (see `wait_ready`)."""
    port = free_port()
    workdir = tempfile.TemporaryDirectory(prefix=f"bench-{spec.kind}-")
    argv, extra = command(spec, root, port, workdir.name)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("SERVESTATIC_", "WEB_CONCURRENCY", "PORT", "GUNICORN", "BENCH_"))}
    env.update(extra)
    stdout = Path(workdir.name) / "stdout"
    with stdout.open("ab") as out, log_path.open("ab") as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, cwd=BENCH, env=env, stdout=out, stderr=err)
    return Running(spec, process, port, started, workdir, stdout)


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
    """Wait until the master has started all its workers."""
    deadline = time.perf_counter() + deadline_seconds
    while len(server.workers()) + 1 < server.spec.processes:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{server.spec.name}: workers did not start")
        time.sleep(0.01)
