"""The trees the serving benchmark serves, built once and kept under .cache/bench-serve/.

- `site`: the example site plus three generated files (a 1 KiB HTML page, a
  100 KiB JavaScript file, a 5 MiB binary), compressed by `servestatic compress`
  so every server finds the same `.br`/`.gz` files beside the originals.
- `tree-N`: N small files in nested directories, for start-up time and memory.
  They are run through the real `servestatic compress` with a `--min-size`
  above every file's size: the manifest is real, and nothing is compressed,
  so building the 100,000-file tree takes a minute, not an hour.

Every generator is seeded, so every run serves the same bytes.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "bench-serve"
EXAMPLE = REPO / "examples" / "site"
SERVESTATIC = REPO / ".venv" / "bin" / "servestatic"
FORMAT = "3"  # bump when a generator changes, so cached trees are rebuilt

# The URL paths the throughput scenarios request.
HTML_1K = "/bench/page-1k.html"
JS_100K = "/bench/app-100k.js"
BLOB_5M = "/bench/blob-5m.webm"  # random bytes; .webm is on the never-compress list
# Misses: no file has these paths, so the chained app answers. Both apps of the
# bench (serve_hello.py, serve_fastapi_app.py) answer the first with the same
# hello; the second is the FastAPI app's JSON route.
MISS = "/app/hello"
MISS_JSON = "/app/items/42?q=bench"

_WORDS = ("function", "return", "const", "let", "var", "if", "else", "for", "while", "this",
          "null", "undefined", "true", "false", "new", "typeof", "instanceof", "value", "index",
          "length", "push", "map", "filter", "reduce", "object", "array", "string", "number")


def _javascript(size: int, rng: random.Random) -> bytes:
    """Minified-looking JavaScript that compresses about as well as real bundles (~4x with br)."""
    parts: list[str] = []
    total = 0
    while total < size:
        name = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz_$") for _ in range(rng.randint(1, 9)))
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 6)))
        chunk = (f"function {name}(a,b){{{words};return a.{name}+{rng.randint(0, 99999)}"
                 f"*b[\"{name}{rng.randint(0, 999)}\"]}}")
        parts.append(chunk)
        total += len(chunk)
    return "".join(parts).encode()[:size]


def _html(size: int) -> bytes:
    head = b"<!doctype html><html lang=en><meta charset=utf-8><title>bench</title><body><p>"
    tail = b"</p></body></html>\n"
    filler = b"A small page, one kilobyte long, the size of many error pages and redirects. "
    middle = (filler * (size // len(filler) + 1))[: size - len(head) - len(tail)]
    return head + middle + tail


def _compress(root: Path, *extra: str) -> None:
    subprocess.run([str(SERVESTATIC), "compress", str(root), "--workers", "2", *extra],
                   check=True, stdout=subprocess.DEVNULL)


def _fresh(target: Path) -> bool:
    stamp = target / ".bench-format"
    return stamp.is_file() and stamp.read_text() == FORMAT


def bench_site() -> Path:
    """The compressed example site plus the three generated files."""
    target = CACHE / "site"
    if _fresh(target):
        return target
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(
        "*.br", "*.gz", "*.zst", ".servestatic-manifest.json"))
    rng = random.Random(3)
    generated = target / "bench"
    generated.mkdir()
    (generated / "page-1k.html").write_bytes(_html(1024))
    (generated / "app-100k.js").write_bytes(_javascript(100 * 1024, rng))
    (generated / "blob-5m.webm").write_bytes(rng.randbytes(5 * 1024 * 1024))
    _compress(target)
    (target / ".bench-format").write_text(FORMAT)
    return target


def many_files_url(index: int) -> str:
    """URL path of the index-th file of a `tree-N`."""
    return f"/d{index // 1000:03d}/s{index // 50 % 20:02d}/file-{index}.css"


def many_files(count: int) -> Path:
    """A tree of `count` small CSS files, 50 to a directory, with a real manifest."""
    target = CACHE / f"tree-{count}"
    if _fresh(target):
        return target
    shutil.rmtree(target, ignore_errors=True)
    rng = random.Random(count)
    for index in range(count):
        path = target / many_files_url(index).lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f".c{index}{{color:#{rng.randrange(0x1000000):06x}}}\n".encode())
    (target / "index.html").write_bytes(_html(1024))
    _compress(target, "--min-size", "1000000")
    (target / ".bench-format").write_text(FORMAT)
    return target


if __name__ == "__main__":
    print(bench_site())
    for argument in sys.argv[1:]:
        print(many_files(int(argument)))
