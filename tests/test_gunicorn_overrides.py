"""Every gunicorn method the worker overrides, and every private flag it reads, is covered
by a behavioural test: one that fails when the override is bypassed or the flag changes
meaning, not only when the name disappears (tests/test_gunicorn_internals.py checks that).

`BEHAVIOUR` names those tests; `test_every_override_and_flag_has_a_behavioural_test` fails
when a new override or flag comes without one. The tests below are the ones no other
module had.
"""

from __future__ import annotations

import importlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from servestatic.server.connection import StaticProtocol
from servestatic.server.worker import GUNICORN_INTERNALS, EventLoopWorker
from tests.support import wait_for
from tests.support.cli import compress
from tests.support.http import read_response
from tests.support.server import ServerProcess
from tests.support.site import copy_site

ECHO = "tests.apps.echo:application"
BOUNDS = "tests.test_connection_bounds"
RESILIENCE = "tests.test_resilience"
LOOP = "tests.test_loop_path"
HERE = "tests.test_gunicorn_overrides"

# override or flag -> the tests that fail if it is bypassed or means something else
BEHAVIOUR: dict[str, list[str]] = {
    # StaticProtocol's overrides of gunicorn's ASGIProtocol
    "StaticProtocol.connection_made": [
        f"{HERE}::test_a_connection_that_never_sends_is_closed_after_keepalive"],
    "StaticProtocol.connection_lost": [f"{BOUNDS}::test_worker_connections_is_enforced"],
    "StaticProtocol._close_transport": [
        f"{RESILIENCE}::test_clients_gone_in_the_middle_of_a_large_body_are_released"],
    "StaticProtocol.pause_writing": [f"{BOUNDS}::test_pipelining_clients_that_never_read_cost_bounded_memory",
                                     f"{RESILIENCE}::test_client_that_stops_reading_is_dropped_after_the_timeout"],
    "StaticProtocol.resume_writing": [
        f"{BOUNDS}::test_held_pipelined_requests_are_answered_in_order_once_the_client_reads"],
    "StaticProtocol._resume_reading": [
        f"{BOUNDS}::test_pipelining_clients_that_never_read_cost_bounded_memory"],
    "StaticProtocol.data_received": [f"{LOOP}::test_pipelined_requests_are_answered_in_order",
                                     f"{BOUNDS}::test_pipelining_clients_that_never_read_cost_bounded_memory"],
    "StaticProtocol._on_headers_complete": [f"{HERE}::test_heads_in_pieces_on_one_connection_do_not_add_up"],
    "StaticProtocol._feed_callback_parser": [f"{HERE}::test_a_head_in_pieces_then_a_pipelined_hit",
                                             f"{BOUNDS}::test_a_head_over_64_kib_gets_431_whole_or_in_pieces"],
    "StaticProtocol._build_environ": [f"{LOOP}::test_the_text_access_log_is_gunicorn_s_format_for_both_paths",
                                      f"{HERE}::test_a_post_request_hook_gets_every_header"],
    "StaticProtocol._send_response_start": [
        "tests.test_reliability::test_grammar_generated_requests",
        "tests.test_reliability::test_an_answer_before_the_body_is_in_says_close_or_keeps_the_connection"],
    "StaticProtocol._keepalive_timeout": [
        f"{RESILIENCE}::test_keep_alive_timeout_counts_from_the_last_static_answer",
        f"{BOUNDS}::test_a_trickled_head_gets_408_when_keepalive_is_shorter"],
    # EventLoopWorker's overrides of gunicorn's ASGIWorker
    "EventLoopWorker.load_wsgi": [f"{LOOP}::test_the_loop_path_is_on_by_default_and_logs_each_request"],
    "EventLoopWorker.notify": [
        f"{RESILIENCE}::test_a_burst_of_kept_alive_connections_is_spread_over_the_workers"],
    "EventLoopWorker.run": [f"{LOOP}::test_access_log_lines_are_written_while_serving_not_only_at_exit"],
    "EventLoopWorker.check_config": [f"{HERE}::test_no_warning_about_threads_at_start_up"],
    "EventLoopWorker.init_process": [f"{LOOP}::test_the_loop_path_is_on_by_default_and_logs_each_request",
                                     f"{HERE}::test_gunicorn_s_answers_have_real_reason_phrases"],
    "EventLoopWorker.init_signals": [f"{RESILIENCE}::test_sigterm_while_a_worker_boots_stops_at_once"],
    "SIG_QUEUE": [f"{RESILIENCE}::test_sigterm_while_a_worker_boots_stops_at_once"],
    "EventLoopWorker._shutdown": [
        f"{RESILIENCE}::test_sigterm_under_load_finishes_in_flight_requests_and_refuses_cleanly"],
    "EventLoopWorker.alive": [
        f"{RESILIENCE}::test_sigterm_under_load_finishes_in_flight_requests_and_refuses_cleanly"],
    # ASGIProtocol's per-connection flags the worker reads (StaticProtocol.phase and friends)
    "_callback_parser": [f"{LOOP}::test_what_the_loop_leaves_to_gunicorn_is_answered_alike"],
    "_current_request": [f"{LOOP}::test_what_the_loop_leaves_to_gunicorn_is_answered_alike",
                         f"{HERE}::test_heads_in_pieces_on_one_connection_do_not_add_up"],
    "_request_ready": [f"{LOOP}::test_pipelined_requests_are_answered_in_order",
                       f"{HERE}::test_a_head_in_pieces_then_a_pipelined_hit"],
    "_websocket": ["tests.test_asgi_apps::test_websockets_reach_the_app"],
    "reader": ["tests.test_asgi_apps::test_websockets_reach_the_app"],
    "_h2c_buffer": [f"{LOOP}::test_the_loop_path_is_on_by_default_and_logs_each_request"],
    "_closed": [f"{RESILIENCE}::test_clients_gone_in_the_middle_of_a_large_body_are_released"],
    "_keepalive_handle": [f"{RESILIENCE}::test_keep_alive_timeout_counts_from_the_last_static_answer"],
    "_keepalive": [f"{RESILIENCE}::test_keep_alive_timeout_counts_from_the_last_static_answer"],
    "_finishing_calls": [
        f"{RESILIENCE}::test_sigterm_under_load_finishes_in_flight_requests_and_refuses_cleanly"],
    "req_count": [f"{RESILIENCE}::test_sigterm_under_load_finishes_in_flight_requests_and_refuses_cleanly"],
    "_post_request": [f"{HERE}::test_a_post_request_hook_gets_every_header"],
    "_max_buffer_size": [f"{BOUNDS}::test_pipelining_clients_that_never_read_cost_bounded_memory"],
    # read by StaticProtocol._resume_reading: misread, pipelined requests held there never resume
    "_reading_paused": [f"{BOUNDS}::test_pipelining_clients_that_never_read_cost_bounded_memory",
                        f"{LOOP}::test_pipelined_requests_are_answered_in_order"],
}


def overrides() -> list[str]:
    """Methods of the worker's classes that replace one of gunicorn's."""
    found = []
    for cls in (StaticProtocol, EventLoopWorker):
        gunicorn_bases = [base for base in cls.__mro__[1:] if base.__module__.startswith("gunicorn")]
        for name, value in vars(cls).items():
            if name.startswith("__") or (not callable(value) and not isinstance(value, property)):
                continue
            if any(name in vars(base) for base in gunicorn_bases):
                found.append(f"{cls.__name__}.{name}")
    return found


def flags() -> list[str]:
    """The private attributes of gunicorn's protocol the worker reads (not methods)."""
    from gunicorn.asgi.protocol import ASGIProtocol

    names = GUNICORN_INTERNALS[ASGIProtocol]
    return [name for name in names if not callable(getattr(ASGIProtocol, name, None))]


def test_every_override_and_flag_has_a_behavioural_test() -> None:
    missing = [name for name in [*overrides(), *flags()] if not BEHAVIOUR.get(name)]
    assert not missing, f"no behavioural test named for {missing} in BEHAVIOUR"
    for name, tests in BEHAVIOUR.items():
        for test in tests:
            module, _, function = test.partition("::")
            assert callable(getattr(importlib.import_module(module), function, None)), \
                f"{name}: {test} does not exist"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = copy_site(tmp_path_factory.mktemp("overrides") / "site")
    compress(site)
    return site


@pytest.fixture(scope="module", params=["loop", "asgi"])
def chained(site: Path, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    env = {"SERVESTATIC_APP": ECHO}
    if request.param == "asgi":
        env["SERVESTATIC_FAST_PATH"] = "false"
    with ServerProcess(site, env=env) as server:
        yield server


def send_in_two_pieces(client: socket.socket, data: bytes, split: int) -> None:
    client.sendall(data[:split])
    time.sleep(0.02)  # the client's pace, the subject of the test: two reads, not one
    client.sendall(data[split:])


def test_heads_in_pieces_on_one_connection_do_not_add_up(chained: ServerProcess) -> None:
    """The head size bound (64 KiB) is per head: gunicorn's _on_headers_complete is where
    the count restarts. 24 app requests with 4 KiB heads, each in two pieces (the first
    holding nearly all of it), on one connection (96 KiB of heads in all) are all answered."""
    head = (b"GET /app/piece HTTP/1.1\r\nHost: t\r\nX-Filler: " + b"a" * 4000 + b"\r\n\r\n")
    with socket.create_connection(("127.0.0.1", chained.port), timeout=10) as client:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(24):
            send_in_two_pieces(client, head, len(head) - 10)
            status, body = read_response(client)
            assert status.startswith(b"HTTP/1.1 200 "), status
            assert b'"path": "/app/piece"' in body


def test_a_head_in_pieces_then_a_pipelined_hit(chained: ServerProcess) -> None:
    """A head that arrives in pieces belongs to gunicorn's parser from its first byte:
    the loop must not read a later piece as a head of its own, even one that looks like
    a static hit. Here the second piece is a line of the first request's header block,
    which gunicorn refuses (400); reading it as a new request would answer 200."""
    with socket.create_connection(("127.0.0.1", chained.port), timeout=10) as client:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        first = b"GET /app/x HTTP/1.1\r\n"
        send_in_two_pieces(client, first + b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n", len(first))
        data = b""
        while chunk := client.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 400 "), data[:200]
    assert b"HTTP/1.1 200" not in data


def test_a_post_request_hook_gets_every_header(site: Path, tmp_path: Path) -> None:
    """With a post_request hook, gunicorn's full environ is built (the access log alone
    needs two headers, and gets a lean one)."""
    seen = tmp_path / "seen.txt"
    config = tmp_path / "gunicorn.conf.py"
    config.write_text(
        "def post_request(worker, req, environ, resp):\n"
        f"    with open({str(seen)!r}, 'a') as out:\n"
        "        out.write(environ.get('HTTP_X_CUSTOM', '-') + ' '\n"
        "                  + environ.get('HTTP_USER_AGENT', '-') + '\\n')\n")
    env = {"SERVESTATIC_APP": ECHO, "SERVESTATIC_GUNICORN_CONFIG": str(config),
           "SERVESTATIC_ACCESS_LOG": "text"}
    with ServerProcess(site, env=env) as server:
        answer = httpx.get(f"{server.url}/app/hooked", headers={"X-Custom": "kept", "User-Agent": "probe/1"})
        assert answer.status_code == 200
        wait_for(lambda: seen.exists() and seen.read_text(), 5, "the hook's line")
    assert seen.read_text() == "kept probe/1\n"


def test_a_connection_that_never_sends_is_closed_after_keepalive(site: Path) -> None:
    """gunicorn arms its keep-alive timer from the second request on; the worker arms it
    when the connection is made, so a client that never sends is not kept for ever."""
    with ServerProcess(site, env={"SERVESTATIC_KEEPALIVE": "1"}) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
        started = time.monotonic()
        assert client.recv(1) == b""
        waited = time.monotonic() - started
    assert 0.8 <= waited <= 3, waited


def test_no_warning_about_threads_at_start_up(site: Path) -> None:
    """gunicorn's ASGI worker warns that `threads` means nothing to it; here it sizes the
    WSGI app's pool, so the warning would be wrong."""
    with ServerProcess(site, env={"SERVESTATIC_APP": ECHO, "SERVESTATIC_THREADS": "4"}) as server:
        assert httpx.get(f"{server.url}/app").status_code == 200
        log = server.log()
    assert "worker_connections instead" not in log, log


def test_gunicorn_s_answers_have_real_reason_phrases(site: Path) -> None:
    """gunicorn's table of reason phrases says "416 Unknown"; the worker completes it."""
    with ServerProcess(site, env={"SERVESTATIC_FAST_PATH": "false"}) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
        client.sendall(b"GET /index.html HTTP/1.1\r\nHost: t\r\nRange: bytes=999999-\r\n\r\n")
        head, _ = read_response(client)
    assert head.startswith(b"HTTP/1.1 416 Requested Range Not Satisfiable\r\n"), head
