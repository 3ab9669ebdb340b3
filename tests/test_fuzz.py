"""Property-based fuzzing of a running `servestatic serve` with hostile requests.

hypothesis generates request paths (traversal in every encoding we know of,
overlong UTF-8, NUL, backslashes, Windows drive paths, dotfiles, the manifest)
and Range, If-None-Match, If-Modified-Since and Accept-Encoding headers. The
requests go over keep-alive connections from a raw-socket client, so that no
HTTP library normalises a path before the server sees it.

For every answer: no 5xx; no byte of a canary planted outside the root, in a
dotfile, in a hidden directory, or in the manifest; every 200 body, decoded by
its Content-Encoding, is exactly a file of the site; every 206 body is exactly
the requested slice of the representation on disk.
"""

from __future__ import annotations

import gzip
import socket
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote_to_bytes

import brotli
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from servestatic.site.manifest import load as load_manifest
from tests.support.cli import compress
from tests.support.server import ServerProcess
from tests.support.site import copy_site

CANARY = b"CANARY-b7e3a9-never-served"
# Only the manifest holds this (it is a file name, never file content).
MANIFEST_MARKER = "manifest-marker-5c0ffee"
CASES = {"paths": 2000, "headers": 1500, "mixed": 500}


@dataclass
class Site:
    root: Path
    # URL path -> {coding: bytes of that representation on disk}
    representations: dict[str, dict[str, bytes]] = field(default_factory=dict)
    # Every original file's bytes, for answers to paths we cannot predict (404 page, index).
    originals: set[bytes] = field(default_factory=set)
    etags: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def fuzz_site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    base = tmp_path_factory.mktemp("fuzz")
    root = base / "site"
    copy_site(root)
    # Canaries: beside the root, in a dotfile, in a hidden directory, behind a link out.
    (base / "secret.txt").write_bytes(CANARY)
    (base / "site-evil").mkdir()
    (base / "site-evil" / "secret.txt").write_bytes(CANARY)
    (root / ".secret").write_bytes(CANARY)
    (root / ".env").write_bytes(CANARY)
    (root / ".git").mkdir()
    (root / ".git" / "config").write_bytes(CANARY * 40)
    (root / "css" / ".hidden.css").write_bytes(CANARY * 40)
    (root / "outside-link.txt").symlink_to(base / "secret.txt")
    (root / f"{MANIFEST_MARKER}.txt").write_bytes(b"a file whose name only the manifest carries\n")
    compress(root)
    site = Site(root)
    manifest = load_manifest(root)
    suffixes = {"br": ".br", "gzip": ".gz", "zstd": ".zst"}
    for relative, entry in manifest.files.items():
        original = (root / relative).read_bytes()
        assert CANARY not in original
        site.originals.add(original)
        variants = {"identity": original}
        for coding, variant in entry.variants.items():
            variants[coding] = (root / (relative + suffixes[coding])).read_bytes()
            site.etags.append(f'"{variant.hash}"')
        site.representations["/" + relative] = variants
        site.etags.append(f'"{entry.hash}"')
    assert "/.env" not in site.representations and "/.secret" not in site.representations
    return site


@pytest.fixture(scope="module")
def server(fuzz_site: Site) -> Iterator[ServerProcess]:
    with ServerProcess(fuzz_site.root, workers=2) as process:
        yield process
    assert process.returncode == 0, process.log()[-3000:]


# --- a raw HTTP/1.1 client over keep-alive connections


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class RawClient:
    """Sends bytes as given; reconnects when the server closes the connection."""

    def __init__(self, port: int):
        self.port = port
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.requests = 0

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self.buffer = b""

    def _recv(self) -> bytes:
        assert self.sock is not None
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError("closed")
        return data

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            self.buffer += self._recv()
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def _read_exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            self.buffer += self._recv()
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def request(self, method: str, target: bytes, headers: list[tuple[str, str]]) -> Answer:
        lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: fuzz"]
        lines += [f"{name}: {value}".encode("latin-1") for name, value in headers]
        raw = b"\r\n".join(lines) + b"\r\n\r\n"
        for attempt in range(2):
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=15)
            try:
                self.sock.sendall(raw)
                answer = self._read_answer(method)
                self.requests += 1
                return answer
            except (ConnectionError, BrokenPipeError) as error:
                # A kept-alive connection the server closed first: one retry on a new one.
                self.close()
                if attempt:
                    raise AssertionError(f"no answer to {raw[:200]!r}: {error}") from error
        raise AssertionError("unreachable")

    def _read_answer(self, method: str) -> Answer:
        head = self._read_until(b"\r\n\r\n").decode("latin-1")
        status_line, *header_lines = head.split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "content-length" in headers:
            body = self._read_exactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._read_until(b"\r\n").split(b";")[0], 16)
                body += self._read_exactly(size)
                self._read_until(b"\r\n")
                if size == 0:
                    break
        else:  # delimited by close
            try:
                while True:
                    self.buffer += self._recv()
            except ConnectionError:
                pass
            body, self.buffer = self.buffer, b""
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Answer(status, headers, body)


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[RawClient]:
    raw = RawClient(server.port)
    yield raw
    print(f"\nfuzz: {raw.requests} requests answered")
    raw.close()


# --- what every answer must satisfy


def decode(body: bytes, coding: str) -> bytes:
    if coding == "br":
        return brotli.decompress(body)
    if coding in ("gzip", "x-gzip"):
        return gzip.decompress(body)
    if coding == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompress(body, max_output_size=1 << 26)
    assert coding in ("", "identity"), coding
    return body


def url_path(target: bytes) -> str:
    """The file a target names: percent-decoded, UTF-8 (raw non-ASCII bytes are served too)."""
    return unquote_to_bytes(target.partition(b"?")[0]).decode("utf-8", "replace")


def check(site: Site, method: str, target: bytes, headers: list[tuple[str, str]], answer: Answer) -> None:
    context = (method, target[:300], headers, answer.status, answer.headers)
    assert answer.status < 500, context
    assert CANARY not in answer.body, context
    assert b'"generator"' not in answer.body, context  # the manifest's own key
    if MANIFEST_MARKER.encode() not in target:  # gunicorn's 400 page echoes the request line
        assert MANIFEST_MARKER.encode() not in answer.body, context
    coding = answer.headers.get("content-encoding", "")
    if answer.status == 200 and method == "GET":
        try:
            decoded = decode(answer.body, coding)
        except (OSError, EOFError, zlib.error, brotli.error) as error:
            raise AssertionError(f"undecodable {coding} body: {error}; {context}") from None
        assert CANARY not in decoded, context
        assert decoded in site.originals, context
        exact = site.representations.get(url_path(target))
        if exact is not None:
            assert decoded == exact["identity"], context
    elif answer.status == 206:
        path = url_path(target)
        assert path in site.representations, context
        representation = site.representations[path][coding or "identity"]
        unit, _, spec = answer.headers["content-range"].partition(" ")
        span, _, total = spec.partition("/")
        first, _, last = span.partition("-")
        assert unit == "bytes" and int(total) == len(representation), context
        assert answer.body == representation[int(first): int(last) + 1], context
    elif answer.status == 404 and method == "GET" and answer.body:
        assert decode(answer.body, coding) in site.originals | {b"404 Not Found\n"}, context


# --- strategies

TRAVERSALS = [
    "..", ".", "%2e%2e", "%2E%2E", ".%2e", "%2e.", "%252e%252e", "%25252e%25252e", "%c0%ae%c0%ae",
    "%c0%2e%c0%2e", "%e0%80%ae%e0%80%ae", "..%2f", "..%2F..%2F", "%2e%2e%2f", "..%5c", "..\\", "..\\..\\",
    "%2e%2e%5c", "..%255c", "%c0%af", "%c1%9c", "..%c0%af", "..%00", "%00", "%2500", ";", "..;", "~",
    "C:", "C:\\", "c:%5c", "C%3A%5C", "\\\\server\\share", "%5c%5c", "//", "/./", "/../", "/%2e/",
]
HIDDEN = [".env", ".secret", ".git", ".git/config", ".servestatic-manifest.json", "css/.hidden.css",
          ".well-known/security.txt", ".well-known/../.env", ".WELL-KNOWN", "%2eenv", "%2esecret",
          "%2egit%2fconfig", ".servestatic-manifest.json%00", f"{MANIFEST_MARKER}.txt",
          "outside-link.txt", "secret.txt", "site-evil/secret.txt", "..%2fsite-evil%2fsecret.txt"]
RAW_BYTES = st.binary(min_size=1, max_size=12).map(
    lambda data: bytes(byte for byte in data if byte not in b" \r\n#?") or b"x"
)


def percent(data: bytes) -> str:
    return "".join(f"%{byte:02x}" for byte in data)


@st.composite
def segments(draw: st.DrawFn, site: Site) -> bytes:
    choice = draw(st.integers(0, 6))
    if choice == 0:
        return draw(st.sampled_from(TRAVERSALS)).encode()
    if choice == 1:
        return draw(st.sampled_from(HIDDEN)).encode()
    if choice == 2:
        return draw(st.sampled_from(sorted(site.representations))).lstrip("/").encode()
    if choice == 3:
        return percent(draw(st.binary(min_size=1, max_size=8))).encode()
    if choice == 4:
        return draw(RAW_BYTES)
    if choice == 5:
        text = draw(st.text(min_size=1, max_size=8)).encode("utf-8", "surrogatepass")
        return bytes(byte for byte in text.replace(b" ", b"%20") if byte not in b"\r\n#?") or b"y"
    return draw(st.sampled_from(["css", "assets", "data", "img", "fonts", "index.html", "site-evil",
                                 "outside-link.txt", "r%C3%A9sum%C3%A9.txt"])).encode()


@st.composite
def targets(draw: st.DrawFn, site: Site) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind == 0:  # a real file, perhaps with a twist at the end
        path = draw(st.sampled_from(sorted(site.representations))).encode()
        return path + draw(st.sampled_from([b"", b"/", b"%00", b".br", b".gz", b"/..", b"%2f", b"?a=1"]))
    if kind == 1:  # an escape to a canary beside the root
        depth = draw(st.integers(1, 6))
        step = draw(st.sampled_from(TRAVERSALS[:22])).encode()
        sep = draw(st.sampled_from([b"/", b"%2f", b"%2F", b"\\", b"%5c", b"%252f"]))
        return b"/" + sep.join([step] * depth) + sep + b"secret.txt"
    if kind == 2:  # Windows drive and UNC paths
        return draw(st.sampled_from([b"/C:/Windows/win.ini", b"/C:\\secret.txt", b"/c:%5csecret.txt",
                                     b"/\\\\host\\share\\secret.txt", b"/%5c%5chost%5cshare",
                                     b"/C%3A%5C..%5Csecret.txt", b"C:\\secret.txt"]))
    count = draw(st.integers(1, 8))
    parts = [draw(segments(site)) for _ in range(count)]
    separator = draw(st.sampled_from([b"/", b"/", b"/", b"//", b"\\", b"%2f"]))
    path = b"/" + separator.join(parts)
    if draw(st.booleans()):
        path += b"?" + draw(st.sampled_from([b"", b"a=1", b"../../x", b"%00", b"x=%2e%2e"]))
    return path


def http_dates() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(["Thu, 01 Jan 1970 00:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT",
                         "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
                         "Sun Nov  6 08:49:37 1994", "Mon, 32 Foo 2020 25:61:61 GMT", "-1", "0",
                         "Sat, 01 Jan 2000 00:00:00 +9999", "Thu, 01 Jan 1970 00:00:00 GMT" * 20]),
        st.datetimes().map(lambda moment: moment.strftime("%a, %d %b %Y %H:%M:%S GMT")),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    )


def ranges() -> st.SearchStrategy[str]:
    number = st.integers(0, 10**20).map(str)
    spec = st.one_of(
        st.tuples(number, number).map("-".join),
        number.map(lambda n: n + "-"),
        number.map(lambda n: "-" + n),
        st.sampled_from(["-", "0-0", "-0", "0-", "1-0", "-1", "x-y", "0--1", " 0 - 1 "]),
    )
    return st.one_of(
        spec.map(lambda s: "bytes=" + s),
        st.lists(spec, min_size=2, max_size=50).map(lambda specs: "bytes=" + ",".join(specs)),
        st.integers(100, 1900).map(lambda count: "bytes=" + ",".join(["0-0"] * count)),
        st.integers(100, 1000).map(lambda count: "bytes=" + ",".join(f"{i}-{i + 1}" for i in range(count))),
        st.sampled_from(["BYTES=0-10", "bytes 0-10", "items=0-1", "bytes=0-1;x", "bytes==0-1"]),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
    )


def etag_headers(site: Site) -> st.SearchStrategy[str]:
    tag = st.one_of(st.sampled_from(site.etags), st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters='"'), max_size=24
    ).map(lambda text: f'"{text}"'))
    element = st.one_of(tag, tag.map(lambda value: "W/" + value), st.just("*"), st.just('W/""'))
    return st.one_of(
        st.lists(element, min_size=1, max_size=20).map(", ".join),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
        st.integers(200, 800).map(lambda count: ",".join(['"x"'] * count)),
    )


def accept_encodings() -> st.SearchStrategy[str]:
    coding = st.sampled_from(["br", "gzip", "x-gzip", "zstd", "identity", "*", "deflate", "compress",
                              "BR", "GZip", "", "br;q=", "gzip;q=x", "unknown"])
    quality = st.one_of(st.just(""), st.sampled_from(["0", "1", "0.5", "0.001", "1.000", "1.0001", "-1",
                                                      "2", "nan", "inf", "1e3", ""]).map(";q={}".format))
    element = st.tuples(coding, quality).map("".join)
    return st.one_of(
        st.lists(element, max_size=12).map(", ".join),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
    )


@st.composite
def header_sets(draw: st.DrawFn, site: Site) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for name, strategy in [("Range", ranges()), ("If-None-Match", etag_headers(site)),
                           ("If-Modified-Since", http_dates()), ("Accept-Encoding", accept_encodings()),
                           ("If-Range", st.one_of(http_dates(), st.sampled_from(site.etags))),
                           ("If-Match", etag_headers(site)), ("If-Unmodified-Since", http_dates())]:
        if draw(st.integers(0, 2)) and (name.startswith(("Range", "If-None", "Accept", "If-Mod"))
                                        or draw(st.booleans())):
            headers.append((name, draw(strategy)))
    return headers


FUZZ = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))


# --- the properties


def test_fuzzed_paths_never_escape_or_fail(fuzz_site: Site, client: RawClient) -> None:
    @settings(FUZZ, max_examples=CASES["paths"])
    @given(target=targets(fuzz_site), method=st.sampled_from(["GET", "GET", "GET", "HEAD"]),
           coding=st.sampled_from(["br, gzip, zstd", "gzip", "identity", "*"]))
    @example(target=b"/" + b"/".join([b"a"] * 10_000), method="GET", coding="br")
    @example(target=b"/" + b"/".join([b".."] * 10_000) + b"/secret.txt", method="GET", coding="br")
    @example(target=b"/" + b"/".join([b"%2e%2e"] * 2000) + b"/secret.txt", method="GET", coding="br")
    @example(target=b"/" + b"/".join([b"css"] * 1500) + b"/print.css", method="GET", coding="br")
    @example(target=b"/%c0%ae%c0%ae/secret.txt", method="GET", coding="identity")
    @example(target=b"/..%2fsecret.txt", method="GET", coding="identity")
    @example(target=b"/.servestatic-manifest.json", method="GET", coding="identity")
    @example(target=b"/index.html\x00.txt", method="GET", coding="identity")
    @example(target=b"/C:\\Windows\\win.ini", method="GET", coding="identity")
    def run(target: bytes, method: str, coding: str) -> None:
        headers = [("Accept-Encoding", coding)]
        check(fuzz_site, method, target, headers, client.request(method, target, headers))

    run()


def test_fuzzed_headers_never_fail_and_bodies_match_disk(fuzz_site: Site, client: RawClient) -> None:
    @settings(FUZZ, max_examples=CASES["headers"])
    @given(path=st.sampled_from(sorted(fuzz_site.representations)), headers=header_sets(fuzz_site),
           method=st.sampled_from(["GET", "GET", "HEAD"]))
    @example(path="/index.html", headers=[("Range", "bytes=" + ",".join(["0-0"] * 1900))], method="GET")
    @example(path="/index.html", headers=[("Range", "bytes=" + ",".join(f"{i}-" for i in range(1500)))],
             method="GET")
    @example(path="/index.html", headers=[("Range", "bytes=99999999999999999999-")], method="GET")
    @example(path="/index.html", headers=[("If-None-Match", ",".join(['"x"'] * 800))], method="GET")
    def run(path: str, headers: list[tuple[str, str]], method: str) -> None:
        target = path.encode("utf-8")
        check(fuzz_site, method, target, headers, client.request(method, target, headers))

    run()


def test_fuzzed_paths_and_headers_together(fuzz_site: Site, client: RawClient) -> None:
    @settings(FUZZ, max_examples=CASES["mixed"])
    @given(target=targets(fuzz_site), headers=header_sets(fuzz_site))
    def run(target: bytes, headers: list[tuple[str, str]]) -> None:
        check(fuzz_site, "GET", target, headers, client.request("GET", target, headers))

    run()


def test_no_canary_on_direct_requests(fuzz_site: Site, client: RawClient) -> None:
    """The canaries exist and the plain requests for them are refused (guards the fuzz's premise)."""
    for target in [b"/.env", b"/.secret", b"/.git/config", b"/css/.hidden.css", b"/outside-link.txt",
                   b"/../secret.txt", b"/.servestatic-manifest.json"]:
        answer = client.request("GET", target, [("Accept-Encoding", "identity")])
        assert answer.status in (400, 404), (target, answer.status)
        assert CANARY not in answer.body
    assert (fuzz_site.root / ".env").read_bytes() == CANARY
    answer = client.request("GET", f"/{MANIFEST_MARKER}.txt".encode(), [])
    assert answer.status == 200 and MANIFEST_MARKER.encode() not in answer.body
