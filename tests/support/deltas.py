"""Two releases of a small site for the dictionary-delta tests (RFC 9842 `dcz`).

Release 1 has a bundle `assets/main-<hash>.js`; release 2 changes a line of it, so its
name changes too, as a bundler's would. Both are compressed with one cache directory,
the way successive builds share the image's cache mount.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.cli import compress
from tests.support.server import ServerProcess, WsgiFront, serving

DCZ_MAGIC = bytes.fromhex("5e2a4d1820000000")
WORDS = ("function", "return", "const", "let", "window", "document", "export", "import", "render")


def bundle(release: int, lines: int = 3000) -> bytes:
    """A bundle of some 100 KB of made-up code (the same but one line across releases), which
    ends by writing its release into the page."""
    rng = random.Random(21)
    body = [f"const {rng.choice(WORDS)}_{i} = {rng.randint(0, 10**6)}; // {rng.choice(WORDS)}"
            for i in range(lines)]
    body[lines // 2] = f"const changed = {release};"
    body.append(f"document.getElementById('release').textContent = 'release {release}';")
    return ("\n".join(body) + "\n").encode()


def bundle_name(data: bytes) -> str:
    """A Vite-style name: the stem, '-', eight base64url characters of the content hash."""
    # Mixed case and a digit, as the name test wants of a base64url hash.
    return f"main-Q9x{hashlib.sha256(data).hexdigest()[:6]}.js"


def available_dictionary(data: bytes) -> str:
    """The Available-Dictionary value a browser holding data sends."""
    return ":" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"


@dataclass
class Release:
    root: Path
    data: bytes
    name: str  # relative path of the bundle

    @property
    def dictionary(self) -> str:
        return available_dictionary(self.data)


def write_release(root: Path, release: int, prefix: str = "/") -> Release:
    """A site: an HTML page running one bundle, under the URL prefix it is served at."""
    data = bundle(release)
    name = "assets/" + bundle_name(data)
    (root / "assets").mkdir(parents=True, exist_ok=True)
    (root / name).write_bytes(data)
    # An unhashed file with variants: no family, no deltas, Vary: Accept-Encoding alone.
    (root / "site.css").write_text("".join(f".rule-{i} {{ margin: {i}px; }}\n" for i in range(100)))
    (root / "index.html").write_text(
        f"<!doctype html><title>release {release}</title><p id=release>none</p>"
        f"<script src=\"{prefix}{name}\"></script>\n")
    return Release(root, data, name)


def build(root: Path, release: int, cache: Path, *args: str, prefix: str = "/",
          env: dict[str, str] | None = None) -> Release:
    made = write_release(root, release, prefix)
    compress(root, "--cache-dir", str(cache), *args, env=env)
    return made


def decode_dcz(body: bytes, dictionary: bytes) -> bytes:
    """A dcz body decoded as a browser does: check the header, then zstd with the raw dictionary."""
    import zstandard

    assert body[:8] == DCZ_MAGIC, body[:8].hex()
    assert body[8:40] == hashlib.sha256(dictionary).digest()
    raw = zstandard.ZstdCompressionDict(dictionary, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    return zstandard.ZstdDecompressor(dict_data=raw).decompress(body[40:])


def pattern_matches(pattern: str, path: str) -> bool:
    """Whether a Use-As-Dictionary match pattern (URL Pattern pathname syntax, the subset
    servestatic writes: literals, backslash escapes and `*`) matches a URL path."""
    regex = ""
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 1
            regex += re.escape(pattern[index])
        elif char == "*":
            regex += ".*"
        else:
            assert char not in ":?+(){}", f"unescaped URL Pattern syntax in {pattern!r}"
            regex += re.escape(char)
        index += 1
    return re.fullmatch(regex, path) is not None


def match_value(use_as_dictionary: str) -> str:
    """The match pattern of a Use-As-Dictionary value (an sf-string, unescaped)."""
    found = re.search(r'match="((?:[^"\\]|\\.)*)"', use_as_dictionary)
    assert found, use_as_dictionary
    return re.sub(r"\\(.)", r"\1", found.group(1))


# --- A documentation site for the HTML dictionary (buildtime/htmldictionary.py)

TOPICS = ("install", "configure", "deploy", "cache", "compress", "serve", "monitor", "upgrade",
          "secure", "scale", "debug", "migrate")


def write_doc_site(root: Path, pages: int = 12, release: int = 1, script: str = "") -> list[str]:
    """A small documentation site: pages sharing a head, a navigation listing every page and a
    footer, as a site generator writes them, each with text of its own; the next `release`
    changes every page's text and footer. `script` goes at the end of the first page's body.
    Its pages' names."""
    rng = random.Random(9842 + release)
    names = [f"{TOPICS[index % len(TOPICS)]}-{index}.html" for index in range(pages)]
    nav = "".join(f'<li><a href="/{name}">{name[:-5].replace("-", " ").title()} guide</a></li>\n'
                  for name in names)
    root.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(names):
        body = "".join(f"<p>{' '.join(rng.choice(WORDS) + str(rng.randint(0, 99)) for _ in range(30))}</p>\n"
                       for _ in range(12))
        (root / name).write_text(
            f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{name}</title>"
            "<meta name=viewport content='width=device-width, initial-scale=1'>"
            "<link rel=stylesheet href=/site.css></head><body><header><h1>servestatic docs</h1>"
            f"</header><nav><ul>\n{nav}</ul></nav><main><h2 id=title>{name}</h2>\n{body}</main>"
            f"<footer>Release {release}, generated by a site generator. Copyright the authors. "
            f"All rights reserved.</footer>{script if index == 0 else ''}</body></html>\n")
    (root / "site.css").write_text("".join(f".rule-{i} {{ margin: {i}px; }}\n" for i in range(100)))
    return names


# The ways a delta is answered: the event loop, the ASGI front (tests/conftest.py's
# ANSWER_PATHS), and the WSGI front under gunicorn.
SERVERS = ("asgi", "loop", "wsgi")


@contextmanager
def served(root: Path, way: str, env: dict[str, str]) -> Iterator[ServerProcess]:
    """`root` served one of the SERVERS ways, with `env`."""
    from tests.conftest import ANSWER_PATHS

    if way == "wsgi":
        with WsgiFront(root, env) as running:
            yield running
        return
    with serving(root, {**env, **ANSWER_PATHS[way]}) as running:
        yield running
