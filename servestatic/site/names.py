"""The names a static root and the server agree on: the manifest's, the variants' and the pages'.

A compressed tree is read by whoever serves it, perhaps another release of
servestatic: these names are part of its on-disk format, so each is said once.
"""

from __future__ import annotations

# The manifest `servestatic compress` writes at the top of each root (a dotfile: never served).
MANIFEST_NAME = ".servestatic-manifest.json"

# Encodings we write, with the file suffix of their variant and the token a
# client sends in Accept-Encoding. Order is the preference among equal sizes.
ENCODING_SUFFIXES: dict[str, str] = {"br": ".br", "zstd": ".zst", "gzip": ".gz"}
VARIANT_SUFFIXES = tuple(ENCODING_SUFFIXES.values())

# `/dir/` is answered with this file of the directory.
INDEX = "index.html"

# At a root's top, the page a miss gets.
NOT_FOUND_PAGE = "404.html"

# Dictionary deltas (RFC 9842; buildtime/deltas.py) live in this directory at a root's top
# (a dotfile: never served as a file of its own, reached only through the manifest), each
# named by the SHA-256 of the file and of its dictionary, so that a delta is found
# from the manifest alone and equal deltas are one file.
DELTA_DIRECTORY = ".servestatic-deltas"


def delta_name(file_sha256: bytes, dictionary_sha256: bytes, coding: str) -> str:
    """The delta's path relative to the root, from the two SHA-256 digests (raw bytes)."""
    return f"{DELTA_DIRECTORY}/{file_sha256.hex()[:32]}.{dictionary_sha256.hex()[:32]}.{coding}"


# The site-wide dictionary of the HTML pages (RFC 9842; buildtime/htmldictionary.py): a file
# served like any other, named by its SHA-256 so that it is cached as immutable, in a
# directory of servestatic's own at the root's top. A name of this shape is servestatic's to
# write and to remove.
HTML_DICTIONARY_DIRECTORY = "_servestatic"
_HTML_DICTIONARY_STEM = HTML_DICTIONARY_DIRECTORY + "/html."
_HTML_DICTIONARY_SUFFIX = ".dict"


def html_dictionary_name(sha256: bytes) -> str:
    """The dictionary's path relative to the root, from its SHA-256 (raw bytes)."""
    return f"{_HTML_DICTIONARY_STEM}{sha256.hex()[:16]}{_HTML_DICTIONARY_SUFFIX}"


def is_html_dictionary_name(relative: str) -> bool:
    """Whether a relative path is one `html_dictionary_name` makes."""
    middle = relative[len(_HTML_DICTIONARY_STEM):-len(_HTML_DICTIONARY_SUFFIX)]
    return (relative.startswith(_HTML_DICTIONARY_STEM) and relative.endswith(_HTML_DICTIONARY_SUFFIX)
            and len(middle) == 16 and all(char in "0123456789abcdef" for char in middle))
