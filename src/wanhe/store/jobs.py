"""Jobs and their task graphs: creating them, job state, cancel/retry/reset, readiness,
dependencies between jobs, and reading tasks."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from wanhe.lifecycle import (
    DEAD_END_JOBS,
    RETRIED_TASKS,
    UNFINISHED_TASKS,
    Restart,
    check_job,
    check_task,
    dependencies_done,
    dependents_fail,
    first_state,
    job_is_done,
    task_is_ready,
    tasks_when_job_ends,
    waiting_on_reason,
)
from wanhe.model import JobState, TaskSpec, TaskState
from wanhe.store import tables as t
from wanhe.store.base import _StoreBase
from wanhe.store.batch import among
from wanhe.store.kitsu import PublishTo, insert_publication
from wanhe.store.rows import JobRow, StoreError, TaskRow, _job, _now, _task
from wanhe.store.transitions import move_jobs, move_tasks


def _dependencies_done(conn: Connection, depends_on: Iterable[int]) -> bool:
    """The state machine's `dependencies_done` over the stored states of `depends_on`."""
    wanted = sorted(set(depends_on))
    if not wanted:
        return True
    states = {int(r.id): JobState(r.state) for r in conn.execute(
        select(t.jobs.c.id, t.jobs.c.state).where(t.jobs.c.id.in_(wanted)))}
    return dependencies_done(wanted, states)


_DEAD_ENDS = sorted(s.value for s in DEAD_END_JOBS)
_RETRIED = sorted(s.value for s in RETRIED_TASKS)


def _dead_dependencies(conn: Connection, depends_on: Iterable[int]) -> list[tuple[int, str]]:
    """(id, state) of the jobs in `depends_on` that were cancelled or failed."""
    wanted = sorted(set(depends_on))
    if not wanted:
        return []
    rows = conn.execute(
        select(t.jobs.c.id, t.jobs.c.state)
        .where(t.jobs.c.id.in_(wanted), t.jobs.c.state.in_(_DEAD_ENDS))
        .order_by(t.jobs.c.id)
    ).all()
    return [(int(r.id), str(r.state)) for r in rows]


class JobsMixin(_StoreBase):
    def create_job(
        self,
        *,
        project_id: int,
        name: str,
        kind: str,
        spec: dict[str, Any],
        fingerprint: str,
        tasks: Sequence[TaskSpec],
        priority: int = 50,
        submitter: str = "",
        depends_on: Sequence[int] = (),
        work_dir: str = "",
    ) -> int:
        """Insert a job and its whole task graph in one transaction; return the job id."""
        keys = [task.key for task in tasks]
        if len(set(keys)) != len(keys):
            raise StoreError("task keys within a job must be unique")
        now = _now()
        with self.engine.begin() as conn:
            job_id = int(
                conn.execute(
                    insert(t.jobs).values(
                        project_id=project_id, name=name, kind=kind, spec=json.dumps(spec),
                        fingerprint=fingerprint, state=JobState.QUEUED.value, priority=priority,
                        submitter=submitter, message="", depends_on=json.dumps(list(depends_on)),
                        work_dir=work_dir, created_at=now,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
            )
            self._insert_tasks(conn, job_id, tasks, waiting_on_jobs=bool(depends_on))
            self._touch_jobs(conn, [job_id], tasks=True)
        return job_id

    def create_job_with(
        self,
        *,
        project_id: int,
        name: str,
        kind: str,
        build: Callable[[int], tuple[dict[str, Any], str, Sequence[TaskSpec], str]],
        priority: int = 50,
        submitter: str = "",
        depends_on: Sequence[int] = (),
        paused: bool = False,
        publish_to: PublishTo | None = None,
    ) -> int:
        """Insert a job whose spec needs its own id (paths under jobs/<id>/), in one transaction.
        `paused` stores it paused: no task starts until it is resumed. `publish_to` stores its
        Kitsu publication in the same transaction: a crash cannot leave the job without it.

        `build(job_id)` returns (spec, fingerprint, tasks, work_dir); if it raises, nothing is
        stored. It must be quick (no Blender): it runs while the transaction is open.
        """
        with self.engine.begin() as conn:
            job_id = int(
                conn.execute(
                    insert(t.jobs).values(
                        project_id=project_id, name=name, kind=kind, spec="{}", fingerprint="",
                        state=(JobState.PAUSED if paused else JobState.QUEUED).value,
                        priority=priority, submitter=submitter,
                        message="submitted paused: resume it to start" if paused else "",
                        depends_on=json.dumps(list(depends_on)), work_dir="",
                        created_at=_now(),
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
            )
            spec, fingerprint, tasks, work_dir = build(job_id)
            keys = [task.key for task in tasks]
            if len(set(keys)) != len(keys):
                raise StoreError("task keys within a job must be unique")
            waits = not _dependencies_done(conn, depends_on)
            conn.execute(
                update(t.jobs)
                .where(t.jobs.c.id == job_id)
                .values(spec=json.dumps(spec), fingerprint=fingerprint, work_dir=work_dir)
            )
            self._insert_tasks(conn, job_id, tasks, waiting_on_jobs=waits)
            if publish_to is not None:
                insert_publication(conn, job_id, project_id, publish_to)
            self._touch_jobs(conn, [job_id], tasks=True)
        return job_id

    def _insert_tasks(
        self, conn: Connection, job_id: int, tasks: Sequence[TaskSpec], *, waiting_on_jobs: bool
    ) -> None:
        rows = [
            {
                "job_id": job_id, "key": task.key, "seq": seq, "kind": str(task.kind),
                "frame": task.frame, "tile": task.tile, "chunk": task.chunk,
                "state": first_state(len(task.deps), job_waits_on_jobs=waiting_on_jobs).value,
                "payload": json.dumps(task.payload), "deps_left": len(task.deps), "attempts": 0,
                "cpus": task.resources.cpus, "memory": task.resources.memory,
                "gpus": task.resources.gpus, "output": "{}", "error": "", "progress": 0.0,
                "affinity": task.affinity,
            }
            for seq, task in enumerate(tasks)
        ]
        if rows:
            conn.execute(insert(t.tasks), rows)
        ids = dict(
            conn.execute(
                select(t.tasks.c.key, t.tasks.c.id).where(t.tasks.c.job_id == job_id)
            ).all()
        )
        deps = [
            {"task_id": ids[task.key], "dep_id": ids[dep]} for task in tasks for dep in task.deps
        ]
        if deps:
            conn.execute(insert(t.task_deps), deps)

    def job(self, job_id: int) -> JobRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.jobs).where(t.jobs.c.id == job_id)).first()
        return _job(row) if row else None

    def jobs(
        self, *, project_id: int | None = None, states: Iterable[JobState] | None = None,
        limit: int = 500,
    ) -> list[JobRow]:
        query = select(t.jobs)
        if project_id is not None:
            query = query.where(t.jobs.c.project_id == project_id)
        if states is not None:
            query = query.where(t.jobs.c.state.in_([s.value for s in states]))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.jobs.c.id.desc()).limit(limit)).all()
        return [_job(r) for r in rows]

    def find_job(self, project_id: int, fingerprint: str) -> JobRow | None:
        """The newest job of `project_id` made from the same spec (for resuming)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.jobs)
                .where(t.jobs.c.project_id == project_id, t.jobs.c.fingerprint == fingerprint)
                .order_by(t.jobs.c.id.desc())
                .limit(1)
            ).first()
        return _job(row) if row else None

    def _job_state(self, conn: Connection, job_id: int) -> JobState:
        state = conn.execute(select(t.jobs.c.state).where(t.jobs.c.id == job_id)).scalar()
        if state is None:
            raise StoreError(f"no job {job_id}")
        return JobState(state)

    def set_job_state(self, job_id: int, state: JobState, message: str | None = None) -> None:
        """Pause, resume, or queue a finished job again: a legal change or IllegalTransition."""
        values: dict[str, Any] = {}
        if message is not None:
            values["message"] = message
        values["finished_at"] = _now() if state.is_final else None
        with self.engine.begin() as conn:
            current = self._job_state(conn, job_id)
            check_job(current, state, job_id=job_id)
            move_jobs(conn, state, t.jobs.c.id == job_id, only_from=[current], **values)
            self._touch_jobs(conn, [job_id], tasks=False)

    def set_job_message(self, job_id: int, message: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(t.jobs).where(t.jobs.c.id == job_id).values(message=message))

    def set_priority(self, job_id: int, priority: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(t.jobs).where(t.jobs.c.id == job_id).values(priority=priority))
            self._touch_jobs(conn, [job_id], tasks=False)

    def cancel_job(self, job_id: int, message: str = "cancelled by user") -> list[int]:
        """Cancel every unfinished task; return the ids of those that were running."""
        with self.engine.begin() as conn:
            return self._end_job_in(conn, job_id, JobState.CANCELLED, message)

    def dead_dependencies(self, depends_on: Iterable[int]) -> list[tuple[int, str]]:
        """(id, state) of the jobs in `depends_on` that were cancelled or failed: a job
        waiting on one of them would wait forever."""
        with self.engine.connect() as conn:
            return _dead_dependencies(conn, depends_on)

    def _fail_dependents(self, conn: Connection, job_id: int, state: JobState) -> None:
        """Jobs still waiting on `job_id`, which just entered `state`, fail saying so when the
        state machine says they do ("waiting on job 44 (cancelled)", as Deadline does), and so
        do the jobs waiting on those, in the same transaction."""
        pending = [(job_id, state)] if dependents_fail(state) else []
        while pending:
            dead_id, dead_state = pending.pop()
            candidates = conn.execute(
                select(t.jobs.c.id, t.jobs.c.depends_on).where(
                    t.jobs.c.state.in_([JobState.QUEUED.value, JobState.PAUSED.value]),
                    t.jobs.c.started_at.is_(None), t.jobs.c.depends_on != "[]",
                )
            ).all()
            for row in candidates:
                if dead_id in json.loads(row.depends_on):
                    self._end_job_in(conn, int(row.id), JobState.FAILED,
                                     waiting_on_reason(dead_id, dead_state), dependents=False)
                    pending.append((int(row.id), JobState.FAILED))

    def fail_job(self, job_id: int, reason: str, task_id: int | None = None) -> list[int]:
        """Fail a job that cannot progress (e.g. a task no node may run), in one transaction:
        `task_id` (if given) failed with `reason`, the other unfinished tasks cancelled, the job
        failed with `reason`. Returns the ids of tasks that were running."""
        with self.engine.begin() as conn:
            if task_id is not None:
                state = conn.execute(
                    select(t.tasks.c.state).where(t.tasks.c.id == task_id)
                ).scalar_one()
                check_task(TaskState(state), TaskState.FAILED, task_id=task_id)
                move_tasks(conn, TaskState.FAILED, t.tasks.c.id == task_id,
                           only_from=[TaskState(state)], error=reason[-4000:],
                           finished_at=_now())
            return self._end_job_in(conn, job_id, JobState.FAILED, reason)

    def _end_job_in(
        self, conn: Connection, job_id: int, state: JobState, reason: str, *,
        dependents: bool = True,
    ) -> list[int]:
        """The job enters `state` (cancelled or failed) with `reason`; its unfinished tasks
        follow as the state machine says (`tasks_when_job_ends`), and so do the jobs waiting
        on it (`dependents_fail`). Returns the ids of its tasks that were running."""
        check_job(self._job_state(conn, job_id), state, job_id=job_id)
        running = list(conn.execute(
            select(t.tasks.c.id).where(
                t.tasks.c.job_id == job_id, t.tasks.c.state == TaskState.RUNNING.value
            )
        ).scalars())
        now = _now()
        tasks_become = tasks_when_job_ends(state)
        if tasks_become is not None:
            move_tasks(conn, tasks_become, t.tasks.c.job_id == job_id,
                       only_from=UNFINISHED_TASKS, finished_at=now)
        move_jobs(conn, state, t.jobs.c.id == job_id, message=reason, finished_at=now)
        self._touch_jobs(conn, [job_id], tasks=True)
        if dependents:
            self._fail_dependents(conn, job_id, state)
        return running

    def retry_failed(self, job_id: int) -> int:
        """Put a job's failed and cancelled tasks back in the queue; return how many."""
        with self.engine.begin() as conn:
            ids = [
                r.id for r in conn.execute(
                    select(t.tasks.c.id).where(
                        t.tasks.c.job_id == job_id, t.tasks.c.state.in_(_RETRIED))
                )
            ]
            if not ids:
                return 0
            self._requeue(conn, job_id, ids)
        return len(ids)

    def restart_job(self, job_id: int, plan: Restart) -> int:
        """Run a job again as the state machine planned it (`retry_plan`, `resume_plan`), in
        one transaction; return how many of its tasks run again."""
        with self.engine.begin() as conn:
            ids = set(plan.redo)
            if plan.requeue_failed:
                ids.update(conn.execute(select(t.tasks.c.id).where(
                    t.tasks.c.job_id == job_id, t.tasks.c.state.in_(_RETRIED))).scalars())
            if ids:
                self._requeue(conn, job_id, sorted(ids))
            elif plan.target is not None:
                current = self._job_state(conn, job_id)
                check_job(current, plan.target, job_id=job_id)
                move_jobs(conn, plan.target, t.jobs.c.id == job_id, only_from=[current],
                          message="", finished_at=None)
                self._touch_jobs(conn, [job_id], tasks=False)
        return len(ids)

    def reset_tasks(self, job_id: int, task_ids: Sequence[int]) -> None:
        """Make finished tasks run again (their outputs went missing)."""
        if not task_ids:
            return
        with self.engine.begin() as conn:
            self._requeue(conn, job_id, task_ids)

    def _requeue(self, conn: Connection, job_id: int, task_ids: Sequence[int]) -> None:
        """Tasks start a fresh life (no attempts, no faults) waiting for their dependencies;
        their job is queued again, its node blocklist cleared (`reset_at`: failures before
        it no longer count, see `node_failures`)."""
        current = self._job_state(conn, job_id)
        check_job(current, JobState.QUEUED, job_id=job_id)
        move_tasks(conn, TaskState.WAITING, t.tasks.c.id.in_(list(task_ids)),
                   attempts=0, faults=0, losses=0, error="", finished_at=None)
        self._refresh_readiness(conn, job_id)
        move_jobs(conn, JobState.QUEUED, t.jobs.c.id == job_id, only_from=[current],
                  message="", finished_at=None, reset_at=_now())
        self._touch_jobs(conn, [job_id], tasks=True)

    def _refresh_readiness(self, conn: Connection, job_id: int) -> None:
        """Recount unfinished dependencies of the job's waiting tasks; free those with none.

        Two set-based statements whatever the job's size (it was two per waiting task: a
        retry of a film-sized job took minutes)."""
        dep = t.tasks.alias("dep")
        unfinished = (
            select(func.count())
            .select_from(t.task_deps.join(dep, dep.c.id == t.task_deps.c.dep_id))
            .where(t.task_deps.c.task_id == t.tasks.c.id, dep.c.state != TaskState.DONE.value)
            .scalar_subquery()
        )
        waiting = (t.tasks.c.job_id == job_id) & (t.tasks.c.state == TaskState.WAITING.value)
        conn.execute(update(t.tasks).where(waiting).values(deps_left=unfinished))
        if not task_is_ready(0, job_waits_on_jobs=self._job_waits_on_jobs(conn, job_id)):
            return  # a job it depends on is not done: `release_jobs_waiting_on` frees them
        move_tasks(conn, TaskState.READY, waiting, t.tasks.c.deps_left == 0,
                   only_from=[TaskState.WAITING])

    def release_jobs_waiting_on(self, finished_job_id: int) -> list[int]:
        """Jobs whose dependencies on other jobs are all done now get their first tasks ready."""
        released: list[int] = []
        with self.engine.begin() as conn:
            candidates = conn.execute(
                select(t.jobs.c.id, t.jobs.c.depends_on).where(
                    t.jobs.c.state == JobState.QUEUED.value, t.jobs.c.depends_on != "[]"
                )
            ).all()
            for row in candidates:
                deps = json.loads(row.depends_on)
                if finished_job_id not in deps:
                    continue
                if _dependencies_done(conn, deps):  # its waiting tasks with none left: ready
                    move_tasks(conn, TaskState.READY, t.tasks.c.job_id == row.id,
                               t.tasks.c.deps_left == 0, only_from=[TaskState.WAITING])
                    released.append(row.id)
            self._touch_jobs(conn, released, tasks=True)
        return released

    def _job_waits_on_jobs(self, conn: Connection, job_id: int) -> bool:
        deps = json.loads(
            conn.execute(select(t.jobs.c.depends_on).where(t.jobs.c.id == job_id)).scalar_one()
        )
        return not _dependencies_done(conn, deps)

    def _settle_job(self, conn: Connection, job_id: int) -> None:
        """The job is done when the state machine says so (`job_is_done`)."""
        # one task not done is enough to know: index seeks on (job_id, state), where a COUNT
        # of every unfinished task scanned a big job's tasks on each batch of finishes
        unfinished = [s.value for s in TaskState if s is not TaskState.DONE]
        left = conn.execute(
            select(t.tasks.c.id).where(
                t.tasks.c.job_id == job_id, t.tasks.c.state.in_(unfinished)
            ).limit(1)
        ).first()
        if job_is_done(0 if left is None else 1):
            move_jobs(conn, JobState.DONE, t.jobs.c.id == job_id, finished_at=_now(),
                      message="")

    def tasks(self, job_id: int) -> list[TaskRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.tasks).where(t.tasks.c.job_id == job_id).order_by(t.tasks.c.seq)
            ).all()
        return [_task(r) for r in rows]

    def tasks_page(self, job_id: int, *, after: int = -1, limit: int = 1000) -> list[TaskRow]:
        """Up to `limit` of a job's tasks in order, those after task position `after` (a
        task's `seq`): one page of a list that may hold 100,000 tasks."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.tasks).where(t.tasks.c.job_id == job_id, t.tasks.c.seq > after)
                .order_by(t.tasks.c.seq).limit(limit)
            ).all()
        return [_task(r) for r in rows]

    def tasks_by_ids(self, task_ids: Sequence[int]) -> list[TaskRow]:
        if not task_ids:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.tasks).where(among(t.tasks.c.id, task_ids, self.engine.dialect.name))
                .order_by(t.tasks.c.seq)
            ).all()
        return [_task(r) for r in rows]

    def task(self, task_id: int) -> TaskRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.tasks).where(t.tasks.c.id == task_id)).first()
        return _task(row) if row else None

    def task_counts(self, job_id: int) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.tasks.c.state, func.count())
                .where(t.tasks.c.job_id == job_id)
                .group_by(t.tasks.c.state)
            ).all()
        return {state: int(count) for state, count in rows}

    def task_counts_by_job(self, job_ids: Sequence[int]) -> dict[int, dict[str, int]]:
        """{job id: {task state: count}} for many jobs in one query."""
        if not job_ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.tasks.c.job_id, t.tasks.c.state, func.count())
                .where(t.tasks.c.job_id.in_(list(job_ids)))
                .group_by(t.tasks.c.job_id, t.tasks.c.state)
            ).all()
        counts: dict[int, dict[str, int]] = {}
        for job_id, state, count in rows:
            counts.setdefault(int(job_id), {})[state] = int(count)
        return counts

    def task_times(
        self, job_id: int, task_ids: Sequence[int] | None = None
    ) -> dict[int, tuple[float | None, float | None]]:
        """{task id: (started_at, finished_at)} of a job's tasks (of `task_ids` only)."""
        query = select(t.tasks.c.id, t.tasks.c.started_at, t.tasks.c.finished_at).where(
            t.tasks.c.job_id == job_id)
        if task_ids is not None:
            query = query.where(t.tasks.c.id.in_(list(task_ids)))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {int(r.id): (r.started_at, r.finished_at) for r in rows}

    def farm_task_counts(self) -> dict[str, int]:
        """Task counts by state over jobs that can still run (queued, running, paused)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.tasks.c.state, func.count())
                .join(t.jobs, t.jobs.c.id == t.tasks.c.job_id)
                .where(t.jobs.c.state.in_(
                    [JobState.QUEUED.value, JobState.RUNNING.value, JobState.PAUSED.value]))
                .group_by(t.tasks.c.state)
            ).all()
        return {state: int(count) for state, count in rows}
