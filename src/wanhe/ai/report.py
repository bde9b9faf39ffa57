"""Metering of generation by project and model: GPU-hours (GPU tasks) and core-hours (CPU
runs), from every attempt (failed and cancelled ones too), read from the attempts table."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from wanhe.store import tables as t
from wanhe.store.store import Store


def model_of(affinity: str | None) -> str:
    """'model:sdxl@0123…' → 'sdxl'."""
    if not affinity or not affinity.startswith("model:"):
        return "?"
    return affinity[len("model:"):].rsplit("@", 1)[0]


def by_model(store: Store, project: str | None = None,
             project_id: int | None = None) -> list[dict[str, Any]]:
    query = (
        select(t.attempts.c.wall_s, t.attempts.c.cores, t.attempts.c.gpu_s,
               t.attempts.c.outcome, t.tasks.c.affinity, t.tasks.c.gpus, t.tasks.c.state,
               t.tasks.c.payload, t.projects.c.name.label("project"))
        .join(t.tasks, t.tasks.c.id == t.attempts.c.task_id)
        .join(t.projects, t.projects.c.id == t.attempts.c.project_id)
        .where(t.attempts.c.kind == "gen")
    )
    if project is not None:
        query = query.where(t.projects.c.name == project)
    if project_id is not None:
        query = query.where(t.attempts.c.project_id == project_id)
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    with store.engine.connect() as conn:
        for r in conn.execute(query):
            device = "gpu" if (r.gpus or 0) > 0 else "cpu"
            key = (r.project, model_of(r.affinity), device)
            row = rows.setdefault(key, {"project": key[0], "model": key[1], "device": device,
                                        "attempts": 0, "candidates": 0, "gpu_hours": 0.0,
                                        "core_hours": 0.0, "failed_attempts": 0})
            row["attempts"] += 1
            if r.outcome == "ok":
                row["candidates"] += len(json.loads(r.payload).get("candidates", []))
            elif r.outcome is not None:
                row["failed_attempts"] += 1
            row["gpu_hours"] += float(r.gpu_s or 0.0) / 3600
            row["core_hours"] += float(r.wall_s or 0.0) * float(r.cores or 0.0) / 3600
    return [rows[k] for k in sorted(rows)]
