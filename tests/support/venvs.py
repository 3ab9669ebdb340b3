"""Virtual environments with one Django series each, for the storage's version tests.

Each is made once under .cache/django/ with that Django and servestatic's own
dependencies (read from pyproject.toml); servestatic itself comes from this
checkout through PYTHONPATH, so an edit needs no reinstall. A stamp written
last, keyed on the requirements and the Python, makes a rerun free and an
interrupted install start again. On a fresh machine pip fetches from PyPI.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.support import REPO, needs


def python_at_least(minimum: tuple[int, int]) -> str | None:
    """An interpreter of at least `minimum`: this one, pythonX.Y on PATH, or one of pyenv's."""
    if sys.version_info >= minimum:
        return sys.executable
    candidates = [shutil.which(f"python3.{minor}") for minor in range(minimum[1], 20)]
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates += sorted(glob.glob(os.path.join(pyenv_root, "versions", "3.*", "bin", "python3")))
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys, venv; print(*sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and tuple(map(int, probe.stdout.split())) >= minimum:
            return candidate
    return None


def django_venv(requirement: str, minimum_python: tuple[int, int] = (3, 11),
                extra: tuple[str, ...] = ()) -> Path:
    """The python of a venv with `requirement` (such as "django>=4.2,<4.3") installed, and the
    `extra` requirements (such as whitenoise) beside it."""
    python = python_at_least(minimum_python)
    needs(python is not None, f"{requirement} needs Python {'.'.join(map(str, minimum_python))} or later, "
                              "and there is none on PATH or in pyenv")
    assert python is not None
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    requirements = [requirement, *extra, *project["project"]["dependencies"]]
    version = subprocess.run([python, "-c", "import sys; print(sys.version)"], capture_output=True,
                             text=True, check=True).stdout
    key = hashlib.sha256("\n".join([*requirements, version]).encode()).hexdigest()[:16]
    name = "-".join([requirement, *extra]).replace(">=", "-").replace("<", "").replace(",", "-")
    venv = REPO / ".cache" / "django" / name
    stamp = venv / f".installed-{key}"
    if not stamp.exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([python, "-m", "venv", str(venv)], check=True, capture_output=True)
        result = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                                 "--disable-pip-version-check", *requirements],
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"pip install {requirements} failed:\n{result.stderr}"
        stamp.touch()
    return venv / "bin" / "python"
