"""A file's body sent straight from the event loop with os.sendfile, as the socket takes it.

asyncio's `loop.sendfile` costs, per call, a drain wait on the transport, a
future per writable event and the bookkeeping around them: for a 100 KiB file
about three times the CPU of the rest of the answer (callgrind counted some
380,000 instructions of it a request). nginx does it with a loop around
sendfile(2) driven by the socket becoming writable, and so does this: one
sendfile call per writable event, each asking for everything that remains (the
kernel sends what the socket buffer takes), so a 5 MiB file costs a handful of
system calls, and nothing of the file passes through Python.

It writes to the socket behind the transport's back, which is safe only while
the transport has nothing buffered and nothing else writes: the worker starts a
send only after its head left the transport whole (`get_write_buffer_size() == 0`)
and either within one call (`send_now`: a body the socket takes at once, before
anything else runs) or in its SENDING phase (nothing else is answered until `done`
is called). Under TLS the bytes must go through the transport: the worker
uses `loop.sendfile` there.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from servestatic.core.answer import FileRange

# Asked of one sendfile call at most: Linux takes up to 2 GiB less a page per call.
MAX_SENDFILE = 0x7FFFF000

# What this module uses of asyncio's selector event loop besides its public methods. The
# public add_writer refuses a descriptor that a transport owns; `_add_writer` is what the
# transports themselves call (asyncio's own sendfile takes the transport out of the loop's
# registry instead, for the same reason). tests/test_gunicorn_internals.py checks they exist.
ASYNCIO_INTERNALS = ("_add_writer", "_remove_writer")


def usable(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether FileSend can run on this loop (asyncio's selector loop; not uvloop, say)."""
    return all(hasattr(loop, name) for name in ASYNCIO_INTERNALS)


class FileSend:
    """Sends `body` on the socket `sock_fd`, then calls `done(outcome)` once.

    The outcome is "sent" (every byte promised), "short" (the file ended early:
    core/answer.py's shrunken file), "stalled" (the client took nothing for `timeout`
    seconds) or "failed" (the socket refused: the client is gone). The body's descriptor
    is the caller's to close.
    """

    __slots__ = ("body", "done", "finished", "last_progress", "loop", "sock_fd", "timeout", "timer",
                 "watching")

    def __init__(self, loop: asyncio.AbstractEventLoop, sock_fd: int, body: FileRange, timeout: float,
                 done: Callable[[str], None]):
        self.loop = loop
        self.sock_fd = sock_fd
        self.body = body
        self.timeout = timeout
        self.done = done
        self.watching = False
        self.finished = False
        self.timer: asyncio.TimerHandle | None = None
        self.last_progress = 0.0

    def send_now(self) -> str | None:
        """Send what the socket takes at once, with nothing registered in the loop.

        Returns the outcome when that ended the send (every byte of a body the socket
        buffer holds, as a 100 KiB file's on an idle connection; or a failure), without
        calling `done`: the caller then needs no writer, no stall clock and no pause in
        reading for it. None when the socket is full: `wait_writable` sends the rest, then calls `done`.
        """
        outcome = self._write()
        if outcome is not None:
            self.finished = True
        return outcome

    def wait_writable(self) -> None:
        """After `send_now` left bytes to send: the rest as the socket becomes writable, within
        the stall timeout (whose clock starts now)."""
        self.last_progress = self.loop.time()
        self._watch()

    def _send(self) -> None:
        """The socket is writable: send what it takes; `done` once the send ends."""
        outcome = self._write()
        if outcome is not None:
            self._finish(outcome)
        else:
            self._watch()

    def _write(self) -> str | None:
        """sendfile until the socket is full or the body is out: the outcome, or None."""
        body = self.body
        progressed = False
        while True:
            wanted = min(body.remaining, MAX_SENDFILE)
            try:
                sent = os.sendfile(self.sock_fd, body.fd, body.offset, wanted)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                return "failed"
            if sent == 0:
                return "short"
            body.advance(sent)
            if not body.remaining:
                return "sent"
            progressed = True
            if sent < wanted:
                break  # the socket buffer is full: asking again now would only get EAGAIN
        if progressed:
            self.last_progress = self.loop.time()
        return None

    def _watch(self) -> None:
        """Be called (`_send`) when the socket is writable, and check for a stall (one timer a send)."""
        if not self.watching:
            self.watching = True
            self.loop._add_writer(self.sock_fd, self._send)  # type: ignore[attr-defined]
        if self.timer is None:
            self.timer = self.loop.call_later(self.timeout, self._check_stall)

    def _check_stall(self) -> None:
        """The stall clock is due: the client took nothing for `timeout` seconds, or it did
        and the clock moves on (one timer per send, not one per writable event)."""
        self.timer = None
        if self.finished:
            return
        idle = self.loop.time() - self.last_progress
        if idle < self.timeout:
            self.timer = self.loop.call_later(self.timeout - idle, self._check_stall)
            return
        self._finish("stalled")

    def abandon(self) -> None:
        """The connection is going away (connection_lost): stop now, ending as "failed".
        Must run before the socket is closed: its descriptor may be reused right after."""
        self._finish("failed")

    def _stop(self) -> None:
        if self.watching:
            self.watching = False
            self.loop._remove_writer(self.sock_fd)  # type: ignore[attr-defined]
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _finish(self, outcome: str) -> None:
        if self.finished:
            return
        self.finished = True
        self._stop()
        self.done(outcome)
