"""Every gunicorn internal the event-loop worker builds on is still there.

servestatic/server/worker.py and connection.py subclass gunicorn's ASGI worker and protocol and use
some of their private names (listed in GUNICORN_INTERNALS). pyproject pins
gunicorn to one major version; this test is what fails, naming the missing
piece, when an upgrade moves one, instead of a worker that misbehaves.
"""

from __future__ import annotations

import inspect
import re
from types import ModuleType

import gunicorn
import pytest

from servestatic.server.scheme import SCHEME_INTERNALS
from servestatic.server.worker import GUNICORN_INTERNALS


def present(owner: type | ModuleType, name: str) -> bool:
    """A module attribute, a class attribute or method, or an attribute its methods set."""
    if hasattr(owner, name):
        return True
    if isinstance(owner, type):
        gunicorn_classes = [cls for cls in owner.__mro__ if cls.__module__.startswith("gunicorn")]
        source = "".join(inspect.getsource(cls) for cls in gunicorn_classes)
        return re.search(rf"self\.{re.escape(name)}\s*(:[^=]*)?=", source) is not None
    return False


@pytest.mark.parametrize(("owner", "name"), [
    (owner, name) for internals in (GUNICORN_INTERNALS, SCHEME_INTERNALS)
    for owner, names in internals.items() for name in names
], ids=lambda value: getattr(value, "__qualname__", getattr(value, "__name__", value)))
def test_gunicorn_still_has_what_the_worker_uses(owner: type | ModuleType, name: str) -> None:
    where = getattr(owner, "__qualname__", getattr(owner, "__name__", owner))
    assert present(owner, name), (
        f"gunicorn {gunicorn.__version__} has no {where}.{name}, which servestatic/server/ relies "
        "on: adapt the worker before upgrading gunicorn")


def test_the_check_catches_a_missing_name() -> None:
    from gunicorn.asgi.protocol import ASGIProtocol

    assert not present(ASGIProtocol, "_no_such_internal")
    assert present(ASGIProtocol, "_current_request")  # set in __init__, not a class attribute


def test_the_installed_gunicorn_is_the_pinned_one() -> None:
    """pyproject pins gunicorn to the releases these tests ran on; an environment with
    another (installed by hand, or by a looser resolver) fails here, naming both."""
    import tomllib

    from packaging.requirements import Requirement

    from tests.support import REPO

    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [Requirement(spec) for spec in dependencies if Requirement(spec).name == "gunicorn"]
    assert str(pin.specifier) and "<" in str(pin.specifier), f"gunicorn is not pinned: {pin}"
    assert pin.specifier.contains(gunicorn.__version__), (
        f"gunicorn {gunicorn.__version__} is installed; pyproject pins {pin.specifier}")


def test_asyncio_still_has_what_filesend_uses() -> None:
    """The worker's own sendfile loop (servestatic/server/filesend.py) watches a transport's
    socket with the selector loop's private _add_writer; without it, every large body
    would silently go the slower loop.sendfile way."""
    import asyncio

    from servestatic.server.filesend import ASYNCIO_INTERNALS, usable

    loop = asyncio.new_event_loop()
    try:
        missing = [name for name in ASYNCIO_INTERNALS if not hasattr(loop, name)]
        assert not missing, f"asyncio's event loop has no {missing}: adapt server/filesend.py"
        assert usable(loop)
    finally:
        loop.close()
