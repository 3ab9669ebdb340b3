"""How many CPUs this process may really use: the default number of workers.

`os.cpu_count()` counts the host's cores. In a container limited to 2 CPUs on a
64-core node (Kubernetes limits, ECS, Cloud Run, `docker run --cpus 2`) that
would start 64 workers and run out of memory. The limits a process is under are
the scheduler affinity (cpusets, `taskset`) and the CFS bandwidth quota of its
cgroup and of every cgroup above it: cgroup v2's `cpu.max`, cgroup v1's
`cpu.cfs_quota_us` / `cpu.cfs_period_us`. A fractional quota is rounded up (a
1.5-CPU limit can keep two workers busy, as Go's and Java's runtimes also
decide). Python 3.13's `os.process_cpu_count()` covers the affinity only.

No library does this for Python (psutil counts affinity, not quotas), so the
few files are read here, the way the kernel documents them.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

PROC = Path("/proc")


def available_cpus(proc: Path = PROC) -> int:
    """CPUs this process may use: affinity and cgroup quota, whichever is lower; at least 1."""
    count = affinity_cpus()
    quota = cgroup_cpu_quota(proc)
    if quota is not None:
        count = min(count, math.ceil(quota))
    return max(1, count)


def affinity_cpus() -> int:
    """CPUs the scheduler lets this process run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cgroup_cpu_quota(proc: Path = PROC) -> float | None:
    """The tightest CFS quota over this process's cgroup and its ancestors, in CPUs.

    None when there is no quota (or no cgroup file system to read).
    """
    try:
        memberships = (proc / "self" / "cgroup").read_text()
        mounts = (proc / "self" / "mountinfo").read_text()
    except OSError:
        return None
    quotas = [quota for directory in _cpu_cgroup_directories(memberships, mounts)
              for quota in _quotas_up_to_mount(*directory)]
    return min(quotas, default=None)


def _cpu_cgroup_directories(memberships: str, mounts: str) -> list[tuple[Path, Path]]:
    """(cgroup directory, mount point) of this process for the v2 hierarchy and v1's cpu controller.

    /proc/self/cgroup lines are `ID:CONTROLLERS:PATH` (v2: `0::PATH`); the PATH is
    relative to the hierarchy's root, which is mounted at a mount point whose own root
    (field 4 of /proc/self/mountinfo) may be a subdirectory of it, as in a container
    without its own cgroup namespace.
    """
    found: list[tuple[Path, Path]] = []
    for line in memberships.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            wanted = ("cgroup2", None)
        elif "cpu" in controllers.split(","):
            wanted = ("cgroup", "cpu")
        else:
            continue
        for mount_root, mount_point in _mounts(mounts, *wanted):
            relative = os.path.relpath(path, mount_root)
            if relative == ".." or relative.startswith("../"):
                continue  # this mount shows another part of the hierarchy
            found.append((Path(os.path.normpath(Path(mount_point) / relative)), Path(mount_point)))
            break
    return found


def _mounts(mounts: str, fstype: str, controller: str | None) -> list[tuple[str, str]]:
    """(root, mount point) of each mount of `fstype` (v1: carrying `controller`)."""
    found = []
    for line in mounts.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        separator = fields.index("-")
        if len(fields) < separator + 4 or fields[separator + 1] != fstype:
            continue
        if controller is not None and controller not in fields[separator + 3].split(","):
            continue
        found.append((_unescape(fields[3]), _unescape(fields[4])))
    return found


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (\\040 ...)."""
    for escaped, character in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(escaped, character)
    return field


def _quotas_up_to_mount(directory: Path, mount_point: Path) -> list[float]:
    """The quota of `directory` and of each parent up to the mount point, in CPUs."""
    quotas = []
    while True:
        quota = _quota(directory)
        if quota is not None:
            quotas.append(quota)
        if directory == mount_point or directory.parent == directory:
            return quotas
        directory = directory.parent


def _quota(directory: Path) -> float | None:
    try:
        limit, period = (directory / "cpu.max").read_text().split()  # v2: "max 100000", "50000 100000"
    except (OSError, ValueError):
        try:
            limit = (directory / "cpu.cfs_quota_us").read_text().strip()  # v1: -1 means none
            period = (directory / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return None
    try:
        quota, length = int(limit), int(period)
    except ValueError:
        return None  # "max"
    if quota <= 0 or length <= 0:
        return None
    return quota / length
