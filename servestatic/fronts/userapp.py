"""The user's own app, named by SERVESTATIC_APP: import it and tell WSGI from ASGI.

Both kinds are plain callables, so the only reliable sign is the one ASGI
servers use: an ASGI app is a coroutine function, or an object whose
`__call__` is one (Starlette and FastAPI apps, Django's ASGIHandler). Anything
else callable is taken as WSGI. SERVESTATIC_APP_INTERFACE forces either, as
uvicorn's `--interface` does, for the rare app that hides its kind (a
decorated or wrapped callable).
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

WSGI = "wsgi"
ASGI = "asgi"


class AppImportError(Exception):
    """SERVESTATIC_APP names something that cannot be imported or is not an app."""


@dataclass(frozen=True)
class UserApp:
    """The imported callable and which interface it speaks."""

    callable: Callable[..., Any]
    interface: str  # WSGI or ASGI


def import_target(import_path: str) -> Any:
    """Import `module:attribute` (or `module:factory()`) from the working directory."""
    module_name, _, attribute = import_path.partition(":")
    call = attribute.endswith("()")
    attribute = attribute.removesuffix("()")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as error:  # any import-time failure of the user's code
        raise AppImportError(
            f"SERVESTATIC_APP={import_path}: cannot import {module_name!r}: "
            f"{type(error).__name__}: {error}"
        ) from None
    try:
        for part in attribute.split("."):
            target = getattr(target, part)
        if call:
            target = target()
    except Exception as error:
        raise AppImportError(
            f"SERVESTATIC_APP={import_path}: cannot get {attribute!r} from {module_name!r}: "
            f"{type(error).__name__}: {error}"
        ) from None
    return target


def is_asgi(target: Any) -> bool:
    """A coroutine function, or an instance whose __call__ is one."""
    if inspect.iscoroutinefunction(target):
        return True
    call = getattr(type(target), "__call__", None)  # noqa: B004 - the class's, not the instance's
    return call is not None and not inspect.isfunction(target) and inspect.iscoroutinefunction(call)


def load_user_app(import_path: str, interface: str = "auto") -> UserApp:
    """Import the app and decide its interface; one-line AppImportError when it is neither."""
    target = import_target(import_path)
    if not callable(target):
        raise AppImportError(
            f"SERVESTATIC_APP={import_path}: {type(target).__name__} object is not callable; "
            "expected a WSGI app (environ, start_response) or an ASGI app (scope, receive, send)"
        )
    if interface == "auto":
        interface = ASGI if is_asgi(target) else WSGI
        if interface == WSGI and not _accepts(target, 2):
            # A synchronous (scope, receive, send) is neither: it could not await anything.
            raise AppImportError(
                f"SERVESTATIC_APP={import_path}: not a WSGI app (environ, start_response) nor an "
                "ASGI app (async scope, receive, send); set SERVESTATIC_APP_INTERFACE to force one"
            )
    elif interface == ASGI and not is_asgi(target) and not _accepts(target, 3):
        raise AppImportError(
            f"SERVESTATIC_APP_INTERFACE=asgi: {import_path} cannot take (scope, receive, send)"
        )
    elif interface == WSGI and is_asgi(target):
        raise AppImportError(
            f"SERVESTATIC_APP_INTERFACE=wsgi: {import_path} is a coroutine function, an ASGI app; "
            "expected a WSGI app (environ, start_response), or set it to asgi or auto"
        )
    return UserApp(target, interface)


def _accepts(target: Any, count: int) -> bool:
    """Whether target can be called with `count` positional arguments (True when unknowable)."""
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):  # no signature (some C extensions): give it the benefit
        return True
    try:
        signature.bind(*range(count))
    except TypeError:
        return False
    return True
