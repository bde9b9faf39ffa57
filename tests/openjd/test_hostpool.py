"""Session hosts started ahead (`wanhe.openjd.hostpool`): the OpenJD executor adopts one for a
local session (its folder, log and memory limit the session's), runs the job's environments
and tasks in it as in a host of its own, and never adopts one started with another
environment; the hosts nobody adopted are killed with their cgroups."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.openjd._util import as_request, compiled, env, step, template
from wanhe.engine.executors.openjd import OpenJDExecutor
from wanhe.engine.worker import FarmWorker
from wanhe.openjd import hostpool

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def worker() -> Iterator[FarmWorker]:
    w = FarmWorker("w1", node="n1", gpu_ids=())
    yield w
    w.shutdown()
    hostpool.close()


def _executor(worker: FarmWorker) -> OpenJDExecutor:
    found = worker.executor("openjd")
    assert isinstance(found, OpenJDExecutor)
    return found


def test_a_local_session_adopts_a_host_started_ahead(worker: FarmWorker, tmp_path: Path) -> None:
    log = tmp_path / "events.log"
    doc = template(job_envs=[env("E", f"echo enter >> {log}", f"echo exit >> {log}")],
                   steps=[step("S", f"echo run {{{{Task.Param.F}}}} >> {log}",
                               params=[{"name": "F", "type": "INT", "range": "1-2"}])])
    tasks = compiled(doc, {}, tmp_path)
    assert hostpool.start_ahead(1) == 1
    ahead = hostpool._ready[0]
    placeholder = ahead.box.spec
    for task in tasks:
        result = worker.run(as_request(task, tmp_path))
        assert result["ok"], result
    session = _executor(worker)._session
    assert session is not None and session.proc is ahead.proc and hostpool.waiting() == 0
    if session.box.group is not None:  # moved into its own cgroup before its session opened
        assert ahead.proc.pid in session.box.pids()
    root = Path(tasks[0].payload["sessions"]) / "wanhe-p-local"
    assert Path(os.readlink(f"/proc/{ahead.proc.pid}/cwd")) == root  # its session's folder
    assert (root / "host.log").exists()
    assert session.box.name.startswith("openjd-w1-")  # the session's sandbox spec now
    assert root in session.box.spec.writable and session.box.spec is not placeholder
    worker.release(result["warm"])
    assert ahead.proc.wait(10) == 0
    assert log.read_text().splitlines() == ["enter", "run 1", "run 2", "exit"]


def test_a_host_started_with_another_environment_is_not_adopted(
    worker: FarmWorker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    tasks = compiled(template(steps=[step("S", "echo hi")]), {}, tmp_path)
    assert hostpool.start_ahead(1) == 1
    ahead = hostpool._ready[0]
    monkeypatch.setenv("WANHE_HOSTPOOL_TEST", "changed")  # the session's env differs now
    assert worker.run(as_request(tasks[0], tmp_path))["ok"]
    session = _executor(worker)._session
    assert session is not None and session.proc is not ahead.proc
    assert ahead.proc.poll() is not None  # killed, with its cgroup
    assert not ahead.box.pids()


def test_hosts_nobody_adopted_are_killed_with_their_cgroups() -> None:
    assert hostpool.start_ahead(2) == 2
    assert hostpool.start_ahead(1) == 1  # a second call never takes the first's cgroup
    hosts = list(hostpool._ready)
    assert len({host.box.name for host in hosts}) == 3 and hosts[0].proc.poll() is None
    # one spawner (one import of openjd) a call, however many hosts it forks
    assert hosts[0].proc.spawner is hosts[1].proc.spawner is not hosts[2].proc.spawner
    hostpool.close()
    assert hostpool.waiting() == 0
    for host in hosts:
        assert host.proc.poll() is not None
        if host.box.group is not None:
            assert not any(folder.exists() for folder in host.box.group.folders.values())


def test_without_cgroups_a_session_still_adopts_a_forked_host(
    worker: FarmWorker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The laptop's case (not root: the sandbox is off, no cgroups)."""
    from wanhe.sandbox import box

    monkeypatch.setattr(box, "_mode", box.Mode(False, None, False, "not running as root"))
    tasks = compiled(template(steps=[step("S", "echo hi")]), {}, tmp_path)
    assert hostpool.start_ahead(2) == 2
    first = hostpool._ready[0]
    assert first.box.group is None
    assert worker.run(as_request(tasks[0], tmp_path))["ok"]
    session = _executor(worker)._session
    assert session is not None and session.proc is first.proc and hostpool.waiting() == 1
