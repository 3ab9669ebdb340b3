"""What the table costs a worker, in one process: RSS after the imports, after
`prepare`, and after every file of the tree was built with its encoded
header blocks, as a worker builds them when asked.

    .venv/bin/python bench/serve_sites.py 100000       # the tree, once
    .venv/bin/python bench/serve_memory.py .cache/bench-serve/tree-100000
    .venv/bin/python bench/serve_memory.py TREE --built-files 20000   # another bound
    .venv/bin/python bench/serve_memory.py TREE --variants    # as if each file had br and gzip

Files are asked for in a seeded random order, twice over: the second pass shows
whether a worker keeps growing once its cache of built files is full. Not a timed
test and no server: a quick look at memory between two commits, in a few seconds.
Start-up to the first 200 and RSS under real load are `serve_bench.py --only startup`.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import hashlib
import json
import multiprocessing
import random
import tempfile
import time
from pathlib import Path


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def with_variants(root: str, into: Path) -> str:
    """A root holding only a copy of `root`'s manifest in which every file has a br and a
    gzip variant, each with its digests, as `servestatic compress` writes them for a
    compressible file: what the table keeps for a site of text assets. Compressing
    100,000 real files would take an hour; nothing here reads a file's bytes."""
    from servestatic.site.manifest import MANIFEST_NAME

    data = json.loads((Path(root) / MANIFEST_NAME).read_bytes())

    def representation(seed: str, size: int) -> dict[str, object]:
        sha256, sha512 = (hashlib.sha256(seed.encode()).digest(), hashlib.sha512(seed.encode()).digest())
        return {"size": size, "hash": base64.urlsafe_b64encode(sha256[:16]).decode().rstrip("="),
                "digests": {"sha-256": base64.b64encode(sha256).decode(),
                            "sha-512": base64.b64encode(sha512).decode()}}

    for path, entry in data["files"].items():
        entry["variants"] = {"br": representation(path + ".br", max(1, entry["size"] // 4)),
                             "gzip": representation(path + ".gz", max(1, entry["size"] // 3))}
        entry["tried"] = ["br", "gzip"]
    (into / MANIFEST_NAME).write_text(json.dumps(data))
    return str(into)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="a compressed tree (bench/serve_sites.py makes one)")
    parser.add_argument("--built-files", type=int, help="the table's bound on built files "
                        "instead of servestatic.core.table.BUILT_FILES")
    parser.add_argument("--variants", action="store_true", help="give every file of the "
                        "manifest a br and a gzip variant with their digests first")
    args = parser.parse_args()
    scratch = tempfile.TemporaryDirectory(prefix="serve-memory-")
    root = args.root
    if args.variants:  # in a process of its own, so this one's RSS does not hold the JSON
        with concurrent.futures.ProcessPoolExecutor(1, multiprocessing.get_context("spawn")) as pool:
            root = pool.submit(with_variants, args.root, Path(scratch.name)).result()

    from servestatic.config.settings import load_settings
    from servestatic.core import answer
    from servestatic.fronts.prepare import prepare
    from servestatic.server import gunicornapp, worker  # noqa: F401  (what a worker imports)

    print(f"after imports: {rss_mib():.1f} MiB")
    settings = load_settings(environ={"SERVESTATIC_ROOT": root})
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
