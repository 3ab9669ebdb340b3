"""Conditional requests (RFC 9110 13): If-None-Match, If-Modified-Since, If-Match,
If-Unmodified-Since, and Last-Modified only where the mtime is real."""

from __future__ import annotations

import os
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from tests.support.cli import compress
from tests.support.http import raw_request
from tests.support.server import ServerProcess, serving
from tests.support.site import copy_site, manifest_entry

PATH = "/css/print.css"  # has br and gzip variants, not immutable


def http_date(timestamp: float) -> str:
    return formatdate(timestamp, usegmt=True)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = copy_site(tmp_path_factory.mktemp("conditional") / "site")
    mtime = 1_700_000_000  # a real, known time: 2023-11-14T22:13:20Z
    for path in site.rglob("*"):
        os.utime(path, (mtime, mtime), follow_symlinks=False)
    compress(site)
    return site


@pytest.fixture(scope="module")
def etag(http: httpx.Client) -> str:
    return http.get(PATH).headers["etag"]


def test_last_modified_is_the_real_mtime(http: httpx.Client, root: Path) -> None:
    assert manifest_entry(root, "css/print.css")["mtime"] == 1_700_000_000
    assert http.get(PATH).headers["last-modified"] == "Tue, 14 Nov 2023 22:13:20 GMT"


@pytest.mark.parametrize("value", [
    "{etag}", '"other", {etag}', '"a","b" , {etag}', "W/{etag}", '"other", W/{etag}', "*",
])
def test_if_none_match_gives_304(http: httpx.Client, etag: str, value: str) -> None:
    response = http.get(PATH, headers={"If-None-Match": value.format(etag=etag)})
    assert response.status_code == 304
    assert response.content == b""


@pytest.mark.parametrize("value", ['"other"', 'W/"other"', '"a", "b"', "{etag_gzip}", "garbage", ""])
def test_if_none_match_without_a_match_gives_200(http: httpx.Client, root: Path, value: str) -> None:
    gzip_etag = http.get(PATH, headers={"Accept-Encoding": "gzip"}).headers["etag"]
    response = http.get(PATH, headers={"If-None-Match": value.format(etag_gzip=gzip_etag)})
    assert response.status_code == 200
    assert response.content == (root / PATH.lstrip("/")).read_bytes()


def test_304_keeps_the_validators_and_cache_headers(server: ServerProcess, etag: str) -> None:
    for method in ("GET", "HEAD"):
        response = raw_request(server, PATH, method, {"If-None-Match": etag})
        assert response.status == 304
        assert response.body == b""
        assert response.header("ETag") == etag
        assert response.header("Cache-Control") == "public, max-age=60, stale-if-error=86400"
        assert response.header("Vary") == "Accept-Encoding"
        assert response.header("Access-Control-Allow-Origin") == "*"
        assert response.header("Last-Modified") == "Tue, 14 Nov 2023 22:13:20 GMT"
        assert response.header("Content-Encoding") is None
        assert response.header("Transfer-Encoding") is None


def test_304_for_each_variant_carries_that_variants_etag(server: ServerProcess) -> None:
    for coding in ("br", "gzip"):
        etag = raw_request(server, PATH, headers={"Accept-Encoding": coding}).header("ETag")
        response = raw_request(server, PATH, headers={"Accept-Encoding": coding, "If-None-Match": etag})
        assert response.status == 304
        assert response.header("ETag") == etag
        # The same tag asked for with another coding is another representation.
        other = raw_request(server, PATH, headers={"Accept-Encoding": "identity", "If-None-Match": etag})
        assert other.status == 200


@pytest.mark.parametrize(("since", "status"), [
    (1_700_000_000, 304), (1_700_000_000 + 3600, 304), (1_700_000_000 - 1, 200), (0, 200),
])
def test_if_modified_since(http: httpx.Client, since: int, status: int) -> None:
    assert http.get(PATH, headers={"If-Modified-Since": http_date(since)}).status_code == status


@pytest.mark.parametrize("since", [
    "Tue, 14 Nov 2023 22:13:20 GMT",  # IMF-fixdate
    "Tuesday, 14-Nov-23 22:13:20 GMT",  # RFC 850
    "Tue Nov 14 22:13:20 2023",  # asctime: no zone written, GMT by definition
])
def test_if_modified_since_in_every_http_date_form(http: httpx.Client, since: str) -> None:
    """RFC 9110 5.6.7: a recipient MUST accept all three HTTP-date formats."""
    assert http.get(PATH, headers={"If-Modified-Since": since}).status_code == 304


def test_if_modified_since_is_ignored_with_if_none_match(http: httpx.Client) -> None:
    future = http_date(1_700_000_000 + 86400)
    response = http.get(PATH, headers={"If-None-Match": '"other"', "If-Modified-Since": future})
    assert response.status_code == 200


@pytest.mark.parametrize(("value", "status"), [
    ("{etag}", 200), ("*", 200), ('"other", {etag}', 200),
    ('"other"', 412), ("W/{etag}", 412),  # strong comparison: a weak tag never matches
])
def test_if_match(http: httpx.Client, etag: str, value: str, status: int) -> None:
    response = http.get(PATH, headers={"If-Match": value.format(etag=etag)})
    assert response.status_code == status
    if status == 412:
        assert response.headers["etag"] == etag
        assert response.headers["cache-control"] == "public, max-age=60, stale-if-error=86400"


@pytest.mark.parametrize(("since", "status"), [
    (1_700_000_000, 200), (1_700_000_000 + 60, 200), (1_700_000_000 - 60, 412),
])
def test_if_unmodified_since(http: httpx.Client, since: int, status: int) -> None:
    assert http.get(PATH, headers={"If-Unmodified-Since": http_date(since)}).status_code == status


def test_if_match_takes_precedence_over_if_unmodified_since(http: httpx.Client, etag: str) -> None:
    response = http.get(PATH, headers={"If-Match": etag,
                                       "If-Unmodified-Since": http_date(1_600_000_000)})
    assert response.status_code == 200


def test_failed_if_match_beats_a_matching_if_none_match(http: httpx.Client, etag: str) -> None:
    response = http.get(PATH, headers={"If-Match": '"other"', "If-None-Match": etag})
    assert response.status_code == 412


# --- reproducible-build mtimes: no Last-Modified, nothing rests on mtime


@pytest.mark.parametrize(("stamp", "compress_env"), [
    (315_532_801, {}),  # the CNB lifecycle's 1980-01-01T00:00:01Z
    (1, {}),  # Nix
    (1_650_000_000, {"SOURCE_DATE_EPOCH": "1650000000"}),
])
def test_no_last_modified_for_a_build_epoch(tmp_path: Path, stamp: int,
                                            compress_env: dict[str, str]) -> None:
    site = copy_site(tmp_path / "site")
    for path in site.rglob("*"):
        os.utime(path, (stamp, stamp), follow_symlinks=False)
    compress(site, env=compress_env)
    assert manifest_entry(site, "css/print.css")["mtime"] is None
    with serving(site) as server:
        response = raw_request(server, PATH)
        assert response.status == 200
        assert response.header("Last-Modified") is None
        etag = response.header("ETag")
        assert etag == f'"{manifest_entry(site, "css/print.css")["hash"]}"'
        # If-Modified-Since cannot be judged without a real date: the full answer.
        later = raw_request(server, PATH, headers={"If-Modified-Since": http_date(stamp + 86400 * 365)})
        assert later.status == 200
        assert later.header("Last-Modified") is None
        # Validation rests on the content hash instead.
        assert raw_request(server, PATH, headers={"If-None-Match": etag}).status == 304
        not_modified = raw_request(server, PATH, headers={"If-None-Match": etag})
        assert not_modified.header("Last-Modified") is None
        # If-Range with a date cannot match a file without a real one.
        ranged = raw_request(server, PATH, headers={"Range": "bytes=0-0",
                                                    "If-Range": http_date(stamp)})
        assert ranged.status == 200
