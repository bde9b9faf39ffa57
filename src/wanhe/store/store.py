"""Queries over the farm's database: the only place that reads or writes job and task state.

SQLite (WAL) by default, PostgreSQL by URL. Every state change is one transaction, so a crash
at any point leaves a state the dispatcher can resume from (`recover_interrupted`).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Engine,
    Insert,
    Table,
    and_,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from wanhe.model import AttemptOutcome, JobState, Resources, TaskSpec, TaskState
from wanhe.store import tables as t


class StoreError(ValueError):
    """A request the store cannot satisfy (unknown project, duplicate name, …)."""


@dataclass(frozen=True, slots=True)
class ProjectRow:
    id: int
    name: str
    weight: float
    budget_core_hours: float | None


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: int
    project_id: int | None  # None: an admin token
    name: str


@dataclass(frozen=True, slots=True)
class JobRow:
    id: int
    project_id: int
    name: str
    kind: str
    spec: dict[str, Any]
    fingerprint: str
    state: JobState
    priority: int
    submitter: str
    message: str
    depends_on: list[int]
    work_dir: str
    created_at: float
    started_at: float | None
    finished_at: float | None


@dataclass(frozen=True, slots=True)
class TaskRow:
    id: int
    job_id: int
    key: str
    seq: int
    kind: str
    frame: int | None
    tile: int | None
    chunk: int | None
    state: TaskState
    payload: dict[str, Any]
    attempts: int
    resources: Resources
    output: dict[str, Any]
    error: str
    progress: float


@dataclass(frozen=True, slots=True)
class Usage:
    """What one attempt used: cores allocated × wall seconds, and what the process really used."""

    wall_s: float
    cores: float
    cpu_s: float | None = None
    peak_rss: int | None = None
    gpu_s: float = 0.0


@dataclass(frozen=True, slots=True)
class ReadyTask:
    """What the dispatcher queues for a ready task; it reads the whole row when it starts it."""

    id: int
    job_id: int
    seq: int
    resources: Resources


@dataclass(frozen=True, slots=True)
class TrackedJob:
    """A job as the dispatcher's sync sees it: its row, and the revision at which its ready
    tasks last changed outside the dispatcher."""

    job: JobRow
    tasks_revision: int


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed outside the dispatcher since a revision (see `tables` on change tracking)."""

    revision: int  # the counter as read before the rows: rows stamped later are read next time
    projects: list[ProjectRow]
    jobs: list[TrackedJob]


_IN_CHUNK = 500  # values per SQL IN (…): well under SQLite's bound-parameter limit


def _now() -> float:
    return time.time()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _job(row: Any) -> JobRow:
    return JobRow(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        kind=row.kind,
        spec=json.loads(row.spec),
        fingerprint=row.fingerprint,
        state=JobState(row.state),
        priority=row.priority,
        submitter=row.submitter,
        message=row.message,
        depends_on=json.loads(row.depends_on),
        work_dir=row.work_dir,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _tracked(row: Any) -> TrackedJob:
    return TrackedJob(_job(row), int(row.tasks_revision))


def _project(row: Any) -> ProjectRow:
    return ProjectRow(row.id, row.name, row.weight, row.budget_core_hours)


def _task(row: Any) -> TaskRow:
    return TaskRow(
        id=row.id,
        job_id=row.job_id,
        key=row.key,
        seq=row.seq,
        kind=row.kind,
        frame=row.frame,
        tile=row.tile,
        chunk=row.chunk,
        state=TaskState(row.state),
        payload=json.loads(row.payload),
        attempts=row.attempts,
        resources=Resources(row.cpus, row.memory, row.gpus),
        output=json.loads(row.output),
        error=row.error,
        progress=row.progress,
    )


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and its folder created."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


class Store:
    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        if migrate:
            from wanhe.store.migrate import upgrade

            upgrade(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    # ---------------------------------------------------------------- projects and tokens

    def create_project(
        self, name: str, *, weight: float = 1.0, budget_core_hours: float | None = None
    ) -> ProjectRow:
        if not name or len(name) > 100:
            raise StoreError("a project name needs 1 to 100 characters")
        if weight <= 0:
            raise StoreError(f"project weight must be positive, not {weight}")
        if budget_core_hours is not None and budget_core_hours < 0:
            raise StoreError(f"a budget cannot be negative ({budget_core_hours} core-hours)")
        with self.engine.begin() as conn:
            if conn.execute(select(t.projects.c.id).where(t.projects.c.name == name)).first():
                raise StoreError(f"project {name!r} exists already")
            pid = conn.execute(
                insert(t.projects).values(
                    name=name, weight=weight, budget_core_hours=budget_core_hours,
                    created_at=_now(),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            self._touch_project(conn, int(pid))
        return ProjectRow(int(pid), name, weight, budget_core_hours)

    def ensure_project(self, name: str) -> ProjectRow:
        found = self.project_by_name(name)
        return found if found is not None else self.create_project(name)

    def project_by_name(self, name: str) -> ProjectRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.projects).where(t.projects.c.name == name)).first()
        return ProjectRow(row.id, row.name, row.weight, row.budget_core_hours) if row else None

    def project(self, project_id: int) -> ProjectRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.projects).where(t.projects.c.id == project_id)).first()
        return ProjectRow(row.id, row.name, row.weight, row.budget_core_hours) if row else None

    def projects(self) -> list[ProjectRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.projects).order_by(t.projects.c.id)).all()
        return [ProjectRow(r.id, r.name, r.weight, r.budget_core_hours) for r in rows]

    def update_project(
        self, project_id: int, *, weight: float | None = None,
        budget_core_hours: float | None = None, clear_budget: bool = False,
    ) -> None:
        values: dict[str, Any] = {}
        if weight is not None:
            if weight <= 0:
                raise StoreError(f"project weight must be positive, not {weight}")
            values["weight"] = weight
        if budget_core_hours is not None:
            if budget_core_hours < 0:
                raise StoreError("a budget cannot be negative")
            values["budget_core_hours"] = budget_core_hours
        if clear_budget:
            values["budget_core_hours"] = None
        if values:
            with self.engine.begin() as conn:
                conn.execute(
                    update(t.projects).where(t.projects.c.id == project_id).values(**values)
                )
                self._touch_project(conn, project_id)

    def create_token(self, project_id: int | None, name: str = "") -> str:
        """A new API token (returned once, stored only as a hash); None makes an admin token."""
        token = "wh_" + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(
                insert(t.tokens).values(
                    project_id=project_id, name=name, token_hash=hash_token(token),
                    created_at=_now(),
                )
            )
        return token

    def verify_token(self, token: str) -> TokenRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.tokens).where(
                    t.tokens.c.token_hash == hash_token(token), t.tokens.c.revoked_at.is_(None)
                )
            ).first()
        return TokenRow(row.id, row.project_id, row.name) if row else None

    def tokens(self, project_id: int | None = None) -> list[dict[str, Any]]:
        query = select(t.tokens, t.projects.c.name.label("project")).outerjoin(
            t.projects, t.tokens.c.project_id == t.projects.c.id
        )
        if project_id is not None:
            query = query.where(t.tokens.c.project_id == project_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.tokens.c.id)).all()
        return [
            {
                "id": r.id, "project": r.project, "name": r.name, "created_at": r.created_at,
                "revoked": r.revoked_at is not None,
            }
            for r in rows
        ]

    def revoke_token(self, token_id: int, project_id: int | None = None) -> bool:
        query = update(t.tokens).where(t.tokens.c.id == token_id, t.tokens.c.revoked_at.is_(None))
        if project_id is not None:
            query = query.where(t.tokens.c.project_id == project_id)
        with self.engine.begin() as conn:
            return bool(conn.execute(query.values(revoked_at=_now())).rowcount)

    # ---------------------------------------------------------------- blobs per project

    def _owned_blobs(self, conn: Connection, project_id: int, hashes: Sequence[str]) -> set[str]:
        owned: set[str] = set()
        for i in range(0, len(hashes), _IN_CHUNK):
            owned.update(conn.execute(
                select(t.project_blobs.c.sha256).where(
                    t.project_blobs.c.project_id == project_id,
                    t.project_blobs.c.sha256.in_(hashes[i:i + _IN_CHUNK]),
                )
            ).scalars())
        return owned

    def blobs_missing(self, project_id: int, hashes: Iterable[str]) -> list[str]:
        """The hashes (de-duplicated, in order) this project never uploaded."""
        wanted = list(dict.fromkeys(hashes))
        with self.engine.connect() as conn:
            owned = self._owned_blobs(conn, project_id, wanted)
        return [sha for sha in wanted if sha not in owned]

    def record_blobs(self, project_id: int, blobs: Iterable[tuple[str, int]]) -> list[str]:
        """Record that a project uploaded these (sha256, size) blobs, whose bytes were verified;
        return the hashes it had not uploaded before. Recording one twice is harmless."""
        sizes = dict(blobs)
        if not sizes:
            return []
        now = _now()
        with self.engine.begin() as conn:
            owned = self._owned_blobs(conn, project_id, list(sizes))
            new = [sha for sha in sizes if sha not in owned]
            if new:
                conn.execute(self._insert_ignoring_duplicates(t.project_blobs), [
                    {"project_id": project_id, "sha256": sha, "size": sizes[sha],
                     "created_at": now} for sha in new
                ])
        return new

    def _insert_ignoring_duplicates(self, table: Table) -> Insert:
        """INSERT that skips rows whose key exists (two uploads of one file may race)."""
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as postgres_insert

            return postgres_insert(table).on_conflict_do_nothing()
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing()

    # ---------------------------------------------------------------- jobs

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

    def _insert_tasks(
        self, conn: Connection, job_id: int, tasks: Sequence[TaskSpec], *, waiting_on_jobs: bool
    ) -> None:
        rows = [
            {
                "job_id": job_id, "key": task.key, "seq": seq, "kind": task.kind.value,
                "frame": task.frame, "tile": task.tile, "chunk": task.chunk,
                "state": (
                    TaskState.READY.value if not task.deps and not waiting_on_jobs
                    else TaskState.WAITING.value
                ),
                "payload": json.dumps(task.payload), "deps_left": len(task.deps), "attempts": 0,
                "cpus": task.resources.cpus, "memory": task.resources.memory,
                "gpus": task.resources.gpus, "output": "{}", "error": "", "progress": 0.0,
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

    def set_job_state(self, job_id: int, state: JobState, message: str | None = None) -> None:
        values: dict[str, Any] = {"state": state.value}
        if message is not None:
            values["message"] = message
        if state.is_final:
            values["finished_at"] = _now()
        with self.engine.begin() as conn:
            conn.execute(update(t.jobs).where(t.jobs.c.id == job_id).values(**values))
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
            running = [
                r.id for r in conn.execute(
                    select(t.tasks.c.id).where(
                        t.tasks.c.job_id == job_id, t.tasks.c.state == TaskState.RUNNING.value
                    )
                )
            ]
            conn.execute(
                update(t.tasks)
                .where(
                    t.tasks.c.job_id == job_id,
                    t.tasks.c.state.in_(
                        [TaskState.WAITING.value, TaskState.READY.value, TaskState.RUNNING.value]
                    ),
                )
                .values(state=TaskState.CANCELLED.value, finished_at=_now())
            )
            conn.execute(
                update(t.jobs)
                .where(t.jobs.c.id == job_id)
                .values(state=JobState.CANCELLED.value, message=message, finished_at=_now())
            )
            self._touch_jobs(conn, [job_id], tasks=True)
        return running

    def retry_failed(self, job_id: int) -> int:
        """Put a job's failed and cancelled tasks back in the queue; return how many."""
        with self.engine.begin() as conn:
            ids = [
                r.id for r in conn.execute(
                    select(t.tasks.c.id).where(
                        t.tasks.c.job_id == job_id,
                        t.tasks.c.state.in_([TaskState.FAILED.value, TaskState.CANCELLED.value]),
                    )
                )
            ]
            if not ids:
                return 0
            conn.execute(
                update(t.tasks)
                .where(t.tasks.c.id.in_(ids))
                .values(state=TaskState.WAITING.value, attempts=0, error="", finished_at=None)
            )
            self._refresh_readiness(conn, job_id)
            conn.execute(
                update(t.jobs)
                .where(t.jobs.c.id == job_id)
                .values(state=JobState.QUEUED.value, message="", finished_at=None)
            )
            self._touch_jobs(conn, [job_id], tasks=True)
        return len(ids)

    def reset_tasks(self, job_id: int, task_ids: Sequence[int]) -> None:
        """Make finished tasks run again (their outputs went missing)."""
        if not task_ids:
            return
        with self.engine.begin() as conn:
            conn.execute(
                update(t.tasks)
                .where(t.tasks.c.id.in_(list(task_ids)))
                .values(state=TaskState.WAITING.value, attempts=0, error="", finished_at=None)
            )
            self._refresh_readiness(conn, job_id)
            conn.execute(
                update(t.jobs)
                .where(t.jobs.c.id == job_id)
                .values(state=JobState.QUEUED.value, message="", finished_at=None)
            )
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
        conn.execute(
            update(t.tasks).where(waiting, t.tasks.c.deps_left == 0)
            .values(state=TaskState.READY.value)
        )

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
                states = conn.execute(
                    select(t.jobs.c.state).where(t.jobs.c.id.in_(deps))
                ).scalars().all()
                if all(s == JobState.DONE.value for s in states) and len(states) == len(deps):
                    conn.execute(
                        update(t.tasks)
                        .where(
                            t.tasks.c.job_id == row.id,
                            t.tasks.c.state == TaskState.WAITING.value,
                            t.tasks.c.deps_left == 0,
                        )
                        .values(state=TaskState.READY.value)
                    )
                    released.append(row.id)
            self._touch_jobs(conn, released, tasks=True)
        return released

    def job_dependencies_done(self, job: JobRow) -> bool:
        if not job.depends_on:
            return True
        with self.engine.connect() as conn:
            states = conn.execute(
                select(t.jobs.c.state).where(t.jobs.c.id.in_(job.depends_on))
            ).scalars().all()
        return len(states) == len(job.depends_on) and all(s == JobState.DONE.value for s in states)

    # ---------------------------------------------------------------- tasks

    def tasks(self, job_id: int) -> list[TaskRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.tasks).where(t.tasks.c.job_id == job_id).order_by(t.tasks.c.seq)
            ).all()
        return [_task(r) for r in rows]

    def tasks_by_ids(self, task_ids: Sequence[int]) -> list[TaskRow]:
        if not task_ids:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.tasks).where(t.tasks.c.id.in_(list(task_ids))).order_by(t.tasks.c.seq)
            ).all()
        return [_task(r) for r in rows]

    def task(self, task_id: int) -> TaskRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.tasks).where(t.tasks.c.id == task_id)).first()
        return _task(row) if row else None

    def ready_tasks(self, job_ids: Sequence[int] | None = None) -> list[tuple[TaskRow, JobRow]]:
        """Ready tasks of runnable (queued or running) jobs, with their job."""
        query = (
            select(t.tasks, t.jobs.c.state.label("job_state"))
            .join(t.jobs, t.jobs.c.id == t.tasks.c.job_id)
            .where(
                t.tasks.c.state == TaskState.READY.value,
                t.jobs.c.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]),
            )
        )
        if job_ids is not None:
            query = query.where(t.tasks.c.job_id.in_(list(job_ids)))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.tasks.c.job_id, t.tasks.c.seq)).all()
            job_rows = {
                r.id: _job(r)
                for r in conn.execute(
                    select(t.jobs).where(t.jobs.c.id.in_({row.job_id for row in rows}))
                )
            }
        return [(_task(r), job_rows[r.job_id]) for r in rows]

    def task_counts(self, job_id: int) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.tasks.c.state, func.count())
                .where(t.tasks.c.job_id == job_id)
                .group_by(t.tasks.c.state)
            ).all()
        return {state: int(count) for state, count in rows}

    def set_progress(self, task_id: int, progress: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(t.tasks).where(t.tasks.c.id == task_id).values(progress=progress)
            )

    # ---------------------------------------------------------------- change tracking (sync)

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
        values = {"revision": revision, "tasks_revision": revision} if tasks \
            else {"revision": revision}
        conn.execute(update(jobs).where(chosen).values(**values))

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
                       tasks.c.gpus)
                .where(tasks.c.job_id.in_(list(job_ids)),
                       tasks.c.state == TaskState.READY.value)
                .order_by(tasks.c.job_id, tasks.c.seq)
            ).all()
        return [
            ReadyTask(r.id, r.job_id, r.seq, Resources(r.cpus, r.memory, r.gpus)) for r in rows
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

    # ---------------------------------------------------------------- attempts

    def start_attempt(
        self, task_id: int, *, node: str, worker: str, cores: float, log_path: str = ""
    ) -> int:
        """Mark a ready task running and open an attempt for it; return the attempt id."""
        now = _now()
        with self.engine.begin() as conn:
            task = conn.execute(
                select(t.tasks.c.job_id, t.tasks.c.attempts, t.tasks.c.kind, t.tasks.c.state)
                .where(t.tasks.c.id == task_id)
            ).one()
            if task.state != TaskState.READY.value:
                raise StoreError(f"task {task_id} is {task.state}, not ready")
            project_id = conn.execute(
                select(t.jobs.c.project_id).where(t.jobs.c.id == task.job_id)
            ).scalar_one()
            number = task.attempts + 1
            conn.execute(
                update(t.tasks)
                .where(t.tasks.c.id == task_id)
                .values(state=TaskState.RUNNING.value, attempts=number, started_at=now,
                        progress=0.0)
            )
            conn.execute(
                update(t.jobs)
                .where(t.jobs.c.id == task.job_id, t.jobs.c.state == JobState.QUEUED.value)
                .values(state=JobState.RUNNING.value, started_at=now)
            )
            attempt_id = conn.execute(
                insert(t.attempts).values(
                    task_id=task_id, job_id=task.job_id, project_id=project_id, number=number,
                    kind=task.kind, node=node, worker=worker, started_at=now, cores=cores,
                    log_path=log_path,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        return int(attempt_id)

    def _close_attempt(
        self, conn: Connection, attempt_id: int, outcome: AttemptOutcome, usage: Usage | None,
        message: str,
    ) -> None:
        now = _now()
        row = conn.execute(
            select(t.attempts.c.started_at, t.attempts.c.cores).where(t.attempts.c.id == attempt_id)
        ).one()
        wall = usage.wall_s if usage is not None else max(0.0, now - row.started_at)
        conn.execute(
            update(t.attempts)
            .where(t.attempts.c.id == attempt_id, t.attempts.c.ended_at.is_(None))
            .values(
                ended_at=now, wall_s=wall, outcome=outcome.value, message=message[-4000:],
                cpu_s=usage.cpu_s if usage else None,
                peak_rss=usage.peak_rss if usage else None,
                gpu_s=usage.gpu_s if usage else 0.0,
            )
        )

    def finish_attempt(
        self, attempt_id: int, task_id: int, usage: Usage, output: dict[str, Any]
    ) -> list[int]:
        """Record a successful attempt; the task is done. Return ids of tasks made ready."""
        with self.engine.begin() as conn:
            self._close_attempt(conn, attempt_id, AttemptOutcome.OK, usage, "")
            state = conn.execute(
                select(t.tasks.c.state, t.tasks.c.job_id).where(t.tasks.c.id == task_id)
            ).one()
            if state.state != TaskState.RUNNING.value:
                return []  # cancelled meanwhile: keep the usage, not the result
            conn.execute(
                update(t.tasks)
                .where(t.tasks.c.id == task_id)
                .values(state=TaskState.DONE.value, output=json.dumps(output), error="",
                        progress=1.0, finished_at=_now())
            )
            dependents = [
                r.task_id for r in conn.execute(
                    select(t.task_deps.c.task_id).where(t.task_deps.c.dep_id == task_id)
                )
            ]
            if dependents:
                conn.execute(
                    update(t.tasks)
                    .where(t.tasks.c.id.in_(dependents))
                    .values(deps_left=t.tasks.c.deps_left - 1)
                )
            job_waits = self._job_waits_on_jobs(conn, state.job_id)
            ready: list[int] = []
            if dependents and not job_waits:
                ready = [
                    r.id for r in conn.execute(
                        select(t.tasks.c.id).where(
                            t.tasks.c.id.in_(dependents),
                            t.tasks.c.deps_left == 0,
                            t.tasks.c.state == TaskState.WAITING.value,
                        )
                    )
                ]
                if ready:
                    conn.execute(
                        update(t.tasks)
                        .where(t.tasks.c.id.in_(ready))
                        .values(state=TaskState.READY.value)
                    )
            self._settle_job(conn, state.job_id)
        return ready

    def _job_waits_on_jobs(self, conn: Connection, job_id: int) -> bool:
        deps = json.loads(
            conn.execute(select(t.jobs.c.depends_on).where(t.jobs.c.id == job_id)).scalar_one()
        )
        if not deps:
            return False
        states = conn.execute(select(t.jobs.c.state).where(t.jobs.c.id.in_(deps))).scalars().all()
        return not (len(states) == len(deps) and all(s == JobState.DONE.value for s in states))

    def _settle_job(self, conn: Connection, job_id: int) -> None:
        """A job whose every task is done is done."""
        left = conn.execute(
            select(func.count()).where(
                t.tasks.c.job_id == job_id, t.tasks.c.state != TaskState.DONE.value
            )
        ).scalar_one()
        if left == 0:
            conn.execute(
                update(t.jobs)
                .where(t.jobs.c.id == job_id, t.jobs.c.state.in_(
                    [JobState.QUEUED.value, JobState.RUNNING.value]))
                .values(state=JobState.DONE.value, finished_at=_now(), message="")
            )

    def fail_attempt(
        self, attempt_id: int, task_id: int, *, outcome: AttemptOutcome, usage: Usage | None,
        message: str, retry: bool,
    ) -> None:
        """Record a failed, timed-out, lost or cancelled attempt; requeue the task or fail it."""
        with self.engine.begin() as conn:
            self._close_attempt(conn, attempt_id, outcome, usage, message)
            state = conn.execute(
                select(t.tasks.c.state).where(t.tasks.c.id == task_id)
            ).scalar_one()
            if state != TaskState.RUNNING.value:
                return
            conn.execute(
                update(t.tasks)
                .where(t.tasks.c.id == task_id)
                .values(
                    state=TaskState.READY.value if retry else TaskState.FAILED.value,
                    error=message[-4000:], progress=0.0,
                    finished_at=None if retry else _now(),
                )
            )

    def recover_interrupted(self, job_ids: Sequence[int] | None = None) -> int:
        """After a crash: open attempts become LOST and their running tasks ready again."""
        with self.engine.begin() as conn:
            query = select(t.attempts.c.id, t.attempts.c.task_id).where(
                t.attempts.c.ended_at.is_(None)
            )
            if job_ids is not None:
                query = query.where(t.attempts.c.job_id.in_(list(job_ids)))
            open_attempts = conn.execute(query).all()
            for attempt in open_attempts:
                self._close_attempt(
                    conn, attempt.id, AttemptOutcome.LOST, None,
                    "the service or worker stopped while this attempt ran",
                )
            running = select(t.tasks.c.job_id).where(t.tasks.c.state == TaskState.RUNNING.value)
            if job_ids is not None:
                running = running.where(t.tasks.c.job_id.in_(list(job_ids)))
            requeued_jobs = sorted(set(conn.execute(running).scalars()))
            conn.execute(
                update(t.tasks)
                .where(t.tasks.c.state == TaskState.RUNNING.value,
                       t.tasks.c.job_id.in_(requeued_jobs))
                .values(state=TaskState.READY.value, progress=0.0)
            )
            self._touch_jobs(conn, requeued_jobs, tasks=True)
        return len(open_attempts)

    def attempts(self, job_id: int) -> list[dict[str, Any]]:
        query = (
            select(t.attempts, t.tasks.c.key, t.tasks.c.frame, t.tasks.c.tile, t.tasks.c.chunk)
            .join(t.tasks, t.tasks.c.id == t.attempts.c.task_id)
            .where(t.attempts.c.job_id == job_id)
            .order_by(t.attempts.c.id)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def attempt(self, attempt_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.attempts).where(t.attempts.c.id == attempt_id)).first()
        return dict(row._mapping) if row else None

    def node_failures(self, job_id: int) -> dict[str, int]:
        """Failed attempts of a job per node (for blocklisting)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.attempts.c.node, func.count())
                .where(
                    t.attempts.c.job_id == job_id,
                    t.attempts.c.outcome.in_(
                        [AttemptOutcome.FAILED.value, AttemptOutcome.TIMEOUT.value]
                    ),
                )
                .group_by(t.attempts.c.node)
            ).all()
        return {node: int(count) for node, count in rows}

    # ---------------------------------------------------------------- usage

    def used_core_seconds(self, project_id: int | None = None) -> dict[int, float]:
        """Core-seconds (cores × wall) metered per project, every attempt counted."""
        query = select(
            t.attempts.c.project_id, func.sum(t.attempts.c.cores * t.attempts.c.wall_s)
        ).where(t.attempts.c.wall_s.is_not(None))
        if project_id is not None:
            query = query.where(t.attempts.c.project_id == project_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.group_by(t.attempts.c.project_id)).all()
        return {int(pid): float(total or 0.0) for pid, total in rows}

    def usage_rows(
        self, *, project_id: int | None = None, job_id: int | None = None,
        since: float | None = None,
    ) -> list[dict[str, Any]]:
        """Core-seconds and CPU seconds grouped by project, job, task kind and outcome."""
        query = (
            select(
                t.projects.c.name.label("project"),
                t.attempts.c.job_id,
                t.attempts.c.kind,
                t.attempts.c.outcome,
                func.count().label("attempts"),
                func.sum(t.attempts.c.cores * t.attempts.c.wall_s).label("core_seconds"),
                func.sum(t.attempts.c.cpu_s).label("cpu_seconds"),
                func.sum(t.attempts.c.wall_s).label("wall_seconds"),
                func.max(t.attempts.c.peak_rss).label("peak_rss"),
            )
            .join(t.projects, t.projects.c.id == t.attempts.c.project_id)
            .where(t.attempts.c.ended_at.is_not(None))
        )
        filters = []
        if project_id is not None:
            filters.append(t.attempts.c.project_id == project_id)
        if job_id is not None:
            filters.append(t.attempts.c.job_id == job_id)
        if since is not None:
            filters.append(t.attempts.c.ended_at >= since)
        if filters:
            query = query.where(and_(*filters))
        query = query.group_by(
            t.projects.c.name, t.attempts.c.job_id, t.attempts.c.kind, t.attempts.c.outcome
        ).order_by(t.projects.c.name, t.attempts.c.job_id, t.attempts.c.kind)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # ---------------------------------------------------------------- service (API) queries

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
    ) -> int:
        """Insert a job whose spec needs its own id (paths under jobs/<id>/), in one transaction.

        `build(job_id)` returns (spec, fingerprint, tasks, work_dir); if it raises, nothing is
        stored. It must be quick (no Blender): it runs while the transaction is open.
        """
        with self.engine.begin() as conn:
            job_id = int(
                conn.execute(
                    insert(t.jobs).values(
                        project_id=project_id, name=name, kind=kind, spec="{}", fingerprint="",
                        state=JobState.QUEUED.value, priority=priority, submitter=submitter,
                        message="", depends_on=json.dumps(list(depends_on)), work_dir="",
                        created_at=_now(),
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
            )
            spec, fingerprint, tasks, work_dir = build(job_id)
            keys = [task.key for task in tasks]
            if len(set(keys)) != len(keys):
                raise StoreError("task keys within a job must be unique")
            waits = bool(depends_on) and not all(
                s == JobState.DONE.value
                for s in conn.execute(
                    select(t.jobs.c.state).where(t.jobs.c.id.in_(list(depends_on)))
                ).scalars()
            )
            conn.execute(
                update(t.jobs)
                .where(t.jobs.c.id == job_id)
                .values(spec=json.dumps(spec), fingerprint=fingerprint, work_dir=work_dir)
            )
            self._insert_tasks(conn, job_id, tasks, waiting_on_jobs=waits)
            self._touch_jobs(conn, [job_id], tasks=True)
        return job_id

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

    def core_seconds_by_job(self, job_ids: Sequence[int]) -> dict[int, float]:
        """Metered core-seconds (every closed attempt) of many jobs in one query."""
        if not job_ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.attempts.c.job_id, func.sum(t.attempts.c.cores * t.attempts.c.wall_s))
                .where(t.attempts.c.job_id.in_(list(job_ids)), t.attempts.c.wall_s.is_not(None))
                .group_by(t.attempts.c.job_id)
            ).all()
        return {int(job_id): float(total or 0.0) for job_id, total in rows}

    def task_times(self, job_id: int) -> dict[int, tuple[float | None, float | None]]:
        """{task id: (started_at, finished_at)} of a job's tasks."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.tasks.c.id, t.tasks.c.started_at, t.tasks.c.finished_at)
                .where(t.tasks.c.job_id == job_id)
            ).all()
        return {int(r.id): (r.started_at, r.finished_at) for r in rows}

    def attempt_usage(
        self, *, project_id: int | None = None, since: float | None = None
    ) -> list[dict[str, Any]]:
        """Closed attempts' (project, ended_at, core-seconds, outcome), oldest first."""
        query = (
            select(
                t.projects.c.name.label("project"), t.attempts.c.ended_at,
                (t.attempts.c.cores * t.attempts.c.wall_s).label("core_seconds"),
                t.attempts.c.outcome,
            )
            .join(t.projects, t.projects.c.id == t.attempts.c.project_id)
            .where(t.attempts.c.ended_at.is_not(None))
        )
        if project_id is not None:
            query = query.where(t.attempts.c.project_id == project_id)
        if since is not None:
            query = query.where(t.attempts.c.ended_at >= since)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query.order_by(t.attempts.c.ended_at))]

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
