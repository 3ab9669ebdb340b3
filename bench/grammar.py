"""Grammar-generated requests against a real `servestatic serve` with an app chained, in
both modes, checked request by request against the model of tests/support/grammar.py.

    .venv/bin/python bench/grammar.py --requests 100000 --mode both --seed 1
    .venv/bin/python bench/grammar.py --mode loop --seed 1 --replay 4711   # one connection again

Modes: `loop` (static hits answered in the event loop, the default) and `app`
(SERVESTATIC_FAST_PATH=false: everything through gunicorn's ASGI protocol). Each mode
gets its own server (2 workers) on a copy of the example site with canaries, the
smuggling probe's file and the digest app (tests/support/digest_app.py) chained.
Prints one JSON summary (per mode: requests, requests/second, answers by status,
requests by grammar branch, the first violations) and exits 1 on any violation.
tests/test_reliability.py runs the same with a few thousand requests per mode.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.grammar import DIGEST_APP, MODES, prepare_site, replay, run  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000, help="per mode")
    parser.add_argument("--mode", choices=["loop", "app", "both"], default="both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=6, help="client threads")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--replay", type=int, metavar="CONNECTION",
                        help="send only this connection of the seed's run, and show what it got")
    args = parser.parse_args()
    modes = ["loop", "app"] if args.mode == "both" else [args.mode]
    summaries = []
    with tempfile.TemporaryDirectory(prefix="servestatic-grammar-") as scratch:
        site = prepare_site(Path(scratch))
        for mode in modes:
            env = {"SERVESTATIC_APP": DIGEST_APP, **MODES[mode]}
            with ServerProcess(site.root, env=env, workers=args.workers, cwd=REPO) as server:
                if args.replay is not None:
                    result = replay(server.port, site, args.seed, args.replay)
                    summaries.append({"mode": mode, "connection": args.replay, "requests": result.requests,
                                      "statuses": dict(result.answers), "violations": result.violations})
                    continue
                summary = run(server.port, site, mode, args.seed, args.requests, threads=args.threads)
            if server.returncode != 0:
                summary.violations.append(f"server exited with {server.returncode}")
            summary_dict = summary.as_dict()
            summary_dict["server_exit_code"] = server.returncode
            summaries.append(summary_dict)
            print(json.dumps({key: summary_dict[key] for key in
                              ("mode", "requests", "seconds", "requests_per_second", "violations")}),
                  file=sys.stderr)
    print(json.dumps(summaries, indent=1))
    failed = any(entry.get("violations") for entry in summaries)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
