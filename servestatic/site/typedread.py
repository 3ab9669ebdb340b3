"""The server's fast read of a manifest: msgspec decodes it straight into compact entries.

A worker's start-up is mostly this read, and the standard library's json spends it
building a dict per object (each entry, its variants, its digests) and a string for
every field the server never uses (`tried`, `integrity`): with digests in the
manifest, 0.4 s for 100,000 files. msgspec decodes against the types below in one
pass in C, skipping the fields they do not name: 0.1 s, and 0.23 s for the whole table,
in a little less memory than `manifest._compactor`'s tuples (a `gc=False` struct is no
larger than a tuple, and nothing the collector would walk).

It only ever speeds up a manifest that is well formed all through: any surprise (a
size that is not an integer, a digest that is not base64, text that is not UTF-8, not
JSON at all) and it answers None, and the caller reads the file again the standard
library's way, which keeps each odd entry for `manifest.served_entry` to judge and
says what is wrong in one line. So this module decides nothing about what is served,
but that a digest written in base64 with stray bits in its padding is sent back in
its canonical form, the same bytes (tests/fuzz/manifest.py holds it to that).
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec


class Digests(msgspec.Struct, gc=False):
    """A representation's Repr-Digest values, as the manifest names them, decoded from their
    base64 (msgspec checks it). When both are there, the entry keeps them as one bytes object,
    sha-256's 32 bytes then sha-512's 64 (`packed`): 129 bytes, where two strings take 230
    and this struct with its two bytes objects 194, for every representation of every file."""

    sha256: bytes | None = msgspec.field(name="sha-256", default=None)
    sha512: bytes | None = msgspec.field(name="sha-512", default=None)


def packed(digests: Digests | None) -> Digests | bytes | None:
    """What an entry keeps of its digests (see `Digests`)."""
    if digests is not None and digests.sha256 is not None and digests.sha512 is not None \
            and len(digests.sha256) == 32 and len(digests.sha512) == 64:
        return digests.sha256 + digests.sha512
    return digests


def digest_pairs(digests: Digests | bytes) -> list[tuple[str, str]]:
    """(algorithm, standard base64) pairs, as the manifest's JSON object gives them."""
    if type(digests) is bytes:
        values: tuple[bytes | None, bytes | None] = (digests[:32], digests[32:])
    else:
        values = (digests.sha256, digests.sha512)
    return [(name, base64.b64encode(value).decode("ascii"))
            for name, value in zip(("sha-256", "sha-512"), values, strict=True) if value is not None]


class Variant(msgspec.Struct, gc=False):
    size: int
    hash: str
    digests: Digests | None = None  # `packed` once decoded

    def __post_init__(self) -> None:
        self.digests = packed(self.digests)  # type: ignore[assignment]


class Entry(msgspec.Struct, gc=False):
    """A file as the server keeps it until first asked for (`manifest.served_entry` checks it
    then). `preload`, `family` and `deltas` are few and of several shapes: kept as decoded."""

    size: int
    hash: str
    content_type: str
    immutable: bool
    mtime: int | None = None
    variants: dict[str, Variant] | None = None
    digests: Digests | None = None  # `packed` once decoded
    preload: Any = None
    family: Any = None
    deltas: Any = None

    def __post_init__(self) -> None:
        # Called as each entry is decoded, so what it lets go is reused by the next one rather
        # than left as holes between the entries kept: content types and mtimes repeat across
        # thousands of files (kept once each), and an empty variants object costs a dict.
        self.content_type = _share(self.content_type, self.content_type)
        self.mtime = _share(self.mtime, self.mtime)
        if not self.variants:
            self.variants = None
        self.digests = packed(self.digests)  # type: ignore[assignment]


class _Document(msgspec.Struct):
    format: Any
    files: dict[str, Entry]
    build: Any = None
    html_dictionary: Any = None


_decoder = msgspec.json.Decoder(_Document)
_shared: dict[Any, Any] = {}  # values kept once each, for the decode under way
_share = _shared.setdefault


def decode(raw: bytes, format_version: int) -> tuple[dict[str, Entry], Any, Any] | None:
    """(files, build, html_dictionary) of a well-formed manifest of `format_version`; None for
    anything else, which the caller reads the slow way."""
    if not raw.isascii():  # a path outside ASCII; msgspec does not check the text it skips
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
    try:
        document = _decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    finally:
        _shared.clear()
    if type(document.format) is not int or document.format != format_version:
        return None
    return document.files, document.build, document.html_dictionary
