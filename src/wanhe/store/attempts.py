"""Attempts: a task starting, finishing or failing, recovery after a crash, and reading them."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Connection

from wanhe.lifecycle import (
    OWN_FAULT,
    AttemptHistory,
    RetryRules,
    Verdict,
    after_attempt,
    blocklists_node,
    counts_toward_blocklist,
    give_up_reason,
    job_after_verdict,
)
from wanhe.model import AttemptOutcome, JobState, TaskState
from wanhe.store import tables as t
from wanhe.store.base import _StoreBase
from wanhe.store.batch import among, insert_returning
from wanhe.store.rows import AttemptEnd, AttemptFinish, AttemptStart, StoreError, Usage, _now
from wanhe.store.transitions import move_jobs, move_tasks


def _last_sign_of_life(started_at: float, heartbeat: float | None, log_path: str) -> float:
    """When an attempt last showed it was alive: its start, its newest heartbeat, or the last
    write to its log, whichever is latest."""
    latest = max(started_at, heartbeat or 0.0)
    if log_path:
        with contextlib.suppress(OSError):
            latest = max(latest, os.stat(log_path).st_mtime)
    return latest


class AttemptsMixin(_StoreBase):
    def start_attempt(
        self, task_id: int, *, node: str, worker: str, cores: float, log_path: str = ""
    ) -> int:
        """Mark a ready task running and open an attempt for it; return the attempt id."""
        started = self.start_attempts([AttemptStart(task_id, node, worker, cores, log_path)])
        if task_id not in started:
            task = self._task_state(task_id)
            raise StoreError(f"task {task_id} is {task}, not ready")
        return started[task_id]

    def _task_state(self, task_id: int) -> str:
        with self.engine.connect() as conn:
            state = conn.execute(
                select(t.tasks.c.state).where(t.tasks.c.id == task_id)).scalar_one_or_none()
        return str(state or "missing")

    def start_attempts(self, starts: Sequence[AttemptStart]) -> dict[int, int]:
        """Many ready tasks marked running, each with a new attempt, in one transaction (the
        dispatcher starts every idle slot's task at once); their jobs are running. Returns
        task id -> attempt id; a task that is no longer ready is left out, untouched."""
        if not starts:
            return {}
        now = _now()
        dialect = self.engine.dialect.name
        with self.engine.begin() as conn:
            rows = {r.id: r for r in conn.execute(
                select(t.tasks.c.id, t.tasks.c.job_id, t.tasks.c.attempts, t.tasks.c.kind,
                       t.tasks.c.state)
                .where(among(t.tasks.c.id, [s.task_id for s in starts], dialect)))}
            ready = [s for s in starts
                     if s.task_id in rows and rows[s.task_id].state == TaskState.READY.value]
            if not ready:
                return {}
            jobs = {r.id: r for r in conn.execute(
                select(t.jobs.c.id, t.jobs.c.project_id, t.jobs.c.state)
                .where(among(t.jobs.c.id, {rows[s.task_id].job_id for s in ready}, dialect)))}
            queued = sorted(j.id for j in jobs.values() if j.state == JobState.QUEUED.value)
            # one statement for the batch (no per-row parameters to build): the rows read
            # above are this transaction's, so `attempts + 1` is the number given below
            move_tasks(
                conn, TaskState.RUNNING, among(t.tasks.c.id, [s.task_id for s in ready], dialect),
                only_from=[TaskState.READY], attempts=t.tasks.c.attempts + 1, started_at=now,
                progress=0.0,
            )
            if queued:
                move_jobs(conn, JobState.RUNNING, t.jobs.c.id.in_(queued),
                          only_from=[JobState.QUEUED], started_at=now)
            # Matched back by task id, so the rows may come back in any order: one INSERT for
            # the batch (with the order kept, SQLite took one INSERT per attempt)
            made = insert_returning(
                conn, t.attempts,
                [{"task_id": s.task_id, "job_id": rows[s.task_id].job_id,
                  "project_id": jobs[rows[s.task_id].job_id].project_id,
                  "number": rows[s.task_id].attempts + 1, "kind": rows[s.task_id].kind,
                  "node": s.node, "worker": s.worker, "started_at": now, "cores": s.cores,
                  "log_path": s.log_path} for s in ready],
                t.attempts.c.id, t.attempts.c.task_id,
            )
            return {int(r.task_id): int(r.id) for r in made}

    def _close_attempt(
        self, conn: Connection, attempt_id: int, outcome: AttemptOutcome, usage: Usage | None,
        message: str, *, last_alive: float | None = None,
    ) -> None:
        """Close an attempt. `last_alive` (a lost attempt's last sign of life): it is metered
        up to then and ends then; the time from then to now is `unbilled_s`."""
        now = _now()
        row = conn.execute(
            select(t.attempts.c.started_at, t.attempts.c.cores).where(t.attempts.c.id == attempt_id)
        ).one()
        ended, unbilled = now, 0.0
        if last_alive is not None:
            ended = min(now, max(row.started_at, last_alive))
            unbilled = now - ended
        wall = usage.wall_s if usage is not None else max(0.0, ended - row.started_at)
        conn.execute(
            update(t.attempts)
            .where(t.attempts.c.id == attempt_id, t.attempts.c.ended_at.is_(None))
            .values(
                ended_at=ended, wall_s=wall, outcome=outcome.value, message=message[-4000:],
                cpu_s=usage.cpu_s if usage else None,
                peak_rss=usage.peak_rss if usage else None,
                gpu_s=usage.gpu_s if usage else 0.0, unbilled_s=unbilled,
            )
        )

    def hand_back(self, running: Sequence[tuple[int, int]], message: str) -> int:
        """A graceful stop: the (attempt id, task id) pairs still running are closed as
        cancelled (metered up to now: the work was done), and their tasks are ready again
        with nothing counted against their retries. Returns how many tasks went back."""
        handed: set[int] = set()
        with self.engine.begin() as conn:
            for attempt_id, task_id in running:
                self._close_attempt(conn, attempt_id, AttemptOutcome.CANCELLED, None, message)
                task = conn.execute(
                    select(t.tasks.c.state, t.tasks.c.job_id).where(t.tasks.c.id == task_id)
                ).one()
                if task.state != TaskState.RUNNING.value or not self._newest(
                        conn, attempt_id, task_id):
                    continue
                move_tasks(conn, TaskState.READY, t.tasks.c.id == task_id,
                           only_from=[TaskState.RUNNING], progress=0.0)
                handed.add(int(task.job_id))
            self._touch_jobs(conn, sorted(handed), tasks=True)
        return len(handed)

    def note_attempts_alive(self, seen: Mapping[int, float]) -> None:
        """Heartbeats: attempt id -> when its worker last answered (the dispatcher writes
        them every few seconds). An attempt lost in an outage is metered up to the newest."""
        if not seen:
            return
        with self.engine.begin() as conn:
            conn.execute(
                update(t.attempts)
                .where(t.attempts.c.id == bindparam("aid"), t.attempts.c.ended_at.is_(None))
                .values(last_seen_at=bindparam("seen")),
                [{"aid": aid, "seen": when} for aid, when in seen.items()],
            )

    def finish_attempt(
        self, attempt_id: int, task_id: int, usage: Usage, output: dict[str, Any]
    ) -> list[int]:
        """Record a successful attempt; the task is done. Return ids of tasks made ready."""
        return self.finish_attempts([AttemptFinish(attempt_id, task_id, usage, output)])

    def finish_attempts(self, finished: Sequence[AttemptFinish]) -> list[int]:
        """Many successful attempts recorded in one transaction (the dispatcher records every
        answer of a wait at once): their tasks are done, the tasks waiting only on them are
        ready, and each job with nothing left is done. Returns ids of the tasks made ready.

        An attempt whose task was cancelled meanwhile, or that is not its task's newest (a
        previous life's attempt ending while a newer one runs), keeps its usage, not its
        result."""
        if not finished:
            return []
        now = _now()
        task_ids = [f.task_id for f in finished]
        dialect = self.engine.dialect.name
        with self.engine.begin() as conn:
            conn.execute(
                update(t.attempts)
                .where(t.attempts.c.id == bindparam("b_attempt"), t.attempts.c.ended_at.is_(None))
                .values(ended_at=now, wall_s=bindparam("b_wall"), outcome=AttemptOutcome.OK.value,
                        message="", cpu_s=bindparam("b_cpu"), peak_rss=bindparam("b_rss"),
                        gpu_s=bindparam("b_gpu"), unbilled_s=0.0),
                [{"b_attempt": f.attempt_id, "b_wall": f.usage.wall_s, "b_cpu": f.usage.cpu_s,
                  "b_rss": f.usage.peak_rss, "b_gpu": f.usage.gpu_s} for f in finished],
            )
            states = {r.id: r for r in conn.execute(
                select(t.tasks.c.id, t.tasks.c.state, t.tasks.c.job_id)
                .where(among(t.tasks.c.id, task_ids, dialect)))}
            newest = {int(task_id): latest for task_id, latest in conn.execute(
                select(t.attempts.c.task_id, func.max(t.attempts.c.id))
                .where(among(t.attempts.c.task_id, task_ids, dialect))
                .group_by(t.attempts.c.task_id))}
            done = [f for f in finished
                    if states[f.task_id].state == TaskState.RUNNING.value
                    and newest.get(f.task_id) == f.attempt_id]
            if not done:
                return []
            # one UPDATE per distinct output (tasks that write nothing share one), not per task
            by_output: dict[str, list[int]] = {}
            for f in done:
                by_output.setdefault(json.dumps(f.output), []).append(f.task_id)
            for output, ids in by_output.items():
                move_tasks(conn, TaskState.DONE, among(t.tasks.c.id, ids, dialect),
                           only_from=[TaskState.RUNNING], output=output, error="",
                           progress=1.0, finished_at=now)
            ready = self._release_dependents(conn, {f.task_id: states[f.task_id].job_id
                                                    for f in done})
            for job_id in sorted({states[f.task_id].job_id for f in done}):
                self._settle_job(conn, job_id)
        return ready

    def _release_dependents(self, conn: Connection, done: Mapping[int, int]) -> list[int]:
        """One fewer dependency left for every task waiting on a task of `done` (task id ->
        its job id); those with none left, of jobs not waiting on other jobs, are ready."""
        edges = conn.execute(
            select(t.task_deps.c.task_id, t.task_deps.c.dep_id)
            .where(among(t.task_deps.c.dep_id, list(done), self.engine.dialect.name))
        ).all()
        if not edges:
            return []
        fewer: dict[int, int] = {}
        jobs: dict[int, int] = {}
        for edge in edges:
            fewer[edge.task_id] = fewer.get(edge.task_id, 0) + 1
            jobs[edge.task_id] = done[edge.dep_id]
        conn.execute(
            update(t.tasks).where(t.tasks.c.id == bindparam("b_task"))
            .values(deps_left=t.tasks.c.deps_left - bindparam("b_fewer")),
            [{"b_task": task_id, "b_fewer": n} for task_id, n in fewer.items()],
        )
        waiting_jobs = {job_id for job_id in set(jobs.values())
                        if self._job_waits_on_jobs(conn, job_id)}
        free = [task_id for task_id in fewer if jobs[task_id] not in waiting_jobs]
        if not free:
            return []
        ready = [
            r.id for r in conn.execute(
                select(t.tasks.c.id).where(
                    t.tasks.c.id.in_(free),
                    t.tasks.c.deps_left == 0,
                    t.tasks.c.state == TaskState.WAITING.value,
                )
            )
        ]
        if ready:
            move_tasks(conn, TaskState.READY, t.tasks.c.id.in_(ready),
                       only_from=[TaskState.WAITING])
        return ready

    @staticmethod
    def _newest(conn: Connection, attempt_id: int, task_id: int) -> bool:
        """Whether `attempt_id` is the task's latest attempt (the one its state is about)."""
        latest = conn.execute(
            select(func.max(t.attempts.c.id)).where(t.attempts.c.task_id == task_id)
        ).scalar_one()
        return bool(latest == attempt_id)

    def fail_attempt(
        self, attempt_id: int, task_id: int, *, outcome: AttemptOutcome, usage: Usage | None,
        message: str, rules: RetryRules | None = None, label: str = "",
    ) -> AttemptEnd:
        """Record an attempt that did not succeed and apply the state machine's verdicts, all in
        one transaction: the task is ready again, or failed for good, and then its job fails
        with it (unfinished tasks cancelled, the job failed with the reason); the node it ran
        on is blocklisted for the job after repeated failures (`AttemptEnd.blocklist`)."""
        rules = rules or RetryRules()
        with self.engine.begin() as conn:
            self._close_attempt(conn, attempt_id, outcome, usage, message)
            task = conn.execute(
                select(t.tasks.c.state, t.tasks.c.job_id, t.tasks.c.key, t.tasks.c.faults,
                       t.tasks.c.losses).where(t.tasks.c.id == task_id)
            ).one()
            if task.state != TaskState.RUNNING.value or not self._newest(conn, attempt_id,
                                                                        task_id):
                # cancelled or requeued meanwhile; or an attempt from before a retry, whose end
                # says nothing about the attempt that runs now
                return AttemptEnd(Verdict.STOPPED.value, [])
            history = AttemptHistory(task.faults, task.losses)
            verdict = after_attempt(outcome, history, rules)
            counted = history.plus(outcome)
            gives_up = verdict is Verdict.GIVE_UP
            # retry; or an attempt stopped while its task still runs: not its fault
            move_tasks(
                conn, TaskState.FAILED if gives_up else TaskState.READY,
                t.tasks.c.id == task_id, only_from=[TaskState.RUNNING],
                faults=counted.own_fault, losses=counted.lost, progress=0.0,
                error=message[-4000:], finished_at=_now() if gives_up else None,
            )
            node = conn.execute(
                select(t.attempts.c.node).where(t.attempts.c.id == attempt_id)
            ).scalar_one()
            job_becomes = job_after_verdict(verdict)
            if job_becomes is None:  # (the failures on the node are counted only when they count)
                blocklist = counts_toward_blocklist(outcome, verdict) and blocklists_node(
                    outcome, verdict, self._node_failures(conn, task.job_id).get(node, 0),
                    rules)
                return AttemptEnd(verdict.value, [task_id], blocklist=blocklist)
            reason = give_up_reason(label or f"task {task.key}", outcome, counted, node, message)
            self._end_job_in(conn, task.job_id, job_becomes, reason)
        return AttemptEnd(verdict.value, [], job_failed=True, reason=reason)

    def recover_interrupted(
        self, job_ids: Sequence[int] | None = None,
        rules_for: Callable[[str, dict[str, Any]], RetryRules] | None = None,
    ) -> int:
        """After a crash: open attempts become LOST and their running tasks ready again.

        Each such loss counts against the task's `max_lost` (`rules_for(kind, spec)` gives a
        job's rules; default ones otherwise): a task whose every attempt takes the service
        down fails, with its job, instead of being retried forever."""
        message = "the service or worker stopped while this attempt ran"
        with self.engine.begin() as conn:
            query = select(
                t.attempts.c.id, t.attempts.c.task_id, t.attempts.c.started_at,
                t.attempts.c.last_seen_at, t.attempts.c.log_path,
            ).where(t.attempts.c.ended_at.is_(None))
            if job_ids is not None:
                query = query.where(t.attempts.c.job_id.in_(list(job_ids)))
            open_attempts = conn.execute(query).all()
            for attempt in open_attempts:
                alive = _last_sign_of_life(attempt.started_at, attempt.last_seen_at,
                                           attempt.log_path)
                self._close_attempt(
                    conn, attempt.id, AttemptOutcome.LOST, None,
                    f"{message}; metered up to its last sign of life "
                    f"({time.strftime('%H:%M:%S', time.localtime(alive))}), the "
                    f"{max(0.0, _now() - alive):.1f} s after it not billed",
                    last_alive=alive,
                )
            running = select(
                t.tasks.c.id, t.tasks.c.job_id, t.tasks.c.key, t.tasks.c.faults,
                t.tasks.c.losses, t.jobs.c.kind, t.jobs.c.spec,
            ).join(t.jobs, t.jobs.c.id == t.tasks.c.job_id).where(
                t.tasks.c.state == TaskState.RUNNING.value
            )
            if job_ids is not None:
                running = running.where(t.tasks.c.job_id.in_(list(job_ids)))
            lost_open = {a.task_id for a in open_attempts}
            requeued_jobs: set[int] = set()
            failing: dict[int, str] = {}
            for task in conn.execute(running).all():
                requeued_jobs.add(task.job_id)
                history = AttemptHistory(task.faults, task.losses)
                counted = history.plus(AttemptOutcome.LOST) if task.id in lost_open else history
                rules = rules_for(task.kind, json.loads(task.spec)) if rules_for else RetryRules()
                gives_up = (task.id in lost_open and after_attempt(
                    AttemptOutcome.LOST, history, rules) is Verdict.GIVE_UP)
                move_tasks(
                    conn, TaskState.FAILED if gives_up else TaskState.READY,
                    t.tasks.c.id == task.id, only_from=[TaskState.RUNNING],
                    losses=counted.lost, progress=0.0,
                    finished_at=_now() if gives_up else None,
                    error=message if gives_up else t.tasks.c.error,
                )
                if gives_up and task.job_id not in failing:
                    failing[task.job_id] = give_up_reason(
                        f"task {task.key}", AttemptOutcome.LOST, counted, "a stopped service",
                        message)
            for job_id, reason in failing.items():
                self._end_job_in(conn, job_id, JobState.FAILED, reason)
            self._touch_jobs(conn, sorted(requeued_jobs - set(failing)), tasks=True)
        return len(open_attempts)

    def attempts(
        self, job_id: int, task_ids: Sequence[int] | None = None
    ) -> list[dict[str, Any]]:
        """A job's attempts in order (of `task_ids` only, e.g. one page of its tasks)."""
        query = (
            select(t.attempts, t.tasks.c.key, t.tasks.c.frame, t.tasks.c.tile, t.tasks.c.chunk)
            .join(t.tasks, t.tasks.c.id == t.attempts.c.task_id)
            .where(t.attempts.c.job_id == job_id)
            .order_by(t.attempts.c.id)
        )
        if task_ids is not None:
            query = query.where(t.attempts.c.task_id.in_(list(task_ids)))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def node_failures(self, job_id: int) -> dict[str, int]:
        """Own-fault failures of a job's attempts per node (for blocklisting), counted since
        the job was last retried or reset (a retry clears the blocklist)."""
        with self.engine.connect() as conn:
            return self._node_failures(conn, job_id)

    @staticmethod
    def _node_failures(conn: Connection, job_id: int) -> dict[str, int]:
        reset_at = conn.execute(
            select(t.jobs.c.reset_at).where(t.jobs.c.id == job_id)
        ).scalar_one_or_none()
        query = (
            select(t.attempts.c.node, func.count())
            .where(
                t.attempts.c.job_id == job_id,
                t.attempts.c.outcome.in_(sorted(o.value for o in OWN_FAULT)),
            )
            .group_by(t.attempts.c.node)
        )
        if reset_at is not None:
            query = query.where(t.attempts.c.started_at >= reset_at)
        return {node: int(count) for node, count in conn.execute(query).all()}
