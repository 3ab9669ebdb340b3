"""What the table costs a worker, in one process: RSS after the imports, after
`prepare`, and after every file of the tree was built with its encoded
header blocks, as a worker builds them when asked.

    .venv/bin/python bench/serve_sites.py 100000       # the tree, once
    .venv/bin/python bench/serve_memory.py .cache/bench-serve/tree-100000
    .venv/bin/python bench/serve_memory.py TREE --built-files 20000   # another bound

Files are asked for in a seeded random order, twice over: the second pass shows
whether a worker keeps growing once its cache of built files is full. Not a timed
test and no server: a quick look at memory between two commits, in a few seconds.
Start-up to the first 200 and RSS under real load are `serve_bench.py --only startup`.
"""

from __future__ import annotations

import argparse
import random
import time


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="a compressed tree (bench/serve_sites.py makes one)")
    parser.add_argument("--built-files", type=int, help="the table's bound on built files "
                        "instead of servestatic.core.table.BUILT_FILES")
    args = parser.parse_args()

    from servestatic.config.settings import load_settings
    from servestatic.core import answer
    from servestatic.fronts.prepare import prepare
    from servestatic.server import gunicornapp, worker  # noqa: F401  (what a worker imports)

    print(f"after imports: {rss_mib():.1f} MiB")
    settings = load_settings(environ={"SERVESTATIC_ROOT": args.root})
    started = time.perf_counter()
    app = prepare(settings)
    print(f"after prepare: {rss_mib():.1f} MiB in {time.perf_counter() - started:.3f} s "
          f"({len(app.paths):,} keys)")
    if args.built_files is not None:
        app.table.built_files = args.built_files
    keys = list(app.paths)
    random.Random(1).shuffle(keys)
    for round_number in (1, 2):
        started = time.process_time()
        for key in keys:
            static_file = app.lookup(key)
            if static_file is None:
                continue
            for representation in static_file.by_size:  # what answer.header_block keeps
                if representation.header_block is None:
                    representation.header_block = answer.encode_headers(representation.headers)
                    representation.not_modified_block = answer.encode_headers(
                        representation.not_modified_headers)
        micros = (time.process_time() - started) / len(keys) * 1e6
        print(f"after asking for every file ({round_number}): {rss_mib():.1f} MiB, "
              f"{len(app.files):,} built files kept, {micros:.1f} µs of CPU a file")


if __name__ == "__main__":
    main()
