"""The buildpack's packaging step.

buildpack/package runs `python -m servestatic.platform.cnbpackage BUILDPACK_DIR`.

A build must not need the network, and the builder it lands on may have either CPU
and any CPython servestatic supports, so the buildpack carries a wheel of every
dependency for every pair: `pip download --platform ... --python-version ...` once
per target that buildpack.toml declares and per version in `cnb.SUPPORTED_PYTHONS`,
into one directory per target (pure-Python wheels land there once). buildpack.toml
is the one list of targets: what is declared is what is shipped. `wheels/index.json`
tells bin/build what the package holds, so that a build it cannot serve fails at its
start with one line instead of deep inside pip.

This runs on a developer's or CI's machine with the network, never inside a build.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from servestatic.platform.cnb import GLIBC_FLOOR, SUPPORTED_PYTHONS, WHEEL_ARCH, WHEELS_INDEX, target_dir_name

try:  # a dependency of pytest, so in the repo's .venv; pip's own copy otherwise
    from packaging.requirements import Requirement
except ImportError:  # pragma: no cover
    from pip._vendor.packaging.requirements import Requirement


def declared_targets(buildpack: Path) -> list[tuple[str, str]]:
    """(os, arch) of every [[targets]] in buildpack.toml."""
    declared = tomllib.loads((buildpack / "buildpack.toml").read_text()).get("targets", [])
    targets = [(target["os"], target["arch"]) for target in declared]
    unknown = [f"{os_}/{arch}" for os_, arch in targets if os_ != "linux" or arch not in WHEEL_ARCH]
    if unknown:
        raise SystemExit(f"package: buildpack.toml declares {', '.join(unknown)}; "
                         f"wheels exist for linux/{', linux/'.join(WHEEL_ARCH)}")
    return targets


def requirements(pyproject: Path, python: str, arch: str) -> list[str]:
    """servestatic's dependencies with the zstd extra, their markers decided for the target.

    `pip download` evaluates markers for the Python it runs under, not for the one
    --python-version names, so they are settled here and handed to it without markers.
    """
    project = tomllib.loads(pyproject.read_text())["project"]
    environment = {
        "python_version": python, "python_full_version": f"{python}.0",
        "implementation_name": "cpython", "platform_python_implementation": "CPython",
        "platform_machine": WHEEL_ARCH[arch], "platform_system": "Linux", "sys_platform": "linux",
        "os_name": "posix", "extra": "",
    }
    wanted = []
    for line in [*project["dependencies"], *project["optional-dependencies"]["zstd"]]:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(environment):
            requirement.marker = None
            wanted.append(str(requirement))
    return wanted


def platform_tags(arch: str) -> list[str]:
    """Every manylinux tag a stack with glibc GLIBC_FLOOR or later runs: pip matches
    --platform exactly, it does not widen a newer tag to the older ones."""
    machine = WHEEL_ARCH[arch]
    tags = [f"manylinux2014_{machine}"]
    tags += [f"manylinux_2_{minor}_{machine}" for minor in range(17, GLIBC_FLOOR[1] + 1)]
    return tags


def pip(python: str, *args: str) -> None:
    subprocess.run([python, "-m", "pip", *args, "--quiet", "--disable-pip-version-check"], check=True)


def package(buildpack: Path, repo: Path, python: str) -> None:
    """Fill buildpack/wheels from scratch, then swap it in whole."""
    targets = declared_targets(buildpack)
    staging = Path(tempfile.mkdtemp(prefix=".wheels.", dir=buildpack))
    try:
        pip(python, "wheel", "--no-deps", "--wheel-dir", os.fspath(staging), os.fspath(repo))
        for os_, arch in targets:
            for version in SUPPORTED_PYTHONS:
                platforms = [arg for tag in platform_tags(arch) for arg in ("--platform", tag)]
                pip(python, "download", "--only-binary=:all:", *platforms, "--implementation", "cp",
                    "--python-version", version, "--dest", os.fspath(staging / target_dir_name(os_, arch)),
                    *requirements(repo / "pyproject.toml", version, arch))
        index = {"targets": [f"{os_}/{arch}" for os_, arch in targets], "pythons": list(SUPPORTED_PYTHONS),
                 "glibc": ".".join(map(str, GLIBC_FLOOR))}
        (staging / WHEELS_INDEX).write_text(json.dumps(index, indent=2) + "\n")
        staging.chmod(0o755)
        shutil.rmtree(buildpack / "wheels", ignore_errors=True)
        staging.rename(buildpack / "wheels")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m servestatic.platform.cnbpackage BUILDPACK_DIR   (run by buildpack/package)",
              file=sys.stderr)
        return 2
    buildpack = Path(argv[0]).resolve()
    package(buildpack, buildpack.parent, sys.executable)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
