"""Fuzz target: the manifest reader (servestatic/site/manifest.py).

The input is the bytes of a manifest file. A broken manifest (truncated, hand-edited, from
another version) must end as the reader's documented errors, never as another exception
in a worker answering a request:

- `read_file`, plain and with `read_for_serving`'s compacting hook, returns a format-1
  manifest with a "files" object, or raises ManifestError; the two agree, but for a
  top level or "files" object that itself looks like an entry (only the compacting
  reading refuses those);
- every entry `read_for_serving` keeps is turned by `served_entry` (on the first request
  for that file) into a FileEntry of the right types, or refused with ValueError; the
  same for `entry_from_json` (`load`, `servestatic compress` and `diff`);
- an entry of the documented shape reads the same both ways;
- the server's typed read (site/typedread.py) takes only a manifest `read_file` takes,
  with the same files, and each entry it keeps serves what `entry_from_json` reads of the
  plain entry (a digest as the same bytes: msgspec writes non-canonical base64 back
  canonically), or it answers None and the server falls back to the compacting reading.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import dataclasses
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from servestatic.site import typedread
from servestatic.site.manifest import (
    FORMAT_VERSION,
    FileEntry,
    ManifestError,
    _compactor,
    entry_from_json,
    read_file,
    served_entry,
)

# read_file reads a path, as the server does: each input is written to this one file.
_WORKDIR = Path(tempfile.mkdtemp(prefix="servestatic-fuzz-manifest-"))
atexit.register(shutil.rmtree, _WORKDIR, ignore_errors=True)
MANIFEST = _WORKDIR / ".servestatic-manifest.json"


def check_types(entry: FileEntry) -> None:
    assert type(entry.size) is int and type(entry.hash) is str and type(entry.content_type) is str
    assert type(entry.immutable) is bool
    assert entry.mtime is None or type(entry.mtime) is int
    for coding, variant in entry.variants.items():
        assert type(coding) is str and type(variant.size) is int and type(variant.hash) is str


def well_formed(entry: Any) -> bool:
    """An entry exactly as `servestatic compress` writes one (manifest._entry_json)."""
    def is_int(value: Any) -> bool:
        return type(value) is int

    return (isinstance(entry, dict) and is_int(entry.get("size")) and type(entry.get("hash")) is str
            and type(entry.get("content_type")) is str and type(entry.get("immutable")) is bool
            and (entry.get("mtime") is None or is_int(entry.get("mtime")))
            and isinstance(entry.get("variants"), dict)
            and all(type(coding) is str and isinstance(variant, dict) and set(variant) == {"size", "hash"}
                    and is_int(variant["size"]) and type(variant["hash"]) is str
                    for coding, variant in entry["variants"].items())
            and isinstance(entry.get("tried", []), list)
            and all(type(name) is str for name in entry.get("tried", []))
            and type(entry.get("incompressible", False)) is bool
            and digests_well_formed(entry.get("digests", {}))
            and delivery_well_formed(entry))


def digests_well_formed(digests: Any) -> bool:
    """Digests absent, or as compress writes them: names that are tokens, values of the known
    algorithms in base64 (the readers ignore other names and refuse a known one that is not
    base64; the compact form joins them as "name=value name=value")."""
    from servestatic.site.manifest import DIGEST_ALGORITHMS

    return isinstance(digests, dict) and all(
        type(name) is str and re.fullmatch(r"[a-z0-9-]+", name) is not None
        and type(value) is str and " " not in value
        and (name not in DIGEST_ALGORITHMS or re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", value) is not None)
        for name, value in digests.items())


def delivery_well_formed(entry: dict[str, Any]) -> bool:
    """The dictionary-delta fields (buildtime/deltas.py) absent, or as compress writes them:
    a printable family with a `*`, deltas keyed by a base64 SHA-256 with coding dcz and
    whole-number sizes."""
    family = entry.get("family", "x*")
    deltas = entry.get("deltas", {})
    tried = entry.get("delta_tried", [])
    if not isinstance(tried, list) or not all(type(key) is str for key in tried):
        return False
    if not (type(family) is str and family.isprintable() and "*" in family) or not isinstance(deltas, dict):
        return False
    return all(type(key) is str and len(key) == 44 and re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", key)
               and isinstance(delta, dict) and set(delta) == {"coding", "dictionary_size", "size", "hash"}
               and delta["coding"] == "dcz" and type(delta["dictionary_size"]) is int
               and type(delta["size"]) is int and type(delta["hash"]) is str
               for key, delta in deltas.items())


def read(hook: Any = None) -> dict[str, Any] | None:
    """read_file's answer, or None for its ManifestError (any other exception propagates)."""
    try:
        data = read_file(MANIFEST, object_hook=hook)
    except ManifestError:
        return None
    assert isinstance(data, dict) and data.get("format") == 1 and isinstance(data.get("files"), dict)
    return data


def entry(read_one: Any, value: Any) -> FileEntry | None:
    """A FileEntry of the right types, or None for ValueError."""
    try:
        result = read_one(value)
    except ValueError:
        return None
    assert isinstance(result, FileEntry)
    check_types(result)
    return result


# An entry's fields that only the compressor and the build read.
COMPRESSORS = ("tried", "incompressible", "integrity", "delta_tried")


def canonical(entry: FileEntry) -> FileEntry:
    """The entry as served: each digest as base64 of its bytes, as the typed read writes it
    back, and without the compressor's fields and the build's SRI value, which the server
    does not read (an entry kept as its dict still has them)."""
    def digests(values: dict[str, str]) -> dict[str, str]:
        return {name: again(value) for name, value in values.items()}

    def again(value: str) -> str:
        try:
            return base64.b64encode(base64.b64decode(value)).decode()
        except binascii.Error:  # a delta's digest, which both reads keep as it is
            return value

    return dataclasses.replace(
        entry, tried=[], incompressible=False, integrity="", delta_tried=[], digests=digests(entry.digests),
        variants={coding: dataclasses.replace(variant, digests=digests(variant.digests))
                  for coding, variant in entry.variants.items()},
        deltas={key: dataclasses.replace(delta, digests=digests(delta.digests))
                for key, delta in entry.deltas.items()})


def check_typed(data: bytes, plain: dict[str, Any] | None) -> None:
    typed = typedread.decode(data, FORMAT_VERSION)
    if typed is None:
        return  # the server reads it the compacting way
    # (Where the compacting read refuses a top level that looks like an entry, the typed
    # read, which knows where entries are, takes it as read_file does.)
    assert plain is not None, "the typed read takes what read_file refuses"
    files = typed[0]
    assert files.keys() == plain["files"].keys()
    for path, value in files.items():
        from_typed = entry(served_entry, value)
        if from_typed is None:
            continue
        # What the manifest says of the file, read plainly, without the fields only the
        # compressor reads: the typed read must serve exactly that. (Not the compacting
        # read's entry: its hook also takes a nested object with an entry's keys, a
        # delta of another shape, for an entry, and refuses what it then finds.)
        said = plain["files"][path]
        assert isinstance(said, dict), (path, said)
        serving = {key: item for key, item in said.items() if key not in COMPRESSORS}
        from_json = entry(entry_from_json, serving)
        assert from_json is not None, ("the typed read serves what the manifest does not say", path)
        assert canonical(from_typed) == canonical(from_json), (path, value)


def check_manifest(data: bytes) -> None:
    MANIFEST.write_bytes(data)
    plain = read()
    served = read(_compactor())
    check_typed(data, plain)
    if plain is not None and served is None:
        # The compacting hook reads any object with "content_type" (and a "variants" object)
        # as an entry, so a top level or a "files" object with those keys is no manifest to
        # it: still the documented error, for what no compressor writes.
        assert "content_type" in plain or "content_type" in plain["files"], (
            "read_for_serving refuses a manifest read_file takes")
    assert plain is not None or served is None, "read_for_serving takes what read_file refuses"
    if plain is None or served is None:
        return
    assert plain["files"].keys() == served["files"].keys()
    for path, value in plain["files"].items():
        from_json = entry(entry_from_json, value)
        for_serving = entry(served_entry, served["files"][path])
        if well_formed(value):
            assert from_json is not None and for_serving is not None, (path, value)
            for_serving.tried, for_serving.incompressible = from_json.tried, from_json.incompressible
            # The compressor's fields, and the build's SRI value, are not read for serving.
            for_serving.delta_tried, for_serving.integrity = from_json.delta_tried, from_json.integrity
            assert from_json == for_serving, (path, value)


def TestOneInput(data: bytes) -> None:
    check_manifest(data)

