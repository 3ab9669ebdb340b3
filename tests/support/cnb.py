"""The CNB platform the buildpack tests play: a workspace laid out as a platform gives it to
the lifecycle (app/, layers/, platform/, a buildpack store, order.toml), and its phases run
as the unprivileged user the lifecycle insists on, on this machine's CPU or, for another
architecture, in a container of that architecture's root under emulation.

scripts/install/lifecycle.sh builds the lifecycle (for this machine and for linux/arm64)
and creates the `cnb` user; tests/buildpacks/cpython stands in for a Python buildpack.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import REPO

LIFECYCLE = REPO / ".cache" / "cnb" / "lifecycle"
LIFECYCLE_ARM64 = REPO / ".cache" / "cnb" / "lifecycle-arm64"
BUILDPACK = REPO / "buildpack"
CPYTHON = REPO / "tests" / "buildpacks" / "cpython"
BP_ID, BP_VERSION = "servestatic/static-origin", "0.1.0"
PY_ID, PY_VERSION = "test/cpython", "0.0.1"
BP_LAYERS = BP_ID.replace("/", "_")
PLATFORM_API = "0.13"
CNB_USER = "cnb"


@dataclass(frozen=True)
class Emulated:
    """Another architecture's build image and lifecycle: `podman run --platform` of the
    image (qemu-user through binfmt_misc, scripts/install/qemu.sh), the lifecycle mounted
    at /cnb/lifecycle as a builder image holds it."""

    platform: str  # linux/arm64
    image: str  # a root with the Python the stand-in provides (scripts/image-base.sh ARCH)
    lifecycle: Path  # that architecture's lifecycle binaries (scripts/install/lifecycle.sh)

    def command(self, workspace: Workspace, phase: str, args: tuple[str, ...],
                env: dict[str, str]) -> list[str]:
        owner = workspace.user
        user = [] if owner is None else ["--user", f"{owner.pw_uid}:{owner.pw_gid}"]
        mounts = [f"{workspace.root}:{workspace.root}", f"{workspace.store}:{workspace.store}:ro",
                  f"{self.lifecycle.resolve()}:/cnb/lifecycle:ro"]
        return ["podman", "run", "--rm", "--platform", self.platform, "--network", "none", *user,
                *[option for mount in mounts for option in ("--volume", mount)],
                "--workdir", os.fspath(workspace.root),
                *[option for item in env.items() for option in ("--env", "=".join(item))],
                self.image, f"/cnb/lifecycle/{phase}", *args]


@dataclass
class Workspace:
    """One platform's view of a build: the directories the lifecycle phases take.

    With `emulated`, each phase runs in a container of that build image instead (the
    arm64 lifecycle in the arm64 root, under qemu through binfmt_misc), with the workspace
    and the store mounted at the same paths, as the same unprivileged user, no network.
    """

    root: Path
    user: pwd.struct_passwd | None
    store: Path
    group: list[tuple[str, str]] = field(default_factory=lambda: [(PY_ID, PY_VERSION), (BP_ID, BP_VERSION)])
    emulated: Emulated | None = None

    @property
    def app(self) -> Path:
        return self.root / "app"

    @property
    def layers(self) -> Path:
        return self.root / "layers"

    @property
    def platform(self) -> Path:
        return self.root / "platform"

    def setup(self) -> Workspace:
        for directory in (self.app, self.layers, self.platform / "env"):
            directory.mkdir(parents=True, exist_ok=True)
        order = ["[[order]]"]
        for bp_id, version in self.group:
            order += ["[[order.group]]", f'id = "{bp_id}"', f'version = "{version}"']
        (self.root / "order.toml").write_text("\n".join(order) + "\n")
        return self

    def set_env(self, name: str, value: str) -> None:
        """A build-time variable as a platform passes it (pack --env, project.toml)."""
        (self.platform / "env" / name).write_text(value)

    def hand_over(self) -> None:
        """Give the unprivileged user the directories the phases write to."""
        if self.user is None:
            return
        for path in [self.root, *self.root.rglob("*")]:
            os.lchown(path, self.user.pw_uid, self.user.pw_gid)

    def as_user(self, command: list[str]) -> list[str]:
        if self.user is None:
            return command
        return ["setpriv", f"--reuid={self.user.pw_uid}", f"--regid={self.user.pw_gid}",
                "--clear-groups", *command]

    def phase(self, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        self.hand_over()
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "CNB_PLATFORM_API": PLATFORM_API, "LANG": "C.UTF-8"}
        if self.emulated is None:
            command = self.as_user([os.fspath(LIFECYCLE / name), *args])
            timeout = 300
        else:
            command = self.emulated.command(self, name, args, env)
            timeout = 900
        result = subprocess.run(command, cwd=self.root, env=env, text=True, timeout=timeout,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if check:
            assert result.returncode == 0, f"{name} failed ({result.returncode}):\n{result.stdout}"
        return result

    def detect(self, check: bool = True, debug: bool = False) -> subprocess.CompletedProcess[str]:
        """`debug` also shows what each buildpack's bin/detect printed."""
        return self.phase(
            "detector", *(["-log-level", "debug"] if debug else []),
            "-app", "app", "-buildpacks", os.fspath(self.store), "-order", "order.toml",
            "-group", "layers/group.toml", "-plan", "layers/plan.toml", "-layers", "layers",
            "-platform", "platform", check=check)

    def build(self, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.phase(
            "builder", "-app", "app", "-buildpacks", os.fspath(self.store), "-group", "layers/group.toml",
            "-plan", "layers/plan.toml", "-layers", "layers", "-platform", "platform", check=check)

    def plan(self) -> dict:
        return tomllib.loads((self.layers / "plan.toml").read_text())

    def group_ids(self) -> list[str]:
        """The buildpacks that passed detection, in order."""
        return [bp["id"] for bp in tomllib.loads((self.layers / "group.toml").read_text())["group"]]

    def layer_toml(self, name: str) -> dict:
        return tomllib.loads((self.layers / BP_LAYERS / f"{name}.toml").read_text())


def compress_summaries(build_output: str) -> list[dict]:
    """The summaries bin/build prints for the `servestatic compress` it ran, one per root."""
    marker = "servestatic: compress summary "
    return [json.loads(line[len(marker):]) for line in build_output.splitlines() if line.startswith(marker)]


def compress_summary(build_output: str) -> dict:
    """The summary of a build with one static root."""
    summaries = compress_summaries(build_output)
    assert len(summaries) == 1, build_output
    return summaries[0]


def totals(summary: dict, key: str) -> int:
    return sum(stats[key] for stats in summary["encodings"].values())
