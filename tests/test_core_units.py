"""The three jobs every transport shares, each tested where it now lives once.

- who answers a request: `StaticApp.route` (core/decision.py);
- a file's body and the rule for a file that shrank after it was opened:
  `Answer.read_range` and `FileRange` (core/answer.py), and the ASGI and WSGI
  writers that use them;
- the environ: fronts/environ.py, from an ASGI scope, gunicorn-style header lines
  and a scope for the user's WSGI app.

In-process, on real files: a file that shrinks between the decision's open and
the send cannot be timed through a server, and the route is a function of the
table alone. The HTTP behaviour of each is tested through real servers elsewhere
(test_http_contract, test_loop_path, test_http_chained).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from servestatic.config.settings import load_settings
from servestatic.core.answer import Answer, FileRange, asgi_headers, encode_headers, header_block
from servestatic.core.decision import APP, HEALTH, MISS, STATIC, StaticApp
from servestatic.fronts.asgifront import send_answer
from servestatic.fronts.environ import add_header_lines, request_path, scope_environ, scope_path, wsgi_environ
from servestatic.fronts.prepare import prepare
from servestatic.fronts.wsgifront import respond
from tests.support.cli import compress


def static_app(root: Path, **environ: str) -> StaticApp:
    return prepare(load_settings(environ={"SERVESTATIC_ROOT": str(root), **environ}))


@pytest.fixture
def compressed(site: Path) -> Path:
    compress(site)
    return site


# --- who answers


@pytest.mark.parametrize(("path", "method", "expected"), [
    ("/css/print.css", "GET", STATIC),
    ("/css/print.css", "POST", STATIC),  # a static path by another method: servestatic's 405
    ("/healthz", "GET", HEALTH),
    ("/docs", "GET", MISS),  # the /dir -> /dir/ redirect
    ("/docs", "POST", APP),
    ("/api/orders", "GET", APP),
    ("/api/orders", "POST", APP),
])
def test_route_with_an_app_chained(compressed: Path, path: str, method: str, expected: str) -> None:
    app = static_app(compressed, SERVESTATIC_APP="tests.apps.echo:application")
    assert app.route(path, method) == expected


@pytest.mark.parametrize(("path", "method", "expected"), [
    ("/css/print.css", "GET", STATIC),
    ("/healthz", "HEAD", HEALTH),
    ("/api/orders", "GET", MISS),  # no app: servestatic's 404
    ("/api/orders", "POST", MISS),
])
def test_route_without_an_app(compressed: Path, path: str, method: str, expected: str) -> None:
    assert static_app(compressed).route(path, method) == expected


def test_route_sends_spa_routes_to_the_index_and_the_rest_to_the_app(compressed: Path) -> None:
    app = static_app(compressed, SERVESTATIC_SPA="true", SERVESTATIC_APP="tests.apps.echo:application")
    assert app.route("/account/settings", "GET") == MISS  # the SPA index
    assert app.route("/account/settings", "POST") == APP
    assert app.route("/missing.js", "GET") == APP  # has an extension: not a client-side route


# --- a file's body, and a file that shrank


@pytest.fixture
def hundred_bytes(tmp_path: Path) -> Path:
    path = tmp_path / "body.bin"
    path.write_bytes(bytes(range(100)))
    return path


def test_file_range_reads_its_range_in_blocks(hundred_bytes: Path) -> None:
    body = FileRange(os.open(hundred_bytes, os.O_RDONLY), 10, 25)
    try:
        assert body.read(10) == bytes(range(10, 20))
        assert not body.complete
        assert body.read() == bytes(range(20, 35))
        assert body.complete
        assert body.read() == b""
    finally:
        body.close()


def test_file_range_of_a_file_that_shrank_ends_early_and_says_so(hundred_bytes: Path) -> None:
    body = FileRange(os.open(hundred_bytes, os.O_RDONLY), 0, 100)
    try:
        os.truncate(hundred_bytes, 40)
        assert b"".join(body) == bytes(range(40))
        assert not body.complete
        assert body.read() == b""
    finally:
        body.close()


def test_read_range_reads_at_once_closes_and_comes_short_for_a_file_that_shrank(
        hundred_bytes: Path) -> None:
    answer = file_answer(hundred_bytes, 50, 20)
    assert answer.read_range() == bytes(range(50, 70))
    assert answer.fd is None
    shrinking = file_answer(hundred_bytes, 0, 100)
    os.truncate(hundred_bytes, 40)
    assert shrinking.read_range() == bytes(range(40))  # fewer than length: the writer closes


def file_answer(path: Path, first: int, length: int) -> Answer:
    return Answer("200 OK", [("Content-Length", str(length))], fd=os.open(path, os.O_RDONLY),
                  first=first, length=length, size=path.stat().st_size)


def asgi_messages(answer: Answer) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    asyncio.run(send_answer(answer, send))
    return messages


def test_asgi_writer_sends_a_range_and_closes_the_file(hundred_bytes: Path) -> None:
    answer = file_answer(hundred_bytes, 90, 10)
    messages = asgi_messages(answer)
    assert messages[0] == {"type": "http.response.start", "status": 200,
                           "headers": [(b"content-length", b"10")]}
    assert b"".join(message["body"] for message in messages[1:]) == bytes(range(90, 100))
    assert messages[-1]["more_body"] is False
    assert answer.fd is None


def test_asgi_writer_ends_the_body_early_for_a_file_that_shrank(hundred_bytes: Path) -> None:
    answer = file_answer(hundred_bytes, 0, 100)
    os.truncate(hundred_bytes, 40)
    messages = asgi_messages(answer)
    assert b"".join(message["body"] for message in messages[1:]) == bytes(range(40))
    assert messages[-1]["more_body"] is False


def test_wsgi_writer_gives_the_range_and_ends_early_for_a_file_that_shrank(hundred_bytes: Path) -> None:
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        started.append((status, headers))

    body = respond(file_answer(hundred_bytes, 5, 10), {}, start_response)
    assert b"".join(body) == bytes(range(5, 15))
    body.close()  # type: ignore[attr-defined]
    assert started == [("200 OK", [("Content-Length", "10")])]
    shrinking = respond(file_answer(hundred_bytes, 0, 100), {}, start_response)
    os.truncate(hundred_bytes, 40)
    assert b"".join(shrinking) == bytes(range(40))
    shrinking.close()  # type: ignore[attr-defined]


def test_header_block_is_encoded_once_per_representation(compressed: Path) -> None:
    app = static_app(compressed)
    environ = {"REQUEST_METHOD": "HEAD", "PATH_INFO": "/robots.txt", "QUERY_STRING": ""}
    first, second = app.decide(environ), app.decide(environ)
    assert header_block(first) == encode_headers(first.headers)
    assert header_block(second) is header_block(first)
    assert asgi_headers([("Content-Type", "text/plain")]) == [(b"content-type", b"text/plain")]


# --- the environ


SCOPE = {
    "type": "http", "method": "GET", "http_version": "1.1", "scheme": "http",
    "path": "/café/x", "raw_path": b"/caf%C3%A9/x", "query_string": b"a=1", "root_path": "",
    "headers": [(b"host", b"example.com"), (b"accept", b"text/html"), (b"accept", b"*/*"),
                (b"content-type", b"text/plain")],
    "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000),
}


def test_scope_environ_is_what_the_decision_reads() -> None:
    path = scope_path(SCOPE)
    assert path == "/café/x".encode().decode("latin-1")
    assert scope_environ(SCOPE, path) == {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "a=1", "SCRIPT_NAME": "",
        "HTTP_HOST": "example.com", "HTTP_ACCEPT": "text/html,*/*", "CONTENT_TYPE": "text/plain",
        "wsgi.url_scheme": "http",  # the server's scheme, for HSTS and the https redirect
    }


def test_wsgi_environ_starts_as_the_decision_s_and_adds_pep_3333() -> None:
    environ = wsgi_environ(SCOPE)
    assert scope_environ(SCOPE, scope_path(SCOPE)).items() <= environ.items()
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["RAW_URI"] == "/caf%C3%A9/x?a=1"
    assert environ["wsgi.url_scheme"] == "http"


def test_header_lines_join_repeats_and_refuse_a_second_host() -> None:
    environ: dict[str, Any] = {}
    assert add_header_lines(environ, [b"Host: a", b"Accept:  x ", b"accept: y"], 0)
    assert environ == {"HTTP_HOST": "a", "HTTP_ACCEPT": "x,y"}
    assert not add_header_lines({}, [b"Host: a", b"host: b"], 0)
    assert not add_header_lines({}, [b"X-Long: " + b"v" * 100], 50)


@pytest.mark.parametrize(("target", "expected"), [
    (b"/a%20b?q", "/a b"),
    (b"http://example.com/x", "/x"),
    (b"https://example.com", "/"),
    (b"*", None),
    (b"example.com:443", None),
])
def test_request_path(target: bytes, expected: str | None) -> None:
    assert request_path(target) == expected


def test_open_unchanged_refuses_a_directory_swapped_for_a_link_out_of_the_root(tmp_path: Path) -> None:
    """core/safeopen.py, both ways (openat2 beneath the root where the kernel has it, the
    O_NOFOLLOW + /proc readback otherwise): a file reached through a directory that became a
    symlink out of the root is refused; one through a symlink that stays inside is served."""
    import errno

    from servestatic.core import safeopen

    root = tmp_path / "root"
    (root / "css").mkdir(parents=True)
    (root / "css" / "site.css").write_text("body{}")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "site.css").write_text("evil{}")
    real_root = os.path.join(os.path.realpath(root), "")
    (root / "inside").symlink_to("css")
    kernel_has_it = safeopen._beneath.usable
    try:
        for usable in ([True, False] if kernel_has_it else [False]):
            safeopen._beneath.usable = usable
            fd = safeopen.open_unchanged(str(root / "inside" / "site.css"), 6, real_root)
            os.close(fd)
            (root / "css").rename(root / "css-old")
            (root / "css").symlink_to(outside)
            with pytest.raises(OSError) as refused:
                safeopen.open_unchanged(str(root / "css" / "site.css"), 6, real_root)
            assert refused.value.errno == errno.EACCES
            (root / "css").unlink()
            (root / "css-old").rename(root / "css")
    finally:
        safeopen._beneath.usable = kernel_has_it
    assert kernel_has_it, "openat2 should be usable on this Linux (5.6 or later)"


# --- small files' kept bytes (core/smallfiles.py)


def read_and_keep(kept: Any, path: str | Path, size: int) -> bytes | None:
    """`SmallFiles.read` on the file opened as the table would, closed again after."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return kept.read(str(path), fd, size)
    finally:
        os.close(fd)


def written_long_ago(path: Path, data: bytes) -> Path:
    """A file with data, last modified a minute ago: old enough to be kept (RECENT)."""
    path.write_bytes(data)
    minute_ago = time.time_ns() - 60 * 1_000_000_000
    os.utime(path, ns=(minute_ago, minute_ago))
    return path


def test_small_files_keep_at_most_their_memory_dropping_the_earliest(tmp_path: Path) -> None:
    from servestatic.core.smallfiles import KEPT_OVERHEAD, SmallFiles

    memory = 2 * (100 + KEPT_OVERHEAD) + 50
    kept = SmallFiles(memory=memory)
    paths = []
    for index in range(4):
        path = written_long_ago(tmp_path / f"f{index}", bytes([index]) * 100)
        paths.append(str(path))
        assert read_and_keep(kept, path, 100) == bytes([index]) * 100
        assert kept.held <= memory
    assert [kept.get(path) is not None for path in paths] == [False, False, True, True]
    assert kept.held == 2 * (100 + KEPT_OVERHEAD)


def test_tiny_files_kept_hold_no_more_memory_than_the_bound(tmp_path: Path) -> None:
    """Each file is counted with what keeping it costs beside its bytes: thousands of
    one-byte files must not take the process past the bound, measured as Python's own
    allocations while they are kept."""
    import tracemalloc

    from servestatic.core.smallfiles import SmallFiles

    memory = 1024 * 1024
    paths = [written_long_ago(tmp_path / f"tiny-{index}.txt", b"x") for index in range(12_000)]
    kept = SmallFiles(memory=memory)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for path in paths:
            read_and_keep(kept, path, 1)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert 1_000 < len(kept.entries) < len(paths)  # some kept, the earliest let go
    assert held <= memory, f"{len(kept.entries)} files kept hold {held:,} bytes"


def test_small_files_are_not_kept_once_the_file_changed(tmp_path: Path) -> None:
    from servestatic.core.smallfiles import SmallFiles

    kept = SmallFiles()
    path = written_long_ago(tmp_path / "page.html", b"a" * 10)
    assert read_and_keep(kept, path, 10) == b"a" * 10
    assert read_and_keep(kept, path, 11) is None  # not the size the table says: not kept
    assert kept.get(str(path)) == b"a" * 10
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 1))
    assert kept.get(str(path)) is None  # touched: read again
    path.unlink()
    (tmp_path / "page.html").symlink_to(tmp_path / "elsewhere")
    assert kept.get(str(path)) is None


def test_a_file_modified_within_a_clock_tick_of_its_read_is_not_kept(tmp_path: Path) -> None:
    """A rewrite in place with as many bytes, within the tick of the file's last stamp,
    leaves inode, size and modification time as they were (made here by setting the time
    back, as a coarse clock would have left it): a just-modified file is answered, not
    kept, so the rewrite is what the next request gets."""
    from servestatic.core.smallfiles import SmallFiles

    kept = SmallFiles()
    path = tmp_path / "page.html"
    path.write_bytes(b"first")
    stamped = path.stat()
    assert read_and_keep(kept, path, 5) == b"first"
    path.write_bytes(b"again")  # in place: the same inode
    os.utime(path, ns=(stamped.st_atime_ns, stamped.st_mtime_ns))
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (stamped.st_ino, stamped.st_mtime_ns)
    assert kept.get(str(path)) is None  # not kept: read again, so "again" is answered
    assert kept.held == 0


def test_small_files_kept_by_threads_at_once_stay_within_their_memory(tmp_path: Path) -> None:
    """The WSGI front decides in threads: eight of them keeping and replacing files at once
    leave the books right (what is held is what is kept, within MEMORY) and every read
    returns its own file's bytes."""
    from concurrent.futures import ThreadPoolExecutor

    from servestatic.core.smallfiles import KEPT_OVERHEAD, SmallFiles

    cost = 1000 + KEPT_OVERHEAD
    kept = SmallFiles(memory=3 * cost)
    paths = [str(written_long_ago(tmp_path / f"f{index}", bytes([index]) * 1000)) for index in range(30)]

    def keep(round_: int) -> bool:
        path = paths[round_ % len(paths)]
        data = read_and_keep(kept, path, 1000)
        again = kept.get(path)
        return data == Path(path).read_bytes() and again in (None, data)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns between almost every bytecode: races show
    try:
        with ThreadPoolExecutor(8) as pool:
            assert all(pool.map(keep, range(20000)))
    finally:
        sys.setswitchinterval(interval)
    assert kept.held == sum(len(entry[4]) + KEPT_OVERHEAD for entry in kept.entries.values()) <= 3 * cost

