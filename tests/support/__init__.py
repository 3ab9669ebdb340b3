"""Helpers shared by the test modules (no tests here): paths, the skip-or-fail rule
for missing tools, the example site, the CLI, a real server and a raw HTTP client.

Fixtures stay in tests/conftest.py; everything a test imports lives here, so no
test module imports another one or conftest.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
EXAMPLE_SITE = REPO / "examples" / "site"
DJANGO_PROJECT = REPO / "examples" / "django"

IN_CI = os.environ.get("CI", "").lower() == "true"


def needs(condition: bool, reason: str) -> None:
    """Skip a test whose tool is missing; under CI=true a missing tool is a failure.

    The project's own scripts install every tool a test needs, so in CI a skip
    would only hide a broken install step.
    """
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true and this test cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def needs_tool(name: str) -> str:
    """The path of an executable on PATH, or skip/fail as `needs` does."""
    path = shutil.which(name)
    needs(path is not None, f"{name} is not installed (scripts/install/ installs it)")
    assert path is not None
    return path


def wait_for(condition: Callable[[], Any], timeout: float, what: str | Callable[[], str]) -> Any:
    """Poll `condition` until it returns something truthy, and return that; fail after
    `timeout` seconds, saying what was awaited (`what`, or what it returns then)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for "
                                 f"{what if isinstance(what, str) else what()}")
        time.sleep(0.02)  # poll interval
