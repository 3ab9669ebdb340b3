"""Content negotiation (RFC 9110 12.5.3): Accept-Encoding with q-values, the smallest
acceptable variant, `Vary: Accept-Encoding`, and one strong ETag per variant."""

from __future__ import annotations

import gzip
from pathlib import Path

import brotli
import pytest

from tests.support.http import raw_request
from tests.support.server import ServerProcess, serving
from tests.support.site import manifest_entry

WITH_VARIANTS = "/js/analytics.js"
WITHOUT_VARIANTS = "/robots.txt"


def coding_for(server: ServerProcess, accept_encoding: str | None, path: str = WITH_VARIANTS) -> str:
    """The coding served ("identity" when none), or the status when it is not 200."""
    headers = {} if accept_encoding is None else {"Accept-Encoding": accept_encoding}
    response = raw_request(server, path, headers=headers)
    if response.status != 200:
        return str(response.status)
    return response.header("Content-Encoding") or "identity"


@pytest.mark.parametrize(("accept_encoding", "expected"), [
    (None, "identity"),  # no header: plain bytes
    ("", "identity"),  # empty: no coding wanted (RFC 9110 12.5.3)
    ("br, gzip", "br"),  # br is the smallest
    ("gzip, br", "br"),  # order is no preference
    ("gzip", "gzip"),
    ("br", "br"),
    ("x-gzip", "gzip"),
    ("BR, GZIP", "br"),
    ("GZip;Q=1", "gzip"),
    ("gzip;q=1, br;q=0.5", "br"),  # among acceptable variants the smallest wins
    ("br;q=0.001", "br"),
    ("gzip, br;q=0", "gzip"),
    ("br;q=0, gzip", "gzip"),
    ("br;q=0", "identity"),  # gzip is not listed, so not acceptable
    ("gzip;q=0, br;q=0", "identity"),
    ("gzip;q=0.000, br;q=0", "identity"),
    ("deflate, compress", "identity"),
    ("*", "br"),
    ("br;q=0, *", "gzip"),
    ("gzip;q=0, br;q=0, *", "identity"),
    ("*;q=0, gzip", "gzip"),
    ("*;q=0, identity", "identity"),
    ("*;q=0", "406"),  # and identity is not listed: nothing is acceptable
    ("identity;q=0", "406"),
    ("gzip;q=0, identity;q=0", "406"),
    ("gzip, identity;q=0", "gzip"),
    ("*, identity;q=0", "br"),
    ("br;q=0, gzip;q=0, identity;q=0, *", "406"),
    ("gzip;q=0, gzip;q=1", "gzip"),  # listed twice: the higher quality counts
    ("br ; q=0 , gzip ; q=0.5", "gzip"),
])
def test_accept_encoding_chooses_the_variant(server: ServerProcess, accept_encoding: str | None,
                                             expected: str) -> None:
    assert coding_for(server, accept_encoding) == expected


@pytest.mark.parametrize(("accept_encoding", "expected"), [
    ("br, gzip", "identity"),
    ("*", "identity"),
    ("br;q=0, gzip;q=0", "identity"),
    ("gzip, identity;q=0", "406"),
    ("*;q=0", "406"),
    ("*, identity;q=0", "406"),
])
def test_a_file_without_variants(server: ServerProcess, accept_encoding: str, expected: str) -> None:
    assert coding_for(server, accept_encoding, WITHOUT_VARIANTS) == expected


def test_406_says_vary(server: ServerProcess) -> None:
    response = raw_request(server, WITH_VARIANTS, headers={"Accept-Encoding": "identity;q=0"})
    assert response.status == 406
    assert response.header("Vary") == "Accept-Encoding"


@pytest.mark.parametrize(("accept_encoding", "coding", "suffix"), [
    ("br", "br", ".br"), ("gzip", "gzip", ".gz"), ("identity", "identity", ""),
])
def test_each_variant_has_its_own_etag_from_the_manifest(server: ServerProcess, root: Path,
                                                        accept_encoding: str, coding: str,
                                                        suffix: str) -> None:
    entry = manifest_entry(root, "js/analytics.js")
    expected = entry["hash"] if coding == "identity" else entry["variants"][coding]["hash"]
    response = raw_request(server, WITH_VARIANTS, headers={"Accept-Encoding": accept_encoding})
    assert response.status == 200
    assert response.header("ETag") == f'"{expected}"'
    assert response.body == (root / ("js/analytics.js" + suffix)).read_bytes()
    assert response.header("Content-Length") == str(len(response.body))


def test_etags_differ_between_variants_and_bodies_decode_to_the_file(root: Path,
                                                                     server: ServerProcess) -> None:
    original = (root / "js/analytics.js").read_bytes()
    br = raw_request(server, WITH_VARIANTS, headers={"Accept-Encoding": "br"})
    gz = raw_request(server, WITH_VARIANTS, headers={"Accept-Encoding": "gzip"})
    plain = raw_request(server, WITH_VARIANTS, headers={"Accept-Encoding": "identity"})
    assert len({br.header("ETag"), gz.header("ETag"), plain.header("ETag")}) == 3
    assert brotli.decompress(br.body) == original
    assert gzip.decompress(gz.body) == original
    assert plain.body == original
    for response in (br, gz, plain):
        etag = response.header("ETag")
        assert etag.startswith('"') and etag.endswith('"')  # strong, not W/


@pytest.mark.parametrize("request_headers", [
    {"Accept-Encoding": "identity"},
    {"Accept-Encoding": "gzip"},
    {"Accept-Encoding": "br"},
    {"Accept-Encoding": "identity", "Range": "bytes=0-9"},
    {"Accept-Encoding": "br", "Range": "bytes=0-9"},
    {"Accept-Encoding": "gzip", "Range": "bytes=999999-"},
    {"Accept-Encoding": "identity", "If-None-Match": "*"},
    {"Accept-Encoding": "br", "If-None-Match": "*"},
    {"Accept-Encoding": "br", "If-Match": '"nope"'},
])
def test_vary_on_every_response_of_a_file_with_variants(server: ServerProcess,
                                                        request_headers: dict[str, str]) -> None:
    for method in ("GET", "HEAD"):
        response = raw_request(server, WITH_VARIANTS, method, request_headers)
        assert response.status in {200, 206, 304, 412, 416}
        assert response.header("Vary") == "Accept-Encoding", (method, request_headers, response.status)


@pytest.mark.parametrize("request_headers", [
    {"Accept-Encoding": "br, gzip"},
    {"Accept-Encoding": "br, gzip", "Range": "bytes=0-9"},
    {"Accept-Encoding": "br, gzip", "Range": "bytes=999999-"},
    {"Accept-Encoding": "br, gzip", "If-None-Match": "*"},
])
@pytest.mark.parametrize("path", [WITHOUT_VARIANTS, "/img/banner.png", "/fonts/open-sans-700.woff2"])
def test_no_vary_on_a_file_without_variants(server: ServerProcess, path: str,
                                            request_headers: dict[str, str]) -> None:
    response = raw_request(server, path, headers=request_headers)
    assert response.status in {200, 206, 304, 416}
    assert response.header("Vary") is None


def test_range_applies_to_the_negotiated_variant(server: ServerProcess, root: Path) -> None:
    compressed = (root / "js/analytics.js.br").read_bytes()
    response = raw_request(server, WITH_VARIANTS, headers={"Accept-Encoding": "br", "Range": "bytes=0-9"})
    assert response.status == 206
    assert response.header("Content-Encoding") == "br"
    assert response.header("Content-Range") == f"bytes 0-9/{len(compressed)}"
    assert response.body == compressed[:10]
    suffix = raw_request(server, WITH_VARIANTS, headers={"Accept-Encoding": "br", "Range": "bytes=-7"})
    assert suffix.status == 206
    assert suffix.body == compressed[-7:]


def test_smallest_variant_wins_even_when_it_is_gzip(tmp_path: Path) -> None:
    """No manifest: the scan picks up variants already on disk; gzip is smaller here."""
    import zstandard

    site = tmp_path / "site"
    site.mkdir()
    data = b"".join(b"line %d of the log: value=%d\n" % (i, i * 7919 % 1000) for i in range(300))
    (site / "log.txt").write_bytes(data)
    (site / "log.txt.br").write_bytes(brotli.compress(data, quality=0, lgwin=10))
    (site / "log.txt.gz").write_bytes(gzip.compress(data, 9))
    (site / "log.txt.zst").write_bytes(zstandard.ZstdCompressor(level=1).compress(data))
    sizes = {suffix: (site / f"log.txt{suffix}").stat().st_size for suffix in (".br", ".gz", ".zst")}
    assert sizes[".gz"] < sizes[".br"]
    with serving(site) as server:
        assert coding_for(server, "br, gzip", "/log.txt") == "gzip"
        assert coding_for(server, "br", "/log.txt") == "br"
        assert coding_for(server, "zstd", "/log.txt") == "zstd"
        expected = min(("br", "gzip", "zstd"), key=lambda c: sizes[{"br": ".br", "gzip": ".gz",
                                                                      "zstd": ".zst"}[c]])
        assert coding_for(server, "br, gzip, zstd", "/log.txt") == expected
        response = raw_request(server, "/log.txt", headers={"Accept-Encoding": "gzip"})
        assert gzip.decompress(response.body) == data
        for variant in ("/log.txt.gz", "/log.txt.br", "/log.txt.zst"):
            assert raw_request(server, variant, headers={"Accept-Encoding": "*"}).status == 404
    assert "scanning" in server.log()
