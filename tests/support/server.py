"""A real `servestatic serve` process on a real socket, for black-box tests.

Readiness is the health endpoint answering, polled with a deadline: never a
sleep. The process is always stopped with SIGTERM and its exit code kept, so
tests can assert on a graceful shutdown too.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support import REPO
from tests.support.cli import SERVESTATIC, environment


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_answering(name: str, process: subprocess.Popen[bytes], url: str,
                         log: Callable[[], str], timeout: float,
                         ready: Callable[[httpx.Response], bool] = lambda response: True) -> None:
    """Poll url until a response is `ready`: a process's readiness, with a deadline.

    Raises RuntimeError when the process exits first, TimeoutError at the deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log()}")
        try:
            if ready(httpx.get(url, timeout=1.0)):
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} did not answer within {timeout} s:\n{log()}")
        time.sleep(0.02)  # poll interval, not a readiness guess


class ServerProcess:
    """`servestatic serve` in a subprocess; use as a context manager."""

    def __init__(self, root: Path | None, env: dict[str, str] | None = None,
                 args: list[str] | None = None, cwd: Path | None = None, workers: int = 1,
                 python: Path | str | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = environment({
            "SERVESTATIC_BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": str(workers),
            "SERVESTATIC_ACCESS_LOG": "off",
            **(env or {}),
        })
        command = [os.fspath(python), "-m", "servestatic"] if python else SERVESTATIC
        self.args = [*command, "serve", *([str(root)] if root is not None else []), *(args or [])]
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self.returncode: int | None = None

    # What start() calls the server in its messages and its log file's name.
    name = "servestatic"

    def ready_path(self) -> str:
        """The path that answers 200 once the server is up."""
        return self.env.get("SERVESTATIC_HEALTH_PATH", "/healthz")

    def start(self, timeout: float = 20.0) -> ServerProcess:
        import tempfile

        log = tempfile.NamedTemporaryFile(prefix=f"{self.name}-", suffix=".log", delete=False)  # noqa: SIM115
        self.log_path = Path(log.name)
        self.process = subprocess.Popen(self.args, env=self.env, cwd=self.cwd, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        try:
            wait_until_answering(self.name, self.process, self.url + self.ready_path(), self.log, timeout,
                                 ready=lambda response: response.status_code == 200)
        except TimeoutError:
            self.stop()
            raise
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def complete_lines(self) -> list[str]:
        """The log's lines so far, without a last one the server is still writing.

        A read can land in the middle of the server's write, so a line without its
        newline yet may be cut anywhere (a JSON line as just `{`).
        """
        text = self.log()
        return text[:text.rfind("\n") + 1].splitlines()

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait, and return the exit code (SIGKILL the group if it hangs)."""
        if self.process is None:
            return -1
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.returncode = self.process.returncode
        return self.returncode

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class WsgiFront(ServerProcess):
    """`servestatic.wsgi:application` under the plain gunicorn command, one worker: the WSGI
    front, which reads the same SERVESTATIC_* settings as `servestatic serve`."""

    name = "gunicorn"

    def __init__(self, root: Path, env: dict[str, str]):
        super().__init__(None, env={"SERVESTATIC_ROOT": str(root), **env})
        self.args = [str(Path(sys.executable).parent / "gunicorn"), "--bind", f"127.0.0.1:{self.port}",
                     "--workers", "1", "servestatic.wsgi:application"]
        self.cwd = REPO


@contextmanager
def serving(root: Path | None, env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    """A running server that must still exit 0 on SIGTERM when the tests are done."""
    server = ServerProcess(root, env=env).start()
    try:
        yield server
    finally:
        code = server.stop()
    assert code == 0, f"servestatic exited with {code}:\n{server.log()}"


def client(server: ServerProcess) -> httpx.Client:
    """A keep-alive client that sends no Accept-Encoding unless a test says so."""
    return httpx.Client(base_url=server.url, headers={"Accept-Encoding": "identity"}, timeout=10)


def worker_pids(server: ServerProcess) -> set[int]:
    """gunicorn's workers: the children of the server's master process."""
    assert server.process is not None
    pid = server.process.pid
    return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
