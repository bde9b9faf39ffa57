"""Task cgroups on this machine's real kernel (cgroup v1 here; v2 elsewhere): a memory limit the
kernel enforces and counts, a process limit, CPU of a process that left its session, and a
kill that takes every member. Skipped, saying why, where cgroups cannot be made (not root)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from wanhe.sandbox import cgroup

pytestmark = [pytest.mark.timeout(60)]

why = cgroup.available()
if why is not None:
    pytest.skip(why, allow_module_level=True)


@pytest.fixture
def group() -> Iterator[cgroup.TaskCgroup]:
    made = cgroup.TaskCgroup.create("test-cgroup", memory_bytes=64 * 2**20, pids_max=40)
    yield made
    made.remove()
    assert not any(folder.exists() for folder in made.folders.values())


def run_in(group: cgroup.TaskCgroup, script: str) -> subprocess.Popen[bytes]:
    enter = "; ".join(f"echo $$ > {f}" for f in group.attach_files())
    return subprocess.Popen(["/bin/sh", "-c", f"{enter}; exec {script}"],
                            stderr=subprocess.DEVNULL)


def test_memory_past_the_limit_is_an_oom_kill_with_its_peak(group: cgroup.TaskCgroup) -> None:
    hog = run_in(group, f"{sys.executable} -c 'b = bytearray(256 * 2**20)'")
    assert hog.wait(30) == -9
    assert group.oom_kills() == 1
    assert 48 * 2**20 <= group.peak_memory() <= 64 * 2**20


def test_a_setsid_daemon_is_killed_and_its_cpu_counted(group: cgroup.TaskCgroup) -> None:
    starter = run_in(group, "sh -c \"setsid sh -c 'while :; do :; done' & sleep 0.1\"")
    assert starter.wait(10) == 0  # the task ended; its daemon has left the session
    deadline = time.monotonic() + 30  # the daemon's spinning, on a shared (loaded) machine
    while group.cpu_s() < 0.3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert group.cpu_s() >= 0.3  # metered to the task though it left the task's session
    assert len(group.pids()) == 1
    assert group.kill_all(5.0)
    assert group.pids() == []


def test_forks_past_pids_max_are_refused(group: cgroup.TaskCgroup) -> None:
    forks = run_in(group, "sh -c 'for i in $(seq 100); do sleep 20 & done; wait'")
    time.sleep(1.5)
    assert len(group.pids()) <= 40
    assert group.pids_refused() > 0
    assert group.kill_all(5.0)
    forks.wait(10)


def test_a_raised_limit_is_kept_and_peak_resets(group: cgroup.TaskCgroup) -> None:
    group.set_memory(256 * 2**20)
    hog = run_in(group, f"{sys.executable} -c 'b = bytearray(128 * 2**20)'")
    assert hog.wait(30) == 0 and group.oom_kills() == 0
    assert group.peak_memory() >= 128 * 2**20
    group.reset_peak()
    assert group.peak_memory() < 128 * 2**20


def dead_pid() -> int:
    gone = subprocess.Popen(["true"])
    gone.wait()
    return gone.pid


def test_a_dead_workers_nested_cgroups_are_swept_at_start() -> None:
    """An older worker's layout left a task cgroup inside a contained worker's cgroup; both
    makers are dead. The sweep removes both (an rmdir of the outer one alone always failed,
    and every later command waited ~1 s per folder on it: the sandbox's +53 % on a local
    render)."""
    found = cgroup.layout()
    assert not isinstance(found, str)
    outer = f"{dead_pid()}-inproc-w0"
    inner = f"{dead_pid()}-blender-w1"
    for base in found.bases.values():
        (base / outer / cgroup.PARENT / inner).mkdir(parents=True)
    cgroup._sweep(found)
    assert not any((base / outer).exists() for base in found.bases.values())


def test_a_process_inside_a_task_cgroup_makes_its_own_beside_it(
        group: cgroup.TaskCgroup) -> None:
    """A worker's child (or a process of a contained worker) makes its cgroups under the
    farm's folder, not inside the cgroup it runs in (which would count them against that
    cgroup's memory limit)."""
    script = ("from wanhe.sandbox import cgroup; g = cgroup.TaskCgroup.create('child'); "
              "print(*sorted(str(f.parent) for f in g.folders.values())); g.remove()")
    made = subprocess.run(
        ["/bin/sh", "-c", "; ".join(f"echo $$ > {f}" for f in group.attach_files())
         + f"; exec {sys.executable} -c \"{script}\""],
        capture_output=True, text=True, timeout=30, check=True).stdout.split()
    assert made == sorted(str(f.parent) for f in group.folders.values())


def test_a_cgroup_path_is_taken_from_above_ours() -> None:
    assert cgroup.outside_ours("/") == ""
    assert cgroup.outside_ours("/system.slice/farm.service") == "system.slice/farm.service"
    assert cgroup.outside_ours("/system.slice/farm.service/wanhe/812-inproc-w0") == \
        "system.slice/farm.service"


HOG = """
import sys
from wanhe.sandbox.box import contain_this_process, in_process_cgroup
assert contain_this_process(in_process_cgroup("oomtest"), 64 * 2**20)
hog = bytearray(512 * 2**20)
"""


def test_a_contained_worker_killed_for_memory_is_told_with_its_limit() -> None:
    """A worker running tasks in-process (diffusion) grows past its cgroup's limit: the
    kernel kills it, and the dispatcher, finding the dead worker's cgroup, reports the task
    out of memory naming the limit, not a lost worker."""
    from wanhe.sandbox.box import in_process_cgroup, killed_for_memory

    worker = subprocess.Popen([sys.executable, "-c", HOG], stderr=subprocess.DEVNULL)
    assert worker.wait(60) == -9
    found = killed_for_memory(worker.pid, in_process_cgroup("oomtest"))
    try:
        assert found is not None and found.limit == 64 * 2**20
        assert "used more than its 64 MiB memory limit" in found.reason()
        assert killed_for_memory(worker.pid, in_process_cgroup("another")) is None
        assert killed_for_memory(dead_pid(), in_process_cgroup("oomtest")) is None
    finally:
        layout = cgroup.layout()
        assert not isinstance(layout, str)
        cgroup.TaskCgroup(cgroup.folder_name(worker.pid, in_process_cgroup("oomtest")),
                          layout).remove()


UNIFIED = cgroup.ROOT / "unified"


@pytest.fixture
def v2_group() -> Iterator[cgroup.TaskCgroup]:
    """A cgroup v2 task cgroup on this machine's hybrid `unified` hierarchy, which has no
    memory/pids/cpu controllers (they are v1's here): the v2 paths that need none — joining,
    listing, freezing, `cgroup.kill`, CPU from `cpu.stat`, removal — run on the real kernel;
    the v2 limits (memory.max, pids.max, memory.peak) cannot be tested on this machine."""
    if not (UNIFIED / "cgroup.procs").exists():
        pytest.skip("no hybrid cgroup v2 hierarchy at /sys/fs/cgroup/unified")
    own = cgroup._own_paths().get("", "/")
    base = UNIFIED / cgroup.outside_ours(own) / cgroup.PARENT
    base.mkdir(exist_ok=True)
    made = cgroup.TaskCgroup(cgroup.folder_name(os.getpid(), "v2test"),
                             cgroup._Layout(2, {"": base}))
    made.folders[""].mkdir()
    yield made
    made.remove()
    assert not made.folders[""].exists()


def test_v2_kill_takes_a_setsid_daemon_and_its_cpu_is_counted(
        v2_group: cgroup.TaskCgroup) -> None:
    starter = run_in(v2_group, "sh -c \"setsid sh -c 'while :; do :; done' & sleep 0.1\"")
    assert starter.wait(10) == 0
    deadline = time.monotonic() + 30
    while v2_group.cpu_s() < 0.2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert v2_group.cpu_s() >= 0.2  # cpu.stat's usage_usec, present without the controller
    assert len(v2_group.pids()) == 1
    assert v2_group.kill_all(5.0)  # cgroup.kill (Linux 5.14+), else freeze and SIGKILL
    assert v2_group.pids() == []
    assert v2_group.memory_limit() is None and v2_group.oom_kills() == 0
    again = run_in(v2_group, "sh -c 'while :; do :; done'")
    deadline = time.monotonic() + 10
    while not v2_group.pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert v2_group.kill(v2_group.pids(), 5.0)  # the freeze (cgroup.freeze), SIGKILL, thaw
    assert again.wait(10) == -9 and v2_group.pids() == []
