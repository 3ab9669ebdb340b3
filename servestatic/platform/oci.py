"""The registry tools a release drives, and the one way it runs a step.

crane (pushes, digests, indexes, the throwaway registry), oras (artifacts attached to an
image as OCI referrers) and cosign (signatures) are built from their Go modules by
``scripts/install/release-tools.sh`` into ``.cache/release/bin``; pack comes from
``scripts/install/lifecycle.sh``. Each speaks plain HTTP to a loopback registry only,
and each spells that differently, so the spelling lives here once.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REGISTRY_TOOLS = Path(".cache/release/bin")
PACK = Path(".cache/cnb/bin/pack")


class ReleaseError(Exception):
    """A release cannot go on; the message says why, in one line."""


@dataclass(frozen=True)
class Registry:
    """Where to push: ``host[/namespace]``, and whether it speaks plain HTTP (a local one)."""

    address: str
    plain_http: bool

    def image(self, name: str) -> str:
        return f"{self.address}/{name}"


def run(*command: str | Path, capture: bool = False, input_text: str | None = None,
        cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run one step, echoing it, and stop the release with its output when it fails."""
    printable = " ".join(str(part) for part in command)
    print(f"release: {printable}", file=sys.stderr, flush=True)
    result = subprocess.run([str(part) for part in command], text=True, input=input_text, cwd=cwd, env=env,
                            stdout=subprocess.PIPE if capture else None,
                            stderr=subprocess.PIPE if capture else None)
    if result.returncode != 0:
        output = ((result.stdout or "") + (result.stderr or ""))[-3000:]
        raise ReleaseError(f"{printable} exited {result.returncode}\n{output}")
    return result.stdout or ""


def tool(name: str) -> Path:
    """A registry tool's binary, absolute (oras runs in another directory)."""
    return (REGISTRY_TOOLS / name).resolve()


def crane(*args: str, registry: Registry) -> str:
    insecure = ["--insecure"] if registry.plain_http else []
    return run(tool("crane"), *args, *insecure, capture=True).strip()


def crane_json(*args: str, registry: Registry) -> Any:
    return json.loads(crane(*args, registry=registry))


def oras(*args: str | Path, registry: Registry, cwd: Path | None = None) -> str:
    plain = ["--plain-http"] if registry.plain_http else []
    return run(tool("oras"), *args, *plain, capture=True, cwd=cwd).strip()


def cosign(*args: str | Path, registry: Registry, env: dict[str, str] | None = None) -> str:
    plain = ["--allow-http-registry", "--allow-insecure-registry"] if registry.plain_http else []
    subcommand, *rest = args
    return run(tool("cosign"), subcommand, *plain, *rest, capture=True, env=env).strip()
