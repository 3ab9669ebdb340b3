"""The default worker count: the CPUs a process may really use.

The cgroup files are fed from a temporary /proc and cgroup tree in the kernel's
formats; the scheduler affinity and (where this machine lets us make a cgroup)
a real CFS quota are applied to real subprocesses, a real server among them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from servestatic.config.cpus import affinity_cpus, available_cpus, cgroup_cpu_quota
from tests.support.cli import compress, environment
from tests.support.server import ServerProcess

V2_MOUNT = "41 31 0:38 {root} {point} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
V1_CPU_MOUNT = "32 31 0:29 {root} {point} rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
V1_OTHER_MOUNT = "35 31 0:32 / {point} rw,relatime - cgroup cgroup rw,memory\n"


def fake_proc(tmp_path: Path, cgroup: str, mountinfo: str) -> Path:
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "cgroup").write_text(cgroup)
    (proc / "self" / "mountinfo").write_text(mountinfo)
    return proc


def write(directory: Path, **files: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (directory / name.replace("_", ".", 1)).write_text(content + "\n")


def test_v2_quota_in_a_cgroup_namespace(tmp_path: Path) -> None:
    mount = tmp_path / "cgroup"
    write(mount, cpu_max="150000 100000")
    proc = fake_proc(tmp_path, "0::/\n", V2_MOUNT.format(root="/", point=mount))
    assert cgroup_cpu_quota(proc) == 1.5


def test_v2_max_is_no_quota(tmp_path: Path) -> None:
    mount = tmp_path / "cgroup"
    write(mount, cpu_max="max 100000")
    proc = fake_proc(tmp_path, "0::/\n", V2_MOUNT.format(root="/", point=mount))
    assert cgroup_cpu_quota(proc) is None


def test_v2_the_tightest_ancestor_wins(tmp_path: Path) -> None:
    """A pod-level limit above the container's cgroup binds the container too."""
    mount = tmp_path / "cgroup"
    write(mount, cpu_max="max 100000")
    write(mount / "kubepods" / "pod1", cpu_max="100000 100000")
    write(mount / "kubepods" / "pod1" / "ctr", cpu_max="400000 100000")
    proc = fake_proc(tmp_path, "0::/kubepods/pod1/ctr\n", V2_MOUNT.format(root="/", point=mount))
    assert cgroup_cpu_quota(proc) == 1.0
    assert available_cpus(proc) == 1


def test_v2_without_a_cgroup_namespace(tmp_path: Path) -> None:
    """The mount shows only the container's own part of the hierarchy (its root is not /)."""
    mount = tmp_path / "cgroup"
    write(mount, cpu_max="200000 100000")
    proc = fake_proc(tmp_path, "0::/system.slice/docker-abc.scope\n",
                     V2_MOUNT.format(root="/system.slice/docker-abc.scope", point=mount))
    assert cgroup_cpu_quota(proc) == 2.0


def test_v1_cfs_quota(tmp_path: Path) -> None:
    cpu = tmp_path / "cgroup" / "cpu,cpuacct"
    write(cpu / "docker" / "abc", cpu_cfs_quota_us="50000", cpu_cfs_period_us="100000")
    write(cpu / "docker", cpu_cfs_quota_us="-1", cpu_cfs_period_us="100000")
    # A quota-looking file under another controller's mount is not read.
    write(tmp_path / "cgroup" / "memory" / "docker" / "abc", cpu_cfs_quota_us="10000",
          cpu_cfs_period_us="100000")
    proc = fake_proc(
        tmp_path,
        "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n",
        V1_OTHER_MOUNT.format(point=tmp_path / "cgroup" / "memory")
        + V1_CPU_MOUNT.format(root="/", point=cpu),
    )
    assert cgroup_cpu_quota(proc) == 0.5
    assert available_cpus(proc) == 1  # rounded up, never 0


def test_v1_minus_one_is_no_quota(tmp_path: Path) -> None:
    cpu = tmp_path / "cgroup" / "cpu"
    write(cpu, cpu_cfs_quota_us="-1", cpu_cfs_period_us="100000")
    proc = fake_proc(tmp_path, "3:cpu:/\n", V1_CPU_MOUNT.format(root="/", point=cpu))
    assert cgroup_cpu_quota(proc) is None
    assert available_cpus(proc) == affinity_cpus()


def test_fractional_quotas_round_up_but_never_exceed_the_affinity(tmp_path: Path) -> None:
    mount = tmp_path / "cgroup"
    write(mount, cpu_max=f"{100000 * 64 + 1} 100000")
    proc = fake_proc(tmp_path, "0::/\n", V2_MOUNT.format(root="/", point=mount))
    assert available_cpus(proc) == affinity_cpus()  # 64.00001 CPUs of quota, fewer cores


def test_no_cgroup_files_means_no_quota(tmp_path: Path) -> None:
    assert cgroup_cpu_quota(tmp_path / "nowhere") is None
    proc = fake_proc(tmp_path, "0::/\n", "")  # cgroup listed, nothing mounted
    assert cgroup_cpu_quota(proc) is None


# --- real processes ---------------------------------------------------------------

ENV = environment()
PRINT_CPUS = "from servestatic.config.cpus import available_cpus; print(available_cpus())"


def one_cpu() -> int:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("this machine lets the process use one CPU only: a restriction would change nothing")
    return cpus[-1]


def test_affinity_of_a_real_process() -> None:
    pinned = subprocess.run(
        [sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{one_cpu()}}}); {PRINT_CPUS}"],
        capture_output=True, text=True, env=ENV, check=True)
    assert pinned.stdout.strip() == "1"
    free = subprocess.run([sys.executable, "-c", PRINT_CPUS], capture_output=True, text=True,
                          env=ENV, check=True)
    assert free.stdout.strip() == str(len(os.sched_getaffinity(0)))


def worker_pids(server: ServerProcess) -> list[int]:
    assert server.process is not None
    pid = server.process.pid
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_a_server_pinned_to_one_cpu_starts_one_worker(site: Path) -> None:
    """WEB_CONCURRENCY unset: the default follows the CPUs; pinned, it is one worker."""
    cpu = one_cpu()
    compress(site)
    free = ServerProcess(site)
    del free.env["WEB_CONCURRENCY"]
    with free as server:
        assert f"workers: {len(os.sched_getaffinity(0))} " in server.log()
    taskset = ServerProcess(site)
    del taskset.env["WEB_CONCURRENCY"]
    taskset.args = [sys.executable, "-c",
                    f"import os, sys; os.sched_setaffinity(0, {{{cpu}}}); "
                    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])", *taskset.args[1:]]
    with taskset as server:
        assert "workers: 1 " in server.log()
        assert len(worker_pids(server)) == 1


@pytest.fixture
def cpu_cgroup() -> Iterator[Path]:
    """A real child cgroup with a quota of half a CPU, where this machine allows making one.

    Needs a writable cgroup file system (root, or a delegated subtree); the fake-file tests
    above and the image test's `--cpus` run cover the same code where it is not.
    """
    from servestatic.config.cpus import PROC, _cpu_cgroup_directories

    own = _cpu_cgroup_directories((PROC / "self" / "cgroup").read_text(),
                                  (PROC / "self" / "mountinfo").read_text())
    for directory, _mount in own:
        child = directory / f"servestatic-test-{uuid.uuid4().hex[:8]}"
        try:
            child.mkdir()
        except OSError:
            continue
        try:
            if (child / "cpu.max").exists():
                (child / "cpu.max").write_text("50000 100000")
            else:
                (child / "cpu.cfs_quota_us").write_text("50000")
        except OSError:
            child.rmdir()
            continue
        try:
            yield child
        finally:
            child.rmdir()
        return
    pytest.skip("no writable cgroup with the cpu controller on this machine")


def test_a_real_cgroup_quota(cpu_cgroup: Path) -> None:
    joined = subprocess.run(
        [sys.executable, "-c",
         f"import os; open({str(cpu_cgroup / 'cgroup.procs')!r}, 'w').write(str(os.getpid())); "
         f"from servestatic.config.cpus import cgroup_cpu_quota; print(cgroup_cpu_quota()); {PRINT_CPUS}"],
        capture_output=True, text=True, env=ENV, check=True)
    assert joined.stdout.split() == ["0.5", "1"]
