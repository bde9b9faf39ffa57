"""Random sequences of farm events, driven through the real Store, never break the lifecycle.

A hypothesis state machine acts as the dispatcher and the users would: it starts attempts on
ready tasks of two small jobs (two renders -> one assemble; one task -> its follower), ends
them OK or with every kind of failure (own fault, LOST, CANCELLED), cancels, pauses, resumes
and retries jobs, fails a job whose task cannot be placed, resets finished tasks whose files
went missing (as `wanhe render`'s resume does), and kills and restarts the service (a new
Store on the same SQLite file, then `recover_interrupted`). After every step it checks the
database against an independent model:

* every change of a task's or a job's state is legal per `lifecycle.TASK_TRANSITIONS` /
  `JOB_TRANSITIONS` (a retry or reset may do failed/cancelled/done -> waiting -> ready);
* per "life" of a task (since it was last requeued by retry or reset) it has at most
  `max_attempts` own-fault attempts and at most `max_lost` lost ones reported by the
  dispatcher, its `attempts` / `faults` / `losses` counters say exactly that, and ending an
  attempt gives up exactly when the model says it must;
* a done task's last attempt is its OK one, and starting an attempt on a task that is not
  ready raises `StoreError` and writes nothing;
* job and task states agree: all tasks done <=> job done; a failed task => a failed job with
  nothing left unfinished; a queued/running/paused job has no failed or cancelled task; a
  waiting task has an unfinished dependency (and `deps_left` counts them), a ready one none;
* usage is counted once per attempt: one row per started attempt, every closed one with its
  outcome, wall time and cores as reported, `used_core_seconds` = sum of cores x wall;
* no attempt is open except those the dispatcher holds, a running task has exactly one, and a
  task with an open attempt is running (or stopped by its job's cancel/failure).

The dispatcher reports a cancelled job's attempts before the job is retried (the machine's
retry waits for them). `test_an_attempt_of_a_retried_tasks_previous_life_...` shows what
happens when it does not: the stale attempt's end is metered and changes nothing (it found a
bug, fixed: the store applied it to the task's newest attempt).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from wanhe.lifecycle import OWN_FAULT, RetryRules, job_may, task_may
from wanhe.model import AttemptOutcome, JobState, TaskSpec, TaskState
from wanhe.store.store import JobRow, Store, StoreError, TaskRow, Usage, core_seconds

JOB_SPECS: dict[str, list[TaskSpec]] = {
    "shot": [
        TaskSpec("r0", "noop", {}),
        TaskSpec("r1", "noop", {}),
        TaskSpec("asm", "noop", {}, deps=["r0", "r1"]),
    ],
    "pair": [
        TaskSpec("a", "noop", {}),
        TaskSpec("b", "noop", {}, deps=["a"]),
    ],
}
FAILURES = [
    AttemptOutcome.FAILED, AttemptOutcome.TIMEOUT, AttemptOutcome.SILENT,
    AttemptOutcome.OUT_OF_MEMORY, AttemptOutcome.LOST,
]
UNFINISHED = {TaskState.WAITING, TaskState.READY, TaskState.RUNNING}
ACTIVE = {JobState.QUEUED, JobState.RUNNING, JobState.PAUSED}
MAY_START = {JobState.QUEUED, JobState.RUNNING}
STOPPED = {JobState.FAILED, JobState.CANCELLED}
picks = st.integers(min_value=0, max_value=63)
cores_st = st.sampled_from([1.0, 2.0, 4.0])
walls = st.sampled_from([0.5, 1.0, 3.0])


@dataclass
class Closed:
    """How the model ended an attempt: `outcome` None when recovery closed it (LOST, wall
    measured by the store); `counted`: the store applied it to a running task."""

    outcome: AttemptOutcome | None
    wall_s: float | None
    counted: bool


@dataclass
class Attempt:
    id: int
    task_id: int
    job_id: int
    cores: float
    closed: Closed | None = None


@dataclass
class View:
    """The database as read after the last rule (preconditions and rules pick from it)."""

    jobs: dict[int, JobRow]
    tasks: dict[int, TaskRow]
    attempts: list[dict[str, Any]]
    used: float

    def state(self, job_id: int) -> JobState:
        return self.jobs[job_id].state

    def tasks_of(self, job_id: int) -> list[TaskRow]:
        return [task for task in self.tasks.values() if task.job_id == job_id]


@dataclass
class Model:
    attempts: dict[int, Attempt] = field(default_factory=dict)
    open: set[int] = field(default_factory=set)
    life_floor: dict[int, int] = field(default_factory=dict)  # task id -> last id before life


class LifecycleMachine(RuleBasedStateMachine):
    def __init__(self, template: Path, base: Path) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(dir=base))
        shutil.copy(template, self.dir / "wanhe.db")  # migrated once: alembic is slow
        self.url = f"sqlite:///{self.dir / 'wanhe.db'}"
        self.store = Store(self.url)
        self.project = self.store.create_project("p").id
        self.jobs: list[int] = []
        self.deps: dict[int, list[int]] = {}  # task id -> ids of its dependencies
        for name, specs in JOB_SPECS.items():
            job_id = self.store.create_job(project_id=self.project, name=name, kind="test",
                                           spec={}, fingerprint=name, tasks=specs)
            self.jobs.append(job_id)
            ids = {task.key: task.id for task in self.store.tasks(job_id)}
            for spec in specs:
                self.deps[ids[spec.key]] = [ids[d] for d in spec.deps]
        self.model = Model(life_floor={task_id: 0 for task_id in self.deps})
        self.rules = RetryRules()
        self.last_id = 0
        self.view = self._read()
        self.via: set[TaskState] = set()  # states the last rule may have moved a task through

    @initialize(max_attempts=st.sampled_from([2, 3]))
    def retry_rules(self, max_attempts: int) -> None:
        self.rules = RetryRules(max_attempts=max_attempts, max_lost=3)

    def teardown(self) -> None:
        self.store.dispose()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------------ helpers

    def _read(self) -> View:
        return View(
            jobs={job.id: job for job in self.store.jobs(project_id=self.project)},
            tasks={task.id: task for j in self.jobs for task in self.store.tasks(j)},
            attempts=[row for j in self.jobs for row in self.store.attempts(j)],
            used=self.store.used_core_seconds(self.project).get(self.project, 0.0),
        )

    def _task(self, task_id: int) -> TaskRow:
        task = self.store.task(task_id)
        assert task is not None
        return task

    def _job_state(self, job_id: int) -> JobState:
        job = self.store.job(job_id)
        assert job is not None
        return job.state

    def _startable(self) -> list[TaskRow]:
        """Ready tasks the dispatcher would start: their job is queued or running."""
        return [t for t in self.view.tasks.values()
                if t.state is TaskState.READY and self.view.state(t.job_id) in MAY_START]

    def _jobs_in(self, states: set[JobState]) -> list[int]:
        return [j for j in self.jobs if self.view.state(j) in states]

    def _open_of_job(self, job_id: int) -> list[int]:
        return sorted(a for a in self.model.open if self.model.attempts[a].job_id == job_id)

    def _open_attempt(self, pick: int) -> Attempt:
        ids = sorted(self.model.open)
        return self.model.attempts[ids[pick % len(ids)]]

    def _life(self, task_id: int) -> list[Attempt]:
        floor = self.model.life_floor[task_id]
        return sorted((a for a in self.model.attempts.values()
                       if a.task_id == task_id and a.id > floor), key=lambda a: a.id)

    def _counted(self, task_id: int) -> tuple[int, int]:
        """(own-fault, lost) ends the store applied to the task in its current life."""
        ends = [a.closed for a in self._life(task_id) if a.closed and a.closed.counted]
        own = sum(1 for c in ends if c.outcome in OWN_FAULT)
        lost = sum(1 for c in ends if c.outcome is AttemptOutcome.LOST)
        return own, lost

    def _new_life(self, task_ids: list[int]) -> None:
        for task_id in task_ids:
            self.model.life_floor[task_id] = self.last_id
        self.via = {TaskState.WAITING}

    def _closed(self, attempt: Attempt, outcome: AttemptOutcome, wall: float, *,
                counted: bool) -> None:
        attempt.closed = Closed(outcome, wall, counted)
        self.model.open.discard(attempt.id)

    def _retryable(self) -> list[int]:
        """Failed or cancelled jobs whose stopped attempts the dispatcher has reported."""
        return [j for j in self._jobs_in(STOPPED) if not self._open_of_job(j)]

    def _resumable(self) -> list[int]:
        return [j for j in self.jobs if self.view.state(j).is_final and not self._open_of_job(j)
                and any(t.state is TaskState.DONE for t in self.view.tasks_of(j))]

    # ------------------------------------------------------------------ the dispatcher

    def _start(self, pick: int, node: str, cores: float) -> Attempt:
        ready = self._startable()
        task = ready[pick % len(ready)]
        attempt_id = self.store.start_attempt(task.id, node=node, worker=f"{node}-w0",
                                              cores=cores)
        assert attempt_id > self.last_id
        self.last_id = attempt_id
        attempt = Attempt(attempt_id, task.id, task.job_id, cores)
        self.model.attempts[attempt_id] = attempt
        self.model.open.add(attempt_id)
        assert self._task(task.id).state is TaskState.RUNNING
        return attempt

    @precondition(lambda self: bool(self._startable()))
    @rule(pick=picks, cores=cores_st)
    def start_on_n1(self, pick: int, cores: float) -> None:
        self._start(pick, "n1", cores)

    @precondition(lambda self: bool(self._startable()))
    @rule(pick=picks, cores=cores_st)
    def start_on_n2(self, pick: int, cores: float) -> None:
        self._start(pick, "n2", cores)

    @precondition(lambda self: bool(self._startable()))
    @rule(pick=picks, cores=cores_st, outcome=st.sampled_from([AttemptOutcome.OK, *FAILURES]),
          wall=walls)
    def quick_attempt(self, pick: int, cores: float, outcome: AttemptOutcome,
                      wall: float) -> None:
        """An attempt that starts and ends between two looks at the database."""
        attempt = self._start(pick, "n2", cores)
        self.via = {TaskState.RUNNING}
        if outcome is AttemptOutcome.OK:
            self._finish(attempt, wall, running=True)
        else:
            self._fail(attempt, outcome, wall, running=True)

    @precondition(lambda self: any(t.state is not TaskState.READY
                                   for t in self.view.tasks.values()))
    @rule(pick=picks)
    def start_a_task_that_is_not_ready(self, pick: int) -> None:
        """Never twice, never after done: a task not ready cannot start (the invariant also
        sees that no attempt row was written)."""
        others = [t for t in self.view.tasks.values() if t.state is not TaskState.READY]
        before = others[pick % len(others)]
        with pytest.raises(StoreError):
            self.store.start_attempt(before.id, node="n1", worker="n1-w0", cores=1.0)
        assert self._task(before.id) == before

    def _running(self, attempt: Attempt) -> bool:
        return self.view.tasks[attempt.task_id].state is TaskState.RUNNING

    @precondition(lambda self: bool(self.model.open))
    @rule(pick=picks, wall=walls)
    def finish_ok(self, pick: int, wall: float) -> None:
        attempt = self._open_attempt(pick)
        self._finish(attempt, wall, running=self._running(attempt))

    def _finish(self, attempt: Attempt, wall: float, *, running: bool) -> None:
        was = self.view.tasks[attempt.task_id].state
        ready = self.store.finish_attempt(attempt.id, attempt.task_id,
                                          Usage(wall_s=wall, cores=attempt.cores),
                                          {"attempt": attempt.id})
        self._closed(attempt, AttemptOutcome.OK, wall, counted=running)
        after = {t.id: t for t in self.store.tasks(attempt.job_id)}
        if running:
            done = after[attempt.task_id]
            assert done.state is TaskState.DONE and done.output == {"attempt": attempt.id}
            freed = {i for i, t in after.items() if t.state is TaskState.READY
                     and self.view.tasks[i].state is TaskState.WAITING}
            assert set(ready) == freed
        else:  # its job was cancelled or failed meanwhile: the result is not kept
            assert after[attempt.task_id].state is was and ready == []

    @precondition(lambda self: bool(self.model.open))
    @rule(pick=picks, outcome=st.sampled_from(FAILURES), wall=walls)
    def fail(self, pick: int, outcome: AttemptOutcome, wall: float) -> None:
        attempt = self._open_attempt(pick)
        self._fail(attempt, outcome, wall, running=self._running(attempt))

    @precondition(lambda self: bool(self.model.open))
    @rule(pick=picks, outcome=st.sampled_from(sorted(OWN_FAULT)), wall=walls)
    def fail_of_its_own_fault(self, pick: int, outcome: AttemptOutcome, wall: float) -> None:
        """Own faults again (more often than the rest: they are what gives a task up)."""
        attempt = self._open_attempt(pick)
        self._fail(attempt, outcome, wall, running=self._running(attempt))

    def _fail(self, attempt: Attempt, outcome: AttemptOutcome, wall: float, *,
              running: bool) -> None:
        end = self.store.fail_attempt(attempt.id, attempt.task_id, outcome=outcome,
                                      usage=Usage(wall_s=wall, cores=attempt.cores),
                                      message=f"{outcome.value} on purpose", rules=self.rules)
        self._closed(attempt, outcome, wall, counted=running)
        if not running:
            assert end.verdict == "stopped" and not end.job_failed
            return
        own, lost = self._counted(attempt.task_id)
        give_up = (own >= self.rules.max_attempts if outcome in OWN_FAULT
                   else lost >= self.rules.max_lost)
        assert end.job_failed is give_up, (own, lost, end)
        state = self._task(attempt.task_id).state
        if give_up:
            assert end.verdict == "give_up" and state is TaskState.FAILED
            assert self._job_state(attempt.job_id) is JobState.FAILED
        else:
            assert end.verdict == "retry" and end.ready == [attempt.task_id]
            assert state is TaskState.READY

    @precondition(lambda self: bool(self.model.open))
    @rule(pick=picks, wall=walls)
    def report_cancelled(self, pick: int, wall: float) -> None:
        """The worker stopped the attempt: its job was cancelled or failed, or it shut down
        (then the task is ready again, and no fault of its own)."""
        attempt = self._open_attempt(pick)
        was = self.view.tasks[attempt.task_id].state
        self._report_cancelled(attempt, wall, running=was is TaskState.RUNNING)
        expected = TaskState.READY if was is TaskState.RUNNING else was
        assert self._task(attempt.task_id).state is expected

    def _report_cancelled(self, attempt: Attempt, wall: float, *, running: bool) -> None:
        end = self.store.fail_attempt(attempt.id, attempt.task_id,
                                      outcome=AttemptOutcome.CANCELLED,
                                      usage=Usage(wall_s=wall, cores=attempt.cores),
                                      message="cancelled", rules=self.rules)
        assert end.verdict == "stopped" and not end.job_failed
        self._closed(attempt, AttemptOutcome.CANCELLED, wall, counted=running)

    def _stranded(self) -> list[TaskRow]:
        """Ready tasks that failed before, so that their nodes may all be blocklisted."""
        return [t for t in self.view.tasks.values() if t.state is TaskState.READY
                and t.faults > 0 and self.view.state(t.job_id) in ACTIVE]

    @precondition(lambda self: bool(self._stranded()))
    @rule(pick=picks)
    def fail_unplaceable(self, pick: int) -> None:
        """A ready task no node may run any more: the dispatcher fails it and its job."""
        stranded = self._stranded()
        task = stranded[pick % len(stranded)]
        running = self.store.fail_job(task.job_id, "nowhere to run", task_id=task.id)
        assert sorted(running) == sorted(self.model.attempts[a].task_id
                                         for a in self._open_of_job(task.job_id))
        assert self._task(task.id).state is TaskState.FAILED

    @precondition(lambda self: bool(self.model.open))
    @rule()
    def kill_and_restart(self) -> None:
        """The service dies with attempts running; the next one recovers them as LOST."""
        self.store.dispose()
        self.store = Store(self.url)
        assert self.store.recover_interrupted() == len(self.model.open)
        for attempt_id in self.model.open:
            self.model.attempts[attempt_id].closed = Closed(None, None, counted=False)
        self.model.open.clear()
        assert not any(t.state is TaskState.RUNNING
                       for j in self.jobs for t in self.store.tasks(j))

    # ------------------------------------------------------------------ the users

    def _cancellable(self) -> list[int]:
        """Jobs with something to stop or paused (cancelling an idle queued job is the same
        and would only take steps from the rest)."""
        return [j for j in self._jobs_in(ACTIVE)
                if self._open_of_job(j) or self.view.state(j) is JobState.PAUSED]

    @precondition(lambda self: bool(self._cancellable()))
    @rule(pick=picks, report_now=st.booleans(), wall=walls)
    def cancel(self, pick: int, report_now: bool, wall: float) -> None:
        """Cancel a job; the dispatcher stops its attempts and reports them CANCELLED, now or
        a few steps later (but before anyone can retry the job)."""
        active = self._cancellable()
        job_id = active[pick % len(active)]
        running = self.store.cancel_job(job_id)
        still = self._open_of_job(job_id)
        assert sorted(running) == sorted(self.model.attempts[a].task_id for a in still)
        assert self._job_state(job_id) is JobState.CANCELLED
        if report_now:
            for attempt_id in still:
                self._report_cancelled(self.model.attempts[attempt_id], wall, running=False)

    @precondition(lambda self: bool(self._jobs_in({JobState.RUNNING})))
    @rule(pick=picks)
    def pause(self, pick: int) -> None:
        jobs = self._jobs_in({JobState.RUNNING})
        job_id = jobs[pick % len(jobs)]
        self.store.set_job_state(job_id, JobState.PAUSED, "paused")
        assert self._job_state(job_id) is JobState.PAUSED

    @precondition(lambda self: bool(self._jobs_in({JobState.PAUSED})))
    @rule(pick=picks)
    def resume(self, pick: int) -> None:
        """As the API resumes: running again if it ever started, else queued."""
        jobs = self._jobs_in({JobState.PAUSED})
        job = self.view.jobs[jobs[pick % len(jobs)]]
        state = JobState.RUNNING if job.started_at is not None else JobState.QUEUED
        self.store.set_job_state(job.id, state, "")
        assert self._job_state(job.id) is state

    @precondition(lambda self: bool(self._retryable()))
    @rule(pick=picks)
    def retry(self, pick: int) -> None:
        jobs = self._retryable()
        job_id = jobs[pick % len(jobs)]
        again = [t.id for t in self.view.tasks_of(job_id)
                 if t.state in (TaskState.FAILED, TaskState.CANCELLED)]
        assert self.store.retry_failed(job_id) == len(again)
        self._new_life(again)
        assert self._job_state(job_id) is JobState.QUEUED

    @precondition(lambda self: bool(self._resumable()))
    @rule(pick=picks, which=st.sets(picks, min_size=1, max_size=3))
    def resume_with_files_missing(self, pick: int, which: set[int]) -> None:
        """`wanhe render` again: finished tasks whose files went missing are reset, a failed
        or cancelled job retried."""
        jobs = self._resumable()
        job_id = jobs[pick % len(jobs)]
        tasks = self.view.tasks_of(job_id)
        done = [t.id for t in tasks if t.state is TaskState.DONE]
        redo = sorted({done[i % len(done)] for i in which})
        again = [t.id for t in tasks if t.state in (TaskState.FAILED, TaskState.CANCELLED)]
        self.store.reset_tasks(job_id, redo)
        self._new_life(redo)
        if self.view.state(job_id) in STOPPED:
            assert self.store.retry_failed(job_id) == len(again)
            self._new_life(again)
        assert self._job_state(job_id) is JobState.QUEUED

    # ------------------------------------------------------------------ invariants

    @invariant()
    def the_database_agrees_with_the_model(self) -> None:
        before, self.view = self.view, self._read()
        self._every_change_is_legal(before)
        self._jobs_and_tasks_agree()
        self._usage_is_counted_once_per_attempt()
        self._each_life_obeys_the_retry_rules()

    def _every_change_is_legal(self, before: View) -> None:
        for task_id, task in self.view.tasks.items():
            was, now = before.tasks[task_id].state, task.state
            legal = task_may(was, now) or any(
                task_may(was, mid) and task_may(mid, now) for mid in self.via)
            assert legal, f"task {task.key}: {was.value} -> {now.value}"
        for job_id, job in self.view.jobs.items():
            was_job = before.state(job_id)
            assert job_may(was_job, job.state), f"job {job_id}: {was_job} -> {job.state}"
        self.via = set()

    def _jobs_and_tasks_agree(self) -> None:
        assert sorted(self.view.jobs) == sorted(self.jobs)  # one row, so one state, each
        for job_id in self.jobs:
            job = self.view.state(job_id)
            tasks = self.view.tasks_of(job_id)
            states = {t.state for t in tasks}
            if states == {TaskState.DONE}:
                assert job is JobState.DONE, job
            if job is JobState.DONE:
                assert states == {TaskState.DONE}, states
            if TaskState.FAILED in states:
                assert job is JobState.FAILED, job
            if job in STOPPED:
                assert not states & UNFINISHED, (job, states)
            if job in ACTIVE:
                assert not states & {TaskState.FAILED, TaskState.CANCELLED}, (job, states)
            for task in tasks:
                left = sum(1 for d in self.deps[task.id]
                           if self.view.tasks[d].state is not TaskState.DONE)
                if task.state is TaskState.WAITING:
                    assert left > 0, f"task {task.key} waits on nothing"
                if task.state in (TaskState.READY, TaskState.RUNNING):
                    assert left == 0, f"task {task.key} is {task.state.value} before its deps"

    def _usage_is_counted_once_per_attempt(self) -> None:
        rows = self.view.attempts
        assert sorted(r["id"] for r in rows) == sorted(self.model.attempts)
        assert {r["id"] for r in rows if r["ended_at"] is None} == self.model.open
        expected = 0.0
        for row in rows:
            attempt = self.model.attempts[row["id"]]
            assert row["cores"] == attempt.cores and row["task_id"] == attempt.task_id
            closed = attempt.closed
            if closed is None:
                assert row["outcome"] is None and row["wall_s"] is None
                continue
            assert row["ended_at"] is not None and row["wall_s"] is not None
            if closed.outcome is None:  # recovered after the restart
                assert row["outcome"] == AttemptOutcome.LOST.value and row["wall_s"] >= 0
                expected += core_seconds(row)
            else:
                assert row["outcome"] == closed.outcome.value
                assert row["wall_s"] == closed.wall_s
                expected += attempt.cores * (closed.wall_s or 0.0)
        assert self.view.used == pytest.approx(expected)
        assert self.view.used == pytest.approx(sum(core_seconds(r) for r in rows))

    def _each_life_obeys_the_retry_rules(self) -> None:
        for task in self.view.tasks.values():
            life = self._life(task.id)
            ended = [a.closed for a in life if a.closed is not None]
            own_rows = sum(1 for c in ended if c.outcome in OWN_FAULT)
            assert own_rows <= self.rules.max_attempts, (task.key, own_rows)
            own, lost = self._counted(task.id)
            assert lost <= self.rules.max_lost, (task.key, lost)
            assert (task.faults, task.losses, task.attempts) == (own, lost, len(life)), task
            oks = [i for i, a in enumerate(life)
                   if a.closed and a.closed.outcome is AttemptOutcome.OK]
            assert oks in ([], [len(life) - 1]), f"{task.key}: an attempt after its OK one"
            if task.state is TaskState.DONE:
                assert oks == [len(life) - 1], f"{task.key} is done without an OK attempt"
            running = sorted((self.model.attempts[a] for a in self.model.open
                              if self.model.attempts[a].task_id == task.id), key=lambda a: a.id)
            if task.state is TaskState.RUNNING:
                assert len(running) == 1 and running[0] is life[-1], (task.key, running)
            else:
                assert not running or task.state in (TaskState.CANCELLED, TaskState.FAILED), (
                    f"{task.key} is {task.state.value} while attempt {running[0].id} runs")
        for attempt_id in self.model.open:  # an open attempt's task was not requeued since
            attempt = self.model.attempts[attempt_id]
            assert attempt.id > self.model.life_floor[attempt.task_id]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated database to copy for each run of the machine."""
    path = tmp_path_factory.mktemp("template") / "wanhe.db"
    Store(f"sqlite:///{path}").dispose()
    return path


def test_random_farm_events_keep_the_lifecycle(
    template: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    base = tmp_path_factory.mktemp("lifecycle")
    run_state_machine_as_test(
        lambda: LifecycleMachine(template, base),
        settings=settings(max_examples=40, stateful_step_count=30, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow]),
    )


def test_an_attempt_of_a_retried_tasks_previous_life_does_not_end_the_new_one(
    store: Store,
) -> None:
    """Cancel, then retry at once (the API allows it) while the dispatcher is still stopping
    the cancelled attempt: when that attempt's end arrives, the task's new attempt runs on."""
    project = store.create_project("p").id
    job = store.create_job(project_id=project, name="pair", kind="test", spec={},
                           fingerprint="pair", tasks=JOB_SPECS["pair"])
    task = store.tasks(job)[0]
    old = store.start_attempt(task.id, node="n1", worker="n1-w0", cores=1.0)
    store.cancel_job(job)  # the dispatcher is told to stop `old`…
    assert store.retry_failed(job) == 2  # …and the user retries before it has
    store.start_attempt(task.id, node="n2", worker="n2-w0", cores=1.0)
    store.fail_attempt(old, task.id, outcome=AttemptOutcome.CANCELLED, usage=Usage(1.0, 1.0),
                       message="cancelled")
    after = store.task(task.id)
    assert after is not None and after.state is TaskState.RUNNING
    with pytest.raises(StoreError):  # no second attempt starts while the new one runs
        store.start_attempt(task.id, node="n1", worker="n1-w0", cores=1.0)
