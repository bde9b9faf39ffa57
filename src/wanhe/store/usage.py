"""Metered usage: core-seconds (cores allocated × wall seconds of attempts) and reports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select

from wanhe.store import tables as t
from wanhe.store.base import _StoreBase

#: Core-seconds of one attempt, in SQL: cores allocated × wall seconds (0 while it runs).
#: The one definition; `core_seconds` below is the same for an attempt already read.
CORE_SECONDS: ColumnElement[float] = (
    func.coalesce(t.attempts.c.cores, 0.0) * func.coalesce(t.attempts.c.wall_s, 0.0)
)


def core_seconds(attempt: Mapping[str, Any]) -> float:
    """Core-seconds of one attempt row (as `Store.attempts` returns): cores × wall seconds,
    0 while it runs. The same as `CORE_SECONDS`, for rows already read."""
    return float((attempt["cores"] or 0.0) * (attempt["wall_s"] or 0.0))


#: Core-seconds of a lost attempt's outage not billed (after its last sign of life).
UNBILLED_CORE_SECONDS: ColumnElement[float] = (
    func.coalesce(t.attempts.c.cores, 0.0) * func.coalesce(t.attempts.c.unbilled_s, 0.0)
)

#: GPU-seconds of one attempt (GPUs held × wall seconds, as the dispatcher metered it).
GPU_SECONDS: ColumnElement[float] = func.coalesce(t.attempts.c.gpu_s, 0.0)


class UsageMixin(_StoreBase):
    def used_core_seconds(self, project_id: int | None = None) -> dict[int, float]:
        """Core-seconds (cores × wall) metered per project, every attempt counted."""
        query = select(
            t.attempts.c.project_id, func.sum(CORE_SECONDS)
        ).where(t.attempts.c.wall_s.is_not(None))
        if project_id is not None:
            query = query.where(t.attempts.c.project_id == project_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.group_by(t.attempts.c.project_id)).all()
        return {int(pid): float(total or 0.0) for pid, total in rows}

    def used_seconds(self) -> dict[int, tuple[float, float]]:
        """(core-seconds, GPU-seconds) metered per project, every attempt counted: what the
        dispatcher's full resync reads, in one statement."""
        query = select(
            t.attempts.c.project_id, func.sum(CORE_SECONDS), func.sum(GPU_SECONDS)
        ).where(t.attempts.c.wall_s.is_not(None)).group_by(t.attempts.c.project_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {int(pid): (float(cores or 0.0), float(gpus or 0.0)) for pid, cores, gpus in rows}

    def used_gpu_seconds(self, project_id: int | None = None) -> dict[int, float]:
        """GPU-seconds metered per project, every attempt counted."""
        query = select(t.attempts.c.project_id, func.sum(GPU_SECONDS)).where(
            t.attempts.c.wall_s.is_not(None)
        )
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
                func.sum(CORE_SECONDS).label("core_seconds"),
                func.sum(GPU_SECONDS).label("gpu_seconds"),
                func.sum(t.attempts.c.cpu_s).label("cpu_seconds"),
                func.sum(t.attempts.c.wall_s).label("wall_seconds"),
                func.max(t.attempts.c.peak_rss).label("peak_rss"),
                func.sum(UNBILLED_CORE_SECONDS).label("unbilled_core_seconds"),
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

    def core_seconds_by_job(self, job_ids: Sequence[int]) -> dict[int, float]:
        """Metered core-seconds (every closed attempt) of many jobs in one query."""
        return self._sum_by_job(job_ids, CORE_SECONDS)

    def gpu_seconds_by_job(self, job_ids: Sequence[int]) -> dict[int, float]:
        """Metered GPU-seconds (every closed attempt) of many jobs in one query."""
        return self._sum_by_job(job_ids, GPU_SECONDS)

    def _sum_by_job(
        self, job_ids: Sequence[int], measure: ColumnElement[float]
    ) -> dict[int, float]:
        if not job_ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.attempts.c.job_id, func.sum(measure))
                .where(t.attempts.c.job_id.in_(list(job_ids)), t.attempts.c.wall_s.is_not(None))
                .group_by(t.attempts.c.job_id)
            ).all()
        return {int(job_id): float(total or 0.0) for job_id, total in rows}

    def attempt_usage(
        self, *, project_id: int | None = None, since: float | None = None
    ) -> list[dict[str, Any]]:
        """Closed attempts' (project, ended_at, core-seconds, outcome), oldest first."""
        query = (
            select(
                t.projects.c.name.label("project"), t.attempts.c.ended_at,
                CORE_SECONDS.label("core_seconds"),
                GPU_SECONDS.label("gpu_seconds"),
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
