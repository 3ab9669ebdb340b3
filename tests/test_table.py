"""The table's memory: compact manifest entries, and a bounded cache of built files.

In-process, on a real compressed copy of the example site: what a worker keeps
is not visible over HTTP, and a bound small enough to test through a server
would need thousands of files. The answers themselves are the app's
(`StaticApp.decide`), compared before and after eviction.
"""

from __future__ import annotations

import dataclasses
import gc
import json
from pathlib import Path
from typing import Any

import pytest

from servestatic.config.settings import load_settings
from servestatic.core import table as table_module
from servestatic.core.decision import StaticApp
from servestatic.core.table import wsgi_key
from servestatic.fronts.prepare import prepare
from servestatic.site import typedread
from servestatic.site.manifest import (
    _compactor,
    entry_from_json,
    read,
    read_file,
    read_for_serving,
    served_entry,
)
from servestatic.site.names import INDEX
from tests.support.cli import compress
from tests.support.server import ServerProcess, client
from tests.support.site import MANIFEST


@pytest.fixture
def compressed(site: Path) -> Path:
    compress(site)
    return site


def static_app(root: Path, **environ: str) -> StaticApp:
    return prepare(load_settings(environ={"SERVESTATIC_ROOT": str(root), **environ}))


def answer(app: StaticApp, path: str, **headers: str) -> tuple[Any, ...]:
    """What a GET gets, as plain values: status, headers, and which bytes."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SCRIPT_NAME": "",
               **{f"HTTP_{name.upper()}": value for name, value in headers.items()}}
    result = app.decide(environ)
    try:
        source = result.representation
        return (result.status, tuple(result.headers), result.body, result.first, result.length,
                source.path if source is not None else None)
    finally:
        result.close()


def test_compact_entries_say_what_the_manifest_says(compressed: Path) -> None:
    plain = read(compressed)["files"]
    typed = read_for_serving(compressed)  # a well-formed manifest: msgspec's read (site/typedread.py)
    standard = read_file(compressed / MANIFEST, object_hook=_compactor())["files"]  # its fallback
    assert typed.keys() == standard.keys() == plain.keys()
    assert any(entry["variants"] for entry in plain.values())
    assert any(entry.get("preload") for entry in plain.values())
    for relative, entry in plain.items():
        assert type(typed[relative]) is typedread.Entry and type(standard[relative]) is tuple, relative
        expected = entry_from_json(entry)
        # What the server has no use for is left out.
        expected.tried, expected.incompressible, expected.integrity = [], False, ""
        assert served_entry(typed[relative]) == expected == served_entry(standard[relative]), relative


def test_an_entry_of_another_shape_is_kept_and_judged_on_first_use(compressed: Path) -> None:
    path = compressed / MANIFEST
    data = json.loads(path.read_text())
    files = data["files"]
    # Another order and no `tried`: still an entry.
    files["robots.txt"] = dict(reversed([(k, v) for k, v in files["robots.txt"].items() if k != "tried"]))
    files["css/print.css"]["size"] = "many"
    del files["js/analytics.js"]["hash"]
    files["img/logo.svg"]["content_type"] = ["image/svg+xml"]  # unhashable: kept as the dict
    path.write_text(json.dumps(data))
    compact = read_for_serving(compressed)
    expected = served_entry(files["robots.txt"])
    expected.integrity = ""  # the SRI value is the build's, not the server's
    assert served_entry(compact["robots.txt"]) == expected
    for relative in ("css/print.css", "js/analytics.js"):
        with pytest.raises(ValueError, match="malformed manifest entry"):
            served_entry(compact[relative])
    assert type(compact["img/logo.svg"]) is dict
    assert served_entry(compact["img/logo.svg"]) == entry_from_json(files["img/logo.svg"])


def test_digests_of_an_odd_length_or_alone_are_served_as_the_manifest_says(compressed: Path) -> None:
    """The typed read keeps a representation's two digests as one bytes object; a digest
    of another length than its algorithm's, or one without the other, stays as it is."""
    path = compressed / MANIFEST
    data = json.loads(path.read_text())
    files = data["files"]
    files["robots.txt"]["digests"] = {"sha-256": "AAAA"}
    files["css/site.0123456789ab.css"]["digests"]["sha-256"] = "AAAA"
    coding, variant = next(iter(files["css/site.0123456789ab.css"]["variants"].items()))
    variant["digests"] = {"sha-512": variant["digests"]["sha-512"]}
    path.write_text(json.dumps(data))
    typed = read_for_serving(compressed)
    assert type(typed["css/site.0123456789ab.css"]) is typedread.Entry
    for relative in ("robots.txt", "css/site.0123456789ab.css", "index.html"):
        expected = dataclasses.replace(served_entry(files[relative]), integrity="", tried=[],
                                       incompressible=False)
        assert served_entry(typed[relative]) == expected, relative
    assert served_entry(typed["robots.txt"]).digests == {"sha-256": "AAAA"}
    assert served_entry(typed["css/site.0123456789ab.css"]).variants[coding].digests == variant["digests"]


def test_every_key_builds_the_file_its_manifest_entry_names(compressed: Path) -> None:
    """The relative path is worked out from the key: plain, non-ASCII and directory keys."""
    table = static_app(compressed).table
    expected = {}
    for relative in read(compressed)["files"]:
        expected[wsgi_key("/" + relative)] = relative
        if relative == INDEX or relative.endswith("/" + INDEX):
            expected[wsgi_key("/" + relative[: -len(INDEX)])] = relative
    expected = {key: relative for key, relative in expected.items() if key in table.paths}
    assert {"/", "/docs/guide/", wsgi_key("/data/résumé.txt")} <= expected.keys()
    assert table.paths.keys() == expected.keys()
    for key, relative in expected.items():
        static_file = table.lookup(key)
        assert static_file is not None
        identity = [each for each in static_file.by_size if each.coding == "identity"]
        assert identity[0].path == str(compressed / relative), key


VARIANTS = [{}, {"accept_encoding": "br, gzip"}, {"accept_encoding": "gzip", "range": "bytes=0-9"},
            {"if_none_match": "*"}]


def test_answers_are_the_same_after_their_files_were_evicted(
        compressed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = static_app(compressed)
    keys = sorted(reference.table.paths)
    expected = {(key, index): answer(reference, key, **headers)
                for index, headers in enumerate(VARIANTS) for key in keys}
    # Every shared header and header list is dropped and made again as well.
    monkeypatch.setattr(table_module, "SHARED_LIMIT", 2)
    app = static_app(compressed)
    app.table.built_files = 3
    assert len(keys) > 3 * app.table.built_files
    for index, headers in enumerate(VARIANTS):
        for _ in range(2):  # the second time round, every file has been evicted and is rebuilt
            for key in keys:
                assert answer(app, key, **headers) == expected[key, index], key
                assert len(app.files) <= app.table.built_files
    policy = app.table.policy
    assert 0 < len(policy.shared._pairs) <= 2 and 0 < len(policy._common_cache) <= 2


def test_the_cache_of_built_files_never_exceeds_its_bound(compressed: Path) -> None:
    table = static_app(compressed).table
    table.files.clear()
    table.built_files = 4
    keys = sorted(table.paths)
    for count, key in enumerate(keys, start=1):
        assert table.lookup(key) is not None
        assert len(table.files) == min(count, table.built_files)
    # The oldest built leave first.
    assert list(table.files) == keys[-table.built_files:]
    # A hit in the cache is the same object; one rebuilt is equal but new.
    last = keys[-1]
    assert table.lookup(last) is table.files[last]


@pytest.mark.parametrize("hsts", [False, True])
def test_a_file_let_go_is_freed_at_once(compressed: Path, hsts: bool) -> None:
    """No reference cycle keeps an evicted file for the cyclic collector: a worker asked for
    more files than it keeps would otherwise hold every one let go until a full collection."""
    headers = compressed.parent / "headers.toml"
    headers.write_text('[https]\nhsts = "max-age=60"\n')
    app = static_app(compressed, **({"SERVESTATIC_HEADERS_FILE": str(headers)} if hsts else {}))
    table = app.table
    table.built_files = 2
    table.files.clear()

    def alive() -> int:
        return sum(1 for item in gc.get_objects() if type(item) is table_module.StaticFile)

    collecting = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        before = alive()
        keys = sorted(table.paths)
        for key in keys:
            assert table.lookup(key) is not None
        assert len(keys) > 10 * table.built_files
        assert alive() - before == table.built_files * (2 if hsts else 1)
        assert all((static_file.https is not None) == hsts for static_file in table.files.values())
    finally:
        if collecting:
            gc.enable()


def test_the_404_page_and_the_spa_index_are_built_once(compressed: Path) -> None:
    app = static_app(compressed, SERVESTATIC_SPA="true")
    table = app.table
    assert app.not_found is not None and app.spa_index is not None
    table.built_files = 1
    for key in sorted(table.paths):
        table.lookup(key)
    assert table.lookup("/404.html") is app.not_found
    assert table.lookup("/index.html") is app.spa_index
    assert table.lookup("/") is not app.spa_index  # another key: a file of its own
    assert answer(app, "/no/such/route")[0] == "200 OK"
    assert answer(app, "/missing.css")[0].startswith("404")


def test_a_malformed_entry_is_a_miss_with_one_log_line(compressed: Path) -> None:
    path = compressed / MANIFEST
    data = json.loads(path.read_text())
    data["files"]["css/print.css"]["size"] = "many"
    path.write_text(json.dumps(data))
    with ServerProcess(compressed) as server, client(server) as http:
        assert http.get("/css/print.css").status_code == 404
        assert http.get("/robots.txt").status_code == 200
        assert http.get("/css/print.css").status_code == 404
        lines = [line for line in server.log().splitlines() if "css/print.css" in line]
    assert len(lines) == 2, lines  # one a request
    assert all("manifest entry 'css/print.css': malformed manifest entry" in line
               and line.endswith("not serving it") for line in lines), lines
