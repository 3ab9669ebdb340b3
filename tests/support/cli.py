"""The `servestatic` command in a subprocess, the way a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support import REPO

SERVESTATIC = [sys.executable, "-m", "servestatic"]


def environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without SERVESTATIC_* (a developer's own settings
    must not change a test), with this checkout importable, plus env."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("SERVESTATIC_")}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    environ.update(env or {})
    return environ


def run_compress(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO,
                 **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """`servestatic compress ARGS...`, whatever its exit code (for tests of failures)."""
    return subprocess.run([*SERVESTATIC, "compress", *args], capture_output=True, text=True,
                          env=environment(env), cwd=cwd, timeout=300, **kwargs)


def compress(root: Path, *args: str, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    """`servestatic compress ROOT ARGS...`, which must succeed."""
    result = run_compress(os.fspath(root), *args, env=env)
    assert result.returncode == 0, f"servestatic compress {root} failed:\n{result.stderr}"
    return result
