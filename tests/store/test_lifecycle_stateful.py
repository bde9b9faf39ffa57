"""Random sequences of farm events, driven through the real Store, never break the lifecycle.

A hypothesis state machine acts as the dispatcher and the users would: it starts attempts on
ready tasks of two small jobs (two renders -> one assemble; one task -> its follower), ends
them OK or with every kind of failure (own fault, LOST, CANCELLED), cancels, pauses, resumes
and retries jobs, fails a job whose task cannot be placed, resets finished tasks whose files
went missing (as `wanhe render`'s resume does), and kills and restarts the service (a new
Store on the same SQLite file, then `recover_interrupted`). After every step it checks the
database against an independent model:

* every change of a task's or a job's state is legal per `lifecycle.TASK_TRANSITIONS` /
  `JOB_TRANSITIONS` (a rule that does several, e.g. retry: failed -> waiting -> ready, may
  pass only through the states it names);
* per "life" of a task (since it was last requeued by retry or reset) it has at most
  `max_attempts` own-fault attempts and at most `max_lost` lost ones (reported by the
  dispatcher or found by a restart's recovery), its `attempts` / `faults` / `losses`
  counters say exactly that, and ending an attempt gives up exactly when the model says it
  must (an attempt `recover_interrupted` closes counts as lost when it ended the task's
  running attempt, not one its job's cancel had already stopped);
* a done task's last attempt is its OK one, and starting an attempt on a task that is not
  ready raises `StoreError` and writes nothing;
* job and task states agree: all tasks done <=> job done; a failed task => a failed job with
  nothing left unfinished; a queued/running/paused job has no failed or cancelled task; a
  waiting task has an unfinished dependency, a ready or running one none;
* usage is counted once per attempt: one row per started attempt, every closed one with its
  outcome, wall time and cores as reported, `used_core_seconds` = sum of cores x wall;
* no attempt is open except those the dispatcher holds; a running task has exactly one of its
  current life, its newest; a task not running has none (unless stopped by its job's cancel
  or failure); attempts of an earlier life may still be out, being stopped.

A user may retry a cancelled or failed job before the dispatcher has reported its stopped
attempts (the API allows it); such a late end, OK or not, must be metered and change nothing
(`test_an_attempt_of_a_retried_tasks_previous_life_...` is the shortest case: it found a bug,
fixed, where the store applied the stale end to the task's newest attempt).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

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

from wanhe.lifecycle import OWN_FAULT, TASK_TRANSITIONS, RetryRules, job_may, task_may
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
STOPPED_ENDS = [AttemptOutcome.CANCELLED, AttemptOutcome.OK, AttemptOutcome.FAILED]
UNFINISHED = {TaskState.WAITING, TaskState.READY, TaskState.RUNNING}
ACTIVE = {JobState.QUEUED, JobState.RUNNING, JobState.PAUSED}
MAY_START = {JobState.QUEUED, JobState.RUNNING}
STOPPED = {JobState.FAILED, JobState.CANCELLED}
picks = st.integers(min_value=0, max_value=63)
cores_st = st.sampled_from([1.0, 2.0, 4.0])
walls = st.sampled_from([0.5, 1.0, 3.0])


def _reachable(was: TaskState, now: TaskState, via: set[TaskState]) -> bool:
    """Whether legal changes lead from `was` to `now`, passing only through states in `via`."""
    seen, frontier = {was}, [was]
    while frontier:
        state = frontier.pop()
        if task_may(state, now):
            return True
        for step in TASK_TRANSITIONS[state] & via - seen:
            seen.add(step)
            frontier.append(step)
    return False


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
    template: ClassVar[Path]  # an empty migrated database, copied for each run (alembic is slow)
    base: ClassVar[Path]  # where each run gets its own folder

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(dir=self.base))
        shutil.copy(self.template, self.dir / "wanhe.db")
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
        self.limits = RetryRules()
        self.last_id = 0
        self.view = self._read()
        self.via: set[TaskState] = set()  # states the last rule may have moved a task through

    @initialize(max_attempts=st.sampled_from([2, 3]))
    def choose_retry_rules(self, max_attempts: int) -> None:
        self.limits = RetryRules(max_attempts=max_attempts, max_lost=3)

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

    def _attempts(self, *, running: bool) -> list[Attempt]:
        """Open attempts that the task runs with (or not: those the dispatcher is stopping,
        of a cancelled or failed job, maybe retried since)."""
        return [self.model.attempts[a] for a in sorted(self.model.open)
                if self._running(self.model.attempts[a]) is running]

    def _attempt(self, pick: int, *, running: bool) -> Attempt:
        attempts = self._attempts(running=running)
        return attempts[pick % len(attempts)]

    def _life(self, task_id: int) -> list[Attempt]:
        floor = self.model.life_floor[task_id]
        return sorted((a for a in self.model.attempts.values()
                       if a.task_id == task_id and a.id > floor), key=lambda a: a.id)

    def _counted(self, task_id: int) -> tuple[int, int]:
        """(own-fault, lost) ends the store applied to the task in its current life."""
        ends = [a.closed for a in self._life(task_id) if a.closed and a.closed.counted]
        own = sum(1 for c in ends if c.outcome in OWN_FAULT)
        # a recovered attempt (outcome None: closed by a restart) was lost too
        lost = sum(1 for c in ends if c.outcome in (AttemptOutcome.LOST, None))
        return own, lost

    def _new_life(self, task_ids: list[int]) -> None:
        for task_id in task_ids:
            self.model.life_floor[task_id] = self.last_id
        self.via.add(TaskState.WAITING)

    def _closed(self, attempt: Attempt, outcome: AttemptOutcome, wall: float, *,
                counted: bool) -> None:
        attempt.closed = Closed(outcome, wall, counted)
        self.model.open.discard(attempt.id)

    def _resumable(self) -> list[int]:
        return [j for j in self.jobs if self.view.state(j).is_final
                and any(t.state is TaskState.DONE for t in self.view.tasks_of(j))]

    def _running_tasks(self, job_id: int) -> list[int]:
        return sorted(t.id for t in self.view.tasks_of(job_id) if t.state is TaskState.RUNNING)

    # ------------------------------------------------------------------ the dispatcher

    def _start(self, pick: int, node: str, cores: float) -> Attempt:
        ready = self._startable()
        return self._start_task(ready[pick % len(ready)], node, cores)

    def _start_task(self, task: TaskRow, node: str, cores: float) -> Attempt:
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
        """Whether the task runs with this attempt: running, and this is its newest attempt
        (not one from before a retry, that the dispatcher is still stopping)."""
        newest = max(a.id for a in self.model.attempts.values() if a.task_id == attempt.task_id)
        return self.view.tasks[attempt.task_id].state is TaskState.RUNNING and (
            attempt.id == newest)

    @precondition(lambda self: bool(self._attempts(running=True)))
    @rule(pick=picks, wall=walls)
    def finish_ok(self, pick: int, wall: float) -> None:
        self._finish(self._attempt(pick, running=True), wall, running=True)

    def _finish(self, attempt: Attempt, wall: float, *, running: bool) -> None:
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
        else:  # a stopped attempt: metered, the result is not kept (see _stopped_end)
            assert ready == []

    @precondition(lambda self: bool(self._attempts(running=True)))
    @rule(pick=picks, outcome=st.sampled_from(FAILURES), wall=walls)
    def fail(self, pick: int, outcome: AttemptOutcome, wall: float) -> None:
        self._fail(self._attempt(pick, running=True), outcome, wall, running=True)

    @precondition(lambda self: bool(self._attempts(running=True)))
    @rule(pick=picks, outcome=st.sampled_from(sorted(OWN_FAULT)), wall=walls)
    def fail_of_its_own_fault(self, pick: int, outcome: AttemptOutcome, wall: float) -> None:
        """Own faults again (more often than the rest: they are what gives a task up)."""
        self._fail(self._attempt(pick, running=True), outcome, wall, running=True)

    def _fail(self, attempt: Attempt, outcome: AttemptOutcome, wall: float, *,
              running: bool) -> None:
        end = self.store.fail_attempt(attempt.id, attempt.task_id, outcome=outcome,
                                      usage=Usage(wall_s=wall, cores=attempt.cores),
                                      message=f"{outcome.value} on purpose", rules=self.limits)
        self._closed(attempt, outcome, wall, counted=running)
        if not running:  # metered, and changes nothing (see _stopped_end)
            assert end.verdict == "stopped" and not end.job_failed
            return
        own, lost = self._counted(attempt.task_id)
        give_up = (own >= self.limits.max_attempts if outcome in OWN_FAULT
                   else lost >= self.limits.max_lost)
        assert end.job_failed is give_up, (own, lost, end)
        state = self._task(attempt.task_id).state
        if give_up:
            assert end.verdict == "give_up" and state is TaskState.FAILED
            assert self._job_state(attempt.job_id) is JobState.FAILED
        else:
            assert end.verdict == "retry" and end.ready == [attempt.task_id]
            assert state is TaskState.READY

    @precondition(lambda self: bool(self._attempts(running=True)))
    @rule(pick=picks, wall=walls)
    def worker_shuts_down(self, pick: int, wall: float) -> None:
        """The worker stops a running attempt (CANCELLED): the task is ready again, and no
        fault of its own."""
        attempt = self._attempt(pick, running=True)
        self._report_cancelled(attempt, wall, running=True)
        assert self._task(attempt.task_id).state is TaskState.READY

    @precondition(lambda self: bool(self._attempts(running=False)))
    @rule(pick=picks, outcome=st.sampled_from(STOPPED_ENDS), wall=walls)
    def stopped_attempt_ends(self, pick: int, outcome: AttemptOutcome, wall: float) -> None:
        """The end of an attempt the dispatcher was stopping arrives: cancelled, or it had
        finished or failed first. Its job may have been retried and the task started again."""
        self._stopped_end(self._attempt(pick, running=False), outcome, wall)

    def _stopped_end(self, attempt: Attempt, outcome: AttemptOutcome, wall: float) -> None:
        before = self._task(attempt.task_id)
        if outcome is AttemptOutcome.OK:
            self._finish(attempt, wall, running=False)
        elif outcome is AttemptOutcome.CANCELLED:
            self._report_cancelled(attempt, wall, running=False)
        else:
            self._fail(attempt, outcome, wall, running=False)
        after = self._task(attempt.task_id)
        assert after == before, f"the end of stopped attempt {attempt.id} changed its task"

    def _report_cancelled(self, attempt: Attempt, wall: float, *, running: bool) -> None:
        end = self.store.fail_attempt(attempt.id, attempt.task_id,
                                      outcome=AttemptOutcome.CANCELLED,
                                      usage=Usage(wall_s=wall, cores=attempt.cores),
                                      message="cancelled", rules=self.limits)
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
        assert sorted(running) == self._running_tasks(task.job_id)
        assert self._task(task.id).state is TaskState.FAILED

    @precondition(lambda self: bool(self.model.open))
    @rule()
    def kill_and_restart(self) -> None:
        """The service dies with attempts running; the next one recovers them as LOST."""
        self.store.dispose()
        self.store = Store(self.url)
        # a loss counts against max_lost when it ended the task's running attempt (not one its
        # job's cancel had already stopped)
        counted = {
            attempt_id for attempt_id in self.model.open
            if self.view.tasks[(a := self.model.attempts[attempt_id]).task_id].state
            is TaskState.RUNNING and self._life(a.task_id)[-1].id == attempt_id
        }
        assert self.store.recover_interrupted(
            rules_for=lambda _kind, _spec: self.limits) == len(self.model.open)
        for attempt_id in self.model.open:
            self.model.attempts[attempt_id].closed = Closed(None, None,
                                                            counted=attempt_id in counted)
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
        """Cancel a job; the dispatcher stops its attempts and reports them CANCELLED (or
        whatever the worker answers), now or a few steps later, maybe after a retry."""
        active = self._cancellable()
        job_id = active[pick % len(active)]
        running = self.store.cancel_job(job_id)
        assert sorted(running) == self._running_tasks(job_id)
        assert self._job_state(job_id) is JobState.CANCELLED
        if report_now:
            for attempt_id in self._open_of_job(job_id):
                self._stopped_end(self.model.attempts[attempt_id], AttemptOutcome.CANCELLED, wall)

    @precondition(lambda self: bool(self._cancellable()))
    @rule(pick=picks, start_again=st.booleans(), cores=cores_st, wall=walls,
          late=st.sampled_from([None, *STOPPED_ENDS]))
    def cancel_and_retry_at_once(self, pick: int, start_again: bool, cores: float,
                                 wall: float, late: AttemptOutcome | None) -> None:
        """A user cancels a job and retries it before the dispatcher has stopped anything:
        the attempts that ran are still out when their tasks are ready again, maybe running
        again (the dispatcher starts ready tasks sooner than a worker stops one), and their
        `late` end may come now."""
        jobs = self._cancellable()
        job_id = jobs[pick % len(jobs)]
        stale = self._open_of_job(job_id)
        running = self.store.cancel_job(job_id)
        assert sorted(running) == self._running_tasks(job_id)
        again = [t.id for t in self.store.tasks(job_id)
                 if t.state in (TaskState.FAILED, TaskState.CANCELLED)]
        assert self.store.retry_failed(job_id) == len(again)
        self.via.add(TaskState.CANCELLED)
        self._new_life(again)
        assert self._job_state(job_id) is JobState.QUEUED
        if start_again:
            self.via.add(TaskState.READY)
            for task in self.store.tasks_by_ids(running):
                if task.state is TaskState.READY:
                    self._start_task(task, "n1", cores)
        if late is not None:
            for attempt_id in stale:
                self._stopped_end(self.model.attempts[attempt_id], late, wall)

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

    @precondition(lambda self: bool(self._jobs_in(STOPPED)))
    @rule(pick=picks)
    def retry(self, pick: int) -> None:
        """Retry a failed or cancelled job, even while its stopped attempts are still out."""
        jobs = self._jobs_in(STOPPED)
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
            assert _reachable(was, now, self.via), f"task {task.key}: {was.value} -> {now.value}"
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
            assert own_rows <= self.limits.max_attempts, (task.key, own_rows)
            own, lost = self._counted(task.id)
            assert lost <= self.limits.max_lost, (task.key, lost)
            assert (task.faults, task.losses, task.attempts) == (own, lost, len(life)), task
            oks = [i for i, a in enumerate(life)
                   if a.closed and a.closed.outcome is AttemptOutcome.OK]
            assert oks in ([], [len(life) - 1]), f"{task.key}: an attempt after its OK one"
            if task.state is TaskState.DONE:
                assert oks == [len(life) - 1], f"{task.key} is done without an OK attempt"
            # attempts of this life still out (those of earlier lives are being stopped)
            running = [a for a in life if a.id in self.model.open]
            if task.state is TaskState.RUNNING:
                assert len(running) == 1 and running[0] is life[-1], (task.key, running)
            else:
                assert not running or task.state in (TaskState.CANCELLED, TaskState.FAILED), (
                    f"{task.key} is {task.state.value} while attempt {running[0].id} runs")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where the runs keep their databases: in memory where the machine has /dev/shm (each
    store call opens and closes a connection, and a close checkpoints the WAL to disk)."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path_factory.mktemp("lifecycle")
        return
    path = Path(tempfile.mkdtemp(prefix="wanhe-lifecycle-", dir=shm))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_random_farm_events_keep_the_lifecycle(runs: Path) -> None:
    class Machine(LifecycleMachine):
        pass

    Machine.template, Machine.base = runs / "template.db", runs
    Store(f"sqlite:///{Machine.template}").dispose()  # migrated once, copied for each run
    run_state_machine_as_test(
        Machine,
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
