"""Origin offload behind the Varnish recipe, with SERVESTATIC_CDN_MAX_AGE off and on.

    .venv/bin/python bench/cdn_offload.py                      # N = 1000: N and 10N requests
    .venv/bin/python bench/cdn_offload.py --requests 2000 --root path/to/compressed/site

Clients ask for the site's URLs drawn Zipf-like, with browsers' and other clients'
Accept-Encoding spellings (tests/support/offload.py), through docs/cdn/varnish.vcl in
front of one `servestatic serve`; N requests, then 10N through a fresh cache. The origin's
access log counts what reached it. Prints a table and one JSON line, and exits 1 when,
with the setting on, 10N gives 1.5 times N's origin requests or more, or 5% or more of
10N's client requests reach the origin (issue 22's Bar). tests/test_cdn.py runs the
setting-on half with N = 1000.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.caches import Origin  # noqa: E402
from tests.support.cli import compress  # noqa: E402
from tests.support.offload import run, site_urls  # noqa: E402
from tests.support.site import copy_site  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="N: the small run; the large is 10N")
    parser.add_argument("--root", type=Path, help="a compressed site (default: a copy of examples/site)")
    parser.add_argument("--cdn-max-age", type=int, default=86400, help="SERVESTATIC_CDN_MAX_AGE when on")
    parser.add_argument("--seed", type=int, default=22)
    args = parser.parse_args()
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        root = args.root
        if root is None:
            root = copy_site(work / "site")
            compress(root)
        urls = site_urls(root)
        for name, env in (("off", {}), ("on", {"SERVESTATIC_CDN_MAX_AGE": str(args.cdn_max_age)})):
            with Origin(root, env=env) as origin:
                small = run(origin, work / f"{name}-n", urls, args.requests, args.seed)
                large = run(origin, work / f"{name}-10n", urls, 10 * args.requests, args.seed)
            results[name] = {
                "n": small.client_requests, "origin_n": small.origin_requests,
                "share_n": round(small.share, 4),
                "10n": large.client_requests, "origin_10n": large.origin_requests,
                "share_10n": round(large.share, 4),
                "ratio": round(large.origin_requests / small.origin_requests, 2),
            }
    print(f"{len(urls)} URLs; seed {args.seed}")
    print(f"{'CDN-Cache-Control':<18}{'N':>7}{'origin':>8}{'share':>8}{'10N':>8}{'origin':>8}{'share':>8}"
          f"{'10N/N':>8}")
    for name, row in results.items():
        print(f"{name:<18}{row['n']:>7}{row['origin_n']:>8}{row['share_n']:>8.1%}{row['10n']:>8}"
              f"{row['origin_10n']:>8}{row['share_10n']:>8.1%}{row['ratio']:>8}")
    print(json.dumps({"urls": len(urls), "seed": args.seed, **results}))
    on = results["on"]
    return 0 if float(on["ratio"]) < 1.5 and float(on["share_10n"]) < 0.05 else 1  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
