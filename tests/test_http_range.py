"""Byte ranges (RFC 9110 14): one range gives 206, unsatisfiable gives 416 with
`Content-Range: bytes */SIZE`, anything else the whole file; If-Range decides."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.cli import compress
from tests.support.http import raw_request
from tests.support.server import ServerProcess
from tests.support.site import copy_site

FONT = "/fonts/open-sans-700.woff2"  # 44988 bytes, no variants, immutable
SCRIPT = "/js/analytics.js"  # has br and gzip variants


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = copy_site(tmp_path_factory.mktemp("range") / "site")
    (site / "empty.txt").write_bytes(b"")
    (site / "big.mp4").write_bytes(bytes(range(256)) * 8192)  # 2 MiB, never compressed
    compress(site)
    return site


@pytest.fixture(scope="module")
def font(root: Path) -> bytes:
    return (root / FONT.lstrip("/")).read_bytes()


def test_accept_ranges_is_sent(http: httpx.Client) -> None:
    assert http.get(FONT).headers["accept-ranges"] == "bytes"
    assert http.head(SCRIPT).headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize(("range_header", "first", "last"), [
    ("bytes=0-0", 0, 0),
    ("bytes=0-99", 0, 99),
    ("bytes=100-199", 100, 199),
    ("bytes=-5", 44983, 44987),  # suffix
    ("bytes=-1", 44987, 44987),
    ("bytes=-99999", 0, 44987),  # a suffix longer than the file is the file
    ("bytes=10-", 10, 44987),  # open
    ("bytes=44987-", 44987, 44987),
    ("bytes=40000-99999999", 40000, 44987),  # last beyond the end clamps
    ("BYTES=1-2", 1, 2),  # the unit is case-insensitive
])
def test_one_range_gives_206(http: httpx.Client, font: bytes, range_header: str, first: int,
                             last: int) -> None:
    response = http.get(FONT, headers={"Range": range_header})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {first}-{last}/{len(font)}"
    assert response.headers["content-length"] == str(last - first + 1)
    assert response.content == font[first:last + 1]


@pytest.mark.parametrize("range_header", ["bytes=44988-", "bytes=50000-60000", "bytes=-0"])
def test_unsatisfiable_range_gives_416(http: httpx.Client, range_header: str) -> None:
    response = http.get(FONT, headers={"Range": range_header})
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */44988"


def test_any_range_of_an_empty_file_is_unsatisfiable(http: httpx.Client) -> None:
    response = http.get("/empty.txt", headers={"Range": "bytes=0-0"})
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */0"
    assert http.get("/empty.txt").status_code == 200


@pytest.mark.parametrize("range_header", [
    "bytes=0-1,5-6",  # several ranges: the whole file
    "bytes=0-0,-1",
    "bytes=5-2",  # last before first: an invalid range-spec, ignored
    "bytes=-",
    "bytes=",
    "bytes=a-b",
    "bytes 0-1",
    "items=0-1",
    "bytes=1-2;x",
    "0-1",
    "",
])
def test_several_ranges_or_garbage_give_the_whole_file(http: httpx.Client, font: bytes,
                                                       range_header: str) -> None:
    response = http.get(FONT, headers={"Range": range_header})
    assert response.status_code == 200
    assert "content-range" not in response.headers
    assert response.content == font


def test_head_ignores_range(server: ServerProcess) -> None:
    """Range is defined for GET only (RFC 9110 14.2)."""
    response = raw_request(server, FONT, "HEAD", {"Range": "bytes=0-0"})
    assert response.status == 200
    assert response.header("Content-Length") == "44988"
    assert response.header("Content-Range") is None


def test_206_and_416_keep_cache_validator_vary_and_cors_headers(server: ServerProcess) -> None:
    full = raw_request(server, SCRIPT)
    for range_header, status in (("bytes=0-9", 206), ("bytes=999999-", 416)):
        response = raw_request(server, SCRIPT, headers={"Range": range_header})
        assert response.status == status
        for name in ("Cache-Control", "ETag", "Vary", "Access-Control-Allow-Origin", "Last-Modified"):
            assert response.header(name) == full.header(name), (range_header, name)
        assert response.header("Vary") == "Accept-Encoding"
        assert response.header("Cache-Control") == "public, max-age=60, stale-if-error=86400"


def test_ranges_on_one_keep_alive_connection(http: httpx.Client, root: Path) -> None:
    """Each 206 must send exactly Content-Length bytes, or the next answer would be garbled."""
    data = (root / "big.mp4").read_bytes()
    pieces = [(0, 0), (1, 65536 * 3), (1_000_000, 1_000_099), (len(data) - 10, len(data) - 1),
              (123_457, 2_000_000)]
    for first, last in pieces:
        response = http.get("/big.mp4", headers={"Range": f"bytes={first}-{last}"})
        assert response.status_code == 206
        assert response.content == data[first:last + 1]
    assert http.get("/big.mp4").content == data


@pytest.mark.parametrize(("if_range", "status"), [
    ("{etag}", 206),
    ('"stale"', 200),
    ("W/{etag}", 200),  # If-Range needs a strong match
    ("{last_modified}", 206),
    ("Mon, 01 Jan 2001 00:00:00 GMT", 200),
    ("garbage", 200),
])
def test_if_range(http: httpx.Client, font: bytes, if_range: str, status: int) -> None:
    head = http.head(FONT)
    value = if_range.format(etag=head.headers["etag"], last_modified=head.headers["last-modified"])
    response = http.get(FONT, headers={"Range": "bytes=0-9", "If-Range": value})
    assert response.status_code == status
    assert response.content == (font[:10] if status == 206 else font)


def test_if_range_compares_with_the_negotiated_variant(http: httpx.Client) -> None:
    identity_etag = http.get(SCRIPT).headers["etag"]
    br = http.get(SCRIPT, headers={"Accept-Encoding": "br", "Range": "bytes=0-9",
                                   "If-Range": identity_etag})
    assert br.status_code == 200
    assert br.headers["content-encoding"] == "br"


def test_range_with_a_matching_if_none_match_is_304(http: httpx.Client) -> None:
    etag = http.get(FONT).headers["etag"]
    assert http.get(FONT, headers={"Range": "bytes=0-9", "If-None-Match": etag}).status_code == 304
