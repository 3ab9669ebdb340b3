"""Origin offload behind the Varnish recipe: how many client requests reach the origin.

Clients ask for a site's URLs drawn Zipf-like (the URL of rank r with weight 1/r, ranks
shuffled with a fixed seed), with the Accept-Encoding spellings of real browsers and a few
other clients, through a fresh Varnish (docs/cdn/varnish.vcl) in front of one
`servestatic serve`; the origin's access log counts what reached it. Used by
tests/test_cdn.py (a few hundred requests) and bench/cdn_offload.py (the full run).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import httpx

from servestatic.buildtime.diff import load_entries, url_paths
from servestatic.site.names import NOT_FOUND_PAGE
from servestatic.site.scan import never_served
from tests.support.caches import Origin, Varnish

# Accept-Encoding as clients send it, with how often (browsers first).
CLIENTS = (("gzip, deflate, br, zstd", 70), ("gzip, deflate, br", 20), ("gzip, deflate", 6),
           ("identity", 2), ("", 2))


@dataclass
class Run:
    client_requests: int
    origin_requests: int

    @property
    def share(self) -> float:
        """The share of client requests that reached the origin."""
        return self.origin_requests / self.client_requests


def site_urls(root: Path) -> list[str]:
    """Every URL the site serves (an index's directory URL too), but the 404 page's own."""
    urls: list[str] = []
    for relative in sorted(load_entries(root)):
        if not never_served(relative) and relative != NOT_FOUND_PAGE:
            urls += url_paths(relative, "/")
    return urls


def traffic(urls: list[str], requests: int, seed: int) -> list[tuple[str, str]]:
    """`requests` (URL, Accept-Encoding) pairs, URLs Zipf-distributed over a shuffled ranking."""
    chooser = random.Random(seed)
    ranked = list(urls)
    chooser.shuffle(ranked)
    weights = [1 / rank for rank in range(1, len(ranked) + 1)]
    chosen = chooser.choices(ranked, weights, k=requests)
    encodings = chooser.choices([spelling for spelling, _ in CLIENTS], [weight for _, weight in CLIENTS],
                                k=requests)
    return list(zip(chosen, encodings, strict=True))


def run(origin: Origin, workdir: Path, urls: list[str], requests: int, seed: int = 22) -> Run:
    """`requests` client requests through a fresh Varnish in front of `origin`."""
    before = len(origin.requests())
    proxy = Varnish(workdir, origin.port).start()
    try:
        with httpx.Client(base_url=proxy.url, timeout=10) as client:
            client.headers.pop("Accept-Encoding")  # httpx's own; each request says its client's
            for url, accept_encoding in traffic(urls, requests, seed):
                headers = {"Accept-Encoding": accept_encoding} if accept_encoding else {}
                response = client.get(url, headers=headers)
                assert response.status_code == 200, (url, response.status_code)
    finally:
        proxy.stop()
    return Run(requests, len(origin.requests()) - before)
