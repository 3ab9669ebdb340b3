"""Media types come from our own table, the same on every machine, with charset on text."""

from __future__ import annotations

import pytest

from servestatic.site.mediatypes import FALLBACK_TYPE, content_type_for


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("fonts/inter.woff2", "font/woff2"),
        ("fonts/inter.woff", "font/woff"),
        ("site.webmanifest", "application/manifest+json; charset=utf-8"),
        ("assets/app-3fA9c1bd.js.map", "application/json; charset=utf-8"),
        ("module.mjs", "text/javascript; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("lib.wasm", "application/wasm"),
        ("img/photo.avif", "image/avif"),
        ("img/logo.svg", "image/svg+xml; charset=utf-8"),
        ("downloads/data.tar.gz", "application/gzip"),
        ("downloads/data.tgz", "application/gzip"),
        ("index.html", "text/html; charset=utf-8"),
        ("css/site.0123456789ab.css", "text/css; charset=utf-8"),
        ("feed.json", "application/json; charset=utf-8"),
        ("img/a.png", "image/png"),
        ("favicon.ico", "image/vnd.microsoft.icon"),
        ("doc.pdf", "application/pdf"),
        ("data/résumé.txt", "text/plain; charset=utf-8"),
        ("UPPER.CSS", "text/css; charset=utf-8"),
    ],
)
def test_current_types(name: str, expected: str) -> None:
    assert content_type_for(name) == expected


@pytest.mark.parametrize("name", ["LICENSE", "file.unknownext", "archive.xyz.gz.part"])
def test_unknown_is_octet_stream(name: str) -> None:
    assert content_type_for(name) == FALLBACK_TYPE


def test_global_mimetypes_changes_do_not_leak_in() -> None:
    """Our table is private: what other code (or /etc/mime.types) registers in the
    global `mimetypes` database must not change a manifest built on this machine."""
    import mimetypes

    mimetypes.add_type("text/x-servestatic-test", ".zzqq")
    try:
        assert mimetypes.guess_type("a.zzqq")[0] == "text/x-servestatic-test"
        assert content_type_for("a.zzqq") == FALLBACK_TYPE
    finally:
        mimetypes.types_map.pop(".zzqq", None)
