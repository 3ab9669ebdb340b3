"""Make the uvloop variant: a copy of the package whose worker runs on uvloop
(docs/design.md, "Where nginx is still ahead"), with uvloop installed beside it.

    .venv/bin/python bench/uvloop_variant.py [REVISION]   # HEAD by default; 'worktree': the files as they are
    .venv/bin/python bench/serve_bench.py --suite wsgi --only throughput --workers 1 --threads 1 \\
        --servers ours --scenarios html-1k,miss-chained --variant uvloop=path:.cache/bench-uvloop

An experiment, never a server, and for small answers and the app's requests only:
- gunicorn's `asgi_loop` becomes uvloop (servestatic refuses it; the copy allows it);
- the one-at-a-time accept (`EventLoopWorker._accept_one`) is off, since uvloop's server
  owns the listening socket, so with more than one worker the connections need not
  spread: compare with `--workers 1`;
- a file past the inline limit is cut off (FileSend needs asyncio's `_add_writer`, which
  uvloop lacks, and its fallback, `loop.sendfile`, is not in uvloop either), so leave out
  js-100k, blob-5m and the 304 scenario (whose readiness check fetches the 100 KiB file).
Each patch is a text replacement into the exported files; each must apply, or this stops.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from serve_bench import patched_copy

REPO = Path(__file__).resolve().parent.parent
TARGET = REPO / ".cache" / "bench-uvloop"
UVLOOP = "uvloop==0.23.0"

PATCHES = {
    "server/gunicornconfig.py": (
        ('Required("asgi_loop", "asyncio",', 'Required("asgi_loop", "uvloop",'),
        ('"asgi_loop": "asyncio",', '"asgi_loop": "uvloop",'),
    ),
    "server/worker.py": (
        ("        super().notify()\n",
         "        super().notify()\n        return  # bench/uvloop_variant.py: uvloop's server accepts\n"),
    ),
}


def main() -> int:
    revision = sys.argv[1] if len(sys.argv) > 1 else "HEAD"
    patched_copy(revision, TARGET, PATCHES, "uvloop_variant")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(TARGET), UVLOOP],
                   check=True)
    print(f"--variant uvloop=path:{TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
