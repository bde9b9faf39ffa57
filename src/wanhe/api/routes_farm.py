"""`/api/workers`, `/api/report`, `/api/usage/timeline`: the cluster and the core-hour bill."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query

from wanhe.api.auth import Principal, principal
from wanhe.api.deps import get_service
from wanhe.api.schemas import JobTypeOut
from wanhe.api.service import Service
from wanhe.jobtypes.registry import job_types

router = APIRouter(tags=["farm"])

OK_OUTCOMES = ("ok",)


LATEST_SINCE = dt.datetime(9999, 12, 31, tzinfo=dt.UTC).timestamp()


def _bad_since(value: str, why: str) -> HTTPException:
    return HTTPException(
        422, [{"loc": ["query", "since"], "type": "value_error",
               "msg": f"since={value[:40]!r} {why}"}],
    )


def parse_since(value: str | None) -> float | None:
    """Seconds since the epoch, or an ISO date / date-time (UTC unless it says otherwise);
    a 422 naming `since` for anything else (nan, inf, a negative time, past the year 9999)."""
    if value is None or value == "":
        return None
    try:
        seconds: float | None = float(value)
    except ValueError:
        seconds = None
    if seconds is None:
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            raise _bad_since(value, "is neither a date (2025-01-31), a date-time nor seconds "
                                    "since 1970") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = when.timestamp()
    if not math.isfinite(seconds) or not 0 <= seconds <= LATEST_SINCE:
        raise _bad_since(value, "is not a time: give a date (2025-01-31) or seconds since 1970 "
                                "(0 or more, before the year 10000)")
    return seconds


def _project_filter(service: Service, who: Principal, project: str | None) -> int | None:
    if project is None:
        return who.project_id
    found = service.store.project_by_name(project)
    if found is None or not who.may_see(found.id):
        raise HTTPException(404, f"no project named {project!r}")
    return found.id


@router.get("/api/workers")
def workers(
    who: Principal = Depends(principal), service: Service = Depends(get_service)
) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = []
    slots: list[dict[str, Any]] = []
    if service.dispatcher is not None:
        from wanhe.engine import cluster

        try:
            nodes = [
                {"node_id": n.node_id, "address": n.address, "alive": n.alive, "cpus": n.cpus,
                 "memory": n.memory, "gpus": n.gpus}
                for n in cluster.nodes()
            ]
        except Exception as exc:
            nodes = [{"error": f"Ray did not answer: {exc}"}]
        for slot in service.dispatcher.workers():
            job_id = slot.get("job_id")
            if job_id is not None:
                owner = service.job_project(int(job_id))
                if owner is None or not who.may_see(owner):
                    slot = {**slot, "job_id": None, "task": "(another project's task)"}
            slots.append(slot)
    return {
        "nodes": nodes, "workers": slots, "dispatcher": service.dispatcher is not None,
        "dispatcher_error": service.dispatcher_error,
    }


@router.get("/api/job-types", response_model=list[JobTypeOut])
def list_job_types(who: Principal = Depends(principal)) -> list[JobTypeOut]:
    """The kinds of job this farm runs, with the JSON Schema of each one's options."""
    return [
        JobTypeOut(kind=jt.kind, title=jt.title, main_file=jt.main_file,
                   main_suffixes=list(jt.main_suffixes),
                   options_schema=jt.options_model.model_json_schema(),
                   panels=list(jt.panels))
        for jt in job_types() if not jt.internal
    ]


@router.get("/api/report")
def report(
    project: str | None = Query(default=None, max_length=100),
    since: str | None = Query(default=None, max_length=64,
                              description="ISO date/date-time or epoch seconds"),
    who: Principal = Depends(principal),
    service: Service = Depends(get_service),
) -> dict[str, Any]:
    """Core-hours (and GPU-hours) by project, job and task kind; failed, cancelled and lost
    attempts apart."""
    project_id = _project_filter(service, who, project)
    start = parse_since(since)
    rows = service.store.usage_rows(project_id=project_id, since=start)
    projects: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    jobs: dict[tuple[str, int], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    kinds: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in rows:
        hours = float(r["core_seconds"] or 0.0) / 3600
        outcome = r["outcome"] or "running"
        for bucket in (projects[r["project"]], jobs[(r["project"], r["job_id"])],
                       kinds[(r["project"], r["kind"])]):
            bucket[outcome] += hours
            bucket["total"] += hours
            bucket["cpu_hours"] += float(r["cpu_seconds"] or 0.0) / 3600
            bucket["gpu_hours"] += float(r["gpu_seconds"] or 0.0) / 3600
            bucket["attempts"] += int(r["attempts"])
            # a lost attempt's outage after its last sign of life: shown, not billed
            bucket["lost_unbilled_hours"] += float(r.get("unbilled_core_seconds") or 0.0) / 3600
    return {
        "since": start,
        "projects": [{"project": p, **v} for p, v in sorted(projects.items())],
        "jobs": [{"project": p, "job_id": j, **v} for (p, j), v in sorted(jobs.items())],
        "kinds": [{"project": p, "kind": k, **v} for (p, k), v in sorted(kinds.items())],
        "models": _models(service, project_id, start),
        "rows": rows,
    }


def _models(service: Service, project_id: int | None, since: float | None) -> list[Any]:
    """AI generation by project and model (wanhe.ai.report)."""
    from wanhe.ai.report import by_model

    return by_model(service.store, project_id=project_id, since=since)


@router.get("/api/usage/timeline")
def timeline(
    project: str | None = Query(default=None, max_length=100),
    since: str | None = Query(default=None, max_length=64),
    bucket: int = Query(default=3600, ge=60, le=31 * 86400, description="seconds per point"),
    who: Principal = Depends(principal),
    service: Service = Depends(get_service),
) -> dict[str, Any]:
    """Core-hours per time bucket and project (for a stacked chart)."""
    project_id = _project_filter(service, who, project)
    start = parse_since(since)
    rows = service.store.attempt_usage(project_id=project_id, since=start)
    series: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    gpu: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for r in rows:
        t0 = int(float(r["ended_at"]) // bucket * bucket)
        series[r["project"]][t0] += float(r["core_seconds"] or 0.0) / 3600
        gpu[r["project"]][t0] += float(r["gpu_seconds"] or 0.0) / 3600
    times = sorted({t for points in series.values() for t in points})
    return {
        "bucket": bucket,
        "times": times,
        "series": [
            {"project": p, "core_hours": [points.get(t, 0.0) for t in times],
             "gpu_hours": [gpu[p].get(t, 0.0) for t in times]}
            for p, points in sorted(series.items())
        ],
    }
