"""What dictionary deltas cost a request that names no dictionary: `StaticApp.decide` for a
static hit, timed in process, for one checkout or another.

    PYTHONPATH=/work/main .venv/bin/python bench/delta_decide_bench.py ROOT /path main
    PYTHONPATH=. .venv/bin/python bench/delta_decide_bench.py ROOT /path branch

ROOT is a compressed root (one with deltas, to time a file that has them); the fastest of
seven rounds of 20,000 decisions is printed. The decision opens and closes the file, so
most of the time is those two system calls.
"""

import sys
import timeit
from pathlib import Path

from servestatic.config.settings import load_settings
from servestatic.fronts.prepare import prepare

site = Path(sys.argv[1])
settings = load_settings(environ={"SERVESTATIC_ROOT": str(site), "SERVESTATIC_ACCESS_LOG": "off"})
app = prepare(settings)
static = getattr(app, "static", app)
env = {"REQUEST_METHOD": "GET", "PATH_INFO": sys.argv[2], "HTTP_HOST": "x",
       "HTTP_ACCEPT_ENCODING": "gzip, deflate, br, zstd, dcz"}
decide = static.decide


def once() -> None:
    decide(env).close()


best = min(timeit.repeat(once, number=20000, repeat=7))
print(f"{sys.argv[3]} {sys.argv[2]}: {best/20000*1e9:.0f} ns per decide")
