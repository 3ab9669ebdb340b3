"""Prometheus metrics: read from the real /metrics listener of a real multi-worker server.

The tests only send HTTP requests and read /metrics (parsed by prometheus_client's
own parser), so they hold whatever the worker looks like inside.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import timeit
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from servestatic.server import metrics
from tests.support.cli import compress, environment
from tests.support.server import ServerProcess, free_port

WHOAMI = "tests.apps.whoami:application"


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics: {(name, sorted labels): value}."""
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


class MetricsServer(ServerProcess):
    def __init__(self, root: Path, env: dict[str, str], workers: int = 2):
        self.metrics_port = free_port()
        super().__init__(root, env={"SERVESTATIC_METRICS_BIND": f"127.0.0.1:{self.metrics_port}", **env},
                         workers=workers)
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return scrape(self.metrics_url)

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        pid = self.process.pid
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.fixture(scope="module")
def compressed_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.site import copy_site

    site = copy_site(tmp_path_factory.mktemp("metrics") / "site")
    compress(site)
    return site


def until(condition: object, timeout: float = 20.0) -> None:
    """Poll `condition()` until it is true, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)  # poll interval


@pytest.fixture(scope="module", params=["fast-path", "wsgi-path"])
def server(request: pytest.FixtureRequest, compressed_site: Path) -> Iterator[MetricsServer]:
    fast = "true" if request.param == "fast-path" else "false"
    env = {"SERVESTATIC_APP": WHOAMI, "SERVESTATIC_FAST_PATH": fast}
    with MetricsServer(compressed_site, env) as running:
        yield running


def test_requests_of_every_worker_are_counted_by_kind_status_and_encoding(server: MetricsServer) -> None:
    before = server.scrape()
    index = httpx.get(server.url + "/index.html", headers={"Accept-Encoding": "br"})
    etag = index.headers["etag"]
    hits, brotli_bytes = 1, int(index.headers["content-length"])
    assert index.headers["content-encoding"] == "br"
    pids = set()
    app_requests = 0
    # New connections until both workers have answered the app (at most 200 tries).
    while len(pids) < 2 and app_requests < 200:
        with httpx.Client() as fresh:
            pids.add(fresh.get(server.url + "/app/whoami").json()["pid"])
            app_requests += 1
            plain = fresh.get(server.url + "/robots.txt", headers={"Accept-Encoding": "identity"})
            hits += 1
    assert len(pids) == 2, "one worker answered every request"
    identity_bytes = int(plain.headers["content-length"]) * (hits - 1)
    not_modified = httpx.get(server.url + "/index.html", headers={"If-None-Match": etag,
                                                                  "Accept-Encoding": "br"})
    assert not_modified.status_code == 304
    ranged = httpx.get(server.url + "/robots.txt", headers={"Range": "bytes=0-9",
                                                            "Accept-Encoding": "identity"})
    assert ranged.status_code == 206
    identity_bytes += 10

    after = server.scrape()

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("servestatic_requests_total", kind="hit", status="2xx") == hits
    assert grew("servestatic_requests_total", kind="app", status="2xx") == app_requests
    assert grew("servestatic_requests_total", kind="not_modified", status="3xx") == 1
    assert grew("servestatic_requests_total", kind="range", status="2xx") == 1
    assert grew("servestatic_response_body_bytes_total", encoding="br") == brotli_bytes
    assert grew("servestatic_response_body_bytes_total", encoding="identity") >= identity_bytes
    # The duration histogram: every hit in the +Inf bucket and the count, a positive sum.
    assert grew("servestatic_request_duration_seconds_bucket", kind="hit", le="+Inf") == hits
    assert grew("servestatic_request_duration_seconds_count", kind="hit") == hits
    assert grew("servestatic_request_duration_seconds_sum", kind="hit") > 0
    assert value(after, "servestatic_workers") == 2


def test_metrics_are_not_on_the_public_port(server: MetricsServer) -> None:
    public = httpx.get(server.url + "/metrics")
    assert "servestatic_requests_total" not in public.text  # the chained app's answer, not metrics
    assert httpx.get(server.metrics_url.replace("/metrics", "/other")).status_code == 404


def test_a_miss_without_an_app_is_not_found_and_restarts_are_counted(compressed_site: Path) -> None:
    with MetricsServer(compressed_site, {}) as server:
        assert httpx.get(server.url + "/metrics").status_code == 404
        assert httpx.get(server.url + "/no-such-file").status_code == 404
        samples = server.scrape()
        assert value(samples, "servestatic_requests_total", kind="not_found", status="4xx") == 2
        assert value(samples, "servestatic_requests_total", kind="health", status="2xx") >= 1
        assert value(samples, "servestatic_worker_restarts_total") == 0
        hits_before = value(samples, "servestatic_requests_total", kind="not_found", status="4xx")

        victim = server.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        until(lambda: value(server.scrape(), "servestatic_worker_restarts_total") == 1)
        until(lambda: len(server.worker_pids()) == 2 and victim not in server.worker_pids())
        until(lambda: value(server.scrape(), "servestatic_workers") == 2)
        # A dead worker's counts stay in the sums.
        after = server.scrape()
        assert value(after, "servestatic_requests_total", kind="not_found", status="4xx") == hits_before


def test_recycled_workers_keep_their_counts_and_leave_no_files(compressed_site: Path, tmp_path: Path) -> None:
    """Under max_requests, a dead worker's counts move to the archive and its files go."""
    directory = tmp_path / "multiproc"
    directory.mkdir()
    env = {"GUNICORN_CMD_ARGS": "--max-requests 4", "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    with MetricsServer(compressed_site, env, workers=1) as server:
        for _ in range(20):
            assert httpx.get(server.url + "/robots.txt").status_code == 200
        until(lambda: value(server.scrape(), "servestatic_worker_restarts_total") >= 4)
        samples = server.scrape()
        assert value(samples, "servestatic_requests_total", kind="hit", status="2xx") == 20
        assert value(samples, "servestatic_request_duration_seconds_count", kind="hit") == 20
        counters = sorted(path.name for path in directory.glob("counter_*.db"))
        # The archive, the master's own (restarts) and the live worker's: never one per dead worker.
        assert "counter_archive.db" in counters
        assert len(counters) <= 3, counters
        assert len(list(directory.glob("histogram_*.db"))) <= 2


# --- bad input --------------------------------------------------------------------------


def serve(site: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "servestatic", "serve", str(site)], capture_output=True,
                          text=True, env=environment(env), timeout=60)


def test_a_metrics_address_in_use_stops_start_up(compressed_site: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve(compressed_site, SERVESTATIC_BIND=f"127.0.0.1:{free_port()}",
                       SERVESTATIC_METRICS_BIND=f"127.0.0.1:{port}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"servestatic: error: SERVESTATIC_METRICS_BIND: cannot listen on 127.0.0.1:{port}: "
        "Address already in use"]
    assert "Booting worker" not in result.stdout + result.stderr


@pytest.mark.parametrize(("public", "metrics_address"), [
    ("127.0.0.1:{port}", "127.0.0.1:{port}"),
    ("0.0.0.0:{port}", "127.0.0.1:{port}"),
    ("127.0.0.1:{port}", "0.0.0.0:{port}"),
])
def test_a_metrics_address_equal_to_the_public_one_is_refused(
        compressed_site: Path, public: str, metrics_address: str) -> None:
    port = free_port()
    public, metrics_address = public.format(port=port), metrics_address.format(port=port)
    result = serve(compressed_site, SERVESTATIC_BIND=public, SERVESTATIC_METRICS_BIND=metrics_address)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"servestatic: error: SERVESTATIC_METRICS_BIND: {metrics_address} is the public address "
        f"({public}); expected a separate HOST:PORT, so that a CDN never reaches /metrics"]


def test_a_malformed_metrics_address_is_named(compressed_site: Path) -> None:
    result = serve(compressed_site, SERVESTATIC_METRICS_BIND="9100")
    assert result.returncode == 2
    assert result.stderr.strip() == ("servestatic: error: SERVESTATIC_METRICS_BIND: got '9100'; "
                                     "expected HOST:PORT such as 0.0.0.0:9100 or [::]:9100")


# --- off by default -----------------------------------------------------------------------


def test_observe_costs_next_to_nothing_when_metrics_are_off() -> None:
    assert metrics._recorder is None  # nothing in the test process turned them on
    calls = 200_000
    seconds = timeit.timeit(lambda: metrics.observe(metrics.STATIC, "200 OK", 1234, "br", 0.0001),
                            number=calls)
    # A function call and one global lookup: well under a microsecond (the lambda included).
    assert seconds / calls < 1e-6, f"{seconds / calls * 1e9:.0f} ns per call"
