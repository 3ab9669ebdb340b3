"""The serving benchmark: ours with its defaults against WhiteNoise, ServeStatic, Caddy and nginx.

Two suites, each one command (run bench/install_peers.sh first: wrk, nginx,
Caddy, FastAPI in .venv, the peers' venvs):

    # Static files and a chained WSGI app (issue 11), about 10 minutes on 2 cores:
    .venv/bin/python bench/serve_bench.py --suite wsgi

    # ASGI mode around a FastAPI app (issue 10), about 7 minutes on 2 cores:
    .venv/bin/python bench/serve_bench.py --suite asgi

    # A smoke run of either (about 1 minute, 30 s for asgi): every server and scenario once
    .venv/bin/python bench/serve_bench.py --suite wsgi --duration 1 --warmup 0 --repeats 1 --sizes 20000

Both print the estimated duration before they start. The first run also builds
the trees under .cache/bench-serve/ (the 100,000-file one takes about a minute).

Every server runs with its own defaults, 2 workers (`WEB_CONCURRENCY=2` for ours),
on 127.0.0.1. The headline row, `ours`, is what a user gets: `servestatic serve`
with the access log on (SERVESTATIC_ACCESS_LOG unset: text lines on stdout) and
an app chained (SERVESTATIC_APP). `ours-nolog` and `ours-json` differ from it
only in SERVESTATIC_ACCESS_LOG (off, json), so the log's cost shows.

wsgi suite: ours, ours-nolog, ours-json (all chaining the hello WSGI app in
serve_hello.py); gunicorn + WhiteNoise (gthread, 2 workers x 4 threads) around
the same app; Caddy (`file_server`, `precompressed br gzip`); nginx
(gzip_static, brotli_static); Granian (its `--static-path-mount` under /static, since it
cannot mount a directory at /, and the same WSGI app; its access log on; it has no
precompressed files and no validators, so no br and no 304 scenario).
nginx runs twice: as deployed, its access log on (to a file, nginx's default), the
peer of issue 24's bars, which say every peer has its log on; and `nginx-nolog`,
its fastest. WhiteNoise and Caddy run with their own default, no access log.
Scenarios: a 1 KiB HTML file, a 100 KiB JS file
with `Accept-Encoding: br, gzip` (checked to come back as br), a 5 MiB binary,
a 304 revalidation (with the ETag that server sent), and a miss that falls
through to the chained app (nginx and Caddy: skipped). Then start-up and memory
with a 100,000-file manifest: time from process start to the first 200, and
RSS/PSS of master and workers, idle and after random hits over the tree.

asgi suite: ours-asgi and ours-asgi-nolog chaining the FastAPI app of
serve_fastapi_app.py; PyPI ServeStatic's `ServeStaticASGI` around the same app on
gunicorn's `-k asgi` worker and on uvicorn (with uvloop and httptools; its
access log on, its default); the same app alone on gunicorn's `asgi` worker,
the baseline for a miss, with its access log to stdout as ours (issue 24) and without
(`fastapi-gunicorn-asgi-nolog`); Granian running the same app as ASGI with its static mount.
Scenarios: the 1 KiB HTML file, the 100 KiB JS as br,
the 304, and two misses through to the app (a plain-text hello and a JSON
route with a path and a query parameter).

Rounds: every server runs all its scenarios, then the next server; the order
rotates each round so the machine's changing load falls on every server alike.
Per scenario the summary gives the median req/s over rounds, max/min over rounds
(steadiness), wrk's p50 and p99 latency (medians over rounds), the server's own
CPU time per request (master + workers, from /proc; on a shared machine req/s
mostly says how much CPU a server got, CPU per request what it needed), the
access log's bytes per request, and ratios against the suite's references (the
better WhiteNoise, Caddy, and nginx for the 5 MiB file; or the better
ServeStatic ASGI, and the app alone; and Granian). A table of the issues' targets follows
(issue 24's: nginx-class static files and Granian-class app requests).
A scenario whose check fails for a server (a wrong status, not brotli) is
reported and skipped for that server; the run goes on.

Results go to bench/results/serve-TIMESTAMP.json (every round, every figure) and
the Markdown summary to stdout; the servers' stderr to bench/results/serve-TIMESTAMP.log.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import serve_hello
import serve_servers as servers
import serve_sites as sites
from serve_servers import ASGI_APP, ServerSpec

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
WRK_SCRIPT = BENCH / "serve_wrk.lua"
PEER_WSGI = "serve_peer_app:application"
PEER_ASGI = "serve_peer_asgi:application"
LOG_OFF = {"SERVESTATIC_ACCESS_LOG": "off"}
GRANIAN_CANNOT = ("js-100k-br", "revalidate-304")  # no precompressed files, no ETag


def _venv(name: str) -> str:
    return f".cache/bench-venvs/serve-{name}"


SPECS = {spec.name: spec for spec in (
    # Ours with the defaults a user gets: access log on (text), an app chained.
    ServerSpec("ours", "ours"),
    ServerSpec("ours-nolog", "ours", extra_env=LOG_OFF),
    ServerSpec("ours-json", "ours", extra_env={"SERVESTATIC_ACCESS_LOG": "json"}),
    ServerSpec("whitenoise-gthread", "gunicorn", PEER_WSGI, _venv("whitenoise"), "whitenoise",
               threads=4),
    ServerSpec("whitenoise-sync", "gunicorn", PEER_WSGI, _venv("whitenoise"), "whitenoise",
               worker_class="sync"),
    ServerSpec("servestatic-gthread", "gunicorn", PEER_WSGI, _venv("servestatic"), "servestatic",
               threads=4),
    ServerSpec("servestatic-sync", "gunicorn", PEER_WSGI, _venv("servestatic"), "servestatic",
               worker_class="sync"),
    # Start-up only: WhiteNoise scanning once in the master instead of in each worker.
    ServerSpec("whitenoise-gthread-preload", "gunicorn", PEER_WSGI, _venv("whitenoise"),
               "whitenoise", threads=4, preload=True),
    # nginx as deployed (its access log on, to a file), and at its fastest (log off).
    ServerSpec("nginx", "nginx", access_log=True),
    ServerSpec("nginx-nolog", "nginx"),
    ServerSpec("caddy", "caddy"),
    # ASGI mode: ours chaining the FastAPI app, PyPI ServeStatic around it, the app alone.
    ServerSpec("ours-asgi", "ours", ASGI_APP),
    ServerSpec("ours-asgi-nolog", "ours", ASGI_APP, extra_env=LOG_OFF),
    ServerSpec("servestatic-asgi-gunicorn", "gunicorn", PEER_ASGI, _venv("servestatic-asgi"),
               worker_class="asgi"),
    ServerSpec("servestatic-asgi-uvicorn", "uvicorn", PEER_ASGI, _venv("servestatic-uvicorn")),
    ServerSpec("fastapi-gunicorn-asgi", "gunicorn", ASGI_APP, worker_class="asgi",
               serves_static=False, access_log=True),
    ServerSpec("fastapi-gunicorn-asgi-nolog", "gunicorn", ASGI_APP, worker_class="asgi",
               serves_static=False),
    # Granian (Rust, its access log on) with its static mount and the same apps.
    ServerSpec("granian", "granian", venv=_venv("granian"), static_prefix="/static",
               cannot=GRANIAN_CANNOT),
    ServerSpec("granian-asgi", "granian", ASGI_APP, _venv("granian"), interface="asgi",
               static_prefix="/static", cannot=GRANIAN_CANNOT),
)}


@dataclass(frozen=True)
class Scenario:
    """One request, repeated by wrk: what it asks for and what a correct answer looks like."""

    path: str
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    static: bool = True  # False: a miss, answered by the chained app
    status: int = 200
    encoding: str | None = None  # the Content-Encoding the answer must have
    body: bytes | None = None  # the exact body the answer must have


# A browser's navigation head (Chromium's, 16 fields): what an origin reads per request
# behind a CDN, which adds its own fields besides. wrk's bare head has one (Host).
BROWSER_HEAD = {
    "Connection": "keep-alive", "Cache-Control": "max-age=0",
    "sec-ch-ua": '"Chromium";v="130", "Not?A_Brand";v="99"', "sec-ch-ua-mobile": "?0",
    "sec-ch-ua-platform": '"Linux"', "Upgrade-Insecure-Requests": "1",
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/130.0.0.0 Safari/537.36",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
    "Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-User": "?1",
    "Sec-Fetch-Dest": "document", "Accept-Encoding": "gzip, deflate, br, zstd",
    "Accept-Language": "en-US,en;q=0.9", "Referer": "http://127.0.0.1/",
}

SCENARIOS = {
    "html-1k": Scenario(sites.HTML_1K),
    # The same file asked with a browser's head: the cost of reading real heads.
    "html-1k-browser": Scenario(sites.HTML_1K, BROWSER_HEAD),
    "js-100k-br": Scenario(sites.JS_100K, {"Accept-Encoding": "br, gzip"}, encoding="br"),
    # The same file to a client that asks for no coding: 100 KiB, past the inline limit (sendfile).
    "js-100k": Scenario(sites.JS_100K),
    "blob-5m": Scenario(sites.BLOB_5M),
    # Asked first without If-None-Match; the probe adds the ETag that server sent.
    "revalidate-304": Scenario(sites.JS_100K, {"Accept-Encoding": "br, gzip"}, status=304),
    "miss-chained": Scenario(sites.MISS, static=False, body=serve_hello.BODY),
    "miss-json": Scenario(sites.MISS_JSON, static=False, body=b'{"item_id":42,"q":"bench"}'),
}


@dataclass(frozen=True)
class Reference:
    """A column of ratios: ours (and every row) against the best of these servers."""

    label: str
    servers: tuple[str, ...]
    scenarios: tuple[str, ...] | None = None  # None: every scenario


@dataclass(frozen=True)
class Suite:
    """What one command runs: servers, scenarios, references, start-up, and the targets."""

    servers: tuple[str, ...]
    scenarios: tuple[str, ...]
    headline: str
    references: tuple[Reference, ...]
    startup_servers: tuple[str, ...]
    sizes: tuple[int, ...]
    targets: Callable[[Summary], list[tuple[str, str, str]]]


def wsgi_targets(summary: Summary) -> list[tuple[str, str, str]]:
    """Issue 11's targets, each as (target, measured, met)."""
    rows = []
    for scenario in ("html-1k", "js-100k-br", "revalidate-304"):
        rows.append(summary.ratio_row(f"{scenario}: ours ≥ 3× WhiteNoise", "ours", "WhiteNoise",
                                      scenario, 3.0))
        rows.append(summary.ratio_row(f"{scenario}: ours ≥ 1× Caddy", "ours", "Caddy", scenario, 1.0))
    rows.append(summary.ratio_row("blob-5m: ours ≥ 0.95× nginx (issues 11, 24)", "ours", "nginx", "blob-5m",
                                  0.95))
    rows.append(summary.ratio_row("miss-chained: ours ≥ 1× WhiteNoise", "ours", "WhiteNoise",
                                  "miss-chained", 1.0))
    rows += issue_24_rows(summary, "ours")
    rows += summary.steadiness_rows("ours")
    for logged, form in (("ours", "text"), ("ours-json", "json")):
        rows.append(summary.worst_row(
            f"access log {form} costs ≤ 10%: {logged} ≥ 0.90× ours-nolog req/s (worst scenario)",
            lambda scenario, logged=logged: summary.server_ratio(logged, "ours-nolog", scenario),
            0.90, higher_is_better=True))
    for count, rounds in summary.startup.get("ours", {}).items():
        rss = max(r["loaded"]["max_worker_rss_kib"] for r in rounds) / 1024
        first = max(r["first_200_s"] for r in rounds)
        rows.append((f"{count:,} files: worker RSS after load ≤ 100 MiB (worst round)",
                     f"{rss:.1f} MiB", _met(rss <= 100)))
        rows.append((f"{count:,} files: start to first 200 < 0.5 s (worst round)",
                     f"{first:.3f} s", _met(first < 0.5)))
    return rows


def issue_24_rows(summary: Summary, server: str) -> list[tuple[str, str, str]]:
    """Issue 24's bars for static files and the WSGI app: nginx-class static, Granian-class app
    (every peer with its access log on, as the issue measured: `nginx`, not `nginx-nolog`)."""
    rows = [summary.ratio_row(f"{scenario}: {server} ≥ 0.8× nginx", server, "nginx", scenario, 0.8)
            for scenario in ("html-1k", "revalidate-304", "js-100k")]
    for scenario in ("html-1k", "js-100k"):  # every static request Granian can answer
        rows.append(summary.ratio_row(f"{scenario}: {server} ≥ 1× Granian", server, "Granian",
                                      scenario, 1.0))
    rows.append(summary.cpu_row(f"blob-5m: {server} CPU per request ≤ 1.3× nginx", server, "nginx",
                                "blob-5m", 1.3))
    rows.append(summary.ratio_row(f"miss-chained (WSGI app): {server} ≥ 0.6× Granian", server,
                                  "Granian", "miss-chained", 0.6))
    return rows


def asgi_targets(summary: Summary) -> list[tuple[str, str, str]]:
    """Issue 10's targets, each as (target, measured, met)."""
    rows = []
    for scenario in ("html-1k", "js-100k-br", "revalidate-304"):
        rows.append(summary.ratio_row(f"{scenario}: ours-asgi ≥ 2× ServeStatic ASGI", "ours-asgi",
                                      "ServeStatic ASGI", scenario, 2.0))
    for scenario in ("miss-chained", "miss-json"):
        rows.append(summary.ratio_row(f"{scenario}: ours-asgi ≥ 0.95× the app alone", "ours-asgi",
                                      "app alone", scenario, 0.95))
    for scenario in ("miss-chained", "miss-json"):
        rows.append(summary.ratio_row(f"{scenario}: ours-asgi ≥ 0.8× Granian (issue 24)", "ours-asgi",
                                      "Granian", scenario, 0.8))
    rows += summary.steadiness_rows("ours-asgi")
    return rows


SUITES = {
    "wsgi": Suite(
        servers=("ours", "ours-nolog", "ours-json", "whitenoise-gthread", "caddy", "nginx", "nginx-nolog",
                 "granian"),
        scenarios=("html-1k", "html-1k-browser", "js-100k-br", "js-100k", "blob-5m", "revalidate-304",
                   "miss-chained"),
        headline="ours",
        references=(Reference("WhiteNoise", ("whitenoise-gthread", "whitenoise-sync")),
                    Reference("Caddy", ("caddy",)),
                    Reference("nginx", ("nginx",)),
                    Reference("nginx, log off", ("nginx-nolog",)),
                    Reference("Granian", ("granian",))),
        startup_servers=("ours",), sizes=(100_000,), targets=wsgi_targets),
    "asgi": Suite(
        servers=("ours-asgi", "ours-asgi-nolog", "servestatic-asgi-gunicorn",
                 "servestatic-asgi-uvicorn", "fastapi-gunicorn-asgi", "fastapi-gunicorn-asgi-nolog",
                 "granian-asgi"),
        scenarios=("html-1k", "js-100k-br", "revalidate-304", "miss-chained", "miss-json"),
        headline="ours-asgi",
        references=(Reference("ServeStatic ASGI", ("servestatic-asgi-gunicorn",
                                                   "servestatic-asgi-uvicorn")),
                    Reference("app alone", ("fastapi-gunicorn-asgi",),
                              scenarios=("miss-chained", "miss-json")),
                    Reference("app alone, log off", ("fastapi-gunicorn-asgi-nolog",),
                              scenarios=("miss-chained", "miss-json")),
                    Reference("Granian", ("granian-asgi",))),
        startup_servers=(), sizes=(), targets=asgi_targets),
}


def scenario_request(name: str, spec: ServerSpec | None = None) -> tuple[str, dict[str, str]]:
    """Path and headers of a scenario (the 304 gets its If-None-Match per server); a static
    file under the server's `static_prefix`."""
    scenario = SCENARIOS[name]
    prefix = spec.static_prefix if spec is not None and scenario.static else ""
    return prefix + scenario.path, dict(scenario.headers)


def applies(spec: ServerSpec, name: str) -> bool:
    """Whether a server can answer a scenario at all (nginx and Caddy have no app behind them)."""
    if name in spec.cannot:
        return False
    return spec.serves_static if SCENARIOS[name].static else spec.chains


def probe(server: servers.Running, name: str) -> tuple[dict[str, str], dict[str, object]]:
    """One request as wrk will make it; checks the answer and returns the headers to send."""
    scenario = SCENARIOS[name]
    path, headers = scenario_request(name, server.spec)
    status, answer, body = servers.get(server.port, path, headers)
    if scenario.status == 304:
        headers = {**headers, "If-None-Match": answer.get("etag", "")}
        status, answer, body = servers.get(server.port, path, headers)
    problem = None
    if status != scenario.status:
        problem = f"answered {status}, expected {scenario.status}"
    elif scenario.encoding and answer.get("content-encoding") != scenario.encoding:
        problem = f"Content-Encoding {answer.get('content-encoding')!r}, expected {scenario.encoding!r}"
    elif scenario.body is not None and body != scenario.body:
        problem = f"body {body[:80]!r}, expected {scenario.body!r}"
    if problem:
        raise RuntimeError(f"{server.spec.name} {name}: {path} {problem}")
    return headers, {"status": status, "body_bytes": len(body),
                     "content_encoding": answer.get("content-encoding"), "etag": answer.get("etag")}


def wrk(port: int, path: str, headers: dict[str, str], seconds: int, connections: int,
        threads: int, env: dict[str, str] | None = None) -> dict[str, object]:
    """Run wrk once; its JSON summary (serve_wrk.lua) plus the CPU seconds wrk itself used."""
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
            "--timeout", "10s", "-s", str(WRK_SCRIPT)]
    for key, value in headers.items():
        argv += ["-H", f"{key}: {value}"]
    argv.append(f"http://127.0.0.1:{port}{path}")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = subprocess.run(argv, check=True, capture_output=True, text=True,
                            env={**os.environ, **(env or {})}).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = json.loads(output.strip().splitlines()[-1])
    summary["wrk_cpu_s"] = round((after.ru_utime - before.ru_utime)
                                 + (after.ru_stime - before.ru_stime), 3)
    return summary


def ready_path(spec: ServerSpec) -> str:
    return spec.static_prefix + sites.HTML_1K if spec.serves_static else sites.MISS


def measure(server: servers.Running, name: str, args: argparse.Namespace) -> dict[str, object]:
    """Warm up, then one measured wrk run of a scenario against a started server."""
    headers, answer = probe(server, name)
    path, _ = scenario_request(name, server.spec)
    if args.warmup:
        wrk(server.port, path, headers, args.warmup, args.connections, args.threads)
    server.take_stdout()
    cpu_before = server.cpu_seconds()
    load = os.getloadavg()[0]
    summary = wrk(server.port, path, headers, args.duration, args.connections, args.threads)
    cpu = server.cpu_seconds() - cpu_before
    log_bytes = server.take_stdout()
    seconds = summary["duration_us"] / 1e6
    requests = max(summary["requests"], 1)
    return {
        **summary, "answer": answer, "load1": load,
        "errors": sum(summary[k] for k in ("connect", "read", "write", "status", "timeout")),
        "rps": summary["requests"] / seconds, "bytes_per_s": summary["bytes"] / seconds,
        "server_cpu_s": round(cpu, 3), "server_cpu_us_per_req": cpu / requests * 1e6,
        "log_bytes": log_bytes, "log_bytes_per_req": log_bytes / requests,
    }


def throughput_round(spec: ServerSpec, root: Path, scenarios: list[str], args: argparse.Namespace,
                     log_path: Path) -> dict[str, dict[str, object]]:
    """Start one server, run every scenario that applies to it, stop it."""
    server = servers.start(spec, root, log_path)
    results: dict[str, dict[str, object]] = {}
    try:
        servers.wait_ready(server, ready_path(spec))
        servers.wait_workers(server)
        for name in scenarios:
            if not applies(spec, name):
                continue
            try:
                result = results[name] = measure(server, name, args)
            except RuntimeError as error:
                results[name] = {"error": str(error)}
                print(f"  {spec.name:26} {name:15} FAILED: {error}", flush=True)
                continue
            print(f"  {spec.name:26} {name:15} {result['rps']:9.0f} req/s "
                  f"{result['bytes_per_s'] / 2**20:8.1f} MiB/s "
                  f"p50 {result['p50_us'] / 1000:6.2f} ms p99 {result['p99_us'] / 1000:6.2f} ms "
                  f"{result['server_cpu_us_per_req']:6.0f} us cpu/req  "
                  f"log {result['log_bytes_per_req']:4.0f} B/req  errors {result['errors']}  "
                  f"wrk cpu {result['wrk_cpu_s']} s  load {result['load1']:.1f}", flush=True)
    finally:
        server.stop()
    return results


def startup_round(spec: ServerSpec, count: int, args: argparse.Namespace,
                  log_path: Path) -> dict[str, object]:
    """Start-up time to the first 200 and memory, idle and after random hits over the tree."""
    root = sites.many_files(count)
    server = servers.start(spec, root, log_path)
    try:
        first = servers.wait_ready(server, sites.many_files_url(count - 1))
        servers.wait_workers(server)
        idle = server.memory()
        summary = wrk(server.port, "/", {}, args.tree_load, args.connections, args.threads,
                      env={"WRK_TREE": str(count)})
        loaded = server.memory()
    finally:
        server.stop()
    print(f"  {spec.name:26} {count:7} files: first 200 after {first:6.3f} s; worker RSS "
          f"{idle['max_worker_rss_kib'] / 1024:6.1f} MiB idle, "
          f"{loaded['max_worker_rss_kib'] / 1024:6.1f} MiB after {summary['requests']} random hits; "
          f"total PSS {loaded['total_pss_kib'] / 1024:6.1f} MiB", flush=True)
    return {"first_200_s": first, "idle": idle, "loaded": loaded,
            "load_requests": summary["requests"], "load_status_errors": summary["status"]}


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


class Summary:
    """Medians and ratios over the rounds of a run, and the Markdown that shows them."""

    def __init__(self, suite: Suite, scenarios: list[str],
                 runs: dict[str, list[dict[str, dict[str, object]]]],
                 startup: dict[str, dict[int, list[dict[str, object]]]]):
        self.suite = suite
        self.scenarios = scenarios
        self.startup = startup
        self.stats: dict[str, dict[str, dict[str, float]]] = {}
        self.failures: list[str] = []
        for name, rounds in runs.items():
            self.stats[name] = {}
            for scenario in scenarios:
                done = [r[scenario] for r in rounds if scenario in r and "error" not in r[scenario]]
                self.failures += sorted({r[scenario]["error"] for r in rounds
                                         if "error" in r.get(scenario, {})})
                if not done:
                    continue
                rps = [r["rps"] for r in done]
                self.stats[name][scenario] = {
                    "rounds": len(done), "rps": median(rps), "steadiness": max(rps) / min(rps),
                    "mib_s": median([r["bytes_per_s"] for r in done]) / 2**20,
                    "p50_ms": median([r["p50_us"] for r in done]) / 1000,
                    "p99_ms": median([r["p99_us"] for r in done]) / 1000,
                    "cpu_us": median([r["server_cpu_us_per_req"] for r in done]),
                    "log_b": median([r["log_bytes_per_req"] for r in done]),
                    "errors": sum(r["errors"] for r in done),
                }

    def rps(self, server: str, scenario: str) -> float | None:
        return self.stats.get(server, {}).get(scenario, {}).get("rps")

    def server_ratio(self, server: str, other: str, scenario: str) -> float | None:
        mine, theirs = self.rps(server, scenario), self.rps(other, scenario)
        return mine / theirs if mine and theirs else None

    def reference(self, label: str) -> Reference:
        return next(ref for ref in self.suite.references if ref.label == label)

    def best(self, ref: Reference, scenario: str) -> str | None:
        """The reference's fastest server in this scenario, among those that ran it."""
        if ref.scenarios is not None and scenario not in ref.scenarios:
            return None
        ran = [name for name in ref.servers if self.rps(name, scenario)]
        return max(ran, key=lambda name: self.rps(name, scenario), default=None)

    def ratio(self, server: str, label: str, scenario: str) -> tuple[float, str] | None:
        best = self.best(self.reference(label), scenario)
        value = self.server_ratio(server, best, scenario) if best else None
        return (value, best) if value else None

    def ratio_row(self, target: str, server: str, label: str, scenario: str,
                  bound: float) -> tuple[str, str, str]:
        found = self.ratio(server, label, scenario)
        if found is None:
            return target, "not measured", _met(None)
        value, best = found
        return target, f"{value:.2f}× ({best})", _met(value >= bound)

    def cpu_row(self, target: str, server: str, other: str, scenario: str,
                bound: float) -> tuple[str, str, str]:
        """Server CPU per request against another server's, lower is better."""
        mine = self.stats.get(server, {}).get(scenario, {}).get("cpu_us")
        theirs = self.stats.get(other, {}).get(scenario, {}).get("cpu_us")
        if not mine or not theirs:
            return target, "not measured", _met(None)
        ratio = mine / theirs
        return target, f"{ratio:.2f}× ({mine:.0f} against {theirs:.0f} µs)", _met(ratio <= bound)

    def worst_row(self, target: str, measure: Callable[[str], float | None], bound: float,
                  higher_is_better: bool) -> tuple[str, str, str]:
        """One row for a bound every scenario must keep: the worst scenario's figure."""
        values = {s: v for s in self.scenarios if (v := measure(s)) is not None}
        if not values:
            return target, "not measured", _met(None)
        pick = min if higher_is_better else max
        scenario = pick(values, key=values.__getitem__)
        value = values[scenario]
        ok = value >= bound if higher_is_better else value <= bound
        return target, f"{value:.2f} ({scenario})", _met(ok)

    def steadiness_rows(self, server: str) -> list[tuple[str, str, str]]:
        stats = self.stats.get(server, {})
        return [
            self.worst_row(f"steady: {server} max/min over rounds ≤ 1.3 (worst scenario)",
                           lambda s: stats[s]["steadiness"] if s in stats else None, 1.3, False),
            self.worst_row(f"steady: {server} p99 ≤ 3× p50 (worst scenario)",
                           lambda s: stats[s]["p99_ms"] / stats[s]["p50_ms"] if s in stats else None,
                           3.0, False),
        ]

    def scenario_table(self, scenario: str) -> list[str]:
        refs = [ref for ref in self.suite.references if self.best(ref, scenario)]
        head = ["server", "req/s", "max/min", "p50 ms", "p99 ms", "CPU µs/req", "log B/req"]
        if scenario == "blob-5m":
            head.insert(2, "MiB/s")
        head += [f"× {ref.label}" for ref in refs]
        lines = [f"#### {scenario}", "", "| " + " | ".join(head) + " |",
                 "|---|" + "--:|" * (len(head) - 1)]
        for server, by_scenario in self.stats.items():
            stats = by_scenario.get(scenario)
            if stats is None:
                continue
            cells = [server, f"{stats['rps']:,.0f}", f"{stats['steadiness']:.2f}",
                     f"{stats['p50_ms']:.2f}", f"{stats['p99_ms']:.2f}", f"{stats['cpu_us']:,.0f}",
                     f"{stats['log_b']:.0f}"]
            if scenario == "blob-5m":
                cells.insert(2, f"{stats['mib_s']:,.0f}")
            for ref in refs:
                found = self.ratio(server, ref.label, scenario)
                cells.append(f"{found[0]:.2f}" if found else "-")
            lines.append("| " + " | ".join(cells) + " |")
        return [*lines, ""]

    def markdown(self) -> str:
        lines = []
        for scenario in self.scenarios:
            if any(scenario in by_scenario for by_scenario in self.stats.values()):
                lines += self.scenario_table(scenario)
        errors = {server: sum(s["errors"] for s in by.values()) for server, by in self.stats.items()}
        if any(errors.values()):
            lines += [f"wrk errors (connect/read/write/status/timeout): {errors}", ""]
        if self.failures:
            lines += ["Scenarios that failed their check (skipped):", "",
                      *[f"- {failure}" for failure in self.failures], ""]
        if self.startup:
            lines += [summarize_startup(self.startup), ""]
        lines += ["#### Targets", "", "| target | measured | met |", "|---|--:|---|"]
        lines += [f"| {target} | {measured} | {met} |" for target, measured, met
                  in self.suite.targets(self)]
        return "\n".join(lines)


def summarize_startup(runs: dict[str, dict[int, list[dict[str, object]]]]) -> str:
    lines = ["| server | files | first 200 (s) | master RSS | worker RSS idle | worker RSS after load "
             "| total RSS after load | total PSS after load |", "|---" * 8 + "|"]
    for name, by_count in runs.items():
        for count, rounds in by_count.items():
            def mib(values: list[float]) -> str:
                return f"{median(values) / 1024:.1f} MiB"
            lines.append(
                f"| {name} | {count:,} | {median([r['first_200_s'] for r in rounds]):.3f} | "
                f"{mib([r['loaded']['master']['rss_kib'] for r in rounds])} | "
                f"{mib([r['idle']['max_worker_rss_kib'] for r in rounds])} | "
                f"{mib([r['loaded']['max_worker_rss_kib'] for r in rounds])} | "
                f"{mib([r['loaded']['total_rss_kib'] for r in rounds])} | "
                f"{mib([r['loaded']['total_pss_kib'] for r in rounds])} |")
    return "\n".join(lines)


def snapshot(revision: str) -> str | None:
    """Our package as committed at `revision`, exported outside the work tree; None: the work tree.

    Other engineers edit servestatic/ while the benchmark runs; a snapshot keeps
    every round of a run on the same code, and names that code in the results.
    """
    if revision == "worktree":
        return None
    commit = subprocess.run(["git", "rev-parse", "--short", revision], cwd=BENCH.parent, check=True,
                            capture_output=True, text=True).stdout.strip()
    target = sites.CACHE / f"ours-{commit}"
    if not (target / "servestatic" / "__init__.py").is_file():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", commit, "servestatic"], cwd=BENCH.parent,
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return str(target)


def patched_copy(revision: str, target: Path, patches: dict[str, tuple[tuple[str, str], ...]],
                 tool: str) -> None:
    """An experiment's copy of our package at `revision` in `target` (bench/loop_alone.py,
    bench/uvloop_variant.py): `patches` maps a module under servestatic/ to text
    replacements, each of which must apply once, or the tool stops naming what is missing."""
    exported = snapshot(revision)  # shared with the runs: copied, not patched
    source = Path(exported) if exported is not None else BENCH.parent
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source / "servestatic", target / "servestatic")
    for name, replacements in patches.items():
        module = target / "servestatic" / name
        text = module.read_text()
        for old, new in replacements:
            if text.count(old) != 1:
                raise SystemExit(f"{tool}: servestatic/{name} at {revision} lacks {old.strip()[:60]!r}")
            text = text.replace(old, new)
        module.write_text(text)


def parse_variant(text: str, base: ServerSpec) -> ServerSpec:
    """NAME=ITEM[,ITEM...]: `base` (the suite's headline) with `path:DIR` on PYTHONPATH
    and/or KEY=VALUE in its env."""
    name, _, items = text.partition("=")
    spec = dataclasses.replace(base, name=name, extra_env=dict(base.extra_env))
    for item in filter(None, items.split(",")):
        if item.startswith("path:"):
            # Absolute: the servers run in bench/, where a relative path named nothing and
            # Python quietly imported the work tree's package instead of the copy.
            copy = Path(item[len("path:"):]).resolve()
            if not (copy / "servestatic" / "__init__.py").is_file():
                raise SystemExit(f"--variant {name}: {copy} holds no servestatic package")
            spec.pythonpath = str(copy)
        else:
            key, _, value = item.partition("=")
            spec.extra_env[key] = value
    return spec


def estimate_seconds(specs: list[ServerSpec], scenarios: list[str], startup_specs: list[ServerSpec],
                     sizes: list[int], args: argparse.Namespace) -> float:
    """Roughly how long the run takes: wrk time plus about 2 s per server start and 0.3 s per probe."""
    runs = sum(applies(spec, name) for spec in specs for name in scenarios)
    throughput = len(specs) * 2 + runs * (args.warmup + args.duration + 0.3)
    startup = len(startup_specs) * len(sizes) * (args.tree_load + 3)
    return args.repeats * (throughput * (args.only != "startup") + startup * (args.only != "throughput"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=sorted(SUITES), default="wsgi",
                        help="wsgi: static + chained WSGI app (issue 11); asgi: ASGI mode (issue 10)")
    parser.add_argument("--only", choices=("all", "throughput", "startup"), default="all")
    parser.add_argument("--servers", help=f"comma-separated throughput servers instead of the "
                        f"suite's; known: {', '.join(SPECS)}")
    parser.add_argument("--scenarios", help=f"comma-separated scenarios instead of the suite's; "
                        f"known: {', '.join(SCENARIOS)}")
    parser.add_argument("--startup-servers", help="comma-separated start-up servers instead of the suite's")
    parser.add_argument("--sizes", help="tree sizes for start-up instead of the suite's (e.g. 20000,100000)")
    parser.add_argument("--variant", action="append", default=[],
                        help="extra 'ours' server, NAME=path:DIR,KEY=VALUE (the suite's headline "
                        "with a patched copy of the package on PYTHONPATH, and/or settings)")
    parser.add_argument("--ours-from", default="HEAD",
                        help="git revision of our package to run (exported to .cache/), "
                        "or 'worktree' for the files as they are now")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of wrk before each run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=servers.WORKERS,
                        help="workers (processes) of every server; 1 compares CPU per request without "
                        "the spread of connections over workers")
    parser.add_argument("--tree-load", type=int, default=5,
                        help="seconds of random hits over a tree before measuring memory again")
    args = parser.parse_args()

    suite = SUITES[args.suite]
    servers.WORKERS = args.workers
    ours_path = snapshot(args.ours_from)
    if ours_path is not None:
        for spec in SPECS.values():
            if spec.kind == "ours":
                spec.pythonpath = ours_path
    variants = [parse_variant(text, SPECS[suite.headline]) for text in args.variant]
    specs = [SPECS[name] for name in (args.servers.split(",") if args.servers else suite.servers)]
    specs += variants
    scenarios = args.scenarios.split(",") if args.scenarios else list(suite.scenarios)
    startup_specs = [SPECS[name] for name in (args.startup_servers.split(",") if args.startup_servers
                                              else suite.startup_servers)]
    startup_specs += variants if startup_specs else []
    sizes = [int(size) for size in args.sizes.split(",")] if args.sizes else list(suite.sizes)

    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_path = RESULTS / f"serve-{stamp}.log"
    report: dict[str, object] = {
        "argv": sys.argv, "suite": args.suite, "started": stamp, "ours_from": args.ours_from,
        "ours_path": ours_path,
        "git_head": subprocess.run(["git", "rev-parse", "HEAD"], cwd=BENCH.parent, capture_output=True,
                                   text=True).stdout.strip(),
        "cpus": os.cpu_count(), "workers": args.workers, "load_at_start": os.getloadavg(),
        "wrk": {"connections": args.connections, "threads": args.threads, "duration": args.duration,
                "warmup": args.warmup},
        "servers": {spec.name: dataclasses.asdict(spec) for spec in [*specs, *startup_specs]},
    }
    estimate = estimate_seconds(specs, scenarios, startup_specs, sizes, args)
    print(f"suite {args.suite}: about {estimate / 60:.0f} min; load average at start: "
          f"{os.getloadavg()}; server logs in {log_path}", flush=True)

    runs: dict[str, list[dict[str, dict[str, object]]]] = {}
    if args.only in ("all", "throughput"):
        root = sites.bench_site()
        runs = {spec.name: [] for spec in specs}
        for round_number in range(args.repeats):
            # Rotate the order so no server always runs right after the same neighbour.
            order = specs[round_number % len(specs):] + specs[: round_number % len(specs)]
            print(f"round {round_number + 1}/{args.repeats}", flush=True)
            for spec in order:
                runs[spec.name].append(throughput_round(spec, root, scenarios, args, log_path))
        report["throughput"] = runs

    startup: dict[str, dict[int, list[dict[str, object]]]] = {}
    if args.only in ("all", "startup") and startup_specs and sizes:
        startup = {spec.name: {} for spec in startup_specs}
        for count in sizes:
            sites.many_files(count)
            for round_number in range(args.repeats):
                print(f"start-up, {count} files, round {round_number + 1}/{args.repeats}", flush=True)
                for spec in startup_specs:
                    startup[spec.name].setdefault(count, []).append(
                        startup_round(spec, count, args, log_path))
        report["startup"] = startup

    summary = Summary(suite, scenarios, runs, startup)
    report["stats"] = summary.stats
    report["summary_markdown"] = summary.markdown()
    report["load_at_end"] = os.getloadavg()
    output = RESULTS / f"serve-{stamp}.json"
    output.write_text(json.dumps(report, indent=1))
    print()
    print(report["summary_markdown"], end="\n\n")
    print(f"load average at end: {report['load_at_end']}; results in {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
