"""tests/apps/echo.py as a plain ASGI app (no framework): the same JSON for the same request.

The chaining tests run once with each (SERVESTATIC_APP names one or the other,
with no other hint), so WSGI and ASGI apps are held to the same answers.
"""

from __future__ import annotations

import json
from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:  # the body arrives in pieces
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
    answer = {
        "app": "echo",
        "method": scope["method"],
        "script_name": scope.get("root_path", ""),
        "path": scope["path"],
        "query": scope["query_string"].decode("latin-1"),
        "body": body.decode("utf-8", "replace"),
        "content_type": headers.get("content-type", ""),
    }
    payload = json.dumps(answer).encode("utf-8")
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()), (b"x-echo", b"yes")]})
    await send({"type": "http.response.body", "body": payload})
