"""Headless Chromium driven over the DevTools protocol, for tests that must wait in real time.

`--dump-dom` with `--virtual-time-budget` ends a visit when the page's virtual time is
spent, which is right for a page's own scripts but not for work Chromium does on its own
clock: it fetches a `rel=compression-dictionary` link at idle priority after the load,
and a loaded machine can end the visit first. Here the process stays up between visits,
so a test can wait for what the origin's log shows and then go on browsing.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from tests.support import wait_for

START_TIMEOUT = 30  # seconds for Chromium to open its DevTools port
ANSWER_TIMEOUT = 30  # seconds for any one protocol answer, and for what a test awaits in the page
# The events kept, for network_log; the others are read and dropped.
LOGGED_EVENTS = ("Network.responseReceived", "Network.loadingFailed")


class ProtocolError(Exception):
    """Chromium answered a command with an error."""


class Chromium:
    """One headless Chromium process with a kept profile, and one tab in it."""

    def __init__(self, executable: str, profile: Path) -> None:
        self.executable, self.profile = executable, profile
        self._ids = itertools.count(1)
        self._events: list[dict[str, Any]] = []  # LOGGED_EVENTS read while awaiting answers

    def __enter__(self) -> Chromium:
        port_file = self.profile / "DevToolsActivePort"
        port_file.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [self.executable, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--remote-debugging-port=0", f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # The file holds the port, then the browser's WebSocket path, once both are known.
            lines = wait_for(lambda: self._running() and port_file.exists()
                             and len(lines := port_file.read_text().split()) == 2 and lines,
                             START_TIMEOUT, "Chromium's DevTools port")
            self._closing = ExitStack()
            self.socket: ClientConnection = self._closing.enter_context(
                connect(f"ws://127.0.0.1:{lines[0]}{lines[1]}", max_size=None,
                        open_timeout=ANSWER_TIMEOUT))
            target = self._call("Target.createTarget", url="about:blank")["targetId"]
            self.session = self._call("Target.attachToTarget", targetId=target,
                                      flatten=True)["sessionId"]
            self._call("Network.enable", session=self.session)
        except BaseException:
            self.process.kill()
            self.process.wait()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._call("Browser.close")
        except Exception:  # closing a browser that is already gone
            self.process.kill()
        finally:
            self._closing.close()
            self.process.wait(timeout=ANSWER_TIMEOUT)

    def visit(self, url: str) -> None:
        """Navigate the tab to url, as a typed address. What the page then does (load, run
        its scripts, follow a link) a test awaits with `wait_until`, which polls: events
        about a page and the protocol's answers arrive in no order a test can rely on."""
        answer = self._call("Page.navigate", session=self.session, url=url)
        assert "errorText" not in answer, f"{url}: {answer['errorText']}\n{self.network_log()}"

    def wait_until(self, expression: str, what: str) -> Any:
        """Poll a JavaScript expression in the tab until its value is truthy, and return it;
        fail after ANSWER_TIMEOUT seconds saying what was awaited and what Chromium fetched."""
        return wait_for(lambda: self.evaluate(expression), ANSWER_TIMEOUT,
                        lambda: f"{what}; Chromium fetched:\n{self.network_log()}\n"
                                f"and shows: {str(self.dom())[-300:]}")

    def dom(self) -> str | None:
        """The tab's document as HTML, as it is now (None between two documents)."""
        return self.evaluate("document.documentElement.outerHTML")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the tab's page as it is now, or None
        while there is no page to ask (between two documents)."""
        try:
            answer = self._call("Runtime.evaluate", session=self.session, expression=expression,
                                returnByValue=True)
        except ProtocolError:  # "Execution context was destroyed", mid-navigation
            return None
        if "exceptionDetails" in answer:
            return None
        return answer["result"].get("value")

    def network_log(self) -> str:
        """One line per answer or failure Chromium has seen, from the Network domain's events:
        what a failing test shows."""
        lines = []
        for event in self._events:
            params = event.get("params", {})
            if event.get("method") == "Network.responseReceived":
                response = params["response"]
                headers = {name.lower(): value for name, value in response["headers"].items()}
                lines.append(f"{response['status']} {response['url']} "
                             f"{headers.get('content-encoding', 'identity')}")
            elif event.get("method") == "Network.loadingFailed":
                lines.append(f"failed {params['requestId']}: {params['errorText']}")
        return "\n".join(lines) or "nothing"

    def _running(self) -> bool:
        assert self.process.poll() is None, f"Chromium exited with {self.process.returncode}"
        return True

    def _call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send one command and read messages until its answer, keeping the LOGGED_EVENTS read."""
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.socket.send(json.dumps(message))
        while True:
            reply = json.loads(self.socket.recv(timeout=ANSWER_TIMEOUT))
            if reply.get("id") != ident:
                if reply.get("method") in LOGGED_EVENTS:
                    self._events.append(reply)
                continue
            if "error" in reply:
                raise ProtocolError(f"{method}: {reply['error']}")
            return reply["result"]
