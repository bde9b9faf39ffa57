"""Queries over the farm's database: the only place that reads or writes job and task state.

SQLite (WAL) by default, PostgreSQL by URL. Every state change is one transaction, so a crash
at any point leaves a state the dispatcher can resume from (`recover_interrupted`).

`Store` is put together from one part per concern: projects, tokens and blobs (`projects`),
jobs and tasks (`jobs`), change tracking for the dispatcher's sync (`sync`), attempts
(`attempts`) and metered usage (`usage`); the rows they return are in `rows`. The names other
modules import from here are re-exported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import NullPool

from wanhe.store.attempts import AttemptsMixin
from wanhe.store.jobs import JobsMixin
from wanhe.store.projects import ProjectsMixin
from wanhe.store.rows import (
    AttemptEnd,
    Changes,
    JobRow,
    ProjectRow,
    ReadyTask,
    StoreError,
    TaskRow,
    TokenRow,
    TrackedJob,
    Usage,
    hash_token,
)
from wanhe.store.sync import SyncMixin
from wanhe.store.usage import UsageMixin, core_seconds

__all__ = [
    "AttemptEnd",
    "Changes",
    "JobRow",
    "ProjectRow",
    "ReadyTask",
    "Store",
    "StoreError",
    "TaskRow",
    "TokenRow",
    "TrackedJob",
    "Usage",
    "core_seconds",
    "hash_token",
    "make_engine",
]


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


class Store(ProjectsMixin, JobsMixin, SyncMixin, AttemptsMixin, UsageMixin):
    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        if migrate:
            from wanhe.store.migrate import upgrade

            upgrade(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()
