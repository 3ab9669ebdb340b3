"""The WSGI front: StaticApp's answers through any WSGI server, the user's WSGI app behind.

This is `servestatic.wsgi:application`, for people who run gunicorn (or
another WSGI server) themselves. `servestatic serve` does not use it: its
worker answers static hits in its event loop (server/connection.py) and everything
else through the ASGI front (fronts/asgifront.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from servestatic.core.answer import BLOCK_SIZE, Answer, early_hint_headers
from servestatic.core.decision import APP, StaticApp


class WSGIApp:
    """servestatic as a WSGI app: the user's app gets the requests `StaticApp.route` gives it,
    every other request StaticApp's answer."""

    def __init__(self, static: StaticApp):
        if static.user_app is not None and static.user_app.interface != "wsgi":
            raise ValueError("servestatic.wsgi serves a WSGI app; SERVESTATIC_APP names an ASGI "
                             "app: run `servestatic serve`, or servestatic.asgi:application")
        self.static = static
        self.user_app = static.user_app.callable if static.user_app is not None else None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        environ["PATH_INFO"] = path
        if self.user_app is not None and self.static.route(path, environ["REQUEST_METHOD"]) == APP:
            return self.user_app(environ, start_response)
        answer = self.static.decide(environ)
        if self.static.early_hints and environ["REQUEST_METHOD"] == "GET":
            send_early_hints = environ.get("wsgi.early_hints")  # gunicorn gives one
            hints = early_hint_headers(answer) if send_early_hints is not None else []
            if hints:
                send_early_hints(hints)
        return respond(answer, environ, start_response)


def respond(answer: Answer, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Hand an Answer to a WSGI server: a file's range (core/answer.py) as the body, through
    `wsgi.file_wrapper` (sendfile) where the server's wrapper sends the right bytes.

    A file that shrank ends the body early; the server sees fewer bytes than
    Content-Length.
    """
    start_response(answer.status, answer.headers)
    if answer.fd is None:
        return [answer.body] if answer.body else []
    body = answer.take_range()
    file_wrapper = environ.get("wsgi.file_wrapper")
    # A wrapper sends from the descriptor's current offset, and most send to its end:
    # gunicorn's stops at Content-Length, so a range is sendfile'd there too.
    if file_wrapper is not None and (
        answer.first + answer.length == answer.size
        or environ.get("SERVER_SOFTWARE", "").startswith("gunicorn")
    ):
        os.lseek(body.fd, answer.first, os.SEEK_SET)
        return file_wrapper(body, BLOCK_SIZE)
    return body
