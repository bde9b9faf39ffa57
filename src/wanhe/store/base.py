"""What every part of `Store` may use: its engine, and (for mypy) the helpers that one part
defines and another calls. `Store` combines the parts; see `wanhe.store.store`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from wanhe.model import JobState


class _StoreBase:
    url: str
    engine: Engine

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
