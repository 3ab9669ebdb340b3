"""Dictionary-delta benchmark: what a returning visitor downloads after a deploy, and what
the deltas cost at build time (docs/http.md, "Dictionary deltas").

Release pairs are real: two published versions of a few npm packages
(bench/fetch_delta_pairs.sh), and, when the test suite's Django venvs are on disk
(.cache/django/), the admin's static files of two Django series. Each release becomes a
site whose file names carry a content hash, as a bundler names them
(`bootstrap.min.a3f09c1b2d4e.js`), so an unchanged file keeps its name and a changed one
gets a new name in the same family.

For each pair: `servestatic compress` of the old release with a fresh cache dir, then of
the new one with the same cache dir (deltas made), timed; and the same two runs with
SERVESTATIC_DELTA_VERSIONS=0 (no deltas), timed. Bytes, over the files whose content
changed: what a client downloads as gzip, as br, and with deltas (the `dcz` delta against
the old version where one was kept, else br).

Run from the repository root:  .venv/bin/python bench/delta_bench.py [--repeat N]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
CORPUS = BENCH / "corpus-deltas"
RESULTS = BENCH / "results"
MANIFEST = ".servestatic-manifest.json"
EXTENSIONS = (".js", ".mjs", ".css")

NPM_PAIRS = [("bootstrap-5.3.2", "bootstrap-5.3.3"), ("jquery-3.6.4", "jquery-3.7.1"),
             ("react-dom-18.2.0", "react-dom-18.3.1"), ("d3-7.8.5", "d3-7.9.0")]
DJANGO_ADMIN = "lib/python3*/site-packages/django/contrib/admin/static/admin"
DJANGO_PAIRS = [("django-4.2-4.3", "django-5-6"), ("django-5-6", "django-6-7")]


def hashed_name(relative: str, data: bytes) -> str:
    """dir/name.ext -> dir/name.<12 hex>.ext, the hash led by a letter so the name test sees it."""
    directory, _, name = relative.rpartition("/")
    stem, _dot, extension = name.rpartition(".")
    token = "a" + hashlib.sha256(data).hexdigest()[:11]
    return (directory + "/" if directory else "") + f"{stem}.{token}.{extension}"


def site_of(source: Path, target: Path) -> dict[str, str]:
    """Copy source's scripts and stylesheets into target under hashed names; original -> hashed."""
    names = {}
    for path in sorted(source.rglob("*")):
        if not path.is_file() or not path.name.endswith(EXTENSIONS) or "node_modules" in path.parts:
            continue
        relative = path.relative_to(source).as_posix()
        data = path.read_bytes()
        hashed = hashed_name(relative, data)
        (target / hashed).parent.mkdir(parents=True, exist_ok=True)
        (target / hashed).write_bytes(data)
        names[relative] = hashed
    return names


def compress(root: Path, cache: Path, env: dict[str, str]) -> tuple[float, dict]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "servestatic", "compress", "--json", "--cache-dir",
                             os.fspath(cache), os.fspath(root)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": os.fspath(REPO), **env}, check=True)
    return time.perf_counter() - started, json.loads(result.stdout)


def measure(name: str, old: Path, new: Path, work: Path, repeat: int) -> dict:
    old_names = site_of(old, work / "old")
    new_names = site_of(new, work / "new")
    changed = [relative for relative in new_names if relative in old_names
               and old_names[relative] != new_names[relative]]
    # The two kinds of run alternate, and the fastest of each is kept: on a shared machine
    # other load moves single runs by more than the deltas cost.
    times = {"without": float("inf"), "with": float("inf"), "delta_step": float("inf")}
    for round_ in range(repeat):
        for label, env in (("without", {"SERVESTATIC_DELTA_VERSIONS": "0"}), ("with", {})):
            trial = work / f"{label}-{round_}"
            shutil.copytree(work / "old", trial / "old")
            shutil.copytree(work / "new", trial / "new")
            compress(trial / "old", trial / "cache", env)
            seconds, summary = compress(trial / "new", trial / "cache", env)
            times[label] = min(times[label], seconds)
            if label == "with":
                delta_summary = summary["deltas"]
                times["delta_step"] = min(times["delta_step"], summary["deltas"]["seconds"])
                root = trial / "new"
            shutil.rmtree(trial / "old")
    files = json.loads((root / MANIFEST).read_text())["files"]
    totals = {"identity": 0, "gzip": 0, "br": 0, "dcz": 0}
    deltas = 0
    for relative in changed:
        old_sha = hashlib.sha256((work / "old" / old_names[relative]).read_bytes()).digest()
        entry = files[new_names[relative]]
        variants = entry["variants"]
        br = variants.get("br", {}).get("size", entry["size"])
        totals["identity"] += entry["size"]
        totals["gzip"] += variants.get("gzip", {}).get("size", entry["size"])
        totals["br"] += br
        delta = entry.get("deltas", {}).get(base64.b64encode(old_sha).decode())
        deltas += delta is not None
        totals["dcz"] += delta["size"] if delta else br
    return {"pair": name, "files": len(new_names), "changed": len(changed), "deltas": deltas,
            "bytes": totals, "dcz_vs_br": totals["dcz"] / totals["br"] if totals["br"] else None,
            "seconds_without": times["without"], "seconds_with": times["with"],
            "time_ratio": times["with"] / times["without"], "delta_step_seconds": times["delta_step"],
            "summary": delta_summary}


def pairs() -> list[tuple[str, Path, Path]]:
    subprocess.run(["bash", os.fspath(BENCH / "fetch_delta_pairs.sh")], check=True)
    found = [(f"{old} -> {new}", CORPUS / old, CORPUS / new) for old, new in NPM_PAIRS]
    django = REPO / ".cache" / "django"
    if not django.is_dir():  # a worktree: the main checkout's cache
        django = Path(os.environ.get("SERVESTATIC_MAIN", "/work/main")) / ".cache" / "django"
    for old, new in DJANGO_PAIRS:
        old_admin = next((django / old).glob(DJANGO_ADMIN), None)
        new_admin = next((django / new).glob(DJANGO_ADMIN), None)
        if old_admin and new_admin:
            label = f"django admin {_version(old_admin)} -> {_version(new_admin)}"
            found.append((label, old_admin, new_admin))
    return found


def _version(admin: Path) -> str:
    text = (admin.parents[3] / "__init__.py").read_text()
    return text.split("VERSION = (", 1)[1].split(", \"", 1)[0].replace(", ", ".")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each compress, fastest kept")
    args = parser.parse_args()
    results = []
    print("| pair | changed files | deltas | gzip | br | dcz (else br) | dcz / br "
          "| compress s without | with | ratio | delta step s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, old, new in pairs():
        with tempfile.TemporaryDirectory(prefix="delta-bench-") as work:
            result = measure(name, old, new, Path(work), args.repeat)
        results.append(result)
        b = result["bytes"]
        print(f"| {name} | {result['changed']} | {result['deltas']} | {b['gzip']:,} | {b['br']:,} | "
              f"{b['dcz']:,} | {result['dcz_vs_br']:.3f} | {result['seconds_without']:.2f} | "
              f"{result['seconds_with']:.2f} | {result['time_ratio']:.2f} | "
              f"{result['delta_step_seconds']:.2f} |")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"deltas-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"written {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
