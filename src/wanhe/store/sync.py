"""Change tracking for the dispatcher's sync: the revision counter, stamping changed rows,
and the reads a sync makes (see `tables` on change tracking)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from wanhe.model import JobState, Resources, TaskState
from wanhe.store import tables as t
from wanhe.store.base import _StoreBase
from wanhe.store.rows import Changes, ReadyTask, TrackedJob, _project, _tracked


class SyncMixin(_StoreBase):
    def _next_revision(self, conn: Connection) -> int:
        """Take the next value of the change counter; its row stays locked until commit."""
        counter = t.sync_counter
        conn.execute(
            update(counter).where(counter.c.id == 1).values(revision=counter.c.revision + 1)
        )
        return self._read_revision(conn)

    def _touch_jobs(self, conn: Connection, job_ids: Sequence[int], *, tasks: bool) -> None:
        """Stamp jobs changed outside the dispatcher; `tasks`: their ready tasks may differ."""
        if not job_ids:
            return
        jobs = t.jobs
        chosen = jobs.c.id.in_(list(job_ids))
        # Lock the rows before the counter, so a transaction holding the counter waits for
        # nothing more (no deadlock through it on PostgreSQL).
        conn.execute(update(jobs).where(chosen).values(revision=jobs.c.revision))
        revision = self._next_revision(conn)
        conn.execute(update(jobs).where(chosen).values(
            revision=revision, tasks_revision=revision if tasks else jobs.c.tasks_revision))

    def _touch_project(self, conn: Connection, project_id: int) -> None:
        """Stamp a project whose row this transaction wrote (and so holds locked)."""
        revision = self._next_revision(conn)
        conn.execute(
            update(t.projects).where(t.projects.c.id == project_id).values(revision=revision)
        )

    def revision(self) -> int:
        """The change counter: how many outside changes the database has seen."""
        with self.engine.connect() as conn:
            return self._read_revision(conn)

    @staticmethod
    def _read_revision(conn: Connection) -> int:
        counter = t.sync_counter
        return int(conn.execute(select(counter.c.revision).where(counter.c.id == 1)).scalar_one())

    def changes_since(self, revision: int, job_ids: Sequence[int] | None = None) -> Changes:
        """Projects and jobs (of `job_ids`, if given) stamped after `revision`.

        One statement when nothing changed; otherwise also one per table, using its
        revision index, so the cost follows the number of changed rows.
        """
        with self.engine.connect() as conn:
            now = self._read_revision(conn)
            if now == revision:
                return Changes(now, [], [])
            projects = conn.execute(
                select(t.projects).where(t.projects.c.revision > revision)
                .order_by(t.projects.c.id)
            ).all()
            query = select(t.jobs).where(t.jobs.c.revision > revision)
            if job_ids is not None:
                query = query.where(t.jobs.c.id.in_(list(job_ids)))
            jobs = conn.execute(query.order_by(t.jobs.c.id)).all()
        return Changes(now, [_project(r) for r in projects], [_tracked(r) for r in jobs])

    def active_jobs(self, job_ids: Sequence[int] | None = None) -> list[TrackedJob]:
        """Jobs that may still run (queued, running or paused), for a full resync."""
        query = select(t.jobs).where(t.jobs.c.state.in_(
            [JobState.QUEUED.value, JobState.RUNNING.value, JobState.PAUSED.value]))
        if job_ids is not None:
            query = query.where(t.jobs.c.id.in_(list(job_ids)))
        with self.engine.connect() as conn:
            return [_tracked(r) for r in conn.execute(query.order_by(t.jobs.c.id))]

    def ready_tasks_of(self, job_ids: Sequence[int]) -> list[ReadyTask]:
        """The ready tasks of these jobs (whatever the jobs' state), lightly: no payloads."""
        if not job_ids:
            return []
        tasks = t.tasks
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(tasks.c.id, tasks.c.job_id, tasks.c.seq, tasks.c.cpus, tasks.c.memory,
                       tasks.c.gpus, tasks.c.frame, tasks.c.affinity)
                .where(tasks.c.job_id.in_(list(job_ids)),
                       tasks.c.state == TaskState.READY.value)
                .order_by(tasks.c.job_id, tasks.c.seq)
            ).all()
        return [
            ReadyTask(r.id, r.job_id, r.seq, Resources(r.cpus, r.memory, r.gpus), r.frame,
                      r.affinity)
            for r in rows
        ]

    def ready_checksums(self, job_ids: Sequence[int] | None = None) -> dict[int, tuple[int, int]]:
        """{job id: (number of ready tasks, sum of their ids)}: a full resync compares these
        with what the dispatcher holds and re-reads only the jobs that differ."""
        query = (
            select(t.tasks.c.job_id, func.count(), func.sum(t.tasks.c.id))
            .where(t.tasks.c.state == TaskState.READY.value)
            .group_by(t.tasks.c.job_id)
        )
        if job_ids is not None:
            query = query.where(t.tasks.c.job_id.in_(list(job_ids)))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {int(job_id): (int(count), int(total)) for job_id, count, total in rows}

    def not_running(self, task_ids: Sequence[int]) -> set[int]:
        """Which of these tasks the database no longer has running (cancelled, requeued…)."""
        if not task_ids:
            return set()
        with self.engine.connect() as conn:
            return set(conn.execute(
                select(t.tasks.c.id).where(t.tasks.c.id.in_(list(task_ids)),
                                           t.tasks.c.state != TaskState.RUNNING.value)
            ).scalars())
