"""An answer as data, and the parts of sending one that every transport shares.

`StaticApp.decide` (core/decision.py) returns an `Answer`; it is sent by one
writer per transport, each doing only what its transport needs:

- the event loop (server/connection.py, `StaticProtocol._answer`): the header
  block and a small body in one write, a large body by sendfile (server/filesend.py;
  `loop.sendfile` under TLS);
- the ASGI front (fronts/asgifront.py, `send_answer`): ASGI messages;
- the WSGI front (fronts/wsgifront.py, `respond`): a WSGI body, which a server's
  `wsgi.file_wrapper` may sendfile.

What they have in common is here, once:

- the header block: `header_block` encodes an answer's headers as HTTP/1.1
  bytes and keeps that encoding with the representation the headers came from,
  so that a hit encodes nothing; `asgi_headers` gives the ASGI form;
- the range: `length` bytes of an open descriptor from `first`, either read
  at once (`Answer.read_range`, for a body that goes out with its headers) or
  as a `FileRange`, read in blocks or sent by sendfile from `offset`;
- the shrunken-file rule: a file can be cut short after the decision opened it
  (rewritten in place by a deploy). Its body then ends early: `read_range`
  gives fewer than `length` bytes, `FileRange.read` gives b"" before them and
  `FileRange.complete` is False, and the writer must not leave the connection
  open for another request, since the Content-Length it sent promised more.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from servestatic.core.dictionaries import PAGE_LINK_REL

if TYPE_CHECKING:
    from servestatic.core.table import Representation

Headers = list[tuple[str, str]]


class Answer:
    """A decided response: status, headers, and the body as bytes or a range of an open file.

    `fd` is an open descriptor the sender must close (`close()`, or read it at
    once with `read_range()`, or hand it on with `take_range()`); `first` and
    `length` say which bytes of it to send, `size` is the whole file's.
    `representation` is set when the headers are one of its precomputed lists,
    so that their encoded form is kept with it (`header_block`).
    """

    __slots__ = ("body", "fd", "first", "headers", "length", "representation", "size", "status")

    def __init__(self, status: str, headers: Headers, *, body: bytes | None = None,
                 fd: int | None = None, first: int = 0, length: int = 0, size: int = 0,
                 representation: Representation | None = None):
        self.representation = representation
        self.status = status
        self.headers = headers
        self.body = body
        self.fd = fd
        self.first = first
        self.length = length
        self.size = size

    def take_range(self) -> FileRange:
        """The file's bytes to send, as a FileRange that now owns (and closes) the descriptor."""
        assert self.fd is not None
        body = FileRange(self.fd, self.first, self.length)
        self.fd = None
        return body

    def read_range(self) -> bytes:
        """The file's bytes to send in one read, for a body small enough to go out with its
        headers; closes the descriptor. Shorter than `length` when the file shrank (then the
        connection must not be reused)."""
        fd = self.fd
        assert fd is not None
        self.fd = None
        try:
            return os.pread(fd, self.length, self.first)
        finally:
            os.close(fd)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class FileRange:
    """`length` bytes of an open descriptor from `first`: the body of a file answer.

    `read` gives the next bytes by pread (no shared file offset, no buffer);
    `advance` counts bytes a sendfile sent from `offset`. It also has the
    `fileno()`/`read()` of a file, so that a WSGI server's `wsgi.file_wrapper`
    can sendfile it.
    """

    __slots__ = ("fd", "offset", "remaining")

    def __init__(self, fd: int, first: int, length: int):
        self.fd = fd
        self.offset = first
        self.remaining = length

    @property
    def complete(self) -> bool:
        """Whether every byte promised was read or sent (False once the file turned out shorter)."""
        return self.remaining == 0

    def fileno(self) -> int:
        return self.fd

    def read(self, size: int = -1) -> bytes:
        """Up to `size` of the next bytes (all that remain for -1); b"" at the end of the range,
        or earlier when the file shrank (then `complete` is False)."""
        size = self.remaining if size < 0 else min(size, self.remaining)
        if size <= 0:
            return b""
        block = os.pread(self.fd, size, self.offset)
        self.advance(len(block))
        return block

    def advance(self, count: int) -> None:
        """`count` more bytes were sent (by sendfile, or read)."""
        self.offset += count
        self.remaining -= count

    def __iter__(self) -> Iterator[bytes]:
        while True:
            block = self.read(BLOCK_SIZE)
            if not block:
                return
            yield block

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# A FileRange iterated (a WSGI body a server does not sendfile) yields blocks of this size.
BLOCK_SIZE = 64 * 1024


def header_block(answer: Answer) -> bytes:
    """The answer's headers as HTTP/1.1 bytes; a representation's usual blocks are encoded once."""
    source = answer.representation
    if source is not None:
        if answer.headers is source.headers:
            if source.header_block is None:
                source.header_block = encode_headers(answer.headers)
            return source.header_block
        if answer.headers is source.not_modified_headers:
            if source.not_modified_block is None:
                source.not_modified_block = encode_headers(answer.headers)
            return source.not_modified_block
        if answer.headers is source.sha512_headers:
            if source.sha512_block is None:
                source.sha512_block = encode_headers(answer.headers)
            return source.sha512_block
    return encode_headers(answer.headers)


def early_hint_headers(answer: Answer) -> Headers:
    """The headers of a 103 Early Hints to send before this answer (SERVESTATIC_EARLY_HINTS):
    the Link header of a page's 200 (its preload hints, core/table.py, or a header rule's
    Link), found once per representation; [] for every other answer.

    The 103 matters to a CDN that turns it into early hints of its own, and to a client
    that reaches the origin while the page would take time; it is cheap here because the
    hints were found at build time.
    """
    source = answer.representation
    if source is None or answer.status[:3] != "200":
        return []
    hints = source.early_hints
    if hints is None:
        # Not the HTML dictionary's Link (core/dictionaries.py): a browser fetches it when idle.
        hints = source.early_hints = [(name, value) for name, value in source.headers
                                      if name == "Link" and not value.endswith(PAGE_LINK_REL)]
    return hints


EARLY_HINTS_LINE = b"HTTP/1.1 103 Early Hints\r\n"


def encode_headers(headers: Headers) -> bytes:
    return "".join(f"{name}: {value}\r\n" for name, value in headers).encode("latin-1")


def asgi_headers(headers: Headers) -> list[tuple[bytes, bytes]]:
    """Headers as an ASGI server takes them: lower-case names, bytes."""
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
