"""Coverage-guided fuzzing with atheris of the parsers that read what clients and builds send.

Each target in tests/fuzz/ (the loop's head reader, compared with gunicorn's; the Range,
conditional and Accept-Encoding parsers; the manifest reader) asserts its parser's
contract on every input. Here each runs under libFuzzer for SECONDS_PER_TARGET from a
copy of its checked-in corpus, in a subprocess (tests/fuzz/runner.py), and must end with
no crash; bench/fuzz.py runs them for as long as you like. The corpus is also replayed
in-process, without atheris, and the inputs the fuzzer found are kept as named cases.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from servestatic.site.manifest import ManifestError, read_file, served_entry
from tests.fuzz.runner import TARGETS, run
from tests.support import needs

# About a minute a target: 5 targets take about 4.5 minutes of the suite on 2 cores.
SECONDS_PER_TARGET = 50
# A run that executed fewer inputs than this did not fuzz (an import error, a stuck target).
MIN_EXECUTIONS = 10_000
# The checked-in corpus stays small: minimised with bench/fuzz.py --merge.
MAX_CORPUS_FILES = 150


def target_module(name: str) -> ModuleType:
    return importlib.import_module(f"tests.fuzz.{name}")


def corpus_listing(name: str) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(TARGETS[name].corpus.iterdir())}


@pytest.mark.parametrize("name", list(TARGETS))
def test_corpus_replays_clean(name: str) -> None:
    """Every checked-in input meets the contract (no atheris needed, so this runs everywhere)."""
    corpus = corpus_listing(name)
    assert 5 <= len(corpus) <= MAX_CORPUS_FILES, f"{name}: {len(corpus)} corpus files"
    module = target_module(name)
    for file_name, data in corpus.items():
        try:
            module.TestOneInput(data)
        except Exception as error:
            raise AssertionError(f"{name} corpus file {file_name}: {data[:300]!r}") from error


@pytest.mark.parametrize("name", list(TARGETS))
def test_fuzzing_finds_no_crash(name: str, tmp_path: Path) -> None:
    needs(importlib.util.find_spec("atheris") is not None,
          "atheris is not installed (scripts/setup installs the test extra)")
    before = corpus_listing(name)
    result = run(name, SECONDS_PER_TARGET, tmp_path)
    print(f"\n{name}: {result.executions:,} executions in {result.seconds:.1f} s, "
          f"corpus {result.corpus_before} -> {result.corpus_after}")
    crashes = "\n".join(f"{path.name}: {path.read_bytes()[:500]!r}" for path in result.crashes)
    assert result.ok, (f"{name} failed (exit {result.returncode}); inputs:\n{crashes}\n"
                       f"libFuzzer's log ends:\n{result.log_tail()}")
    assert result.executions >= MIN_EXECUTIONS, result.log_tail()
    assert corpus_listing(name) == before, "the run wrote into the checked-in corpus"


# --- what the fuzzers found, kept as named cases

MANIFEST_ENTRY = {"size": 3, "hash": "h", "content_type": "text/css", "immutable": True, "mtime": None,
                  "variants": {"br": {"size": 2, "hash": "g"}}}


def manifest_bytes(entry_json: str) -> bytes:
    return b'{"format":1,"files":{"a.css":' + entry_json.encode() + b"}}"


@pytest.mark.parametrize("data", [
    pytest.param(b"[" * 100_000, id="nested-too-deep"),
    pytest.param(b'{"format":1,"files":' + b"[" * 50_000 + b"]" * 50_000 + b"}", id="nested-files"),
])
def test_manifest_nested_too_deep_is_a_manifest_error(tmp_path: Path, data: bytes) -> None:
    """json raises RecursionError for deep nesting: it was not caught, so `servestatic serve`
    ended with a traceback instead of its one line about the manifest."""
    path = tmp_path / ".servestatic-manifest.json"
    path.write_bytes(data)
    with pytest.raises(ManifestError):
        read_file(path)
    target_module("manifest").TestOneInput(data)


@pytest.mark.parametrize("field", ["size", "mtime", "variant size"])
def test_manifest_number_too_large_for_an_int_is_malformed(tmp_path: Path, field: str) -> None:
    """json reads 1e400 as infinity and int() of it raises OverflowError, which escaped
    served_entry: the first request for that file failed instead of logging the entry."""
    entry = json.dumps(MANIFEST_ENTRY)
    if field == "variant size":
        entry = entry.replace('"size": 2', '"size": 1e400')
    else:
        entry = entry.replace(f'"{field}": {json.dumps(MANIFEST_ENTRY[field])}', f'"{field}": 1e400')
    assert "1e400" in entry
    path = tmp_path / ".servestatic-manifest.json"
    path.write_bytes(manifest_bytes(entry))
    from servestatic.site.manifest import _compactor, entry_from_json

    compact = read_file(path, object_hook=_compactor())["files"]["a.css"]
    with pytest.raises(ValueError, match="malformed manifest entry"):
        served_entry(compact)
    with pytest.raises(ValueError, match="malformed manifest entry"):
        entry_from_json(json.loads(entry))
    target_module("manifest").TestOneInput(manifest_bytes(entry))
