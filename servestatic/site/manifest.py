"""The build-time manifest: what the server needs to know without touching the tree.

One JSON file in the root (a dotfile, so never served) holding, per file, its
size, content hash, media type, whether its name carries a content hash, a real
modification time or none, and its compressed variants with sizes and hashes.
`servestatic compress` writes it; `servestatic serve` reads it at start-up so it
never walks or hashes the tree.

Each representation (the file itself and each variant) also carries its
`digests`: the RFC 9530 `Repr-Digest` values of its bytes, by algorithm name
("sha-256", "sha-512"), so the server sends them without hashing anything, and
the file its Subresource Integrity value (`integrity`, "sha384-..."). Both are
optional: a manifest written before them is read as it is, and its files are
served without those headers until the next `compress`. A variant keeps its own
digests, so any later kind of variant (a dictionary delta) can carry them too.
An HTML file may also carry `preload`: the Link preload hints of its head
(buildtime/preload.py), optional in the same way.

The manifest's `build` is the build id (`build_id`): a digest of every file's
served bytes, the same for the same build whenever it is made, and the release a
response's cache tag names (site/cachetags.py). A manifest without one (older)
is served without a release tag until the next `compress`.

A content-hashed file of a family (site/hashednames.family_of) carries `family`, the
name its versions share with `*` for the hash, which the server sends as the
`Use-As-Dictionary` match pattern; and `deltas`: its Compression Dictionary Transport
(RFC 9842) variants, keyed by the SHA-256 of the earlier version each was made against,
in standard base64 as a client's `Available-Dictionary` names it, each with its coding
(`dcz`), the dictionary's size, and its own size, hash and digests (buildtime/deltas.py).
A delta's bytes are at `delta_name` (site/names.py), named by the two SHA-256 values.
Both are optional like the rest.

The manifest's `html_dictionary` names the site-wide dictionary of its HTML pages
(buildtime/htmldictionary.py), one of its files; each page's deltas against it are
recorded like any other delta. Optional too: without it, no page announces a dictionary.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from servestatic.site import typedread
from servestatic.site.atomic import write_atomic
from servestatic.site.names import MANIFEST_NAME

FORMAT_VERSION = 1

# Build tools and buildpacks stamp every file with one fixed time; a
# Last-Modified taken from it would be a lie. These are the usual ones: the
# Unix epoch and Nix's 1, the ZIP/DOS epoch that CNB uses (1980-01-01T00:00:01Z).
_FAKE_MTIME_BEFORE = 315532800 + 2 * 86400


class ManifestError(Exception):
    """The manifest is missing, unreadable or of another format; one line for the user."""


# The digest algorithms of `Repr-Digest` (RFC 9530 section 5, the "Active" ones),
# by their names in the Hash Algorithms for HTTP Digest Fields registry.
DIGEST_ALGORITHMS = {"sha-256": "sha256", "sha-512": "sha512"}
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


@dataclass
class Variant:
    size: int
    hash: str
    # Repr-Digest values of these bytes: algorithm name -> standard base64 of the digest.
    digests: dict[str, str] = field(default_factory=dict)


@dataclass
class Delta:
    """A dictionary-compressed variant of a file (RFC 9842): its bytes are the file
    compressed against an earlier version of it, the dictionary."""

    coding: str  # "dcz"
    dictionary_size: int
    size: int
    hash: str
    digests: dict[str, str] = field(default_factory=dict)


@dataclass
class FileEntry:
    size: int
    hash: str
    content_type: str
    immutable: bool
    mtime: int | None = None
    variants: dict[str, Variant] = field(default_factory=dict)
    # Encodings the compressor tried for this content; one tried but absent from
    # variants did not reach the size threshold, so a later run need not retry it.
    tried: list[str] = field(default_factory=list)
    # The compressor's probe found these bytes incompressible (see compress.py):
    # no encoding was attempted, and a later run does not probe them again.
    incompressible: bool = False
    # Repr-Digest values of the file's own bytes (identity), as in Variant.digests.
    digests: dict[str, str] = field(default_factory=dict)
    # The Subresource Integrity value of the file's bytes ("sha384-<base64>"), or "".
    integrity: str = ""
    # For an HTML file, what its head loads first, as (target, link parameters) pairs
    # (see buildtime/preload.py); sent as Link preload headers.
    preload: list[tuple[str, str]] = field(default_factory=list)
    # For a content-hashed file, its family's pattern ("assets/main-*.js"), or "".
    family: str = ""
    # Dictionary deltas: SHA-256 of the dictionary (standard base64) -> Delta.
    deltas: dict[str, Delta] = field(default_factory=dict)
    # Dictionaries (as in `deltas`) a delta was tried against for these bytes, kept or not: a
    # later run does not try them again. The compressor's alone, like `tried`.
    delta_tried: list[str] = field(default_factory=list)


@dataclass
class Manifest:
    files: dict[str, FileEntry]
    # The compression settings the variants were made with; a run with other
    # settings recompresses instead of trusting them.
    compression: dict[str, Any] = field(default_factory=dict)
    generator: str = ""
    # The build id a manifest was read with ("" for one older than it); `dump` always
    # writes `build_id(files)`.
    build: str = ""
    # The site-wide dictionary of the HTML pages (buildtime/htmldictionary.py): its relative
    # path, one of `files`, or "" when there is none.
    html_dictionary: str = ""


@dataclass(frozen=True)
class Fingerprint:
    """Everything the manifest records about one run of bytes, from one pass over them."""

    # The strong, short content hash the ETag is made of: the first 128 bits of SHA-256, base64url.
    hash: str
    digests: dict[str, str]  # Repr-Digest values
    integrity: str  # SRI, "sha384-..."


def fingerprint(data: bytes) -> Fingerprint:
    """The hashes of bytes in memory (a variant just made, a file read whole)."""
    return _fingerprint(hashlib.sha256(data), hashlib.sha512(data), hashlib.sha384(data))


def fingerprint_stream(stream: BinaryIO) -> Fingerprint:
    """The hashes of a file's bytes, read once in blocks."""
    sha256, sha512, sha384 = hashlib.sha256(), hashlib.sha512(), hashlib.sha384()
    while block := stream.read(1024 * 1024):
        sha256.update(block)
        sha512.update(block)
        sha384.update(block)
    return _fingerprint(sha256, sha512, sha384)


def _fingerprint(sha256: Any, sha512: Any, sha384: Any) -> Fingerprint:
    whole = sha256.digest()
    return Fingerprint(
        hash=base64.urlsafe_b64encode(whole[:16]).decode("ascii").rstrip("="),
        digests={"sha-256": _b64(whole), "sha-512": _b64(sha512.digest())},
        integrity="sha384-" + _b64(sha384.digest()),
    )


def _b64(digest: bytes) -> str:
    """Standard base64 with padding: a Structured Field byte sequence (RFC 8941 3.3.5) and SRI."""
    return base64.b64encode(digest).decode("ascii")


def real_mtime(mtime: int) -> int | None:
    """The mtime if it can be a real one, None for a reproducible-build stamp."""
    if mtime < _FAKE_MTIME_BEFORE:
        return None
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit() and int(epoch) == mtime:
        return None
    return mtime


def manifest_path(root: Path) -> Path:
    return root / MANIFEST_NAME


def read(root: Path) -> dict[str, Any]:
    """The manifest's JSON, checked for its format version only."""
    return read_file(manifest_path(root))


def read_file(path: Path, object_hook: Callable[[dict[str, Any]], Any] | None = None) -> dict[str, Any]:
    """`read` for a manifest at any path (`servestatic diff` reads a kept copy)."""
    collecting = gc.isenabled()
    # json.loads of 100,000 entries allocates 100,000 dicts, and the cyclic
    # collector would run over them again and again: off, the load takes 40% less.
    gc.disable()
    try:
        data = json.loads(path.read_bytes(), object_hook=object_hook)
    except FileNotFoundError:
        raise ManifestError(f"no manifest at {path}; run 'servestatic compress {path.parent}'") from None
    except (OSError, ValueError, RecursionError) as error:  # RecursionError: JSON nested too deep
        raise ManifestError(f"cannot read manifest {path}: {error}") from None
    finally:
        if collecting:
            gc.enable()
    if (not isinstance(data, dict) or data.get("format") != FORMAT_VERSION
            or not isinstance(data.get("files"), dict)):
        raise ManifestError(f"manifest {path} is not format {FORMAT_VERSION}; run compress again")
    return data


def entry_from_json(entry: dict[str, Any]) -> FileEntry:
    """One manifest entry as a FileEntry; raises ValueError when it is malformed."""
    try:
        return FileEntry(
            size=int(entry["size"]),
            hash=str(entry["hash"]),
            content_type=str(entry["content_type"]),
            immutable=bool(entry["immutable"]),
            mtime=_mtime(entry.get("mtime")),
            tried=list(entry.get("tried", [])),
            incompressible=bool(entry.get("incompressible", False)),
            digests=_digests(entry.get("digests")),
            integrity=str(entry.get("integrity", "")),
            preload=_preload(entry.get("preload")),
            variants={
                encoding: _variant(variant) for encoding, variant in entry.get("variants", {}).items()
            },
            family=_family(entry.get("family")),
            deltas=_deltas(entry.get("deltas")),
            delta_tried=[str(key) for key in entry.get("delta_tried", [])],
        )
    except (KeyError, TypeError, AttributeError, ValueError, OverflowError) as error:  # int(1e400)
        raise ValueError(f"malformed manifest entry ({error!r})") from None


def _mtime(value: Any) -> int | None:
    return None if value is None else int(value)


def _variant(value: Any) -> Variant:
    """A variant from its JSON object, or from the (size, hash[, digests]) tuple or the
    typed struct `read_for_serving` made of it."""
    if type(value) is typedread.Variant:
        return Variant(size=value.size, hash=value.hash, digests=_digests(value.digests))
    if type(value) is tuple:
        size, digest, *digests = value
        return Variant(size=int(size), hash=str(digest), digests=_digests(digests[0] if digests else None))
    return Variant(size=int(value["size"]), hash=str(value["hash"]), digests=_digests(value.get("digests")))


def _family(value: Any) -> str:
    """A family pattern: printable ASCII or more, no control character (it goes into a header,
    escaped, by core/dictionaries.py)."""
    if not value:
        return ""
    family = str(value)
    if not family.isprintable() or "*" not in family:
        raise ValueError("a family is not a printable pattern with '*'")
    return family


# The content codings of dictionary deltas a manifest may name (RFC 9842 section 5).
DELTA_CODINGS = ("dcz",)


def _deltas(value: Any) -> dict[str, Delta]:
    """Deltas from JSON: {dictionary SHA-256 base64: {coding, dictionary_size, size, hash[, digests]}}."""
    if not value:
        return {}
    deltas: dict[str, Delta] = {}
    for dictionary, delta in value.items():
        if not (isinstance(dictionary, str) and len(dictionary) == 44 and _BASE64.fullmatch(dictionary)):
            raise ValueError("a delta's dictionary is not a base64 SHA-256")
        coding = str(delta["coding"])
        if coding not in DELTA_CODINGS:
            raise ValueError(f"unknown delta coding {coding!r}")
        deltas[dictionary] = Delta(coding=coding, dictionary_size=int(delta["dictionary_size"]),
                                   size=int(delta["size"]), hash=str(delta["hash"]),
                                   digests=_digests(delta.get("digests")))
    return deltas


def _preload(value: Any) -> list[tuple[str, str]]:
    """Preload hints from JSON: [target, parameters] pairs of printable ASCII, since they
    go into a response header as they are; none when absent."""
    if not value:
        return []
    hints = [(str(target), str(parameters)) for target, parameters in value]
    for target, parameters in hints:
        text = target + parameters
        if not (text.isascii() and text.isprintable()) or ">" in target or "<" in target:
            raise ValueError("a preload hint is not printable ASCII")
    return hints


def _digests(value: Any) -> dict[str, str]:
    """Digests from JSON (a dict) or a compact entry (one string "name=value name=value", or
    the typed struct); only the known algorithms, each a string; none when absent (a manifest
    older than digests)."""
    if not value:
        return {}
    if isinstance(value, str):
        pairs = [member.partition("=")[::2] for member in value.split(" ")]
    elif type(value) is typedread.Digests or type(value) is bytes:
        pairs = typedread.digest_pairs(value)
    else:
        pairs = value.items()
    digests = {str(name): str(digest) for name, digest in pairs if name in DIGEST_ALGORITHMS}
    # A value goes into a response header as it is: base64 only, never a CR or LF.
    if not all(_BASE64.fullmatch(digest) for digest in digests.values()):
        raise ValueError("a digest is not base64")
    return digests


# --- the server's view: compact entries


# A manifest entry as the server keeps it from start-up until the file is first
# asked for, when the manifest was not read by msgspec (a typedread.Entry then):
# (size, hash, content_type, immutable, mtime, variants, digests, preload[, family,
# deltas]) (the last two only for a file that has them), variants
# None or ((coding, (size, hash[, digests])), ...), digests None or one string
# "sha-256=BASE64 sha-512=BASE64" (a string: a third of the memory of a dict or pairs).
# Not yet checked: `served_entry` checks it.
CompactEntry = tuple[Any, ...]


def read_for_serving(root: Path) -> dict[str, CompactEntry | dict[str, Any]]:
    """The manifest's files for the server (`read_for_serving_with_build` without the build id)."""
    return read_for_serving_with_build(root)[0]


def read_for_serving_with_build(root: Path) -> tuple[dict[str, CompactEntry | dict[str, Any]], str]:
    """`read_for_serving_site` without the HTML dictionary."""
    site = read_for_serving_site(root)
    return site.files, site.build


@dataclass
class ServingManifest:
    """What the server takes from a manifest: the compact entries, the build id, and the
    site-wide HTML dictionary's relative path ("" when none, or not one of the files)."""

    files: dict[str, CompactEntry | dict[str, Any]]
    build: str
    html_dictionary: str


def read_for_serving_site(root: Path) -> ServingManifest:
    """The manifest's files for the server: relative path -> compact entry.

    The server keeps every entry for as long as it runs, and a worker's memory
    is mostly these: as dicts (what `read` gives) they cost about 650 bytes
    a file, 65 MiB for 100,000 files. A well-formed manifest is decoded by msgspec
    straight into typed entries (site/typedread.py): twice as fast as json for a
    manifest with digests, in the same memory as the tuples below. Any other is read
    by json with each entry made a tuple as soon as it is decoded (`_compactor`), so
    its dict is freed at once rather than after the whole file. Either way the
    compressor's `tried` list and `incompressible` flag, and the SRI value, are left
    out; the digests are kept, since they are headers to send (the part of an entry
    that grows most). An entry of an unexpected shape is kept as its dict, and every
    entry is judged by `served_entry` when its file is first asked for.

    With them the manifest's build id: "" when it has none (a manifest older than it)
    or one of another shape.
    """
    path = manifest_path(root)
    try:
        typed = typedread.decode(path.read_bytes(), FORMAT_VERSION)
    except OSError:
        typed = None  # read_file says why, in its words
    if typed is not None:
        files, build, html_dictionary = typed
    else:  # not well formed all through: each entry judged on its own (see site/typedread.py)
        data = read_file(path, object_hook=_compactor())
        files, build, html_dictionary = data["files"], data.get("build"), data.get("html_dictionary")
    return ServingManifest(files, build if isinstance(build, str) and _BUILD.fullmatch(build) else "",
                           _html_dictionary(html_dictionary, files))


def _html_dictionary(value: Any, files: dict[str, Any]) -> str:
    """The HTML dictionary's path when it is a printable ASCII path the manifest lists (it goes
    into a Link header), else ""."""
    if isinstance(value, str) and value in files and value.isascii() and value.isprintable() \
            and "<" not in value and ">" not in value:
        return value
    return ""


def _compactor() -> Callable[[dict[str, Any]], Any]:
    """json's object_hook making `read_for_serving`'s compact entries.

    Objects are decoded innermost first: a digests object becomes one string,
    a variant's {"size", "hash"[, "digests"]} a tuple, then the entry
    holding them a tuple. Content types and mtimes repeat
    across thousands of files and are kept once each. (object_hook rather than
    object_pairs_hook: json builds the dict in C, and the load takes 10% less.)
    """
    shared: dict[Any, Any] = {}
    share = shared.setdefault

    def compact(value: dict[str, Any]) -> Any:
        if "content_type" in value:
            try:
                content_type, mtime, variants = value["content_type"], value.get("mtime"), value["variants"]
                compact = (value["size"], value["hash"], share(content_type, content_type),
                           value["immutable"], share(mtime, mtime),
                           tuple(variants.items()) if variants else None,
                           value.get("digests"), value.get("preload"))
                if "family" in value or "deltas" in value:
                    compact += (value.get("family"), value.get("deltas"))
                return compact
            except (KeyError, TypeError, AttributeError):  # unhashable, or variants not a dict
                return value
        if type(value.get("size")) is int and "hash" in value:
            if len(value) == 2:
                return value["size"], value["hash"]
            if len(value) == 3 and "digests" in value:
                return value["size"], value["hash"], value["digests"]
            return value
        if "sha-256" in value:
            try:
                return " ".join(f"{name}={digest}" for name, digest in value.items())
            except TypeError:
                return value
        return value

    return compact


def served_entry(value: CompactEntry | dict[str, Any] | FileEntry) -> FileEntry:
    """An entry of `read_for_serving` (or of a scan) as a FileEntry; ValueError when malformed."""
    if isinstance(value, FileEntry):
        return value
    if type(value) is typedread.Entry:  # the typed read's: as the compact tuple below
        value = (value.size, value.hash, value.content_type, value.immutable, value.mtime,
                 tuple(value.variants.items()) if value.variants else None, value.digests,
                 value.preload, value.family, value.deltas)
    if type(value) is not tuple:
        return entry_from_json(value)
    try:
        size, digest, content_type, immutable, mtime, variants, digests, preload, *delivery = value
        family, deltas = delivery if delivery else (None, None)
        return FileEntry(size=int(size), hash=str(digest), content_type=str(content_type),
                         immutable=bool(immutable), mtime=_mtime(mtime), digests=_digests(digests),
                         preload=_preload(preload),
                         variants={str(coding): _variant(variant) for coding, variant in variants or ()},
                         family=_family(family), deltas=_deltas(deltas))
    except (KeyError, TypeError, AttributeError, ValueError, OverflowError) as error:  # int(1e400)
        raise ValueError(f"malformed manifest entry ({error!r})") from None


def load(root: Path) -> Manifest:
    data = read(root)
    try:
        files = {path: entry_from_json(entry) for path, entry in data["files"].items()}
    except ValueError as error:
        raise ManifestError(f"manifest {manifest_path(root)}: {error}; run compress again") from None
    build = data.get("build")
    return Manifest(files=files, compression=data.get("compression", {}),
                    generator=data.get("generator", ""),
                    build=build if isinstance(build, str) and _BUILD.fullmatch(build) else "",
                    html_dictionary=_html_dictionary(data.get("html_dictionary"), files))


def dump(manifest: Manifest) -> bytes:
    data = {
        "format": FORMAT_VERSION,
        "generator": manifest.generator,
        "build": build_id(manifest.files),
        "compression": manifest.compression,
        **({"html_dictionary": manifest.html_dictionary} if manifest.html_dictionary else {}),
        "files": {path: _entry_json(entry) for path, entry in sorted(manifest.files.items())},
    }
    # No indent: json's C encoder runs only without one, and a 3,500-file
    # manifest then takes 40 ms instead of most of a second to write.
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


# A build id as `build_id` makes it: what a cache tag may hold (site/cachetags.py).
_BUILD = re.compile(r"[0-9a-z]{1,64}")


def build_id(files: dict[str, FileEntry]) -> str:
    """The build id: 16 hex digits of a SHA-256 over each file's path and served bytes
    (content hash, media type, every variant's hash). Made from the content rather than
    the clock, so compressing the same tree again, or on another machine, gives the same
    id, and a release tag names a build, not a run."""
    digest = hashlib.sha256()
    for path in sorted(files):
        entry = files[path]
        variants = ",".join(f"{coding}={variant.hash}" for coding, variant in sorted(entry.variants.items()))
        digest.update(f"{path}\0{entry.hash}\0{entry.content_type}\0{variants}\n".encode())
    return digest.hexdigest()[:16]


def _entry_json(entry: FileEntry) -> dict[str, Any]:
    """`asdict`, written out: asdict deep-copies field by field and is 10x slower."""
    data = {
        "size": entry.size,
        "hash": entry.hash,
        "content_type": entry.content_type,
        "immutable": entry.immutable,
        "mtime": entry.mtime,
        "variants": {name: _variant_json(v) for name, v in entry.variants.items()},
        "tried": list(entry.tried),
    }
    if entry.digests:
        data["digests"] = dict(entry.digests)
    if entry.integrity:
        data["integrity"] = entry.integrity
    if entry.preload:
        data["preload"] = [list(hint) for hint in entry.preload]
    if entry.family:
        data["family"] = entry.family
    if entry.deltas:
        data["deltas"] = {dictionary: _delta_json(delta) for dictionary, delta in entry.deltas.items()}
    if entry.delta_tried:
        data["delta_tried"] = list(entry.delta_tried)
    if entry.incompressible:  # rare: written only where true, to keep manifests small
        data["incompressible"] = True
    return data


def _variant_json(variant: Variant) -> dict[str, Any]:
    data: dict[str, Any] = {"size": variant.size, "hash": variant.hash}
    if variant.digests:
        data["digests"] = dict(variant.digests)
    return data


def _delta_json(delta: Delta) -> dict[str, Any]:
    data: dict[str, Any] = {"coding": delta.coding, "dictionary_size": delta.dictionary_size,
                            "size": delta.size, "hash": delta.hash}
    if delta.digests:
        data["digests"] = dict(delta.digests)
    return data


def save(root: Path, manifest: Manifest) -> None:
    write_atomic(manifest_path(root), dump(manifest), durable=True)


def build_from_tree(root: Path, immutable_pattern: str = "auto") -> Manifest:
    """A manifest made by walking and hashing root, for a server started without one.

    Variants already beside a file (from an earlier compressor, WhiteNoise's
    say) are picked up when they are smaller than the original and not older
    than it: an older one may be a leftover of a previous version of the file.
    """
    from servestatic.site.hashednames import immutable_test
    from servestatic.site.mediatypes import content_type_for
    from servestatic.site.names import ENCODING_SUFFIXES
    from servestatic.site.scan import walk

    is_immutable = immutable_test(immutable_pattern)
    files: dict[str, FileEntry] = {}
    for found in walk(root):
        try:
            with open(found.absolute, "rb") as stream:
                hashes = fingerprint_stream(stream)
        except OSError:
            continue
        entry = FileEntry(size=found.size, hash=hashes.hash, content_type=content_type_for(found.relative),
                          immutable=is_immutable(found.relative), mtime=real_mtime(found.mtime),
                          digests=hashes.digests, integrity=hashes.integrity)
        for coding, suffix in ENCODING_SUFFIXES.items():
            try:
                with open(os.fspath(found.absolute) + suffix, "rb") as stream:
                    stat = os.fstat(stream.fileno())
                    size = stat.st_size
                    if size < found.size and int(stat.st_mtime) >= found.mtime:
                        hashes = fingerprint_stream(stream)
                        entry.variants[coding] = Variant(size=size, hash=hashes.hash, digests=hashes.digests)
            except OSError:
                continue
        files[found.relative] = entry
    return Manifest(files=files, generator="scan at start-up", build=build_id(files))
