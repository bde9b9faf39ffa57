"""What every part of `Store` may use: its engine, and (for mypy) the helpers that one part
defines and another calls. `Store` combines the parts; see `wanhe.store.store`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import Engine, Table
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

    from wanhe.model import JobState


class _StoreBase:
    url: str
    engine: Engine

    def _upsert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        """INSERT into `table` in this database's dialect, which has ON CONFLICT clauses.
        PostgreSQL's is imported only for a PostgreSQL store (a SQLite farm never loads it)."""
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as postgres_insert

            return postgres_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    if TYPE_CHECKING:
        # Defined in sync.py (SyncMixin).
        def _touch_jobs(
            self, conn: Connection, job_ids: Sequence[int], *, tasks: bool
        ) -> None: ...

        def _touch_project(self, conn: Connection, project_id: int) -> None: ...

        # Defined in jobs.py (JobsMixin).
        def _job_waits_on_jobs(self, conn: Connection, job_id: int) -> bool: ...

        def _settle_job(self, conn: Connection, job_id: int) -> None: ...

        def _end_job_in(
            self, conn: Connection, job_id: int, state: JobState, reason: str, *,
            dependents: bool = True,
        ) -> list[int]: ...
