"""Build-time compression benchmark: servestatic against WhiteNoise and ServeStatic.

Each tool compresses its own fresh copy of the same real corpus (front-end
packages from the npm registry, see fetch_corpus.sh), as a subprocess, so that
its CPU time is the children's rusage. Then, for servestatic only: a second run
over the unchanged tree, a run after changing one file, and a cold run into a
fresh copy with a warm --cache-dir.

The peers are installed into their own venvs under .cache/bench-venvs/ (PyPI's
`servestatic` package has the same import name as ours) and run with the work
directory as their current directory, so that neither imports the other.

Run from the repository root:  .venv/bin/python bench/compress_bench.py
Other load on the machine moves wall times; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
CORPUS = BENCH / "corpus"
VENVS = REPO / ".cache" / "bench-venvs"
RESULTS = BENCH / "results"

PEERS = {
    # name: (pip requirement, command after the venv's python)
    "whitenoise": ("whitenoise[brotli]==6.12.0", ["-m", "whitenoise.compress", "-q"]),
    "servestatic-pypi": ("servestatic[brotli]==4.4.0", ["-m", "servestatic.compress", "-q", "--no-zstd"]),
}
SUFFIXES = {".gz": "gzip", ".br": "br", ".zst": "zstd"}
# The file changed in the one-file run: a real, mid-sized asset.
CHANGED_FILE = "bootstrap-5.3.9/dist/js/bootstrap.js"


@dataclass
class Run:
    tool: str
    label: str
    wall: float
    cpu: float
    bytes_out: dict[str, int] = field(default_factory=dict)
    variants: dict[str, int] = field(default_factory=dict)
    summary: dict | None = None


def ensure_corpus() -> None:
    subprocess.run(["bash", os.fspath(BENCH / "fetch_corpus.sh")], check=True)


def peer_python(name: str) -> Path:
    """The peer's venv python, created and installed on first use."""
    venv = VENVS / f"compress-{name}"
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    requirement = PEERS[name][0]
    if not stamp.exists() or stamp.read_text() != requirement:
        subprocess.run([sys.executable, "-m", "venv", "--clear", os.fspath(venv)], check=True)
        subprocess.run([os.fspath(python), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", requirement],
                       check=True, cwd=tempfile.gettempdir())
        stamp.write_text(requirement)
    return python


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall and CPU seconds of a command (and its children), and its stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVESTATIC_")}
    env["PYTHONSAFEPATH"] = "1"  # never import from the current directory
    cpu = children_cpu()
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({result.returncode}):\n{result.stderr}")
    return wall, children_cpu() - cpu, result.stdout


def variant_sizes(tree: Path) -> dict[str, int]:
    """Size of every variant whose original sits beside it, by relative path."""
    sizes: dict[str, int] = {}
    for directory, _dirs, names in os.walk(tree):
        present = set(names)
        for name in names:
            stem, dot, suffix = name.rpartition(".")
            if dot and "." + suffix in SUFFIXES and stem in present:
                path = Path(directory, name)
                sizes[path.relative_to(tree).as_posix()] = path.stat().st_size
    return sizes


def totals(sizes: dict[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    bytes_out: dict[str, int] = {}
    count: dict[str, int] = {}
    for path, size in sizes.items():
        encoding = SUFFIXES["." + path.rpartition(".")[2]]
        bytes_out[encoding] = bytes_out.get(encoding, 0) + size
        count[encoding] = count.get(encoding, 0) + 1
    return bytes_out, count


def fresh_copy(work: Path, name: str) -> Path:
    target = work / name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(CORPUS, target, ignore=shutil.ignore_patterns(".*"))
    return target


def ours(tree: Path, *args: str) -> tuple[float, float, dict]:
    command = [sys.executable, "-m", "servestatic", "compress", os.fspath(tree), "--json", *args]
    wall, cpu, stdout = timed(command, cwd=tree.parent)
    return wall, cpu, json.loads(stdout)


def own_cost(path: Path, effort: str) -> float:
    """Seconds to compress one file with our encoders, in this process."""
    sys.path.insert(0, os.fspath(REPO))
    from servestatic.buildtime.encoders import make_encoders

    data = path.read_bytes()
    started = time.perf_counter()
    for encode in make_encoders(("br", "gzip"), effort).values():
        encode(data)
    return time.perf_counter() - started


def common_ratio(ours_sizes: dict[str, int], peer_sizes: dict[str, int], suffix: str) -> dict:
    """Bytes over the originals for which both tools kept a variant: like for like."""
    both = [p for p in ours_sizes if p.endswith(suffix) and p in peer_sizes]
    mine = sum(ours_sizes[p] for p in both)
    theirs = sum(peer_sizes[p] for p in both)
    return {"files": len(both), "ours": mine, "peer": theirs, "ratio": round(mine / theirs, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--effort", default="balanced", help="servestatic's --gzip-effort")
    parser.add_argument("--workers", default="0", help="servestatic's --workers (0: every core)")
    parser.add_argument("--skip-peers", action="store_true", help="run servestatic only")
    parser.add_argument("--repeat", type=int, default=1,
                        help="cold runs of each tool, in rotation; the fastest is reported")
    parser.add_argument("--work-dir", type=Path, default=REPO / ".cache" / "bench-work")
    options = parser.parse_args()

    ensure_corpus()
    work = options.work_dir
    work.mkdir(parents=True, exist_ok=True)
    corpus_files = [p for p in CORPUS.rglob("*") if p.is_file() and not p.name.startswith(".")]
    load_before = os.getloadavg()
    print(f"corpus: {len(corpus_files)} files, {sum(p.stat().st_size for p in corpus_files):,} bytes; "
          f"{os.cpu_count()} cores; load average {load_before[0]:.2f}", flush=True)

    runs: list[Run] = []
    sizes: dict[str, dict[str, int]] = {}
    ours_args = ["--gzip-effort", options.effort, "--workers", options.workers]
    cache = work / "cache"
    # Cold runs in rotation, `--repeat` times; the fastest of each tool is kept,
    # the one least disturbed by whatever else the machine was doing.
    best: dict[str, Run] = {}
    for round_number in range(1, options.repeat + 1):
        for name, (_requirement, arguments) in ({} if options.skip_peers else PEERS).items():
            python = peer_python(name)
            tree = fresh_copy(work, name)
            wall, cpu, _ = timed([os.fspath(python), *arguments, os.fspath(tree)], cwd=work)
            sizes[name] = variant_sizes(tree)
            bytes_out, count = totals(sizes[name])
            run = Run(name, "cold", wall, cpu, bytes_out, count)
            print(f"round {round_number}: {name}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
            if name not in best or wall < best[name].wall:
                best[name] = run
        if cache.exists():
            shutil.rmtree(cache)
        tree = fresh_copy(work, "servestatic")
        wall, cpu, summary = ours(tree, *ours_args, "--cache-dir", os.fspath(cache))
        sizes["servestatic"] = variant_sizes(tree)
        bytes_out, count = totals(sizes["servestatic"])
        run = Run("servestatic", "cold", wall, cpu, bytes_out, count, summary)
        print(f"round {round_number}: servestatic: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
        if "servestatic" not in best or wall < best["servestatic"].wall:
            best["servestatic"] = run
    runs.extend(best.values())

    wall, cpu, summary = ours(tree, *ours_args)
    runs.append(Run("servestatic", "unchanged", wall, cpu, summary=summary))

    changed = tree / CHANGED_FILE
    changed.write_bytes(changed.read_bytes() + b"\n// changed by the benchmark\n")
    wall, cpu, summary = ours(tree, *ours_args)
    runs.append(Run("servestatic", "one file changed", wall, cpu, summary=summary))
    file_cost = own_cost(changed, options.effort)

    warm = fresh_copy(work, "servestatic-warm")
    wall, cpu, summary = ours(warm, *ours_args, "--cache-dir", os.fspath(cache))
    runs.append(Run("servestatic", "fresh copy, warm cache", wall, cpu, summary=summary))

    report(runs, sizes, file_cost, options, load_before)


def report(runs: list[Run], sizes: dict[str, dict[str, int]], file_cost: float,
           options: argparse.Namespace, load_before: tuple[float, float, float]) -> None:
    base = next((run for run in runs if run.tool == "whitenoise"), None)
    print()
    print(f"{'tool':18} {'run':24} {'wall s':>7} {'cpu s':>7} {'gzip bytes':>11} {'br bytes':>11}"
          f" {'wall x':>7} {'cpu x':>6} {'gz x':>6} {'br x':>6}")
    for run in runs:
        gz = run.bytes_out.get("gzip")
        br = run.bytes_out.get("br")
        ratios = ["", "", "", ""]
        if base is not None and run.label == "cold":
            ratios = [f"{run.wall / base.wall:.2f}", f"{run.cpu / base.cpu:.2f}",
                      f"{gz / base.bytes_out['gzip']:.3f}" if gz else "",
                      f"{br / base.bytes_out['br']:.3f}" if br else ""]
        print(f"{run.tool:18} {run.label:24} {run.wall:7.2f} {run.cpu:7.2f} "
              f"{gz or '':>11} {br or '':>11} {ratios[0]:>7} {ratios[1]:>6} {ratios[2]:>6} {ratios[3]:>6}")

    cold = next(run for run in runs if run.tool == "servestatic" and run.label == "cold")
    by_label = {run.label: run for run in runs if run.tool == "servestatic"}
    common: dict[str, dict] = {}
    if base is not None:
        for suffix, encoding in ((".gz", "gzip"), (".br", "br")):
            common[encoding] = common_ratio(sizes["servestatic"], sizes["whitenoise"], suffix)
        print("\nlike for like (originals both servestatic and WhiteNoise compressed):")
        for encoding, row in common.items():
            print(f"  {encoding}: {row['files']} files, {row['ours']:,} vs {row['peer']:,} bytes "
                  f"= {row['ratio']:.4f} x WhiteNoise")
    print(f"\nunchanged second run: {by_label['unchanged'].wall:.2f} s")
    print(f"one file changed: {by_label['one file changed'].wall:.2f} s "
          f"(that file alone costs {file_cost:.2f} s: {CHANGED_FILE})")
    warm = by_label["fresh copy, warm cache"]
    print(f"fresh copy with warm cache: {warm.wall:.2f} s = {warm.wall / cold.wall:.1%} of cold")

    RESULTS.mkdir(exist_ok=True)
    output = RESULTS / f"compress-{time.strftime('%Y%m%d-%H%M%S')}.json"
    output.write_text(json.dumps({
        "options": {"effort": options.effort, "workers": options.workers, "repeat": options.repeat},
        "cores": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "runs": [asdict(run) for run in runs],
        "like_for_like": common,
        "changed_file": CHANGED_FILE,
        "changed_file_own_seconds": file_cost,
    }, indent=1))
    print(f"\nwrote {output.relative_to(REPO)}")


if __name__ == "__main__":
    main()
