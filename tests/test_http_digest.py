"""Repr-Digest (RFC 9530): each representation's digest, made at build time, is the
digest of the bytes a client receives; sha-512 when Want-Repr-Digest prefers it;
on a 206 the digest of the whole selected representation; never on a 304."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from tests.support.cli import compress
from tests.support.http import raw_request
from tests.support.server import ServerProcess, serving
from tests.support.site import MANIFEST, copy_site, manifest_entry

WITH_VARIANTS = "/js/analytics.js"
WITHOUT_VARIANTS = "/robots.txt"
CODINGS = ["identity", "br", "gzip", "zstd"]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example site compressed with zstd too, so every coding has a variant."""
    site = copy_site(tmp_path_factory.mktemp("digest") / "site")
    compress(site, "--zstd")
    return site


def digest_header(algorithm: str, body: bytes) -> str:
    """The Repr-Digest field for body, computed here from the bytes received."""
    digest = hashlib.new(algorithm.replace("-", ""), body).digest()
    return f"{algorithm}=:{base64.b64encode(digest).decode()}:"


def test_the_site_has_a_variant_of_each_coding(root: Path) -> None:
    assert set(manifest_entry(root, "js/analytics.js")["variants"]) == {"br", "gzip", "zstd"}


@pytest.mark.parametrize("coding", CODINGS)
def test_each_representation_carries_the_sha256_of_its_bytes(server: ServerProcess, coding: str) -> None:
    response = raw_request(server, WITH_VARIANTS, headers={"Accept-Encoding": coding})
    assert response.status == 200
    assert (response.header("Content-Encoding") or "identity") == coding
    assert response.header("Repr-Digest") == digest_header("sha-256", response.body)


def test_a_file_without_variants(server: ServerProcess) -> None:
    response = raw_request(server, WITHOUT_VARIANTS)
    assert response.status == 200
    assert response.header("Repr-Digest") == digest_header("sha-256", response.body)


@pytest.mark.parametrize("coding", CODINGS)
def test_want_repr_digest_sha512(server: ServerProcess, coding: str) -> None:
    response = raw_request(server, WITH_VARIANTS, headers={
        "Accept-Encoding": coding, "Want-Repr-Digest": "sha-256=1, sha-512=5"})
    assert response.status == 200
    assert response.header("Repr-Digest") == digest_header("sha-512", response.body)


@pytest.mark.parametrize("want", [
    "sha-256=5, sha-512=1",  # sha-256 preferred
    "sha-512=0",  # sha-512 refused
    "sha-512",  # not name=integer: ignored
    "sha-512=11",  # out of range: ignored
    "md5=10",  # unknown algorithm: sha-256 as always
    ";;;,=,sha-512=x,sha-512=-1",  # garbage
    "",
])
def test_other_or_malformed_wants_get_sha256(server: ServerProcess, want: str) -> None:
    response = raw_request(server, WITH_VARIANTS, headers={"Accept-Encoding": "br", "Want-Repr-Digest": want})
    assert response.status == 200
    assert response.header("Repr-Digest") == digest_header("sha-256", response.body)


@pytest.mark.parametrize("coding", CODINGS)
def test_206_carries_the_digest_of_the_whole_representation(server: ServerProcess, coding: str) -> None:
    whole = raw_request(server, WITH_VARIANTS, headers={"Accept-Encoding": coding})
    part = raw_request(server, WITH_VARIANTS, headers={"Accept-Encoding": coding, "Range": "bytes=10-99"})
    assert part.status == 206
    assert part.body == whole.body[10:100]
    assert part.header("Repr-Digest") == digest_header("sha-256", whole.body)


def test_head_has_the_digest_and_304_does_not(server: ServerProcess) -> None:
    whole = raw_request(server, WITH_VARIANTS, headers={"Accept-Encoding": "gzip"})
    head = raw_request(server, WITH_VARIANTS, "HEAD", headers={"Accept-Encoding": "gzip"})
    assert head.header("Repr-Digest") == whole.header("Repr-Digest")
    etag = whole.header("ETag")
    assert etag
    not_modified = raw_request(server, WITH_VARIANTS,
                               headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert not_modified.status == 304
    assert not_modified.header("Repr-Digest") is None


def test_a_manifest_from_before_digests_is_served_without_them(tmp_path: Path) -> None:
    """Digests are optional in format 1: an older manifest still serves, without Repr-Digest;
    `compress` again adds them, keeping the variants it made (their digests from a re-read)."""
    site = copy_site(tmp_path / "site")
    compress(site)
    manifest = site / MANIFEST
    data = json.loads(manifest.read_text())
    for entry in data["files"].values():
        entry.pop("digests", None)
        entry.pop("integrity", None)
        for variant in entry["variants"].values():
            variant.pop("digests", None)
    manifest.write_text(json.dumps(data))
    with serving(site) as server:
        response = raw_request(server, WITH_VARIANTS, headers={"Accept-Encoding": "br"})
        assert response.status == 200
        assert response.header("Repr-Digest") is None
    again = json.loads(compress(site, "--json").stdout)
    assert again["encodings"]["br"]["compressed"] == 0
    with serving(site) as server:
        response = raw_request(server, WITH_VARIANTS, headers={"Accept-Encoding": "br"})
        assert response.header("Repr-Digest") == digest_header("sha-256", response.body)
