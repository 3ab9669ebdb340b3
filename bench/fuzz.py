"""Long fuzzing runs of the atheris targets in tests/fuzz/, and the corpus merge that keeps
the checked-in seeds small.

    .venv/bin/python bench/fuzz.py                              # every target, 600 s each
    .venv/bin/python bench/fuzz.py --target head --seconds 3600
    .venv/bin/python bench/fuzz.py --seconds 300 --merge        # then fold what was found into
                                                                # tests/fuzz/corpus/, minimised

The test suite runs each target for tests/test_atheris.py's SECONDS_PER_TARGET; this is
the same run (tests/fuzz/runner.py), as long as you like. Each works on a copy of the
checked-in corpus under --workdir (a temporary directory unless given, kept then), so a
crash's input and libFuzzer's log stay there. Prints one line a target and a JSON summary;
exits 1 on any crash.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.fuzz.runner import TARGETS, merge, run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", action="append", choices=sorted(TARGETS),
                        help="a target to run (repeatable; default: all)")
    parser.add_argument("--seconds", type=int, default=600, help="per target (default 600)")
    parser.add_argument("--merge", action="store_true",
                        help="after a clean run, replace the target's checked-in corpus by the minimal "
                             "set (libFuzzer -merge=1) of it and the run's corpus")
    parser.add_argument("--workdir", type=Path, help="where runs write (default: a new temporary directory)")
    options = parser.parse_args()
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="servestatic-fuzz-"))
    workdir.mkdir(parents=True, exist_ok=True)
    summary = []
    failed = False
    for name in options.target or list(TARGETS):
        target_dir = workdir / name
        target_dir.mkdir()
        result = run(name, options.seconds, target_dir)
        line = {"target": name, "seconds": round(result.seconds, 1), "executions": result.executions,
                "per_second": round(result.executions / result.seconds) if result.seconds else 0,
                "corpus": [result.corpus_before, result.corpus_after], "returncode": result.returncode,
                "crashes": [str(path) for path in result.crashes]}
        if not result.ok:
            failed = True
            print(result.log_tail(), file=sys.stderr)
        elif options.merge:
            line["merged"] = merge(name, [target_dir / "corpus"], target_dir)
        print(f"{name}: {line['executions']:,} executions in {line['seconds']} s, corpus "
              f"{result.corpus_before} -> {result.corpus_after}, "
              f"{'OK' if result.ok else 'FAILED, see ' + str(result.log)}", flush=True)
        summary.append(line)
    print(json.dumps({"workdir": str(workdir), "targets": summary}, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
