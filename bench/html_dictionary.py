"""HTML-dictionary benchmark: what each page of a real documentation site costs a visitor as
identity, gzip, br and `dcz` against the site-wide dictionary (docs/http.md, "A dictionary for
the HTML pages"), what the dictionary costs to fetch, and what it costs at build time.

The site is real and on this machine without a network: The Cargo Book (an mdBook site whose
every page carries the whole table of contents) as the Rust toolchains installed by rustup
ship it, stable as the old release and nightly as the new one (found under
~/.rustup/toolchains/*/share/doc/rust/html/cargo; --old and --new name other directories).

Runs, with one cache dir: `servestatic compress` of the old release without and with
--html-dictionary (the difference is the build-time cost), then the new release with it
(retrained: a deploy). Bytes per page: a new visitor (no dictionary), a visitor holding the
current dictionary, and after the deploy a visitor still holding the old release's one. Then
the dictionary size and kind the module chose, measured in process: 32, 64 and 112 KiB, raw
content (what `dcz` uses) against a full zstd dictionary with its entropy tables.

Run from the repository root:  .venv/bin/python bench/html_dictionary.py
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
MANIFEST = ".servestatic-manifest.json"
RUSTUP = Path.home() / ".rustup" / "toolchains"


def default_release(channel: str) -> Path | None:
    found = sorted(RUSTUP.glob(f"{channel}-*/share/doc/rust/html/cargo"))
    return found[0] if found else None


def compress(root: Path, cache: Path, *args: str) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    result = subprocess.run([str(Path(sys.executable).parent / "servestatic"), "compress", str(root),
                             "--cache-dir", str(cache), "--json", *args],
                            capture_output=True, text=True, check=True)
    return time.perf_counter() - started, json.loads(result.stdout)


def b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def per_page(root: Path, holding: str | None) -> dict[str, list[int]]:
    """Per HTML page: identity, gzip, br, and what a dcz client holding the dictionary with that
    base64 SHA-256 is sent (the delta where the build kept one, else br)."""
    files = json.loads((root / MANIFEST).read_text())["files"]
    sizes: dict[str, list[int]] = {"identity": [], "gzip": [], "br": [], "dcz": []}
    for entry in files.values():
        if not entry["content_type"].startswith("text/html"):
            continue
        variants = entry["variants"]
        br = variants.get("br", {"size": entry["size"]})["size"]
        sizes["identity"].append(entry["size"])
        sizes["gzip"].append(variants.get("gzip", {"size": entry["size"]})["size"])
        sizes["br"].append(br)
        delta = entry.get("deltas", {}).get(holding) if holding else None
        sizes["dcz"].append(delta["size"] if delta else br)
    return sizes


def summarise(sizes: dict[str, list[int]]) -> dict[str, object]:
    return {name: {"total": sum(values), "median": statistics.median(values),
                   "mean": round(statistics.mean(values))} for name, values in sizes.items()}


def dictionary_of(root: Path) -> tuple[str, bytes, int]:
    manifest = json.loads((root / MANIFEST).read_text())
    relative = manifest["html_dictionary"]
    br = manifest["files"][relative]["variants"]["br"]["size"]
    return relative, (root / relative).read_bytes(), br


def choices(root: Path) -> list[dict[str, object]]:
    """Total dcz bytes of the pages for dictionary sizes and kinds (in process, level 19)."""
    import zstandard

    from servestatic.buildtime.htmldictionary import TRAIN_PARAMETERS, raw_content

    pages = [path.read_bytes() for path in sorted(root.rglob("*.html"))]
    rows = []
    for size in (32 * 1024, 64 * 1024, 112 * 1024):
        started = time.perf_counter()
        trained = zstandard.train_dictionary(size, pages, threads=1, **TRAIN_PARAMETERS)
        seconds = time.perf_counter() - started
        raw = raw_content(trained.as_bytes())
        kinds = {"raw": zstandard.ZstdCompressionDict(raw, dict_type=zstandard.DICT_TYPE_RAWCONTENT),
                 "zstd-full": trained}
        row: dict[str, object] = {"size": size, "train_seconds": round(seconds, 3),
                                  "dictionary_br": len(__import__("brotli").compress(raw))}
        for kind, dictionary in kinds.items():
            compressor = zstandard.ZstdCompressor(level=19, dict_data=dictionary)
            row[kind] = sum(len(compressor.compress(page)) for page in pages)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, default=default_release("stable"))
    parser.add_argument("--new", type=Path, default=default_release("nightly"))
    options = parser.parse_args()
    if options.old is None or options.new is None:
        sys.exit("no Cargo Book under ~/.rustup/toolchains: pass --old and --new (two releases of "
                 "one HTML site)")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        old, new, plain = work / "old", work / "new", work / "plain"
        for source, target in ((options.old, old), (options.new, new), (options.old, plain)):
            shutil.copytree(source, target)
        baseline, _ = compress(plain, work / "cache-plain")
        with_dictionary, summary_old = compress(old, work / "cache", "--html-dictionary")
        _, dictionary_old, dictionary_old_br = dictionary_of(old)
        redeploy, summary_new = compress(new, work / "cache", "--html-dictionary")
        _, dictionary_new, dictionary_new_br = dictionary_of(new)
        report = {
            "site": f"The Cargo Book: {options.old} (old), {options.new} (new)",
            "pages": len(per_page(old, None)["identity"]),
            "dictionary": {"bytes": len(dictionary_old), "br": dictionary_old_br,
                           "retrained_bytes": len(dictionary_new), "retrained_br": dictionary_new_br},
            "build_seconds": {"without": round(baseline, 2), "with": round(with_dictionary, 2),
                              "html_dictionary_step": summary_old["html_dictionary"]["seconds"],  # type: ignore[index]
                              "training": summary_old["html_dictionary"]["train_seconds"],  # type: ignore[index]
                              "redeploy": round(redeploy, 2),
                              "redeploy_step": summary_new["html_dictionary"]["seconds"]},  # type: ignore[index]
            "per_page_old_release": summarise(per_page(old, b64(dictionary_old))),
            "per_page_after_deploy_holding_new": summarise(per_page(new, b64(dictionary_new))),
            "per_page_after_deploy_holding_old": summarise(per_page(new, b64(dictionary_old))),
            "choices": choices(old),
        }
    saved = report["per_page_old_release"]  # type: ignore[assignment]
    per_page_gain = (saved["br"]["mean"] - saved["dcz"]["mean"])  # type: ignore[index]
    repaid = round(dictionary_old_br / per_page_gain, 1) if per_page_gain else None
    report["pages_to_repay_the_dictionary"] = repaid
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "html_dictionary.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
