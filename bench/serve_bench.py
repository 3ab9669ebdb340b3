"""The serving benchmark: ours vs gunicorn + WhiteNoise, gunicorn + ServeStatic, and nginx.

    .venv/bin/python bench/serve_bench.py            # everything, about 25 minutes
    .venv/bin/python bench/serve_bench.py --only throughput --repeats 1 --duration 5

Throughput: wrk on 127.0.0.1 against each server in turn (2 workers each, no
access log), in rounds so that the machine's changing load falls on every
server alike, for five scenarios: a 1 KiB HTML file, a 100 KiB JS file with
`Accept-Encoding: br, gzip`, a 5 MiB binary, a 304 revalidation (with the
ETag that server sent), and a miss that falls through to a trivial chained
WSGI app. Besides requests per second it reports the server's own CPU time per
request (from /proc), which the other work on a shared machine disturbs less.

Start-up and memory: time from process start to the first 200, and RSS/PSS of
the master and each worker, for trees of 20,000 and 100,000 small files.

Results go to bench/results/serve-TIMESTAMP.json and a Markdown summary to stdout.
Run bench/install_peers.sh first (wrk, nginx, the peers' venvs).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import serve_servers as servers
import serve_sites as sites
from serve_servers import ServerSpec

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
WRK_SCRIPT = BENCH / "serve_wrk.lua"

SPECS = {
    "ours": ServerSpec("ours", "ours"),
    "whitenoise-sync": ServerSpec("whitenoise-sync", "whitenoise", "sync"),
    "whitenoise-gthread": ServerSpec("whitenoise-gthread", "whitenoise", "gthread"),
    "servestatic-sync": ServerSpec("servestatic-sync", "servestatic", "sync"),
    "servestatic-gthread": ServerSpec("servestatic-gthread", "servestatic", "gthread"),
    "nginx": ServerSpec("nginx", "nginx"),
    # Start-up only: WhiteNoise scanning once in the master instead of in each worker.
    "whitenoise-gthread-preload": ServerSpec("whitenoise-gthread-preload", "whitenoise", "gthread",
                                             preload=True),
}
PEERS = ("whitenoise-sync", "whitenoise-gthread", "servestatic-sync", "servestatic-gthread")
SCENARIOS = ("html-1k", "js-100k-br", "blob-5m", "revalidate-304", "miss-chained")


def scenario_request(name: str) -> tuple[str, dict[str, str]]:
    """Path and headers of a scenario (the 304 gets its If-None-Match per server)."""
    if name == "html-1k":
        return sites.HTML_1K, {}
    if name in ("js-100k-br", "revalidate-304"):
        return sites.JS_100K, {"Accept-Encoding": "br, gzip"}
    if name == "blob-5m":
        return sites.BLOB_5M, {}
    if name == "miss-chained":
        return sites.MISS, {}
    raise ValueError(name)


def probe(server: servers.Running, name: str) -> tuple[dict[str, str], dict[str, object]]:
    """One request as wrk will make it; checks the answer and returns the headers to send."""
    path, headers = scenario_request(name)
    status, answer, body = servers.get(server.port, path, headers)
    if name == "revalidate-304":
        headers = {**headers, "If-None-Match": answer["etag"]}
        status, answer, body = servers.get(server.port, path, headers)
    expected = 304 if name == "revalidate-304" else 200
    if status != expected:
        raise RuntimeError(f"{server.spec.name} {name}: {path} answered {status}, expected {expected}")
    if name == "js-100k-br" and answer.get("content-encoding") != "br":
        raise RuntimeError(f"{server.spec.name} {name}: not brotli: {answer}")
    return headers, {"status": status, "body_bytes": len(body),
                     "content_encoding": answer.get("content-encoding"), "etag": answer.get("etag")}


def wrk(port: int, path: str, headers: dict[str, str], seconds: int, connections: int,
        threads: int, env: dict[str, str] | None = None) -> dict[str, object]:
    """Run wrk once; its JSON summary plus the CPU seconds wrk itself used."""
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


def throughput_round(spec: ServerSpec, root: Path, args: argparse.Namespace,
                     log_path: Path) -> dict[str, dict[str, object]]:
    """Start one server, run every scenario against it, stop it."""
    server = servers.start(spec, root, log_path)
    results: dict[str, dict[str, object]] = {}
    try:
        servers.wait_ready(server, sites.HTML_1K)
        servers.wait_workers(server)
        for name in SCENARIOS:
            if name == "miss-chained" and not spec.chains:
                continue
            headers, answer = probe(server, name)
            path, _ = scenario_request(name)
            wrk(server.port, path, headers, args.warmup, args.connections, args.threads)
            cpu_before = server.cpu_seconds()
            load = os.getloadavg()[0]
            summary = wrk(server.port, path, headers, args.duration, args.connections, args.threads)
            cpu = server.cpu_seconds() - cpu_before
            seconds = summary["duration_us"] / 1e6
            errors = sum(summary[k] for k in ("connect", "read", "write", "status", "timeout"))
            results[name] = {
                **summary, "answer": answer, "load1": load, "errors": errors,
                "rps": summary["requests"] / seconds,
                "bytes_per_s": summary["bytes"] / seconds,
                "server_cpu_s": round(cpu, 3),
                "server_cpu_us_per_req": cpu / max(summary["requests"], 1) * 1e6,
            }
            print(f"  {spec.name:28} {name:15} {results[name]['rps']:10.0f} req/s "
                  f"{results[name]['bytes_per_s'] / 2**20:9.1f} MiB/s "
                  f"{results[name]['server_cpu_us_per_req']:7.0f} us cpu/req  errors {errors}  "
                  f"wrk cpu {summary['wrk_cpu_s']} s  load {load:.1f}", flush=True)
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
    print(f"  {spec.name:28} {count:7} files: first 200 after {first:6.3f} s; worker RSS "
          f"{idle['max_worker_rss_kib'] / 1024:6.1f} MiB idle, "
          f"{loaded['max_worker_rss_kib'] / 1024:6.1f} MiB after {summary['requests']} random hits; "
          f"total PSS {loaded['total_pss_kib'] / 1024:6.1f} MiB", flush=True)
    return {"first_200_s": first, "idle": idle, "loaded": loaded,
            "load_requests": summary["requests"], "load_status_errors": summary["status"]}


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize_throughput(runs: dict[str, list[dict[str, dict[str, object]]]]) -> str:
    names = list(runs)
    lines = ["| server | " + " | ".join(SCENARIOS) + " |", "|---" * (len(SCENARIOS) + 1) + "|"]
    medians: dict[str, dict[str, float]] = {}
    cpu: dict[str, dict[str, float]] = {}
    for name in names:
        medians[name] = {}
        cpu[name] = {}
        for scenario in SCENARIOS:
            rounds = [r[scenario] for r in runs[name] if scenario in r]
            if not rounds:
                continue
            key = "bytes_per_s" if scenario == "blob-5m" else "rps"
            medians[name][scenario] = median([r[key] for r in rounds])
            cpu[name][scenario] = median([r["server_cpu_us_per_req"] for r in rounds])
    for name in names:
        cells = []
        for scenario in SCENARIOS:
            value = medians[name].get(scenario)
            if value is None:
                cells.append("skipped")
            elif scenario == "blob-5m":
                cells.append(f"{value / 2**20:,.0f} MiB/s")
            else:
                cells.append(f"{value:,.0f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Server CPU per request (µs, median; lower is better):", "",
              "| server | " + " | ".join(SCENARIOS) + " |", "|---" * (len(SCENARIOS) + 1) + "|"]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(
            f"{cpu[name][s]:,.0f}" if s in cpu[name] else "skipped" for s in SCENARIOS) + " |")
    ours = [name for name in names if name == "ours" or name.startswith("ours")]
    peers = [name for name in names if name in PEERS]
    if ours and (peers or "nginx" in names):
        lines += ["", "Ratios (median throughput):", "",
                  "| ours | vs | " + " | ".join(SCENARIOS) + " |", "|---" * (len(SCENARIOS) + 2) + "|"]
        for mine in ours:
            if peers:
                cells = []
                for scenario in SCENARIOS:
                    best = max((medians[p].get(scenario, 0.0) for p in peers), default=0.0)
                    best_name = max(peers, key=lambda p: medians[p].get(scenario, 0.0))
                    value = medians[mine].get(scenario)
                    cells.append(f"{value / best:.2f}x ({best_name})" if value and best else "-")
                lines.append(f"| {mine} | best peer | " + " | ".join(cells) + " |")
            if "nginx" in names:
                cells = []
                for scenario in SCENARIOS:
                    other = medians["nginx"].get(scenario)
                    value = medians[mine].get(scenario)
                    cells.append(f"{value / other:.2f}x" if value and other else "-")
                lines.append(f"| {mine} | nginx | " + " | ".join(cells) + " |")
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


def parse_variant(text: str) -> ServerSpec:
    """NAME=ITEM[,ITEM...]: ours with `path:DIR` on PYTHONPATH and/or KEY=VALUE in its env."""
    name, _, items = text.partition("=")
    spec = ServerSpec(name, "ours")
    for item in filter(None, items.split(",")):
        if item.startswith("path:"):
            spec.pythonpath = item[len("path:"):]
        else:
            key, _, value = item.partition("=")
            spec.extra_env[key] = value
    return spec


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("all", "throughput", "startup"), default="all")
    parser.add_argument("--servers", default="ours,whitenoise-sync,whitenoise-gthread,"
                        "servestatic-sync,servestatic-gthread,nginx",
                        help="comma-separated throughput servers (default: all six)")
    parser.add_argument("--startup-servers", default="ours,whitenoise-gthread,"
                        "whitenoise-gthread-preload")
    parser.add_argument("--variant", action="append", default=[],
                        help="extra 'ours' server, NAME=path:DIR,KEY=VALUE (a patched copy "
                        "of the package on PYTHONPATH, and/or settings)")
    parser.add_argument("--ours-from", default="HEAD",
                        help="git revision of our package to run (exported to .cache/), "
                        "or 'worktree' for the files as they are now")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of wrk before each run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--sizes", default="20000,100000", help="tree sizes for start-up")
    parser.add_argument("--tree-load", type=int, default=5,
                        help="seconds of random hits over a tree before measuring memory again")
    args = parser.parse_args()

    ours_path = snapshot(args.ours_from)
    if ours_path is not None:
        SPECS["ours"].pythonpath = ours_path
    specs = [SPECS[name] for name in args.servers.split(",") if name]
    specs += [parse_variant(text) for text in args.variant]
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_path = RESULTS / f"serve-{stamp}.log"
    report: dict[str, object] = {
        "argv": sys.argv, "started": stamp, "ours_from": args.ours_from, "ours_path": ours_path,
        "git_head": subprocess.run(["git", "rev-parse", "HEAD"], cwd=BENCH.parent, capture_output=True,
                                   text=True).stdout.strip(),
        "cpus": os.cpu_count(), "load_at_start": os.getloadavg(),
        "wrk": {"connections": args.connections, "threads": args.threads, "duration": args.duration},
    }
    print(f"load average at start: {os.getloadavg()}; server logs in {log_path}", flush=True)

    if args.only in ("all", "throughput"):
        root = sites.bench_site()
        runs: dict[str, list[dict[str, dict[str, object]]]] = {spec.name: [] for spec in specs}
        for round_number in range(args.repeats):
            # Rotate the order so no server always runs right after the same neighbour.
            order = specs[round_number % len(specs):] + specs[: round_number % len(specs)]
            print(f"round {round_number + 1}/{args.repeats}", flush=True)
            for spec in order:
                runs[spec.name].append(throughput_round(spec, root, args, log_path))
        report["throughput"] = runs
        report["throughput_table"] = summarize_throughput(runs)

    if args.only in ("all", "startup"):
        startup_specs = [SPECS[name] for name in args.startup_servers.split(",") if name]
        startup_specs += [parse_variant(text) for text in args.variant]
        startup: dict[str, dict[int, list[dict[str, object]]]] = {
            spec.name: {} for spec in startup_specs}
        for count in (int(size) for size in args.sizes.split(",")):
            sites.many_files(count)
            for round_number in range(args.repeats):
                print(f"start-up, {count} files, round {round_number + 1}/{args.repeats}", flush=True)
                for spec in startup_specs:
                    startup[spec.name].setdefault(count, []).append(
                        startup_round(spec, count, args, log_path))
        report["startup"] = startup
        report["startup_table"] = summarize_startup(startup)

    report["load_at_end"] = os.getloadavg()
    output = RESULTS / f"serve-{stamp}.json"
    output.write_text(json.dumps(report, indent=1))
    print()
    for key in ("throughput_table", "startup_table"):
        if key in report:
            print(report[key], end="\n\n")
    print(f"load average at end: {report['load_at_end']}; results in {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
