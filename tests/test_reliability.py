"""The reliability round (issue 20), against a real `servestatic serve` with an app chained,
in both modes: static hits answered in the event loop (`loop`) and everything through
gunicorn's ASGI protocol (`app`, SERVESTATIC_FAST_PATH=false).

- Grammar-generated requests (tests/support/grammar.py), a bounded subset per mode:
  no 5xx but 501 for an unknown transfer coding, no canary byte, no request read out
  of a body, every body whole and right. The full run is `bench/grammar.py`.
- Workers SIGKILLed under mixed load: only requests in flight on the killed worker
  fail, no complete answer is wrong, the master replaces the worker. SIGHUP reload and
  max_requests recycling under load: no request fails.
- The soak (`bench/soak.py`) for half a minute per mode: no error, worker RSS and
  descriptors flat. The 10-minute run is the bench command.

Every wait is a poll with a deadline (tests/support `wait_for`, the server's own
readiness); the load runs for a set time because the load is the test's subject.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.support import REPO, wait_for
from tests.support.grammar import (
    CANARY,
    DIGEST_APP,
    MODES,
    SMUGGLE_MARKER,
    Answer,
    GrammarSite,
    Planned,
    Reader,
    check,
    prepare_site,
    run,
)
from tests.support.load import LoadClient, LoadRecord
from tests.support.server import ServerProcess, worker_pids

GRAMMAR_REQUESTS = int(os.environ.get("SERVESTATIC_GRAMMAR_REQUESTS", "3000"))
GRAMMAR_SEED = int(os.environ.get("SERVESTATIC_GRAMMAR_SEED", "20"))


@pytest.fixture(scope="module")
def grammar_site(tmp_path_factory: pytest.TempPathFactory) -> GrammarSite:
    return prepare_site(tmp_path_factory.mktemp("grammar"), huge_mib=4)


def digest_server(site: GrammarSite, mode: str, workers: int = 2,
                  env: dict[str, str] | None = None) -> ServerProcess:
    return ServerProcess(site.root, env={"SERVESTATIC_APP": DIGEST_APP, **MODES[mode], **(env or {})},
                         workers=workers, cwd=REPO)


# --- the model itself: each rule can fail


def test_the_model_refuses_what_it_must(grammar_site: GrammarSite) -> None:
    """`check` is the oracle of the grammar run and of the load tests: each rule it
    holds an answer to must fire on an answer that breaks it."""
    robots = grammar_site.files["/robots.txt"]["identity"]
    static = Planned(b"GET /robots.txt HTTP/1.1\r\n\r\n", "static", "GET", frozenset({200}), False,
                     kind="static", url="/robots.txt")
    app = Planned(b"POST /api?rid=r1 HTTP/1.1\r\n\r\n", "app", "POST", frozenset({200}), False, kind="app",
                  rid="r1", body=b"abc")
    good_digest = json.dumps({"method": "POST", "query": "rid=r1", "length": 3,
                              "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"})
    assert check(static, Answer(b"HTTP/1.1", 200, {}, robots), grammar_site) == []
    assert check(app, Answer(b"HTTP/1.1", 200, {}, good_digest.encode()), grammar_site) == []
    wrong = {
        "a 5xx": (static, Answer(b"HTTP/1.1", 500, {}, b"")),
        "a 501 for a known coding": (static, Answer(b"HTTP/1.1", 501, {}, b"")),
        "another file": (static, Answer(b"HTTP/1.1", 200, {}, robots[:-1] + b"?")),
        "a cut body": (static, Answer(b"HTTP/1.1", 200, {}, robots[:5], complete=False)),
        "a canary": (static, Answer(b"HTTP/1.1", 404, {}, CANARY)),
        "the smuggled file": (static, Answer(b"HTTP/1.1", 404, {}, SMUGGLE_MARKER)),
        "a coding not asked for": (static, Answer(b"HTTP/1.1", 200, {"content-encoding": "br"},
                                                  grammar_site.files["/robots.txt"].get("br", b"x"))),
        "another request's answer": (app, Answer(b"HTTP/1.1", 200, {},
                                                 good_digest.replace("r1", "r2").encode())),
        "another body": (app, Answer(b"HTTP/1.1", 200, {}, good_digest.replace('"length": 3', '"length": 4')
                                     .encode())),
        "a hidden request answered": (app, Answer(b"HTTP/1.1", 200, {}, b'{"path": "/hidden/x"}')),
    }
    for name, (planned, answer) in wrong.items():
        assert check(planned, answer, grammar_site), name


# --- grammar-generated requests


@pytest.mark.parametrize("mode", sorted(MODES))
def test_grammar_generated_requests(grammar_site: GrammarSite, mode: str) -> None:
    """A few thousand requests from the grammar per mode, each held to the model; the
    seed (SERVESTATIC_GRAMMAR_SEED) and a connection's index reproduce a failure alone:
    `bench/grammar.py --mode MODE --seed SEED --replay INDEX`."""
    with digest_server(grammar_site, mode) as server:
        summary = run(server.port, grammar_site, mode, GRAMMAR_SEED, GRAMMAR_REQUESTS)
    report = summary.as_dict()
    print(f"\ngrammar {mode}: {report['requests']} requests in {report['seconds']} s "
          f"({report['requests_per_second']}/s), statuses {report['statuses']}, notes {report['notes']}")
    assert server.returncode == 0, server.log()[-3000:]
    assert summary.requests >= GRAMMAR_REQUESTS
    # Every branch of the grammar was exercised, so a silent generator bug cannot pass.
    assert {"static", "app", "app+chunked", "app+cl", "app+unknown-te", "broken", "odd-target"} <= set(
        summary.labels), summary.labels
    assert summary.answers[501] > 0 and summary.answers[400] > 0
    replay = f"bench/grammar.py --mode {mode} --seed {GRAMMAR_SEED} --replay INDEX"
    assert not summary.violations, (f"seed {GRAMMAR_SEED} ({replay}):\n" + "\n".join(summary.violations[:10]))


def test_an_answer_before_the_body_is_in_says_close_or_keeps_the_connection(
        grammar_site: GrammarSite) -> None:
    """A request with a body that servestatic answers itself (a 405 for a POST to a file,
    a file for a GET with a body) is answered before the body has all arrived; the
    server must then either read the rest and keep the connection, or say
    `Connection: close` in that answer. Found by the grammar run; before 4ffcc88 it did
    neither (gunicorn refused keep-alive with a body unread, after an answer that had
    announced it), so a client pipelining behind it lost its next request, and the
    close, with bytes unread, was a reset that could discard the answer.
    """
    outcomes = {}
    for mode in sorted(MODES):
        with digest_server(grammar_site, mode, workers=1) as server:
            for method in ("POST", "GET"):
                with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                    sock.sendall(f"{method} /robots.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc"
                                 .encode())
                    reader = Reader(sock)
                    first = reader.answer(method)
                    assert first is not None and first.status in (200, 405)
                    announced_close = first.headers.get("connection", "").lower() == "close"
                    try:
                        sock.sendall(b"defghijGET /robots.txt HTTP/1.1\r\nHost: t\r\n\r\n")
                        second = reader.answer("GET")
                    except OSError:
                        second = None
                    outcomes[(mode, method)] = (first.status, announced_close,
                                                second.status if second is not None else None)
    print(f"\n(mode, method): (first status, Connection: close announced, second status): {outcomes}")
    broken = {key: value for key, value in outcomes.items() if not value[1] and value[2] != 200}
    assert not broken, f"closed after an answer that announced keep-alive: {broken}"


@pytest.mark.parametrize("mode", sorted(MODES))
def test_a_large_answer_arrives_whole_when_a_later_pipelined_request_closes(
        grammar_site: GrammarSite, mode: str) -> None:
    """GET a 4 MiB file with `Connection: close` pipelined behind it, and, once the first
    answer has begun, one more request (a client pipelining as it goes). The server
    answers the first two and closes with that last request unread. The first body
    must still arrive whole (RFC 9112 9.6: close in stages, the write side first, then
    read until the client closes). Found by the grammar run (300 KiB bodies cut, both
    modes); before 4ffcc88 the worker closed at once, so the kernel reset the connection
    for the unread bytes and dropped the part of the body still in its send buffer."""
    cut = []
    with digest_server(grammar_site, mode, workers=1) as server:
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
                sock.sendall(b"GET /img/huge.bin HTTP/1.1\r\nHost: t\r\n\r\n"
                             b"GET /robots.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                reader = Reader(sock)
                reader.buffer = sock.recv(4096)  # the first answer has begun
                sock.sendall(b"GET /robots.txt HTTP/1.1\r\nHost: t\r\n\r\n")
                answer = reader.answer("GET")
                assert answer is not None
                if not answer.complete:
                    cut.append((len(answer.body), "reset" if reader.reset else "end"))
    print(f"\n{mode}: 4 MiB bodies cut to {cut}")
    assert not cut, f"{len(cut)} of 3 bodies cut short: {cut}"


# --- workers killed, reloaded, recycled under load


def load_summary(record: LoadRecord) -> str:
    return (f"{record.answered} answered, {len(record.failures)} failed, {record.retried} retried, "
            f"{len(record.bad_answers)} wrong")


@pytest.mark.parametrize("mode", sorted(MODES))
def test_sigkilled_worker_under_mixed_load(grammar_site: GrammarSite, mode: str) -> None:
    """SIGKILL a worker while six clients load both: only requests on connections to the
    killed worker fail (or, on a connection whose first answer had not come yet, one
    opened before the kill); no complete answer is wrong or mixed; the master starts a
    replacement, and the server goes on answering everyone."""
    with digest_server(grammar_site, mode) as server:
        before = wait_for(lambda: len(worker_pids(server)) == 2 and worker_pids(server), 10, "2 workers")
        load = LoadClient(server.port, grammar_site, threads=6, seed=1).start()
        wait_for(lambda: before <= load.record.pids_seen and load.record.answered > 300, 30,
                 lambda: f"load on both workers ({load_summary(load.record)})")
        victim = min(before)
        answered_before = load.record.answered
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        after = wait_for(lambda: (pids := worker_pids(server)) and victim not in pids and len(pids) == 2
                         and pids, 15, "a replacement worker")
        replacement = (after - before).pop()
        replaced = time.monotonic() - killed_at
        wait_for(lambda: replacement in load.record.pids_seen
                 and load.record.answered > answered_before + 300,
                 30, lambda: f"load on the replacement ({load_summary(load.record)})")
        record = load.stop()
    print(f"\n{mode}: worker {victim} SIGKILLed, replaced by {replacement} in {replaced:.2f} s; "
          f"{load_summary(record)}; failures: {[(f.pid, f.reason[:40]) for f in record.failures]}")
    assert server.returncode == 0, server.log()[-3000:]
    assert not record.bad_answers, record.bad_answers[:5]
    stray = [failure for failure in record.failures
             if not (failure.pid == victim or (failure.pid is None and failure.opened < killed_at))]
    assert not stray, stray
    assert all(failure.started < killed_at + 1.0 for failure in record.failures), record.failures


@pytest.mark.parametrize("mode", sorted(MODES))
def test_sighup_reload_under_load_fails_no_request(grammar_site: GrammarSite, mode: str) -> None:
    """SIGHUP to the master (new workers, the old ones stopped gracefully) while six
    clients load the server: every request is answered, and right. A kept-alive
    connection the old worker closes while idle is retried once on a new connection,
    as HTTP clients do (RFC 9112 9.3.1); the retries are counted, and must succeed."""
    with digest_server(grammar_site, mode) as server:
        assert server.process is not None
        before = wait_for(lambda: len(worker_pids(server)) == 2 and worker_pids(server), 10, "2 workers")
        load = LoadClient(server.port, grammar_site, threads=6, seed=2, retry_idle_close=True).start()
        wait_for(lambda: load.record.answered > 300, 30, lambda: load_summary(load.record))
        for _ in range(2):
            reload_under_load(server, load)
        record = load.stop()
        after = worker_pids(server)
    print(f"\n{mode}: two SIGHUP reloads ({sorted(before)} -> {sorted(after)}); {load_summary(record)}")
    assert server.returncode == 0, server.log()[-3000:]
    assert not record.bad_answers, record.bad_answers[:5]
    assert not record.failures, [(f.reason, f.reused) for f in record.failures[:5]]


def reload_under_load(server: ServerProcess, load: LoadClient) -> None:
    """SIGHUP, then wait for a whole new set of workers and 300 more answers."""
    assert server.process is not None
    current = worker_pids(server)
    server.process.send_signal(signal.SIGHUP)
    wait_for(lambda: (pids := worker_pids(server)) and not pids & current and len(pids) == 2, 30,
             lambda: f"new workers after SIGHUP (now {worker_pids(server)}, before {current})")
    answered = load.record.answered
    wait_for(lambda: load.record.answered > answered + 300, 30, lambda: load_summary(load.record))


def worker_pids_or_none(server: ServerProcess) -> set[int]:
    try:
        return worker_pids(server)
    except OSError:
        return set()


@pytest.mark.parametrize("mode", sorted(MODES))
def test_max_requests_recycling_under_load_fails_no_request(grammar_site: GrammarSite, mode: str) -> None:
    """Workers recycled every ~200 requests (gunicorn's --max-requests with jitter, through
    GUNICORN_CMD_ARGS as docs/operations.md says) under load: every request answered and
    right, with the same once-on-a-new-connection retry as the reload test."""
    env = {"GUNICORN_CMD_ARGS": "--max-requests 200 --max-requests-jitter 50"}
    with digest_server(grammar_site, mode, env=env) as server:
        seen: set[int] = set(worker_pids(server))
        load = LoadClient(server.port, grammar_site, threads=6, seed=3, retry_idle_close=True).start()

        def recycled() -> bool:
            seen.update(worker_pids_or_none(server))
            return len(seen) >= 8 and load.record.answered > 1500

        wait_for(recycled, 90, lambda: f"8 workers in turn ({len(seen)}; {load_summary(load.record)})")
        record = load.stop()
    print(f"\n{mode}: {len(seen)} workers in turn under --max-requests 200; {load_summary(record)}")
    assert server.returncode == 0, server.log()[-3000:]
    assert not record.bad_answers, record.bad_answers[:5]
    assert not record.failures, [(f.reason, f.reused) for f in record.failures[:5]]


# --- the soak, short


@pytest.mark.parametrize("mode", ["loop", "app"])
def test_soak_half_a_minute(mode: str) -> None:
    """bench/soak.py for 25 s after a 5 s warm-up, with slow readers, pipeliners and idle
    connections beside the normal clients: it must exit 0 (no error, no worker
    replaced, RSS and descriptors within its bounds) and say so in its summary."""
    result = subprocess.run([sys.executable, str(REPO / "bench" / "soak.py"), "--mode", mode,
                             "--seconds", "25", "--warmup", "5"],
                            capture_output=True, text=True, timeout=180, cwd=REPO)
    summary = json.loads(result.stdout)
    print(f"\nsoak {mode}: {summary['requests']} requests ({summary['requests_per_second']}/s), "
          f"errors {summary['errors']}, RSS KiB {summary['worker_rss_kib_before']} -> "
          f"{summary['worker_rss_kib_after']}, fds {summary['worker_fds_before']} -> "
          f"{summary['worker_fds_after']}, slow readers {summary['slow_reader_bytes']} B")
    assert result.returncode == 0, f"{json.dumps(summary, indent=1)}\n{result.stderr[-2000:]}"
    assert summary["errors"] == 0 and summary["workers_unchanged"]
    assert summary["requests"] > 1000 and summary["slow_reader_bytes"] > 0 and summary["pipelined"] > 0
