"""Threads that run a WSGI app's steps, and the one way their results come back to the loop.

Why not `ThreadPoolExecutor` with `asyncio.wrap_future` (what `loop.run_in_executor`
does): per step that costs a `concurrent.futures.Future` (whose Condition is taken
at every state change), a work item, the executor's thread-count check under a
semaphore, an asyncio Future chained to the first by two callbacks, and a self-pipe
write per result. For a small app's request those were about half of the worker's
CPU (bench/serve_profile.py). Here a step is a `Step` on a SimpleQueue; the thread
that ran it appends it to a deque and wakes the loop only when no wake-up is
already on its way, so a busy loop takes many results per wake-up.

The threads are started on first use and stopped at interpreter exit after the
steps already queued, as ThreadPoolExecutor's are (a step still running when the
worker exits finishes, and the app's close() with it).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any


class Step:
    """One function to run in a thread, and what happened to it.

    `claim` is taken (popped) once: by the thread that runs the step, or by the loop
    cancelling it before it ran; list.pop is atomic, so exactly one of them wins.
    """

    __slots__ = ("after", "claim", "delivered", "error", "fn", "future", "value")

    def __init__(self, fn: Callable[[], Any], future: asyncio.Future[Any] | None):
        self.fn = fn
        self.future = future
        self.claim = [True]
        self.value: Any = None
        self.error: BaseException | None = None
        self.delivered = False  # its outcome reached the loop
        self.after: Callable[[], None] | None = None  # run in the loop once it is delivered


class StepPool:
    """`threads` threads running Steps; results are delivered in the loop (`deliver`)."""

    def __init__(self, threads: int, loop: asyncio.AbstractEventLoop, name: str = "servestatic-wsgi"):
        self.loop = loop
        self.steps: queue.SimpleQueue[Step | None] = queue.SimpleQueue()
        self.done: deque[Step] = deque()
        self.wakeup_pending = False
        self.stopped = False
        self.threads = [threading.Thread(target=self.work, name=f"{name}_{number}", daemon=True)
                        for number in range(threads)]
        for thread in self.threads:
            thread.start()
        # Daemon threads, stopped and joined before the interpreter's own shutdown, the way
        # concurrent.futures stops its workers: queued steps still run.
        threading._register_atexit(self.stop)  # type: ignore[attr-defined]

    def run(self, fn: Callable[[], Any]) -> tuple[Step, asyncio.Future[Any]]:
        """Loop: queue fn; its future gets the result or the exception, in the loop."""
        future = self.loop.create_future()
        step = Step(fn, future)
        self.steps.put(step)
        return step, future

    def submit(self, fn: Callable[[], Any]) -> None:
        """Any thread: queue fn, whose outcome nobody waits for (it must handle its own errors);
        once the threads are stopped (the interpreter is exiting), run it here."""
        if self.stopped:
            fn()
            return
        self.steps.put(Step(fn, None))

    @staticmethod
    def cancel(step: Step) -> bool:
        """Loop: take back a step that has not started; False when it runs or ran."""
        try:
            step.claim.pop()
        except IndexError:
            return False
        return True

    def work(self) -> None:
        steps = self.steps
        while (step := steps.get()) is not None:
            try:
                step.claim.pop()
            except IndexError:
                continue  # cancelled before it started
            try:
                step.value = step.fn()
            except BaseException as error:  # handed to the loop, as a future would
                step.error = error
            if step.future is None and step.after is None:
                continue
            self.done.append(step)
            if not self.wakeup_pending:
                self.wakeup_pending = True
                try:
                    self.loop.call_soon_threadsafe(self.deliver)
                except RuntimeError:  # the loop is closed: nobody waits any more
                    return

    def deliver(self) -> None:
        """Loop: every finished step's outcome to its future (unless that was cancelled)."""
        # Cleared before the deque is emptied: a step appended after this line either
        # is taken below or schedules a wake-up of its own.
        self.wakeup_pending = False
        done = self.done
        while done:
            step = done.popleft()
            step.delivered = True
            future = step.future
            if future is not None and not future.done():
                if step.error is None:
                    future.set_result(step.value)
                else:
                    future.set_exception(step.error)
            step.error = None  # no reference cycle through the traceback
            if step.after is not None:
                step.after()

    def stop(self) -> None:
        """After the steps already queued, each thread takes a None and ends."""
        self.stopped = True
        for _ in self.threads:
            self.steps.put(None)
        for thread in self.threads:
            thread.join()
