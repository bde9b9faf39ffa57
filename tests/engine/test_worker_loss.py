"""A worker lost to anything is replaced and its attempt requeued as lost; the farm keeps
serving, and a farm that cannot get its workers back says why.

A real embedded Ray (the session's `ray_local`) and real worker actors. A worker's process is
killed with SIGKILL mid-task. Ray's own out-of-memory killer cannot be triggered safely and in
bounded time on a shared test machine (it acts only when the whole node is past 95 % of its
RAM), so its *exception* is simulated where it enters the dispatcher: the worker handle's
future raises `ray.exceptions.OutOfMemoryError`, as Ray's does, while the real actor behind it
is still alive (the dispatcher must kill and replace it all the same).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from ray.exceptions import OutOfMemoryError

from wanhe.engine.dispatcher import Dispatcher
from wanhe.engine.handles import RayWorker
from wanhe.model import JobState, TaskKind, TaskSpec
from wanhe.store.store import Store

pytestmark = [pytest.mark.usefixtures("ray_local"), pytest.mark.timeout(180)]

OOM_TEXT = ("Task was killed due to the node running low on memory. Memory on the node was "
            "19.70GB / 20.00GB (0.985), which exceeds the memory usage threshold of 0.95.")


def ray_oom() -> BaseException:
    """What Ray raises for a call whose worker its memory monitor killed."""
    return OutOfMemoryError(OOM_TEXT)  # type: ignore[no-untyped-call]


def noop_job(store: Store, n: int = 1, sleep_s: float = 0.0) -> int:
    project = store.ensure_project("local")
    tasks = [TaskSpec(f"n{i}", TaskKind.NOOP, {"sleep_s": sleep_s}) for i in range(n)]
    return store.create_job(project_id=project.id, name="noop", kind="noop", spec={},
                            fingerprint=f"noop-{time.monotonic_ns()}", tasks=tasks)


@pytest.fixture
def dispatcher(store: Store, tmp_path: Path) -> Iterator[Dispatcher]:
    made = Dispatcher(store, threads=1, workers=1, log_root=tmp_path / "logs")
    made.start_pool()
    made.pool.admit_pending(timeout=60)
    try:
        yield made
    finally:
        made.close()


def run_in_thread(dispatcher: Dispatcher, job: int) -> threading.Thread:
    runner = threading.Thread(target=dispatcher.run_jobs, args=([job],), daemon=True)
    runner.start()
    return runner


def wait_until(check: Any, limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        assert time.monotonic() < deadline, f"not within {limit_s} s: {what}"
        time.sleep(0.05)


def render_slots(dispatcher: Dispatcher) -> list[str]:
    """The render workers, once the replacements being started are up."""
    dispatcher.pool.admit_pending(timeout=60)
    return [s.name for s in dispatcher.slots if not s.light]


def failed_future(exc: BaseException) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_exception(exc)
    return future


def test_a_worker_killed_mid_task_is_replaced_and_the_next_job_runs(
    store: Store, dispatcher: Dispatcher
) -> None:
    job = noop_job(store, sleep_s=60)
    runner = run_in_thread(dispatcher, job)
    wait_until(lambda: any(s.busy for s in dispatcher.slots), 30, "the task starts")
    busy = next(s for s in dispatcher.slots if s.busy)
    pid = int(busy.worker.call("ready").result(timeout=10)["pid"])
    os.kill(pid, signal.SIGKILL)
    # the attempt is lost and retried on a fresh worker: stop the retry (it sleeps 60 s)
    wait_until(lambda: len(store.attempts(job)) >= 2, 60, "the task runs again")
    store.cancel_job(job)
    dispatcher.poke()
    runner.join(30)
    assert not runner.is_alive()
    first, second = store.attempts(job)[:2]
    assert first["outcome"] == "lost"
    assert f"worker {busy.name}" in str(first["message"]) and "died" in str(first["message"])
    assert second["worker"] != busy.name
    assert busy.name not in render_slots(dispatcher) and len(render_slots(dispatcher)) == 1

    after = noop_job(store, n=3)
    dispatcher.run_jobs([after])
    assert store.job(after).state is JobState.DONE  # type: ignore[union-attr]


def test_rays_out_of_memory_kill_replaces_the_worker_and_the_task_runs_again(
    store: Store, dispatcher: Dispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    # simulated at the boundary (see the module doc): the first run answers as Ray's OOM kill
    real_call = RayWorker.call
    calls = {"run": 0}

    def call(self: RayWorker, method: str, *args: Any) -> Future[Any]:
        if method == "run":
            calls["run"] += 1
            if calls["run"] == 1:
                return failed_future(ray_oom())
        return real_call(self, method, *args)

    monkeypatch.setattr(RayWorker, "call", call)
    before = render_slots(dispatcher)
    job = noop_job(store)
    dispatcher.run_jobs([job])
    assert store.job(job).state is JobState.DONE  # type: ignore[union-attr]
    lost, done = store.attempts(job)
    assert lost["outcome"] == "lost" and "out-of-memory killer" in str(lost["message"])
    assert done["outcome"] == "ok" and done["worker"] != lost["worker"]
    assert render_slots(dispatcher) != before and len(render_slots(dispatcher)) == 1


def test_a_task_that_keeps_losing_workers_fails_with_why_and_the_farm_still_serves(
    store: Store, dispatcher: Dispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_call = RayWorker.call

    def call(self: RayWorker, method: str, *args: Any) -> Future[Any]:
        if method == "run":
            return failed_future(ray_oom())
        return real_call(self, method, *args)

    monkeypatch.setattr(RayWorker, "call", call)
    job = noop_job(store)
    dispatcher.run_jobs([job])
    failed = store.job(job)
    assert failed is not None and failed.state is JobState.FAILED
    assert failed.message.startswith("task n0 was lost 6 time(s)")
    assert "out-of-memory killer" in failed.message
    assert len(render_slots(dispatcher)) == 1  # replaced every time, never left empty

    monkeypatch.setattr(RayWorker, "call", real_call)
    after = noop_job(store, n=2)
    dispatcher.run_jobs([after])
    assert store.job(after).state is JobState.DONE  # type: ignore[union-attr]


def test_workers_that_cannot_be_replaced_fail_the_job_saying_why(
    store: Store, dispatcher: Dispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_call = RayWorker.call

    def call(self: RayWorker, method: str, *args: Any) -> Future[Any]:
        if method == "run":
            return failed_future(ray_oom())
        if method == "ready":  # every replacement fails to start (its node is gone)
            return failed_future(RuntimeError("the node has no memory left for a worker"))
        return real_call(self, method, *args)

    monkeypatch.setattr(RayWorker, "call", call)
    job = noop_job(store)
    runner = run_in_thread(dispatcher, job)
    runner.join(60)
    assert not runner.is_alive(), "the job waits silently on a farm with no workers"
    failed = store.job(job)
    assert failed is not None and failed.state is JobState.FAILED
    assert "cannot run on this farm" in failed.message
    assert "worker start(s) in a row failed" in failed.message
    assert "no memory left for a worker" in failed.message


def test_a_cancelled_task_that_ignores_its_cancel_is_stopped_by_replacing_its_worker(
    store: Store, dispatcher: Dispatcher
) -> None:
    dispatcher.cancel_grace_s = 1.0
    project = store.ensure_project("local")
    job = store.create_job(project_id=project.id, name="hang", kind="noop", spec={},
                           fingerprint=f"hang-{time.monotonic_ns()}",
                           tasks=[TaskSpec("h", TaskKind.NOOP, {"hang_s": 120})])
    runner = run_in_thread(dispatcher, job)
    wait_until(lambda: any(s.busy for s in dispatcher.slots), 30, "the task starts")
    hung = next(s for s in dispatcher.slots if s.busy).name
    store.cancel_job(job)
    cancelled = time.monotonic()
    dispatcher.poke()
    runner.join(30)
    assert not runner.is_alive()
    assert time.monotonic() - cancelled < 15  # not the task's 120 s
    (attempt,) = store.attempts(job)
    assert attempt["outcome"] == "cancelled" and "did not stop within 1 s" in attempt["message"]
    assert hung not in render_slots(dispatcher) and len(render_slots(dispatcher)) == 1
    after = noop_job(store, n=2)
    dispatcher.run_jobs([after])
    assert store.job(after).state is JobState.DONE  # type: ignore[union-attr]


def test_a_worker_its_cgroup_killed_for_memory_is_out_of_memory_with_the_limit(
    store: Store, dispatcher: Dispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker running a task in-process (diffusion) past its own cgroup's limit is killed
    by the kernel. The kernel's verdict (the dead worker's cgroup counting an oom kill) is
    simulated here — tests/sandbox/test_cgroup.py reads it from a real cgroup — the worker's
    death is real (SIGKILL): the attempt is out of memory, naming the limit, not lost."""
    from wanhe.sandbox import box

    job = noop_job(store, sleep_s=60)
    runner = run_in_thread(dispatcher, job)
    wait_until(lambda: any(s.busy for s in dispatcher.slots), 30, "the task starts")
    busy = next(s for s in dispatcher.slots if s.busy)
    pid = int(busy.worker.call("ready").result(timeout=10)["pid"])
    asked: list[tuple[int, str]] = []

    def verdict(dead: int, name: str) -> box.KilledForMemory | None:
        asked.append((dead, name))
        return box.KilledForMemory(4 * 2**30, 4 * 2**30) if dead == pid else None

    monkeypatch.setattr(box, "killed_for_memory", verdict)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: len(store.attempts(job)) >= 1 and store.attempts(job)[0]["outcome"],
               60, "the attempt ends")
    store.cancel_job(job)
    dispatcher.poke()
    runner.join(30)
    first = store.attempts(job)[0]
    assert asked == [(pid, box.in_process_cgroup(busy.name))]
    assert first["outcome"] == "out_of_memory"
    assert "used more than its 4.0 GiB memory limit" in str(first["message"])
    assert busy.name not in render_slots(dispatcher)  # replaced all the same
