"""The dispatcher's sync follows the database incrementally: O(changes), not O(tasks).

Changes come from a second `Store` on the same database (what the API, `wanhe project` or
another process writes) and must reach the policy within one sync, with the slow-period full
resync switched off so that only the change tracking can carry them. A sync with nothing
changed costs one statement whatever the number of tasks; budgets block at their core-hours.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, update

from wanhe.engine import mirror as mirror_module
from wanhe.engine.dispatcher import SYNC_INTERVAL_S, Dispatcher, Running, Slot
from wanhe.model import JobState, Resources, TaskKind, TaskSpec, TaskState
from wanhe.store import tables as t
from wanhe.store.store import Store, Usage


@dataclass
class Farm:
    store: Store  # the dispatcher's connection
    other: Store  # another process's: the API, the CLI
    dispatcher: Dispatcher
    project_id: int

    def job(self, n: int, *, priority: int = 50, project_id: int | None = None,
            depends_on: tuple[int, ...] = (), sleep_s: float = 0.0) -> int:
        tasks = [TaskSpec(f"n{i:05d}", TaskKind.NOOP, {"sleep_s": sleep_s}) for i in range(n)]
        return self.other.create_job(
            project_id=project_id or self.project_id, name="noop", kind="noop", spec={},
            fingerprint=f"noop-{time.monotonic()}", tasks=tasks, priority=priority,
            depends_on=depends_on,
        )

    def queued_jobs(self) -> dict[int, int]:
        """{job id: tasks the policy holds for it}, paused jobs included."""
        counts: dict[int, int] = {}
        for task in self.dispatcher.mirror.queued.values():
            counts[int(task.job_id)] = counts.get(int(task.job_id), 0) + 1
        return counts


@pytest.fixture
def farm(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Farm]:
    # Only the first sync is a full one: the change tracking alone must carry every change.
    monkeypatch.setattr(mirror_module, "FULL_SYNC_INTERVAL_S", math.inf)
    store = Store(db_url)
    other = Store(db_url)
    project = other.create_project("lionboy")
    dispatcher = Dispatcher(store, workers=1, log_root=tmp_path / "logs")  # no Ray needed
    try:
        yield Farm(store, other, dispatcher, project.id)
    finally:
        other.dispose()
        store.dispose()


def next_job(dispatcher: Dispatcher) -> int | None:
    """The job whose task the policy would run next on a free core; the task stays queued."""
    task = dispatcher.policy.pick(Resources(cpus=1, memory=1 << 40))
    if task is None:
        return None
    dispatcher.policy.finished(task, 0.0)
    dispatcher.policy.push(task)
    return int(task.job_id)


class StatementCounter:
    def __init__(self, store: Store) -> None:
        self.count = 0
        event.listen(store.engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: Any) -> None:
        self.count += 1

    def during(self, action: Callable[[], None]) -> int:
        before = self.count
        action()
        return self.count - before


def test_a_new_job_reaches_the_policy_in_one_sync(farm: Farm) -> None:
    farm.dispatcher.sync()
    assert farm.queued_jobs() == {}
    job = farm.job(5)
    farm.dispatcher.sync()
    assert farm.queued_jobs() == {job: 5}


def test_a_priority_change_reaches_the_policy_in_one_sync(farm: Farm) -> None:
    older, newer = farm.job(3), farm.job(3)
    farm.dispatcher.sync()
    assert next_job(farm.dispatcher) == older  # same priority: submission order
    farm.other.set_priority(newer, 90)
    farm.dispatcher.sync()
    assert next_job(farm.dispatcher) == newer
    farm.other.set_priority(newer, 10)
    farm.dispatcher.sync()
    assert next_job(farm.dispatcher) == older


def test_pause_and_resume_reach_the_policy_in_one_sync(farm: Farm) -> None:
    first, second = farm.job(3), farm.job(3)
    farm.dispatcher.sync()
    farm.other.set_job_state(first, JobState.PAUSED, "paused")
    farm.dispatcher.sync()
    assert farm.dispatcher.policy.is_paused(str(first))
    assert next_job(farm.dispatcher) == second
    assert farm.dispatcher.policy.ready_count() == 3  # the paused job's tasks are held, hidden
    farm.other.set_job_state(first, JobState.QUEUED, "")
    farm.dispatcher.sync()
    assert next_job(farm.dispatcher) == first
    assert farm.dispatcher.policy.ready_count() == 6


def test_cancel_and_retry_reach_the_policy_in_one_sync(farm: Farm) -> None:
    doomed, kept = farm.job(4), farm.job(2)
    farm.dispatcher.sync()
    farm.other.cancel_job(doomed)
    farm.dispatcher.sync()
    assert farm.queued_jobs() == {kept: 2}
    assert farm.dispatcher.policy.ready_count(include_paused=True) == 2
    assert farm.other.retry_failed(doomed) == 4
    farm.dispatcher.sync()
    assert farm.queued_jobs() == {doomed: 4, kept: 2}


def test_project_weight_and_budget_from_another_process_reach_the_policy(farm: Farm) -> None:
    job = farm.job(2)
    farm.dispatcher.sync()
    assert farm.dispatcher.policy.blocked_reason("lionboy") is None
    farm.other.update_project(farm.project_id, weight=3.0, budget_core_hours=0.0)
    farm.dispatcher.sync()
    state = farm.dispatcher.policy.project_state("lionboy")
    assert state.weight == 3.0 and state.budget_core_seconds == 0.0
    assert next_job(farm.dispatcher) is None  # budget used up: nothing may start
    found = farm.store.job(job)
    assert found is not None and "budget" in found.message
    farm.other.update_project(farm.project_id, clear_budget=True)
    farm.dispatcher.sync()
    assert next_job(farm.dispatcher) is not None
    newcomer = farm.other.create_project("newcomer", weight=2.0)
    farm.dispatcher.sync()
    assert farm.dispatcher.policy.project_state(newcomer.name).weight == 2.0


class FakeWorker:
    """Stands in for a worker handle (a Ray actor's or a local one): records cancel requests."""

    def __init__(self) -> None:
        self.cancels = 0

    def call(self, method: str, *args: Any) -> Future[Any]:
        if method == "cancel":
            self.cancels += 1
        future: Future[Any] = Future()
        future.set_result(None)
        return future

    def kill(self) -> None:
        pass

    def lost(self, exc: BaseException) -> str | None:
        return None


def start_here(farm: Farm, slot: Slot) -> Running:
    """What `Dispatcher.dispatch` does, without Ray: pick a task, record its attempt."""
    queued = farm.dispatcher.policy.pick(Resources(cpus=1, memory=1 << 40))
    assert queued is not None
    farm.dispatcher.mirror.dequeued(queued.task_id)
    task = farm.store.task(queued.task_id)
    assert task is not None
    attempt = farm.store.start_attempt(task.id, node="n", worker=slot.name, cores=1)
    running = Running(queued, task, attempt, slot, Future(), time.monotonic())
    farm.dispatcher._running[running.future] = running
    return running


def finish_here(farm: Farm, running: Running) -> None:
    """What `Dispatcher.collect` does with a worker's successful answer."""
    del farm.dispatcher._running[running.future]
    farm.dispatcher._succeeded(running, {"ok": True, "wall_s": 1.0, "output": {}})


def test_work_a_finish_frees_is_queued_without_a_sync(farm: Farm) -> None:
    """Children of a finished task, and a job that waited on the finished job."""
    tiles = [TaskSpec(f"t{i}", TaskKind.NOOP, {}) for i in range(2)]
    first = farm.other.create_job(
        project_id=farm.project_id, name="frame", kind="noop", spec={}, fingerprint="f",
        tasks=[*tiles, TaskSpec("asm", TaskKind.NOOP, {}, deps=["t0", "t1"])],
    )
    second = farm.job(2, depends_on=(first,))
    farm.dispatcher.sync()
    assert farm.queued_jobs() == {first: 2}
    slot = Slot(name="w1", worker=FakeWorker(), cpus=1.0)
    counter = StatementCounter(farm.store)
    tile = start_here(farm, slot)
    finish_here(farm, start_here(farm, slot))
    finish_here(farm, tile)
    assert farm.queued_jobs() == {first: 1}  # the assemble task, queued by the finish
    finish_here(farm, start_here(farm, slot))
    assert farm.queued_jobs() == {second: 2}  # released and queued with no sync in between
    assert farm.store.job(first).state is JobState.DONE  # type: ignore[union-attr]
    statements = counter.count
    farm.dispatcher.sync()
    assert counter.count - statements == 1  # nothing left to learn


def test_tasks_requeued_by_another_process_reach_the_policy_in_one_sync(farm: Farm) -> None:
    """Another process's crash recovery (`wanhe render` resuming the job) requeues a task that
    runs here: the attempt is cancelled and the task queued again when the answer comes."""
    job = farm.job(2)
    farm.dispatcher.sync()
    worker = FakeWorker()
    running = start_here(farm, Slot(name="w1", worker=worker, cpus=1.0))
    assert farm.queued_jobs() == {job: 1}
    assert farm.other.recover_interrupted([job]) == 1
    farm.dispatcher.sync()
    assert worker.cancels == 1
    assert farm.queued_jobs() == {job: 1}  # not queued twice while it still runs here
    del farm.dispatcher._running[running.future]
    farm.dispatcher._ended(running, {"ok": False, "outcome": "cancelled", "error": "cancelled"})
    assert farm.queued_jobs() == {job: 2}
    assert farm.dispatcher.policy.is_queued(running.task.id)


def test_a_sync_with_nothing_changed_costs_one_statement_whatever_the_tasks(farm: Farm) -> None:
    counter = StatementCounter(farm.store)
    small = farm.job(20)
    farm.dispatcher.sync()
    steady_small = counter.during(farm.dispatcher.sync)
    farm.other.set_priority(small, 60)
    priority_small = counter.during(farm.dispatcher.sync)
    big = farm.job(5000)
    farm.dispatcher.sync()
    assert farm.queued_jobs() == {small: 20, big: 5000}
    steady_big = counter.during(farm.dispatcher.sync)
    farm.other.set_priority(big, 60)
    priority_big = counter.during(farm.dispatcher.sync)
    farm.other.set_job_state(big, JobState.PAUSED, "paused")
    pause_big = counter.during(farm.dispatcher.sync)
    assert steady_small == steady_big == 1  # read the change counter; it did not move
    assert priority_small == priority_big == pause_big == 3  # counter, projects, jobs


def test_a_job_cancelled_elsewhere_stops_its_running_tasks_with_one_query(farm: Farm) -> None:
    job = farm.job(3)
    farm.dispatcher.sync()
    worker = FakeWorker()
    slot = Slot(name="w1", worker=worker, cpus=1.0)
    start_here(farm, slot)
    start_here(farm, slot)  # two attempts running in this dispatcher
    counter = StatementCounter(farm.store)
    assert counter.during(farm.dispatcher.sync) == 1
    assert worker.cancels == 0
    farm.other.cancel_job(job)
    # counter, projects, jobs, and one query for all the running tasks
    assert counter.during(farm.dispatcher.sync) == 4
    assert worker.cancels == 2
    assert farm.queued_jobs() == {}


def test_the_full_resync_catches_writes_that_were_not_stamped(farm: Farm) -> None:
    job = farm.job(3, priority=50)
    waiting = farm.job(2, depends_on=(job,))
    farm.dispatcher.sync()
    with farm.other.engine.begin() as conn:  # a writer that bypasses the Store's stamping
        conn.execute(update(t.tasks).where(t.tasks.c.job_id == waiting)
                     .values(state=TaskState.READY.value))
        conn.execute(update(t.jobs).where(t.jobs.c.id == job).values(priority=20))
    farm.dispatcher.sync()
    assert farm.queued_jobs() == {job: 3}  # the change tracking cannot see it
    farm.dispatcher.sync(full=True)
    assert farm.queued_jobs() == {job: 3, waiting: 2}
    assert next_job(farm.dispatcher) == waiting  # priority 50 now beats the lowered 20


def test_usage_is_seeded_from_the_database_then_kept_as_a_running_total(farm: Farm) -> None:
    job = farm.job(3)
    task = farm.other.tasks(job)[0]
    attempt = farm.other.start_attempt(task.id, node="n", worker="w", cores=2)
    farm.other.finish_attempt(attempt, task.id, Usage(30.0, 2.0), {})
    farm.dispatcher.sync()
    assert farm.dispatcher.policy.used_core_seconds("lionboy") == pytest.approx(60.0)
    queued = farm.dispatcher.policy.pick(Resources(cpus=1, memory=1 << 40))
    assert queued is not None
    farm.dispatcher.policy.finished(queued, 12.0)  # what the dispatcher does as attempts end
    farm.other.update_project(farm.project_id, weight=2.0)
    farm.dispatcher.sync()  # a project change keeps the running total
    assert farm.dispatcher.policy.used_core_seconds("lionboy") == pytest.approx(72.0)
    counter = StatementCounter(farm.store)
    assert counter.during(farm.dispatcher.sync) == 1  # no sum over the attempts


# ---------------------------------------------------------------------------- on Ray

SLEEP_S = 0.25  # a NOOP task reports exactly this wall time: 0.25 core-seconds on one core


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_budget_blocks_at_its_core_hours(farm: Farm, ray_local: None) -> None:
    """Usage from before the dispatcher started counts; a raised budget (written by another
    process, no poke) lets exactly the tasks that fit under it run."""
    earlier = farm.job(1)
    task = farm.other.tasks(earlier)[0]
    attempt = farm.other.start_attempt(task.id, node="n", worker="w", cores=1)
    farm.other.finish_attempt(attempt, task.id, Usage(0.5, 1.0), {})  # 0.5 core-seconds
    farm.other.update_project(farm.project_id, budget_core_hours=1.0 / 3600)  # 1 core-second
    job = farm.job(20, sleep_s=SLEEP_S)
    stop = threading.Event()
    thread = threading.Thread(target=farm.dispatcher.serve, args=(stop,), daemon=True)
    thread.start()

    def ok_attempts() -> int:
        return sum(1 for a in farm.store.attempts(job) if a["outcome"] == "ok")

    def blocked_after(n: int) -> bool:
        found = farm.store.job(job)
        open_attempts = [a for a in farm.store.attempts(job) if a["ended_at"] is None]
        return found is not None and "budget" in found.message and not open_attempts \
            and ok_attempts() >= n

    try:
        # 0.5 + 0.25 + 0.25 reaches 1 core-second: two tasks, then nothing
        _wait(lambda: blocked_after(2), 120, "the budget to block the job")
        time.sleep(4 * SYNC_INTERVAL_S)
        assert ok_attempts() == 2
        farm.other.update_project(farm.project_id, budget_core_hours=2.0 / 3600)
        # four more reach 2 core-seconds
        _wait(lambda: ok_attempts() >= 6 and blocked_after(6), 60, "the raised budget")
        time.sleep(4 * SYNC_INTERVAL_S)
        assert ok_attempts() == 6
        metered = farm.store.used_core_seconds()[farm.project_id]
        assert metered == pytest.approx(2.0)
        assert farm.dispatcher.policy.used_core_seconds("lionboy") == pytest.approx(metered)
    finally:
        stop.set()
        farm.dispatcher.poke()
        thread.join(timeout=30)
        farm.dispatcher.close()
        farm.other.cancel_job(job)
