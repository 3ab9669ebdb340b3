"""Real caches in front of a real `servestatic serve`, for the CDN recipe tests; no tests here.

Varnish and nginx run as plain foreground processes on free loopback ports,
each in a temporary directory of its own, with the recipe files from docs/cdn/
as they are: only the addresses (and nginx's cache directory) are replaced,
each by one exact string substitution that fails loudly if the recipe changes.
Readiness is the proxy answering an HTTP request, polled with a deadline.

The origin's JSON access log (its stdout) says what reached it: that is how
the tests count origin fetches and see 304s.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests.support import REPO, needs, needs_tool, wait_for
from tests.support.server import ServerProcess, free_port, wait_until_answering

RECIPES = REPO / "docs" / "cdn"


def substitute(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert text.count(old) == 1, f"the recipe no longer holds exactly one {old!r}"
        text = text.replace(old, new)
    return text


class Origin(ServerProcess):
    """`servestatic serve` with its JSON access log on, on a port that survives restarts."""

    def __init__(self, root: Path, port: int | None = None, env: dict[str, str] | None = None):
        port = port or free_port()
        super().__init__(root, env={"SERVESTATIC_ACCESS_LOG": "json",
                                    "SERVESTATIC_BIND": f"127.0.0.1:{port}", **(env or {})})
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.syncs = 0  # markers sent by `requests`

    def requests(self, path: str | None = None) -> list[dict[str, object]]:
        """The access log entries so far, for one path or all but the health checks.

        The origin writes its log in batches (up to 0.1 s late), so this first asks
        it for its health path with a marker and waits for the marker's line: its one
        worker writes lines in order, so every request before it is in the log too.
        """
        health = self.env.get("SERVESTATIC_HEALTH_PATH", "/healthz")
        self.syncs += 1
        marker = f"sync={self.syncs}"
        httpx.get(f"{self.url}{health}?{marker}", timeout=10).raise_for_status()

        def entries_up_to_the_marker() -> list[dict[str, Any]] | None:
            entries = [json.loads(line) for line in self.complete_lines() if line.startswith("{")]
            logged = any(entry["path"] == health and entry["query"] == marker for entry in entries)
            return entries if logged else None

        entries = wait_for(entries_up_to_the_marker, 10, lambda: f"the origin to log {marker}:\n{self.log()}")
        return [entry for entry in entries
                if entry["path"] != health and (path is None or entry["path"] == path)]


class Proxy:
    """A cache process in the foreground, stopped with SIGTERM (its whole group)."""

    name = "proxy"

    def __init__(self, workdir: Path):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{self.name}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 60.0) -> Proxy:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            cwd=self.workdir, start_new_session=True)
        try:
            wait_until_answering(self.name, self.process, self.url + "/healthz", self.log, timeout)
        except TimeoutError:
            self.stop()
            raise
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class Varnish(Proxy):
    """varnishd -F with docs/cdn/varnish.vcl pointed at the origin."""

    name = "varnish"

    def __init__(self, workdir: Path, origin_port: int, variant: str | None = None):
        """`variant`: a file of docs/cdn/ that includes the recipe (varnish-xkey.vcl), loaded
        in its place, beside it."""
        super().__init__(workdir)
        self.varnishd = find_tool("varnishd")
        vcl = substitute((RECIPES / "varnish.vcl").read_text(), {
            '.host = "127.0.0.1";\n    .port = "8000";':
                f'.host = "127.0.0.1";\n    .port = "{origin_port}";',
            '.host = "127.0.0.1"; .port = "8000";': f'.host = "127.0.0.1"; .port = "{origin_port}";',
        })
        self.vcl = workdir / "servestatic.vcl"
        self.vcl.write_text(vcl)
        if variant is not None:
            if "xkey" in variant:
                needs(any(Path("/usr/lib").glob("*/varnish/vmods/libvmod_xkey.so")),
                      "Varnish's xkey vmod is not installed (scripts/install/caches.sh: varnish-modules)")
            self.vcl = workdir / variant
            shutil.copyfile(RECIPES / variant, self.vcl)

    def command(self) -> list[str]:
        # -j none: no privilege separation, so it runs as whoever runs the tests;
        # -T none: no management port; -n: its working directory is ours.
        return [self.varnishd, "-F", "-j", "none", "-T", "none", "-n", str(self.workdir / "varnish"),
                "-a", f"127.0.0.1:{self.port}", "-f", str(self.vcl), "-s", "malloc,64m"]


class Nginx(Proxy):
    """nginx with docs/cdn/nginx.conf inside a minimal main configuration."""

    name = "nginx"

    def __init__(self, workdir: Path, origin_port: int):
        super().__init__(workdir)
        self.nginx = find_tool("nginx")
        recipe = substitute((RECIPES / "nginx.conf").read_text(), {
            "server 127.0.0.1:8000;": f"server 127.0.0.1:{origin_port};",
            "listen 80;": f"listen 127.0.0.1:{self.port};",
            "proxy_cache_path /var/cache/nginx/servestatic ":
                f"proxy_cache_path {workdir / 'cache'} ",
        })
        (workdir / "servestatic.conf").write_text(recipe)
        # As root, nginx's workers would switch to `nobody`, who cannot write our
        # temporary directory: keep them as the user running the tests.
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
        temp = {name: workdir / "temp" / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        for directory in temp.values():
            directory.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "nginx.conf"
        self.conf.write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {workdir / 'nginx.pid'};\n"
            f"error_log {workdir / 'error.log'} warn;\n"
            "events { worker_connections 256; }\n"
            "http {\n    access_log off;\n"
            f"    client_body_temp_path {temp['body']};\n    proxy_temp_path {temp['proxy']};\n"
            f"    fastcgi_temp_path {temp['fastcgi']};\n    uwsgi_temp_path {temp['uwsgi']};\n"
            f"    scgi_temp_path {temp['scgi']};\n"
            f"    include {workdir / 'servestatic.conf'};\n}}\n"
        )

    def command(self) -> list[str]:
        return [self.nginx, "-p", str(self.workdir), "-c", str(self.conf)]


def find_tool(name: str) -> str:
    """A tool on PATH or in /usr/sbin (where Debian puts varnishd and nginx, and
    which a user's PATH may lack); skips, or fails under CI=true, when missing."""
    sbin = Path("/usr/sbin", name)
    return str(sbin) if sbin.exists() and not shutil.which(name) else needs_tool(name)
