"""Grammar-generated HTTP/1.x traffic for a running `servestatic serve`, and the model
that says, per request, what must hold of its answer.

A connection is a short pipeline of requests drawn from a seeded grammar: request
lines (methods, unknown ones too; targets with percent-encodings, dot segments,
queries, absolute-form; HTTP/1.0 and 1.1, and broken versions), header sets (Host
missing, doubled or odd; Accept-Encoding, Range, conditionals, Connection, Expect)
and framing (none, Content-Length, chunked, both, duplicated, transfer codings the
server knows and does not know). Bodies sometimes hold a whole request of their own,
a smuggling probe: a GET for a file only such probes name (`SMUGGLE_PATH`) or for an
app path under `/hidden/`. The pipeline mixes static hits and requests for the
chained app (tests/support/digest_app.py), so that the event loop and gunicorn's
parser hand the connection to each other.

The model (`Planned`) says what must hold, per request, and `exchange` checks it:

- no 5xx, except 501 for a request with a transfer coding the server does not know;
- no byte of a canary (a file outside the root, a dotfile inside it) nor of the
  smuggling file, and no answer from the app for a `/hidden/` path;
- the answers come in order, one per request the server sees (a request hidden in a
  body is not one), none after a request that closes the connection, and each
  answer's body is whole (Content-Length honoured, chunked decoded);
- a static 200 is the file on disk once decoded by its Content-Encoding, a 206 the
  slice of the representation Content-Range names; the app's digest matches the
  method, the request id in the query and the body that was sent.

Why a plain `random.Random` and not hypothesis: the full run is 100,000 requests per
mode, and generating them must cost little next to the server's own work; every
connection draws from `Random(f"{seed}/{index}")`, so a failure names its seed and
connection index and reproduces alone.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import shutil
import socket
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import brotli
import zstandard

from servestatic.fronts.asgifront import DISCARDED_BODY
from servestatic.site.manifest import load as load_manifest
from tests.support.cli import compress
from tests.support.site import copy_site

CANARY = b"CANARY-4b1e97-grammar-never-served"
SMUGGLE_MARKER = b"SMUGGLED-ANSWER-93f2aa"
SMUGGLE_PATH = "/smuggled-probe.txt"
HIDDEN_APP = "/hidden/"
DIGEST_APP = "tests.support.digest_app:application"
HEALTH = "/healthz"
# Modes: static hits answered in the event loop, or everything through gunicorn's ASGI protocol.
MODES: dict[str, dict[str, str]] = {"loop": {}, "app": {"SERVESTATIC_FAST_PATH": "false"}}
SUFFIXES = {"br": ".br", "gzip": ".gz", "zstd": ".zst"}
READ_TIMEOUT = 15.0


# --- the site: the example site plus canaries, the smuggling file and larger files


@dataclass
class GrammarSite:
    root: Path
    # URL path (as sent, percent-encoded) -> {coding: bytes of that representation}
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)
    etags: dict[str, list[str]] = field(default_factory=dict)
    directories: list[str] = field(default_factory=list)


def prepare_site(base: Path, huge_mib: int = 0) -> GrammarSite:
    """A compressed copy of the example site with what the grammar needs, under base.

    Canaries: `outside/canary.txt` beside the root and `.canary` inside it, which the
    server must never serve; `SMUGGLE_PATH`, a real file that only requests hidden in
    bodies ask for; a 60 KiB and a 300 KiB file so that both of the loop's ways of
    sending a body (one write, sendfile) are in the mix; with `huge_mib`, `/img/huge.bin`
    of that size, long enough in flight for a worker to die in the middle of it.
    """
    root = base / "site"
    copy_site(root)
    (base / "outside").mkdir(exist_ok=True)
    (base / "outside" / "canary.txt").write_bytes(CANARY * 3)
    (root / ".canary").write_bytes(CANARY * 3)
    (root / SMUGGLE_PATH.lstrip("/")).write_bytes(SMUGGLE_MARKER * 4 + b"\n")
    pattern = random.Random(7)
    (root / "data" / "medium.txt").write_bytes(
        b"".join(b"line %06d %s\n" % (n, pattern.choice([b"alpha", b"beta", b"gamma"]) * 3)
                 for n in range(2300)))
    (root / "img" / "large.bin").write_bytes(pattern.randbytes(300 * 1024))
    if huge_mib:
        (root / "img" / "huge.bin").write_bytes(pattern.randbytes(huge_mib * 1024 * 1024))
    compress(root)
    site = GrammarSite(root)
    for relative, entry in load_manifest(root).files.items():
        if "/" + relative == SMUGGLE_PATH:
            continue
        representations = {"identity": (root / relative).read_bytes()}
        etags = [f'"{entry.hash}"']
        for coding, variant in entry.variants.items():
            representations[coding] = (root / (relative + SUFFIXES[coding])).read_bytes()
            etags.append(f'"{variant.hash}"')
        url = quote("/" + relative, safe="/-._~!$&'()*+,;=:@")
        site.files[url] = representations
        site.etags[url] = etags
        if relative.endswith("/index.html"):
            site.directories.append("/" + relative[: -len("index.html")])
    return site


def cleanup_site(base: Path) -> None:
    shutil.rmtree(base, ignore_errors=True)


# --- the model


@dataclass
class Planned:
    """One request as sent, and what its answer must be."""

    raw: bytes
    label: str  # the grammar's branch, for the summary
    method: str
    allowed: frozenset[int]
    # Whether the server must close after answering (True), may (None), or must not (False).
    closes: bool | None
    kind: str = "other"  # static | app | other
    url: str = ""  # static: the file's URL path
    rid: str = ""  # app: the request id the digest must carry in its query
    body: bytes = b""  # app: the body as the app must get it (chunks decoded)
    accepted_codings: frozenset[str] = frozenset({"identity"})
    unknown_coding: bool = False
    # A body that servestatic itself answers (a static path, a 405) and does not read:
    # chunked, or over its DISCARDED_BODY; the answer then says Connection: close.
    body_not_read: bool = False


@dataclass
class Result:
    """What one connection showed: answers by status, and every violation."""

    answers: Counter[int] = field(default_factory=Counter)
    labels: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    requests: int = 0
    # What the server does that is odd but no violation of the model, counted.
    notes: Counter[str] = field(default_factory=Counter)


ACCEPT_ENCODINGS = ["br, gzip", "gzip", "br", "zstd", "identity", "*", "gzip;q=0, br", "br;q=0.5, gzip;q=1",
                    "gzip, deflate, br, zstd", "", "x-unknown"]
METHODS_WITH_BODY = ["POST", "PUT", "PATCH", "DELETE", "FROB", "PROPFIND", "M-SEARCH"]
FILLER_NAMES = ["X-Request-Id", "User-Agent", "Accept", "Cookie", "X-Forwarded-For", "Referer",
                "Cache-Control"]
FILLER_VALUES = ["a", "x y z", "é".encode().decode("latin-1"), "1, 2"]


def accepted(header: str | None) -> frozenset[str]:
    """The codings an Accept-Encoding value allows (q=0 excluded; `*` allows all)."""
    if header is None:
        return frozenset({"identity", "br", "gzip", "zstd"})  # none sent: any coding is acceptable
    codings = {"identity"}
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        name = name.strip().lower()
        if params.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            codings.discard(name)
            continue
        if name == "*":
            codings |= {"br", "gzip", "zstd"}
        elif name:
            codings.add(name)
    return frozenset(codings | {"identity"})


class Grammar:
    """Draws connections (lists of Planned) from one seeded Random."""

    def __init__(self, site: GrammarSite, rng: random.Random, prefix: str):
        self.site = site
        self.rng = rng
        self.prefix = prefix  # makes request ids unique across connections
        self.count = 0
        self.static_urls = sorted(site.files)

    # helpers

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def rid(self) -> str:
        self.count += 1
        return f"{self.prefix}-{self.count}"

    def body(self) -> bytes:
        """Request bodies: mostly small, some around the bridge's 64 KiB buffered limit,
        some with a whole request inside (a smuggling probe)."""
        rng = self.rng
        size = rng.choice([0, 1, 5, 17, 100, 1000, 4096, 65535, 65536, 65537, 150_000]
                          if rng.random() < 0.15 else [0, 3, 10, 64, 200, 777, 2048])
        data = bytes(rng.getrandbits(8) for _ in range(min(size, 64))) * (size // 64 + 1)
        data = data[:size]
        if self.chance(0.3):
            data = self.hidden_request() + data if self.chance(0.5) else data + self.hidden_request()
        return data

    def hidden_request(self) -> bytes:
        """A complete request, for a body: answering it would be a desync."""
        rng = self.rng
        target = SMUGGLE_PATH if rng.random() < 0.5 else f"{HIDDEN_APP}{self.rid()}"
        head = f"GET {target} HTTP/1.1\r\nHost: smuggled\r\n"
        if rng.random() < 0.3:
            return f"{head}Content-Length: 0\r\n\r\n".encode()
        if rng.random() < 0.3:
            return b"0\r\n\r\n" + f"{head}\r\n".encode()  # what a TE.CL desync would leave behind
        return f"{head}\r\n".encode()

    def chunked(self, body: bytes) -> bytes:
        rng = self.rng
        out, at = [], 0
        while at < len(body):
            size = min(len(body) - at, rng.choice([1, 7, 100, 4096, 70_000]))
            extension = ";ext=1" if rng.random() < 0.05 else ""
            hexsize = f"{size:x}" if rng.random() < 0.9 else f"{size:X}"
            out.append(f"{hexsize}{extension}\r\n".encode() + body[at:at + size] + b"\r\n")
            at += size
        trailer = "X-Trailer: yes\r\n" if rng.random() < 0.05 else ""
        out.append(f"0\r\n{trailer}\r\n".encode())
        return b"".join(out)

    # one request

    def request(self) -> Planned:
        roll = self.rng.random()
        if roll < 0.45:
            return self.static_request()
        if roll < 0.85:
            return self.app_request()
        if roll < 0.93:
            return self.odd_target_request()
        return self.broken_request()

    def head_lines(self, version: str, extra: list[tuple[str, str]]) -> tuple[list[str], bool | None, str]:
        """Host, Connection, fillers; returns (lines, whether the server closes after, label)."""
        rng = self.rng
        lines: list[str] = []
        host_roll = rng.random()
        label = ""
        closes: bool | None = version == "1.0"
        if host_roll < 0.85:
            lines.append(rng.choice(["Host: grammar", "Host: 127.0.0.1:8000", "host: example.com",
                                     "Host: [::1]:80", "HOST: a.b.c"]))
        elif host_roll < 0.95 or version == "1.0":
            label = "no-host"  # HTTP/1.1 without Host: served (gunicorn is lenient) or 400
        else:
            lines += ["Host: one", "Host: two"]
            label = "double-host"
        for _ in range(rng.choice([0, 0, 1, 2, 4])):
            lines.append(f"{rng.choice(FILLER_NAMES)}: {rng.choice(FILLER_VALUES)}")
        lines += [f"{name}: {value}" for name, value in extra]
        connection = rng.random()
        if connection < 0.1:
            lines.append("Connection: close")
            closes = True
        elif connection < 0.2:
            lines.append(rng.choice(["Connection: keep-alive", "Connection: Keep-Alive"]))
            closes = False
        rng.shuffle(lines)
        if label == "double-host":
            closes = True
        return lines, closes, label

    def static_request(self) -> Planned:
        rng = self.rng
        url = rng.choice(self.static_urls)
        method = rng.choice(["GET"] * 6 + ["HEAD"] * 2 + ["POST", "OPTIONS", "DELETE", "FROB"])
        version = "1.1" if rng.random() < 0.85 else "1.0"
        target = url
        if rng.random() < 0.2:
            target += rng.choice(["?v=1", "?", "?a=b&c=%20", f"?rid={self.rid()}"])
        if rng.random() < 0.1:
            target = "http://grammar" + target  # absolute-form
        extra: list[tuple[str, str]] = []
        encoding = None
        if rng.random() < 0.7:
            encoding = rng.choice(ACCEPT_ENCODINGS)
            extra.append(("Accept-Encoding", encoding))
        allowed = {200}
        ranged = rng.random() < 0.15
        if ranged:
            extra.append(("Range", rng.choice(["bytes=0-99", "bytes=-10", "bytes=5-", "bytes=0-0",
                                               "bytes=9999999-", "bytes=abc", "bytes=0-1,3-4"])))
            allowed |= {206, 416}
        if rng.random() < 0.15:
            etag = rng.choice([*self.site.etags[url], '"nope"', "*", 'W/"nope"'])
            extra.append((rng.choice(["If-None-Match", "If-Match"]), etag))
            allowed |= {304, 412}
        if rng.random() < 0.05:
            extra.append(("If-Modified-Since", rng.choice(["Sat, 01 Jan 2000 00:00:00 GMT",
                                                           "Fri, 01 Jan 2100 00:00:00 GMT", "garbage"])))
            allowed |= {304}
        label = "static"
        body = b""
        framing = rng.random()
        if method != "GET" or framing < 0.1:
            if framing < 0.05 and method in ("GET", "HEAD", "POST", "DELETE"):
                body = self.body()
                if version == "1.1" and rng.random() < 0.5:
                    extra.append(("Transfer-Encoding", "chunked"))
                    label += "+chunked"
                else:
                    extra.append(("Content-Length", str(len(body))))
                    label += "+body"
            elif rng.random() < 0.3:
                extra.append(("Content-Length", "0"))
        lines, closes, host_label = self.head_lines(version, extra)
        if host_label == "double-host":
            allowed = {400}
        elif method not in ("GET", "HEAD"):
            allowed = {405}
        elif host_label == "no-host" and version == "1.1":
            allowed |= {400}
            closes = closes if closes else None
        raw_body = self.chunked(body) if "+chunked" in label else body
        # servestatic answers first, then reads and drops a body of at most DISCARDED_BODY
        # with a Content-Length (the connection goes on); a chunked or larger one it does
        # not read, and its answer says Connection: close.
        not_read = "+chunked" in label or len(body) > DISCARDED_BODY
        if not_read and host_label != "double-host":
            closes = True
        raw = f"{method} {target} HTTP/{version}\r\n".encode() + "".join(
            line + "\r\n" for line in lines).encode("latin-1") + b"\r\n" + raw_body
        return Planned(raw, f"{label}:{method}", method, frozenset(allowed), closes, kind="static", url=url,
                       accepted_codings=accepted(encoding), body_not_read=not_read)

    def app_path(self) -> tuple[str, str]:
        """(target, what the app must see as the query's request id)."""
        rng = self.rng
        rid = self.rid()
        path = rng.choice(["/api", "/api/orders", "/api/x%20y", "/api/caf%C3%A9", "/api/a%2Fb", "/api/./x",
                           "/api/b/../c", "/nowhere.css", "/docs/missing.html", "/api/" + "a" * 200,
                           "/index.htm", "/css/", "/api;p=1"])
        return f"{path}?rid={rid}" + rng.choice(["", "&x=1", "&q=%E2%9C%93", "&&"]), rid

    def app_request(self) -> Planned:
        rng = self.rng
        target, rid = self.app_path()
        method = rng.choice(["GET"] * 4 + ["HEAD"] + METHODS_WITH_BODY * 2 + ["OPTIONS"])
        version = "1.1" if rng.random() < 0.88 else "1.0"
        if rng.random() < 0.05:
            target = "http://grammar" + target
        extra: list[tuple[str, str]] = []
        label = "app"
        body = b""
        raw_body = b""
        allowed = {200}
        closes_after: bool | None = None
        unknown = False
        if method in METHODS_WITH_BODY or rng.random() < 0.1:
            body = self.body()
            framing = rng.random()
            if version == "1.1" and framing < 0.35:
                raw_body = self.chunked(body)
                extra.append(("Transfer-Encoding", rng.choice(["chunked", "chunked", "Chunked", " chunked"])))
                label += "+chunked"
            elif version == "1.1" and framing < 0.4:
                raw_body = self.chunked(body)
                extra.append(("Transfer-Encoding", rng.choice(["gzip, chunked", "deflate, chunked"])))
                label += "+gzip-chunked"  # a known coding: accepted (the app gets it as sent)
                # gunicorn's parser marks the request "close" for it, unless a Connection:
                # keep-alive comes after: either way is fine, the answer says which.
                closes_after = None
            elif framing < 0.46:
                coding = rng.choice(["foo", "x-custom, chunked", "chunked, br", "zstd, chunked", "gzip, foo"])
                extra.append(("Transfer-Encoding", coding))
                raw_body = self.chunked(body)
                label += "+unknown-te"
                unknown = True
                allowed = {501}
                closes_after = True
            elif body or rng.random() < 0.5:
                raw_body = body
                extra.append(("Content-Length", str(len(body))))
                label += "+cl"
            if body and "Content-Length" in dict(extra) and version == "1.1" and rng.random() < 0.1:
                extra.append(("Expect", "100-continue"))
                label += "+expect"
        if not raw_body and not any(name == "Transfer-Encoding" for name, _ in extra):
            body = b""
        lines, closes, host_label = self.head_lines(version, extra)
        if host_label == "double-host":
            # Whichever of the two faults gunicorn's parser meets first decides.
            allowed = {400, 501} if unknown else {400}
            closes = True
        elif closes_after:
            closes = True
        elif "+gzip-chunked" in label and not closes:
            closes = None
        raw = f"{method} {target} HTTP/{version}\r\n".encode() + "".join(
            line + "\r\n" for line in lines).encode("latin-1") + b"\r\n" + raw_body
        return Planned(raw, f"{label}:{method}", method, frozenset(allowed), closes, kind="app", rid=rid,
                       body=body, unknown_coding=unknown)

    def odd_target_request(self) -> Planned:
        """Targets that must never reach a file outside the table: traversal in every
        spelling, the canaries, dotfiles, directories, the health path, `*`."""
        rng = self.rng
        target = rng.choice([
            "/../outside/canary.txt", "/%2e%2e/outside/canary.txt", "/..%2Foutside%2Fcanary.txt",
            "/css/../../outside/canary.txt", "/.canary", "/%2ecanary", "/css/..%2F.canary", "//.canary",
            "/.env", "/.servestatic-manifest.json", "/css/print.css.br", "/css/print.css/",
            "/img/large.bin%00",
            "/\\..\\outside\\canary.txt", "/..;/outside/canary.txt", HEALTH, *self.site.directories,
            *(d.rstrip("/") for d in self.site.directories if d != "/"), "*", "/index.html?x=../.canary",
        ])
        method = rng.choice(["GET", "GET", "HEAD", "POST", "OPTIONS"])
        if target == "*" and method != "OPTIONS":
            target = "/"
        lines, closes, host_label = self.head_lines("1.1", [("Accept-Encoding", "br, gzip")]
                                                    if rng.random() < 0.5 else [])
        body = b""
        if method == "POST":
            body = b"x" * rng.choice([0, 10])
            lines.append(f"Content-Length: {len(body)}")
        allowed = frozenset({200, 301, 302, 307, 308, 400, 404, 405})
        if host_label == "double-host":
            allowed, closes = frozenset({400}), True
        raw = f"{method} {target} HTTP/1.1\r\n".encode() + "".join(
            line + "\r\n" for line in lines).encode("latin-1") + b"\r\n" + body
        # A 400 here (a target gunicorn refuses) closes; a redirect or a 404 does not.
        return Planned(raw, "odd-target", method, allowed, closes if closes else None)

    def broken_request(self) -> Planned:
        """Framing and request lines a server must refuse (400), each a known desync
        vector, with a request behind it that must then never be answered."""
        rng = self.rng
        hidden = self.hidden_request()
        chunk = b"0\r\n\r\n" + hidden
        case = rng.choice(["cl+te", "te+cl", "cl-dup", "cl-dup-same", "cl-sign", "cl-list",
                           "te-dup-chunked", "te-not-last", "te-identity", "te-http10", "bad-version",
                           "bad-method", "space-colon", "obs-fold", "bare-lf", "bad-chunk-size",
                           "chunk-no-crlf", "lowercase-method", "te-space-name"])
        head = "POST /api?rid=broken HTTP/1.1\r\nHost: grammar\r\n"
        te, cl = "Transfer-Encoding", "Content-Length"
        size, chunk_size = len(hidden), len(chunk)
        raw = {
            "cl+te": f"{head}{cl}: {chunk_size}\r\n{te}: chunked\r\n\r\n".encode() + chunk,
            "te+cl": f"{head}{te}: chunked\r\n{cl}: {chunk_size}\r\n\r\n".encode() + chunk,
            "cl-dup": f"{head}{cl}: 0\r\n{cl}: {size}\r\n\r\n".encode() + hidden,
            "cl-dup-same": f"{head}{cl}: {size}\r\n{cl}: {size}\r\n\r\n".encode() + hidden,
            "cl-sign": f"{head}{cl}: +{size}\r\n\r\n".encode() + hidden,
            "cl-list": f"{head}{cl}: {size}, {size}\r\n\r\n".encode() + hidden,
            "te-dup-chunked": f"{head}{te}: chunked\r\n{te}: chunked\r\n\r\n".encode() + chunk,
            "te-not-last": f"{head}{te}: chunked, gzip\r\n\r\n".encode() + chunk,
            "te-identity": f"{head}{te}: identity\r\n{cl}: 0\r\n\r\n".encode() + hidden,
            "te-http10": f"POST /api?rid=broken HTTP/1.0\r\n{te}: chunked\r\n\r\n".encode() + chunk,
            "bad-version": b"GET /robots.txt HTTP/1.2\r\nHost: grammar\r\n\r\n" + hidden,
            "bad-method": b"G<T /robots.txt HTTP/1.1\r\nHost: grammar\r\n\r\n" + hidden,
            "space-colon": f"{head}{cl} : {size}\r\n\r\n".encode() + hidden,
            "obs-fold": f"{head}X-A: b\r\n  {cl}: {size}\r\n\r\n".encode() + hidden,
            "bare-lf": f"POST /api?rid=broken HTTP/1.1\nHost: grammar\n{cl}: {size}\n\n".encode() + hidden,
            "bad-chunk-size": f"{head}{te}: chunked\r\n\r\n".encode() + b"zz\r\n" + chunk,
            "chunk-no-crlf": f"{head}{te}: chunked\r\n\r\n".encode() + b"3\r\nabcd\r\n" + chunk,
            "lowercase-method": b"get /robots.txt HTTP/1.1\r\nHost: grammar\r\n\r\n" + hidden,
            "te-space-name": f"{head}{te} : chunked\r\n\r\n".encode() + chunk,
        }[case]
        return Planned(raw, f"broken:{case}", "POST", frozenset({400}), True)

    def connection(self) -> list[Planned]:
        """A pipeline of 1 to 8 requests (a single request half the time)."""
        rng = self.rng
        size = 1 if rng.random() < 0.5 else rng.randint(2, 8)
        return [self.request() for _ in range(size)]


# --- reading answers


@dataclass
class Answer:
    version: bytes
    status: int
    headers: dict[str, str]
    body: bytes
    complete: bool = True  # the body arrived whole


class Reader:
    """Reads HTTP/1.x answers from a socket, by their own framing."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = b""
        self.eof = False
        self.reset = False  # the end came as a reset, which can discard answers not yet read

    def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            data = self.sock.recv(1 << 18)
        except ConnectionResetError:
            self.reset = True
            data = b""
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    def at_eof(self) -> bool:
        """Whether the server closed with nothing more: reads until it does or sends bytes."""
        while not self.buffer:
            if not self._fill():
                return True
        return False

    def _until(self, marker: bytes) -> bytes | None:
        while True:
            at = self.buffer.find(marker)
            if at >= 0:
                data, self.buffer = self.buffer[:at], self.buffer[at + len(marker):]
                return data
            if not self._fill():
                return None

    def exactly(self, count: int) -> bytes | None:
        while len(self.buffer) < count:
            if not self._fill():
                return None
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def answer(self, method: str) -> Answer | None:
        """The next final answer (1xx skipped), or None when the connection ends before a head."""
        while True:
            head = self._until(b"\r\n\r\n")
            if head is None:
                return None
            status_line, *lines = head.decode("latin-1").split("\r\n")
            version, _, rest = status_line.partition(" ")
            status = int(rest[:3])
            headers: dict[str, str] = {}
            for line in lines:
                name, _, value = line.partition(":")
                key = name.strip().lower()
                headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
            if 100 <= status < 200:
                continue
            break
        if method == "HEAD" or status in (204, 304):
            return Answer(version.encode(), status, headers, b"")
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size_line = self._until(b"\r\n")
                if size_line is None:
                    return Answer(version.encode(), status, headers, b"".join(parts), complete=False)
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    self._until(b"\r\n")  # no trailers from these servers
                    return Answer(version.encode(), status, headers, b"".join(parts))
                data = self.exactly(size + 2)
                if data is None:
                    return Answer(version.encode(), status, headers, b"".join(parts), complete=False)
                parts.append(data[:-2])
        if "content-length" in headers:
            length = int(headers["content-length"])
            data = self.exactly(length)
            if data is None:
                return Answer(version.encode(), status, headers, self.buffer, complete=False)
            return Answer(version.encode(), status, headers, data)
        while self._fill():  # delimited by the end of the connection
            pass
        body, self.buffer = self.buffer, b""
        return Answer(version.encode(), status, headers, body)


def decode(body: bytes, coding: str) -> bytes:
    if coding == "br":
        return brotli.decompress(body)
    if coding == "gzip":
        return gzip.decompress(body)
    if coding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(body)
    if coding == "deflate":
        return zlib.decompress(body)
    return body


def closes_connection(answer: Answer, request: Planned) -> bool:
    """Whether the server ends the connection after this answer.

    An HTTP/1.0 answer without a keep-alive token means the end, except that
    gunicorn's own answers to an HTTP/1.0 request that asked for keep-alive leave
    the token out and keep the connection (the loop's answers say it): there,
    the request's own ask decides.
    """
    tokens = {token.strip().lower() for token in answer.headers.get("connection", "").split(",")}
    if "close" in tokens:
        return True
    if "keep-alive" in tokens or answer.version != b"HTTP/1.0":
        return False
    return request.closes is not False


def check(planned: Planned, answer: Answer, site: GrammarSite) -> list[str]:
    """The model's verdict on one answer: a list of what is wrong with it."""
    problems: list[str] = []
    status = answer.status
    if CANARY[:16] in answer.body:
        problems.append("a canary's bytes in the answer")
    if SMUGGLE_MARKER[:12] in answer.body:
        problems.append("the smuggling probe's file in the answer: a request read out of a body")
    if b'"path": "/hidden/' in answer.body:
        problems.append("the app answered a request hidden in a body")
    if not answer.complete:
        problems.append(f"{status} with a cut body ({len(answer.body)} bytes, headers {answer.headers})")
        return problems
    if status >= 500 and not (status == 501 and planned.unknown_coding):
        problems.append(f"{status}: a 5xx")
    if status not in planned.allowed:
        problems.append(f"status {status}, the model allows {sorted(planned.allowed)}")
        return problems
    coding = answer.headers.get("content-encoding", "identity").lower()
    if planned.kind == "static" and planned.method == "GET" and status in (200, 206):
        representations = site.files[planned.url]
        if coding not in representations:
            problems.append(f"Content-Encoding {coding}, not a representation on disk")
        elif coding not in planned.accepted_codings:
            problems.append(f"Content-Encoding {coding}, not accepted ({sorted(planned.accepted_codings)})")
        elif status == 200:
            try:
                same = decode(answer.body, coding) == representations["identity"]
            except Exception as error:  # any decoding failure is the finding
                problems.append(f"200 body does not decode as {coding}: {error!r}")
            else:
                if not same:
                    problems.append(f"200 body ({len(answer.body)} bytes, {coding}) is not {planned.url}")
        else:
            content_range = answer.headers.get("content-range", "")
            if not content_range.startswith("bytes "):
                problems.append(f"206 without a byte Content-Range: {content_range!r}")
            else:
                span, _, total = content_range[6:].partition("/")
                first, _, last = span.partition("-")
                whole = representations[coding]
                if int(total) != len(whole) or answer.body != whole[int(first):int(last) + 1]:
                    problems.append(f"206 body is not {content_range} of {planned.url} ({coding})")
    elif planned.kind == "app" and status == 200 and planned.method != "HEAD":
        try:
            digest = json.loads(answer.body)
        except ValueError:
            problems.append(f"the app's answer is not its JSON: {answer.body[:120]!r}")
            return problems
        wanted = {"method": planned.method, "length": len(planned.body),
                  "sha256": hashlib.sha256(planned.body).hexdigest()}
        got = {key: digest.get(key) for key in wanted}
        if got != wanted:
            problems.append(f"the app got {got}, the client sent {wanted}")
        if f"rid={planned.rid}" not in digest.get("query", "").split("&"):
            problems.append(f"an answer for another request: query {digest.get('query')!r}, "
                            f"expected rid={planned.rid}")
    return problems


def unanswered_excuse(planned: list[Planned], index: int, reader: Reader) -> str:
    """Why the connection may end before request `index` is answered, if the model
    knows a reason that is no violation (the summary counts them); else "".

    - The request is one the server refuses (400 and close) with more requests behind
      it: the server closes with those unread, the kernel answers them with a reset,
      and a reset can discard the refusal before the client has read it (no lingering
      close).
    - The request before had a body that servestatic answered itself and did not read
      (chunked, or over DISCARDED_BODY): its answer says Connection: close.
    """
    if index < len(planned):
        request = planned[index]
        if request.closes and min(request.allowed) >= 400 and reader.reset:
            return "a refusal lost to a reset (the server closed with requests unread)"
    if index > 0 and planned[index - 1].body_not_read:
        return "closed after answering a request whose body it did not read"
    return ""


def send_in_pieces(sock: socket.socket, data: bytes, rng: random.Random) -> None:
    """The pipeline in one write, or cut at random places (heads and bodies split)."""
    if rng.random() < 0.7:
        sock.sendall(data)
        return
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 6))))
    start = 0
    for cut in [*cuts, len(data)]:
        sock.sendall(data[start:cut])
        start = cut


def exchange(port: int, planned: list[Planned], site: GrammarSite, rng: random.Random,
             result: Result) -> None:
    """Send one pipeline, read every answer, and add what the model says to `result`.

    The requests go out first (in a thread: a large pipeline can fill the socket
    buffers before the server has read it all), then answers are read in order. After
    a request that closes the connection nothing more may come; after the last one
    the client shuts its side, and anything but the end of the connection is an
    answer to a request the server should never have seen.
    """
    data = b"".join(request.raw for request in planned)
    with socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        send_error: list[BaseException] = []

        def sender() -> None:
            try:
                send_in_pieces(sock, data, rng)
            except OSError as error:  # the server closed early (after a 400): fine if the model says so
                send_error.append(error)

        writer = threading.Thread(target=sender, daemon=True)
        writer.start()
        reader = Reader(sock)
        where = f"[{len(planned)} requests]"
        try:
            for index, request in enumerate(planned):
                result.labels[request.label] += 1
                result.requests += 1
                answer = reader.answer(request.method)
                if answer is None:
                    excuse = unanswered_excuse(planned, index, reader)
                    if excuse:
                        result.notes[excuse] += 1
                    else:
                        result.violations.append(f"{where} request {index} ({request.label}) got no answer "
                                                 f"(reset: {reader.reset}): {request.raw[:160]!r}")
                    return
                result.answers[answer.status] += 1
                for problem in check(request, answer, site):
                    result.violations.append(f"{where} request {index} ({request.label}): {problem}: "
                                             f"{request.raw[:200]!r}")
                closed = closes_connection(answer, request)
                if answer.version == b"HTTP/1.0" and not closed and "connection" not in answer.headers:
                    result.notes["HTTP/1.0 keep-alive answered without Connection: keep-alive"] += 1
                # gunicorn's error answers carry their body even for HEAD; the end follows.
                if (closed and request.method == "HEAD" and answer.status >= 400
                        and reader.exactly(int(answer.headers.get("content-length", "0")))):
                    result.notes["error answer to HEAD with a body"] += 1
                if request.closes is True and not closed:
                    result.violations.append(f"{where} request {index} ({request.label}): {answer.status} "
                                             f"without Connection: close, the model expects the end")
                if request.closes is False and closed and answer.status < 400:
                    result.violations.append(f"{where} request {index} ({request.label}): closed after "
                                             f"{answer.status}, the model expects keep-alive")
                if closed:
                    break
            else:
                writer.join(READ_TIMEOUT)
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:  # ENOTCONN: the server has already closed (and reset) its side
                    excuse = unanswered_excuse(planned, len(planned), reader)
                    if not excuse:
                        raise
                    result.notes[excuse] += 1
                    return
            if not reader.at_eof():
                result.violations.append(f"{where}: bytes after the last answer: {reader.buffer[:200]!r}")
        except TimeoutError:
            result.violations.append(f"{where}: no answer within {READ_TIMEOUT} s: {data[:300]!r}")
        except OSError as error:
            result.violations.append(f"{where}: {type(error).__name__}: {error}: {data[:300]!r}")
        finally:
            writer.join(READ_TIMEOUT)


# --- a run


@dataclass
class Summary:
    mode: str
    seed: int
    requests: int = 0
    connections: int = 0
    seconds: float = 0.0
    answers: Counter[int] = field(default_factory=Counter)
    labels: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    notes: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode, "seed": self.seed, "requests": self.requests, "connections": self.connections,
            "seconds": round(self.seconds, 1),
            "requests_per_second": round(self.requests / self.seconds) if self.seconds else 0,
            "statuses": dict(sorted(self.answers.items())),
            "violations": len(self.violations), "first_violations": self.violations[:10],
            "branches": dict(sorted(self.labels.items())), "notes": dict(self.notes),
        }


def run(port: int, site: GrammarSite, mode: str, seed: int, requests: int, threads: int = 6,
        progress: Callable[[int], None] | None = None) -> Summary:
    """Send at least `requests` grammar requests over fresh connections from `threads`
    client threads; connection i is drawn from Random(f"{seed}/{i}")."""
    summary = Summary(mode, seed)
    lock = threading.Lock()
    next_index = [0]

    def worker() -> None:
        while True:
            with lock:
                if summary.requests >= requests or len(summary.violations) > 50:
                    return
                index = next_index[0]
                next_index[0] += 1
            rng = random.Random(f"{seed}/{index}")
            planned = Grammar(site, rng, f"s{seed}c{index}").connection()
            result = Result()
            exchange(port, planned, site, rng, result)
            with lock:
                summary.requests += result.requests
                summary.connections += 1
                summary.answers.update(result.answers)
                summary.notes.update(result.notes)
                summary.labels.update(label.split(":")[0] for label in result.labels.elements())
                summary.violations += [f"seed {seed} connection {index}: {v}" for v in result.violations]
                if progress is not None:
                    progress(summary.requests)

    started = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    summary.seconds = time.monotonic() - started
    return summary


def replay(port: int, site: GrammarSite, seed: int, index: int) -> Result:
    """One connection of a run again, by its seed and index (what a failure names)."""
    rng = random.Random(f"{seed}/{index}")
    planned = Grammar(site, rng, f"s{seed}c{index}").connection()
    result = Result()
    exchange(port, planned, site, rng, result)
    return result
