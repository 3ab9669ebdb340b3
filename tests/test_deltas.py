"""Dictionary deltas (RFC 9842 `dcz`), built by `servestatic compress` and served by a real
server in both answer paths (the event loop's, and the ASGI front with the fast path off)
and by `servestatic.wsgi:application` under gunicorn (the WSGI front): the delta for a
client that holds the earlier version, br for every other, and a Vary that keeps shared
caches from mixing them up (docs/http.md, "Dictionary deltas")."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from servestatic.buildtime.deltas import MIN_WINDOW
from servestatic.core.dictionaries import match_pattern, use_as_dictionary
from servestatic.site import typedread
from servestatic.site.manifest import _compactor, read_file, read_for_serving, served_entry
from tests.support.cli import compress
from tests.support.deltas import (
    DCZ_MAGIC,
    SERVERS,
    Release,
    available_dictionary,
    build,
    decode_dcz,
    match_value,
    pattern_matches,
    served,
)
from tests.support.server import ServerProcess, serving
from tests.support.site import MANIFEST

zstandard = pytest.importorskip("zstandard")

PREFIX = "/static/"
BOTH = "dcz, br, gzip"


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Release, Release]:
    """Release 1 compressed with a cache dir, then release 2 (one bundle changed) in its
    place with the same cache dir."""
    base = tmp_path_factory.mktemp("deltas")
    cache = base / "cache"
    first = build(base / "release1", 1, cache, prefix=PREFIX)
    second = build(base / "release2", 2, cache, prefix=PREFIX)
    return first, second


@pytest.fixture(scope="module", params=SERVERS)
def server(releases: tuple[Release, Release], request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with served(releases[1].root, request.param, {"SERVESTATIC_PREFIX": PREFIX}) as running:
        yield running


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as session:
        yield session


def get(http: httpx.Client, path: str, method: str = "GET", **headers: str) -> httpx.Response:
    # httpx would decode a br or gzip body: the raw bytes are what is checked here.
    with http.stream(method, path, headers=headers) as response:
        response.raw = b"".join(response.iter_raw())  # type: ignore[attr-defined]
    return response


def vary(response: httpx.Response) -> set[str]:
    return {token.strip().lower() for token in response.headers.get("vary", "").split(",") if token.strip()}


def test_a_client_with_the_earlier_version_gets_the_delta(releases: tuple[Release, Release],
                                                          http: httpx.Client) -> None:
    first, second = releases
    response = get(http, PREFIX + second.name, **{"Accept-Encoding": BOTH,
                                                  "Available-Dictionary": first.dictionary})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "dcz"
    assert vary(response) == {"accept-encoding", "available-dictionary"}
    body = response.raw  # type: ignore[attr-defined]
    assert body[:40] == DCZ_MAGIC + hashlib.sha256(first.data).digest()
    assert decode_dcz(body, first.data) == second.data
    br_size = (second.root / (second.name + ".br")).stat().st_size
    assert len(body) < br_size / 10, (len(body), br_size)
    assert int(response.headers["content-length"]) == len(body)
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert response.headers["repr-digest"] == f"sha-256=:{digest}:"
    br = get(http, PREFIX + second.name, **{"Accept-Encoding": BOTH})
    assert br.headers["etag"] != response.headers["etag"]
    assert response.headers["etag"].startswith('"')  # strong
    # The delta is itself the next dictionary: it carries the family's pattern too.
    assert response.headers["use-as-dictionary"] == br.headers["use-as-dictionary"]


@pytest.mark.parametrize(("headers", "why"), [
    ({"Accept-Encoding": BOTH, "Available-Dictionary": available_dictionary(b"something else")},
     "an unknown dictionary"),
    ({"Accept-Encoding": "br, gzip"}, "no dcz in Accept-Encoding"),
    ({"Accept-Encoding": "dcz;q=0, br, gzip"}, "dcz refused"),
    ({"Accept-Encoding": "*"}, "a wildcard only"),
    ({"Accept-Encoding": BOTH, "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Site": "cross-site"},
     "a cross-origin no-cors fetch"),
    ({"Accept-Encoding": BOTH, "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Site": "same-site"},
     "a same-site but cross-origin no-cors fetch"),
    ({"Accept-Encoding": BOTH, "Sec-Fetch-Mode": "no-cors"}, "a no-cors fetch not said to be same-origin"),
    ({"Accept-Encoding": BOTH, "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "cross-site"},
     "a cross-origin cors fetch without an Origin"),
])
def test_other_clients_get_br_and_the_same_vary(releases: tuple[Release, Release], http: httpx.Client,
                                                headers: dict[str, str], why: str) -> None:
    first, second = releases
    headers = {"Available-Dictionary": first.dictionary, **headers}
    response = get(http, PREFIX + second.name, **headers)
    assert response.status_code == 200, why
    assert response.headers["content-encoding"] == "br", why
    assert response.raw == (second.root / (second.name + ".br")).read_bytes(), why  # type: ignore[attr-defined]
    assert vary(response) == {"accept-encoding", "available-dictionary"}, why


@pytest.mark.parametrize("fetch", [
    {"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Dest": "script"},
    {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "cross-site", "Origin": "https://other.example"},
    {"Sec-Fetch-Site": "cross-site"},  # no mode: not a browser page (RFC 9842: allowed)
], ids=["same-origin no-cors", "navigate", "cors with an Origin SERVESTATIC_CORS allows", "no mode"])
def test_a_fetch_that_can_read_the_response_gets_the_delta(releases: tuple[Release, Release],
                                                           http: httpx.Client, fetch: dict[str, str]) -> None:
    first, second = releases
    response = get(http, PREFIX + second.name, **{
        "Accept-Encoding": BOTH, "Available-Dictionary": first.dictionary, **fetch})
    assert response.headers["content-encoding"] == "dcz"


def test_a_cors_fetch_from_an_origin_not_allowed_gets_no_delta(releases: tuple[Release, Release]) -> None:
    first, second = releases
    asking = {"Accept-Encoding": BOTH, "Available-Dictionary": first.dictionary,
              "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "cross-site"}
    with serving(second.root, {"SERVESTATIC_CORS": "https://allowed.example"}) as server:
        allowed = get(httpx.Client(base_url=server.url), "/" + second.name,
                      **asking, Origin="https://allowed.example")
        other = get(httpx.Client(base_url=server.url), "/" + second.name,
                    **asking, Origin="https://other.example")
    assert allowed.headers["content-encoding"] == "dcz"
    assert other.headers["content-encoding"] == "br"
    assert vary(other) == {"accept-encoding", "available-dictionary", "origin"}


def test_head_range_and_if_none_match_apply_to_the_delta(releases: tuple[Release, Release],
                                                         http: httpx.Client) -> None:
    first, second = releases
    asking = {"Accept-Encoding": BOTH, "Available-Dictionary": first.dictionary}
    full = get(http, PREFIX + second.name, **asking)
    body = full.raw  # type: ignore[attr-defined]
    head = get(http, PREFIX + second.name, "HEAD", **asking)
    assert head.raw == b""  # type: ignore[attr-defined]
    assert head.headers == full.headers
    partial = get(http, PREFIX + second.name, **asking, Range="bytes=0-39")
    assert partial.status_code == 206
    assert partial.raw == body[:40]  # type: ignore[attr-defined]
    assert partial.headers["content-range"] == f"bytes 0-39/{len(body)}"
    assert partial.headers["content-encoding"] == "dcz"
    etag = full.headers["etag"]
    again = get(http, PREFIX + second.name, **asking, **{"If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag
    assert vary(again) == {"accept-encoding", "available-dictionary"}
    # The delta's ETag names the delta only: a client without the dictionary gets br in full.
    other = get(http, PREFIX + second.name, **{"Accept-Encoding": "br", "If-None-Match": etag})
    assert other.status_code == 200
    assert other.headers["content-encoding"] == "br"


def test_a_path_without_deltas_varies_on_accept_encoding_alone(http: httpx.Client) -> None:
    response = get(http, PREFIX + "site.css", **{"Accept-Encoding": BOTH, "Available-Dictionary":
                                                 available_dictionary(b"x")})
    assert response.headers["content-encoding"] == "br"
    assert vary(response) == {"accept-encoding"}
    assert "use-as-dictionary" not in response.headers


def test_release_1_is_announced_as_a_dictionary_for_release_2(releases: tuple[Release, Release],
                                                              tmp_path: Path) -> None:
    """The browser's side of the Bar: release 1's bundle, as release 1's server sent it, names
    a pattern that release 2's URL matches."""
    first, second = releases
    with serving(first.root, {"SERVESTATIC_PREFIX": PREFIX}) as server:
        response = httpx.get(server.url + PREFIX + first.name, headers={"Accept-Encoding": "br"})
    value = response.headers["use-as-dictionary"]
    assert value == f'match="{PREFIX}assets/main-*.js", match-dest=("script")'
    assert pattern_matches(match_value(value), PREFIX + second.name)
    assert pattern_matches(match_value(value), PREFIX + first.name)
    assert not pattern_matches(match_value(value), PREFIX + "index.html")


# --- build time


def manifest(root: Path) -> dict:
    return json.loads((root / MANIFEST).read_text())["files"]


def summary(root: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    return json.loads(compress(root, "--json", *args, env=env).stdout)


def test_the_manifest_records_each_delta(releases: tuple[Release, Release]) -> None:
    first, second = releases
    entry = manifest(second.root)[second.name]
    assert entry["family"] == "assets/main-*.js"
    key = base64.b64encode(hashlib.sha256(first.data).digest()).decode()
    delta = entry["deltas"][key]
    assert delta["coding"] == "dcz"
    assert delta["dictionary_size"] == len(first.data)
    path = second.root / ".servestatic-deltas" / (
        f"{hashlib.sha256(second.data).hexdigest()[:32]}.{hashlib.sha256(first.data).hexdigest()[:32]}.dcz")
    data = path.read_bytes()
    assert delta["size"] == len(data)
    assert delta["digests"]["sha-256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    # The window an RFC 9842 decoder must support: max(8 MB, 1.25 x the dictionary).
    window = zstandard.get_frame_parameters(data[40:]).window_size
    assert window <= max(MIN_WINDOW, len(first.data) * 5 // 4)
    # The server's two reads of the manifest (site/typedread.py, and its fallback) agree on it.
    typed = read_for_serving(second.root)[second.name]
    standard = read_file(second.root / MANIFEST, object_hook=_compactor())["files"][second.name]
    assert type(typed) is typedread.Entry
    assert served_entry(typed) == served_entry(standard) and served_entry(typed).deltas[key].digests


def test_a_rerun_with_nothing_changed_does_nothing(releases: tuple[Release, Release]) -> None:
    second = releases[1]
    cache = second.root.parent / "cache"
    before = (second.root / MANIFEST).read_bytes()
    result = summary(second.root, "--cache-dir", str(cache))
    deltas = result["deltas"]
    assert (deltas["made"], deltas["from_cache"], deltas["kept"], deltas["deltas"]) == (0, 0, 1, 1)
    assert all(stats["compressed"] == 0 for stats in result["encodings"].values())
    assert json.loads((second.root / MANIFEST).read_bytes())["files"] == json.loads(before)["files"]


def test_the_summary_line_reports_deltas_and_bytes_saved(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    build(tmp_path / "r1", 1, cache)
    write = build(tmp_path / "r2", 2, cache)
    line = compress(write.root, "--cache-dir", str(cache)).stdout
    assert "dcz: 1 deltas for 1 files against earlier versions" in line
    assert "saved" in line


def test_dictionaries_from_a_previous_release_without_a_cache(tmp_path: Path) -> None:
    first = build(tmp_path / "r1", 1, tmp_path / "unused")
    (tmp_path / "r2").mkdir()
    from tests.support.deltas import write_release

    second = write_release(tmp_path / "r2", 2)
    compress(second.root, "--dictionaries-from", str(first.root))
    key = base64.b64encode(hashlib.sha256(first.data).digest()).decode()
    assert key in manifest(second.root)[second.name]["deltas"]


def test_older_hashed_files_left_in_the_root_are_dictionaries(tmp_path: Path) -> None:
    """A Django STATIC_ROOT collected again without --clear keeps the earlier bundle."""
    from tests.support.deltas import write_release

    first = write_release(tmp_path / "root", 1)
    old = (tmp_path / "root" / first.name).stat().st_mtime - 3600
    os.utime(tmp_path / "root" / first.name, (old, old))
    second = write_release(tmp_path / "root", 2)
    compress(second.root)
    files = manifest(second.root)
    assert first.dictionary[1:-1] in files[second.name]["deltas"]
    assert not files[first.name].get("deltas")  # the older one has nothing older than itself


def test_a_delta_not_smaller_than_br_by_the_margin_is_not_kept(tmp_path: Path) -> None:
    """Two versions with nothing in common: the delta is no better than br."""
    cache = tmp_path / "cache"
    for release, seed in ((1, b"one"), (2, b"two")):
        root = tmp_path / f"r{release}"
        (root / "assets").mkdir(parents=True)
        words = [hashlib.sha256(seed + b"%d" % i).hexdigest() for i in range(3000)]
        (root / f"assets/app-Q9x{release}a{release}b{release}c.js").write_text(" ".join(words))
        result = summary(root, "--cache-dir", str(cache))
    assert result["deltas"]["dropped"] == 1
    assert result["deltas"]["deltas"] == 0
    assert not (root / ".servestatic-deltas").exists()
    again = summary(root, "--cache-dir", str(cache))
    assert again["deltas"]["made"] == 0  # tried for these bytes already


def test_no_deltas_and_no_family_with_zero_versions(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    build(tmp_path / "r1", 1, cache)
    off = build(tmp_path / "r2", 2, cache, env={"SERVESTATIC_DELTA_VERSIONS": "0"})
    assert "family" not in manifest(off.root)[off.name]
    assert not (off.root / ".servestatic-deltas").exists()


def test_the_cache_keeps_the_last_n_versions_per_family(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for release in range(1, 6):
        last = build(tmp_path / f"r{release}", release, cache, env={"SERVESTATIC_DELTA_VERSIONS": "2"})
    (family,) = (cache / "versions").iterdir()
    kept = {path.name for path in family.iterdir()} - {"seen.json"}
    assert len(kept) == 3  # release 5's own, and releases 4 and 3
    assert set(json.loads((family / "seen.json").read_text())) == kept  # when each was last seen
    assert len(manifest(last.root)[last.name]["deltas"]) == 2


@pytest.mark.parametrize("raw", ["-1", "33", "many"])
def test_a_wrong_delta_setting_stops_compress_with_one_line(site: Path, raw: str) -> None:
    from tests.support.cli import run_compress

    result = run_compress(str(site), env={"SERVESTATIC_DELTA_VERSIONS": raw})
    assert result.returncode != 0
    assert "SERVESTATIC_DELTA_VERSIONS" in result.stderr
    assert "a whole number at least 0 and at most 32" in result.stderr


# --- the header values


@pytest.mark.parametrize(("prefix", "family", "pattern"), [
    ("/", "assets/main-*.js", "/assets/main-*.js"),
    ("/static/", "css/site.*.css", "/static/css/site.*.css"),
    ("/", "a+b/(x)-*.js", "/a\\+b/\\(x\\)-*.js"),
    ("/", "k:v/{y}?-*.js", "/k\\:v/%7By%7D%3F-*.js"),  # as a browser's URL parser encodes them
    ("/", "é/x-*.js", "/%C3%A9/x-*.js"),
])
def test_match_patterns_escape_url_pattern_syntax(prefix: str, family: str, pattern: str) -> None:
    assert match_pattern(prefix, family) == pattern


def test_use_as_dictionary_is_a_structured_field() -> None:
    assert use_as_dictionary("/", "a\\b-*.css", "text/css") == 'match="/a%5Cb-*.css", match-dest=("style")'
    assert use_as_dictionary("/", "x-*.json", "application/json") == 'match="/x-*.json"'
    assert use_as_dictionary("/", "(x)-*.js", "text/javascript; charset=utf-8") == \
        'match="/\\\\(x\\\\)-*.js", match-dest=("script")'


def test_without_zstd_compress_warns_and_makes_no_deltas(tmp_path: Path) -> None:
    """An environment without any zstd (no backports.zstd, no zstandard, Python before 3.14):
    the build goes on, with one warning."""
    import subprocess

    from tests.support.cli import environment
    from tests.support.deltas import write_release

    cache = tmp_path / "cache"
    build(tmp_path / "r1", 1, cache)
    second = write_release(tmp_path / "r2", 2)
    blocked = ("import sys; sys.modules['zstandard'] = None; sys.modules['compression.zstd'] = None; "
               "sys.modules['backports.zstd'] = None; "
               "from servestatic.cli import main; sys.argv[0] = 'servestatic'; main()")
    result = subprocess.run([sys.executable, "-c", blocked, "compress", "--cache-dir", str(cache),
                             str(second.root)], capture_output=True, text=True, env=environment(),
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "no dcz deltas: they need zstd, Python 3.14+ or the backports.zstd package" in result.stderr
    entry = manifest(second.root)[second.name]
    assert not entry.get("deltas") and not entry.get("delta_tried")
    again = summary(second.root, "--cache-dir", str(cache))  # with zstd: made now
    assert again["deltas"]["made"] == 1


def test_zstandard_alone_still_makes_deltas(tmp_path: Path) -> None:
    """Where only zstandard is installed (as the README asked before the zstd extra became
    backports.zstd), deltas are made with it, and decode as a browser decodes them."""
    import subprocess

    from tests.support.cli import environment
    from tests.support.deltas import write_release

    cache = tmp_path / "cache"
    first = build(tmp_path / "r1", 1, cache)
    second = write_release(tmp_path / "r2", 2)
    blocked = ("import sys; sys.modules['compression.zstd'] = None; sys.modules['backports.zstd'] = None; "
               "from servestatic.cli import main; sys.argv[0] = 'servestatic'; main()")
    result = subprocess.run([sys.executable, "-c", blocked, "compress", "--cache-dir", str(cache),
                             str(second.root)], capture_output=True, text=True, env=environment(),
                            timeout=120)
    assert result.returncode == 0, result.stderr
    (delta,) = manifest(second.root)[second.name]["deltas"].values()
    body = next((second.root / ".servestatic-deltas").iterdir()).read_bytes()
    assert len(body) == delta["size"]
    assert decode_dcz(body, first.data) == second.data


def test_the_latest_earlier_version_wins_in_a_cache_restored_with_old_mtimes(tmp_path: Path) -> None:
    """A CNB lifecycle restores its cache layer with every mtime set to 1980 (and a CI cache
    may reset them too): which earlier versions are the most recent comes from the cache's
    own record, so with one kept, each release's delta is against the release before."""
    cache = tmp_path / "cache"
    previous = None
    for number in range(1, 5):
        for path in cache.rglob("*"):
            os.utime(path, (315532801, 315532801))  # 1980-01-01T00:00:01Z, the lifecycle's
        release = build(tmp_path / f"r{number}", number, cache, "--delta-versions", "1")
        deltas = manifest(release.root)[release.name].get("deltas", {})
        if previous is None:
            assert deltas == {}
        else:
            assert list(deltas) == [previous.dictionary[1:-1]], number
        previous = release


def test_another_margin_makes_the_deltas_again(tmp_path: Path) -> None:
    """The manifest records the delta parameters and the margin: a run with others does not
    keep what the last one decided."""
    cache = tmp_path / "cache"
    build(tmp_path / "r1", 1, cache)
    second = build(tmp_path / "r2", 2, cache)
    again = summary(second.root, "--cache-dir", str(cache), env={"SERVESTATIC_DELTA_MIN_SAVING": "50"})
    assert (again["deltas"]["kept"], again["deltas"]["from_cache"], again["deltas"]["deltas"]) == (0, 1, 1)
    assert json.loads((second.root / MANIFEST).read_text())["compression"]["dcz"]["min_saving"] == 50
