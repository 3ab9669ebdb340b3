"""Callables that are not what SERVESTATIC_APP expects, and one that hides its kind well."""

from __future__ import annotations

import json
from typing import Any

number = 42


def sync_three(scope: Any, receive: Any, send: Any) -> None:
    """ASGI's three arguments, but synchronous: it could never await receive or send."""


class CoroutineCall:
    """An instance whose __call__ is a coroutine function: ASGI, as Starlette's apps are."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = json.dumps({"app": "instance"}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


instance = CoroutineCall()
