"""Measure gzip encoders (libdeflate's levels, zopfli settings) against gzip -9 and brotli 11
on a sample of the corpus.

Used to choose `GZIP_EFFORTS` in servestatic/buildtime/encoders.py. CPU seconds (summed
over the worker processes) rather than wall time, so that other load on the
machine moves the numbers less.

    .venv/bin/python bench/gzip_tune.py                 # every 5th compressible file
    .venv/bin/python bench/gzip_tune.py 1 8000          # every file of 8,000 bytes or more
    .venv/bin/python bench/gzip_tune.py 1 8000 gzip9,i1-split2   # only these settings
    .venv/bin/python bench/gzip_tune.py 1 0 gzip9,i1-split2,libdeflate9,libdeflate12
"""

from __future__ import annotations

import json
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import brotli
import deflate
import zopfli.gzip

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from servestatic.config.settings import DEFAULT_SKIP_EXTENSIONS

CORPUS = Path(__file__).resolve().parent / "corpus"

CONFIGS: dict[str, dict] = {
    "i1-nosplit": {"numiterations": 1, "blocksplitting": False},
    "i5-nosplit": {"numiterations": 5, "blocksplitting": False},
    "i15-nosplit": {"numiterations": 15, "blocksplitting": False},
    "i1-split2": {"numiterations": 1, "blocksplitting": True, "blocksplittingmax": 2},
    "i1-split3": {"numiterations": 1, "blocksplitting": True, "blocksplittingmax": 3},
    "i3-split3": {"numiterations": 3, "blocksplitting": True, "blocksplittingmax": 3},
    "i1-split15": {"numiterations": 1, "blocksplitting": True, "blocksplittingmax": 15},
    "i2-split15": {"numiterations": 2, "blocksplitting": True, "blocksplittingmax": 15},
    "i5-split15": {"numiterations": 5, "blocksplitting": True, "blocksplittingmax": 15},
    "i1-split15-last": {"numiterations": 1, "blocksplitting": True, "blocksplittingmax": 15,
                        "blocksplittinglast": True},
    "i15-split15": {"numiterations": 15, "blocksplitting": True, "blocksplittingmax": 15},
}


def gzip9(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


def measure(args: tuple[str, str]) -> tuple[str, int, float]:
    name, path = args
    data = Path(path).read_bytes()
    started = time.process_time()
    if name == "gzip9":
        out = gzip9(data)
    elif name == "brotli11":
        out = brotli.compress(data, quality=11)
    elif name.startswith("libdeflate"):
        out = deflate.gzip_compress(data, int(name.removeprefix("libdeflate")))
    else:
        out = zopfli.gzip.compress(data, **CONFIGS[name])
    return name, len(out), time.process_time() - started


def sample(every: int, min_size: int = 256) -> list[str]:
    skip = set(DEFAULT_SKIP_EXTENSIONS.split(","))
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and not p.name.startswith("."))
    files = [p for p in files if p.stat().st_size >= min_size and p.suffix.lstrip(".").lower() not in skip]
    return [str(p) for p in files[::every]]


def main() -> None:
    every = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    min_size = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    names = (sys.argv[3].split(",") if len(sys.argv) > 3
             else ["gzip9", "brotli11", "libdeflate9", "libdeflate12", *CONFIGS])
    files = sample(every, min_size)
    size = sum(Path(p).stat().st_size for p in files)
    print(f"sample: {len(files)} files, {size:,} bytes (every {every}th compressible file "
          f"of {min_size} bytes or more)")
    results = {}
    with ProcessPoolExecutor(2) as pool:
        for name in names:
            out = cpu = 0.0
            # Largest first, like compress.py, so a big file does not end alone.
            for _, length, seconds in pool.map(measure, [(name, p) for p in files], chunksize=4):
                out += length
                cpu += seconds
            results[name] = {"bytes": int(out), "cpu": round(cpu, 2)}
            base = results.get("gzip9", {"bytes": out})["bytes"]
            print(f"{name:18} {int(out):>11,} bytes  {out / base:.4f} x gzip-9  {cpu:7.2f} s CPU",
                  flush=True)
    Path(__file__).resolve().parent.joinpath("results").mkdir(exist_ok=True)
    Path(__file__).resolve().parent.joinpath("results", "gzip_tune.json").write_text(
        json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
