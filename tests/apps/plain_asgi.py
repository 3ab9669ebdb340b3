"""A plain ASGI callable (no framework) using everything a real ASGI server gives an app.

- lifespan: startup writes a marker file named by PLAIN_ASGI_MARKERS with this
  worker's pid (and "startup" or "shutdown"), so tests see it ran in every
  worker; PLAIN_ASGI_FAIL_STARTUP makes startup fail with that message;
- /scope: the scope as JSON (query string, raw path, headers, client, server);
- /upload: counts the request body's bytes and pieces as they stream in;
- /stream?n=N: a streamed response of N chunks (no Content-Length);
- /big?mb=N: N megabytes, streamed with a Content-Length;
- /boom: raises; /boom-late: raises after the response started;
- a WebSocket at /ws echoes text in upper case until the client closes.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import parse_qs

TEXT = [(b"content-type", b"text/plain")]


def marker(kind: str) -> None:
    directory = os.environ.get("PLAIN_ASGI_MARKERS")
    if directory:
        with open(os.path.join(directory, f"{kind}-{os.getpid()}"), "w"):
            pass


async def lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            failure = os.environ.get("PLAIN_ASGI_FAIL_STARTUP")
            if failure:
                await send({"type": "lifespan.startup.failed", "message": failure})
                return
            marker("startup")
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            marker("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def respond(send: Any, status: int, body: bytes, content_type: bytes = b"application/json") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def websocket(receive: Any, send: Any) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": (message.get("text") or "").upper()})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["type"] == "websocket":
        await websocket(receive, send)
        return
    path = scope["path"]
    if path == "/scope":
        shown = {
            "path": path, "raw_path": scope.get("raw_path", b"").decode("latin-1"),
            "query_string": scope["query_string"].decode("latin-1"), "method": scope["method"],
            "http_version": scope["http_version"], "scheme": scope["scheme"],
            "headers": [[name.decode("latin-1"), value.decode("latin-1")]
                        for name, value in scope["headers"]],
            "client": list(scope["client"]) if scope.get("client") else None,
            "server": list(scope["server"]) if scope.get("server") else None,
            "pid": os.getpid(),
        }
        await respond(send, 200, json.dumps(shown).encode())
    elif path == "/upload":
        size = pieces = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            size += len(message.get("body", b""))
            pieces += 1
            if not message.get("more_body"):
                break
        await respond(send, 200, json.dumps({"bytes": size, "pieces": pieces}).encode())
    elif path == "/stream":
        count = int(parse_qs(scope["query_string"].decode()).get("n", ["3"])[0])
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        for index in range(count):
            await send({"type": "http.response.body", "body": f"chunk {index}\n".encode(), "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/big":  # ?mb=N megabytes, streamed, for the stalled-reader tests
        megabytes = int(parse_qs(scope["query_string"].decode()).get("mb", ["1"])[0])
        block = b"x" * (1024 * 1024)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(megabytes * len(block)).encode())]})
        for _ in range(megabytes):
            await send({"type": "http.response.body", "body": block, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/boom":
        raise RuntimeError("boom on purpose")
    elif path == "/boom-late":
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("boom after the response started")
    else:
        await respond(send, 200, json.dumps({"app": "plain", "path": path}).encode())
