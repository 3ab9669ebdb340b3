"""Running a fuzz target under atheris in a subprocess, for the test suite and bench/fuzz.py.

A run works on a copy of the checked-in corpus (libFuzzer writes every new input into
its first corpus directory, and the checked-in one must change only when someone
merges on purpose), writes crashes into its own directory, and is bounded by
`-max_total_time`. `merge` is how the checked-in corpus is made and kept small:
libFuzzer's `-merge=1` keeps the fewest inputs that reach the same coverage.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
FUZZ_DIR = REPO / "tests" / "fuzz"
CORPUS = FUZZ_DIR / "corpus"


@dataclass(frozen=True)
class Target:
    """A fuzz target: its module in tests/fuzz/ and the longest input worth trying."""

    name: str
    max_len: int
    what: str

    @property
    def corpus(self) -> Path:
        return CORPUS / self.name

    @property
    def dictionary(self) -> Path | None:
        """libFuzzer's dictionary (tokens worth splicing in), when the target has one."""
        path = FUZZ_DIR / f"{self.name}.dict"
        return path if path.exists() else None


TARGETS: dict[str, Target] = {target.name: target for target in (
    # Long enough for gunicorn's 4094-byte request line and a few long fields.
    Target("head", 12000, "parse_head, and gunicorn's reading of what it accepts"),
    Target("byte_range", 256, "core/http.py parse_range"),
    Target("conditional", 512, "core/http.py parse_etags, none_match, match, parse_http_date"),
    Target("accept_encoding", 512, "core/http.py acceptable_codings"),
    Target("manifest", 4096, "site/manifest.py read_file, read_for_serving's entries, entry_from_json"),
)}


@dataclass
class FuzzRun:
    """What one bounded run did, from libFuzzer's final statistics."""

    target: str
    returncode: int
    seconds: float
    executions: int
    corpus_before: int
    corpus_after: int
    crashes: list[Path] = field(default_factory=list)  # inputs libFuzzer saved as crash-/timeout-/oom-
    log: Path | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.crashes

    def log_tail(self, lines: int = 60) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _command(target: Target, options: list[str], directories: list[Path]) -> list[str]:
    command = [sys.executable, "-m", "tests.fuzz", target.name, f"-max_len={target.max_len}"]
    if target.dictionary is not None:
        command.append(f"-dict={target.dictionary}")
    return command + options + [str(directory) for directory in directories]


def _environment() -> dict[str, str]:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environment.get("PYTHONPATH")]))
    return environment


def run(name: str, seconds: int, workdir: Path, extra_corpora: tuple[Path, ...] = ()) -> FuzzRun:
    """Fuzz one target for `seconds` from a copy of its checked-in corpus (and any
    `extra_corpora`, read only); everything it writes goes under `workdir`."""
    target = TARGETS[name]
    corpus = workdir / "corpus"
    artifacts = workdir / "artifacts"
    shutil.copytree(target.corpus, corpus)
    artifacts.mkdir()
    log = workdir / "libfuzzer.log"
    options = [f"-max_total_time={seconds}", "-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1",
               f"-artifact_prefix={artifacts}/"]
    before = len(list(corpus.iterdir()))
    started = time.monotonic()
    with log.open("wb") as output:
        completed = subprocess.run(_command(target, options, [corpus, *extra_corpora]), cwd=REPO,
                                   env=_environment(), stdout=output, stderr=subprocess.STDOUT,
                                   timeout=seconds + 300, check=False)
    elapsed = time.monotonic() - started
    text = log.read_text(errors="replace")
    executed = re.search(r"stat::number_of_executed_units: (\d+)", text)
    return FuzzRun(target=name, returncode=completed.returncode, seconds=elapsed,
                   executions=int(executed[1]) if executed else 0, corpus_before=before,
                   corpus_after=len(list(corpus.iterdir())), crashes=sorted(artifacts.iterdir()), log=log)


def merge(name: str, sources: list[Path], workdir: Path) -> tuple[int, int]:
    """Replace the checked-in corpus of a target by the smallest set of inputs, from it and
    `sources`, that reaches the same coverage; returns the file counts before and after.
    The checked-in corpus is left alone unless libFuzzer says the merge succeeded."""
    target = TARGETS[name]
    merged = workdir / f"merged-{name}"
    merged.mkdir(parents=True)
    target.corpus.mkdir(parents=True, exist_ok=True)
    before = len(list(target.corpus.iterdir()))
    completed = subprocess.run(_command(target, ["-merge=1"], [merged, target.corpus, *sources]), cwd=REPO,
                               env=_environment(), capture_output=True, text=True, errors="replace",
                               check=False)
    succeeded = completed.returncode == 0 and "MERGE-OUTER: successful" in completed.stderr
    if not succeeded or not any(merged.iterdir()):
        raise RuntimeError(f"merging the {name} corpus failed:\n{completed.stderr[-3000:]}")
    shutil.rmtree(target.corpus)
    shutil.copytree(merged, target.corpus)
    return before, len(list(target.corpus.iterdir()))
