"""Where one worker of `servestatic serve` spends its CPU under wrk load.

    .venv/bin/python bench/serve_profile.py [--scenario html-1k] [--seconds 10]
        [--pythonpath DIR] [--env KEY=VALUE ...]

Runs our server exactly as `servestatic serve` configures gunicorn (same
options, same worker class) but with one worker, profiles that worker with
yappi (CPU clock, every thread: a chained WSGI app runs in a thread pool,
which cProfile would not see), drives it with wrk, and prints the worker's CPU
split by layer (gunicorn's ASGI protocol, our worker and app, logging, the
event loop and thread pool, system calls) and the
functions with the most own time. yappi's overhead inflates small Python
functions, so read the split as proportions, not as absolute times.

yappi is installed outside the project's venv, under .cache/bench-venvs/serve-profile.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PROFILE_LIBS = REPO / ".cache" / "bench-venvs" / "serve-profile"

# (layer, substring of the function's file or name); first match wins. A
# builtin's time counts in the layer of the Python function that called it.
LAYERS = (
    ("gunicorn: config lookups", ("gunicorn/config.py",)),
    ("gunicorn: X-Forwarded trust check (ipaddress)", ("ipaddress.py",)),
    ("gunicorn: request parsing", ("gunicorn/http/message.py", "gunicorn/http/parser.py",
                                   "gunicorn/http/unreader.py", "gunicorn/http/body.py",
                                   "gunicorn_h1c")),
    ("gunicorn: WSGI environ + response", ("gunicorn/http/wsgi.py",)),
    ("gunicorn: ASGI protocol", ("gunicorn/asgi/",)),
    ("gunicorn: worker", ("gunicorn/workers/",)),
    ("our event-loop path", ("servestatic/server/",)),  # the worker, head reader, access log, metrics
    ("logging", ("gunicorn/glogging.py", "logging/__init__.py")),
    ("our app", ("servestatic/",)),
    ("chained app", ("serve_hello.py",)),
    ("event loop, thread pool, locks", ("asyncio/", "selectors.py", "concurrent/futures", "threading.py",
                                        "queue.py", "_thread", "lock")),
    ("socket.py wrappers", ("socket.py",)),
)


def layer_of(module: str, name: str) -> str:
    text = f"{module} '{name}'"
    for layer, needles in LAYERS:
        if any(needle in text for needle in needles):
            return layer
    return "other"


def serve(root: str, port: int, output: str) -> None:
    """Child process: our server with one profiled worker."""
    import yappi

    from servestatic.config.settings import load_settings
    from servestatic.fronts.asgifront import ASGIApp
    from servestatic.fronts.prepare import prepare
    from servestatic.server.gunicornapp import Server, configure

    os.environ.setdefault("SERVESTATIC_APP", "serve_hello:application")
    os.environ["SERVESTATIC_ACCESS_LOG"] = os.environ.get("SERVESTATIC_ACCESS_LOG", "off")
    settings = load_settings(overrides={"root": root, "bind": f"127.0.0.1:{port}", "workers": "1"})
    config = configure(settings).config

    def post_worker_init(worker: object) -> None:
        yappi.set_clock_type("cpu")
        yappi.start(builtins=True, profile_threads=True)

    def worker_exit(server: object, worker: object) -> None:
        yappi.stop()
        rows = [{"module": stat.module, "name": stat.name, "ncall": stat.ncall,
                 "tsub": stat.tsub, "ttot": stat.ttot, "builtin": bool(stat.builtin),
                 # Builtins' time, charged below to the layer of the function calling them.
                 "builtin_children": sum(child.tsub for child in stat.children if child.builtin)}
                for stat in yappi.get_func_stats()]
        Path(output).write_text(json.dumps(rows))

    config.set("post_worker_init", post_worker_init)
    config.set("worker_exit", worker_exit)
    server = Server(ASGIApp(prepare(settings), config.threads, config.timeout), config)
    server.run()


def main() -> int:
    import serve_servers as servers
    import serve_sites as sites
    from serve_bench import probe, scenario_request, wrk

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="html-1k")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--pythonpath", default="", help="a patched copy of the package to profile")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--serve", nargs=3, metavar=("ROOT", "PORT", "OUTPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.serve[2])
        return 0

    root = sites.bench_site()
    port = servers.free_port()
    output = Path(f"/tmp/serve-profile-{os.getpid()}.json")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [args.pythonpath, str(PROFILE_LIBS), str(BENCH)]))}
    for item in args.env:
        key, _, value = item.partition("=")
        env[key] = value
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(root), str(port), str(output)],
                               cwd=BENCH, env=env)
    server = servers.Running(servers.ServerSpec("ours-profiled", "ours"), process, port,
                             time.perf_counter(), None)
    try:
        servers.wait_ready(server, sites.HTML_1K)
        headers, _ = probe(server, args.scenario)
        path, _ = scenario_request(args.scenario)
        summary = wrk(port, path, headers, args.seconds, args.connections, 2)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    rows = json.loads(output.read_text())
    output.unlink()
    total = sum(row["tsub"] for row in rows)
    requests = summary["requests"]
    by_layer: dict[str, float] = collections.defaultdict(float)
    for row in rows:
        if not row["builtin"]:
            by_layer[layer_of(row["module"], row["name"])] += row["tsub"] + row["builtin_children"]
    by_layer["other"] += total - sum(by_layer.values())  # builtins called from outside Python
    print(f"{args.scenario}: {requests} requests in {args.seconds} s under the profiler "
          f"({requests / args.seconds:.0f} req/s); worker CPU {total:.2f} s, "
          f"{total / max(requests, 1) * 1e6:.0f} us per request")
    print("\n| layer | share of worker CPU | us per request |\n|---|---|---|")
    for layer, seconds in sorted(by_layer.items(), key=lambda item: -item[1]):
        print(f"| {layer} | {seconds / total:.1%} | {seconds / max(requests, 1) * 1e6:.1f} |")
    print(f"\nTop {args.top} functions by own CPU time:\n")
    print("| own % | incl. % | calls/request | function | file |\n|---|---|---|---|---|")
    for row in sorted(rows, key=lambda row: -row["tsub"])[: args.top]:
        module = row["module"].replace(str(REPO) + "/", "")
        module = module.split("site-packages/")[-1].split("lib/python3.11/")[-1]
        print(f"| {row['tsub'] / total:.1%} | {row['ttot'] / total:.1%} | "
              f"{row['ncall'] / max(requests, 1):.2f} | "
              f"{row['name']} | {module} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
