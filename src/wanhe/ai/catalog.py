"""The farm's model catalogue and generation picks in the database (tables `models` and
`gen_picks`, migration 0005).

Scope: a model is farm-wide (registered with an admin token, or locally) or belongs to one
project; a job sees its own project's models first, then the farm-wide ones by name.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, insert, or_, select

from wanhe.ai.models import ModelFacts
from wanhe.store import tables as t
from wanhe.store.store import Store, StoreError

_COLUMNS = ("name", "path", "format", "pipeline_class", "task", "size_bytes", "sha256",
            "gpu_memory", "created_at")


def _row(row: Any, project: str | None) -> dict[str, Any]:
    out = {c: getattr(row, c) for c in _COLUMNS}
    out["project"] = project
    return out


def add_model(store: Store, name: str, facts: ModelFacts, *, project_id: int | None = None,
              replace: bool = False) -> dict[str, Any]:
    with store.engine.begin() as conn:
        where = (t.models.c.name == name) & (
            t.models.c.project_id.is_(None) if project_id is None
            else t.models.c.project_id == project_id)
        found = conn.execute(select(t.models.c.id).where(where)).first()
        if found is not None:
            if not replace:
                raise StoreError(f"model {name!r} is registered already — pass --replace to "
                                 "point it at new files")
            conn.execute(delete(t.models).where(t.models.c.id == found[0]))
        conn.execute(insert(t.models).values(
            project_id=project_id, name=name, path=facts.path, format=facts.format,
            pipeline_class=facts.pipeline_class, task=facts.task, size_bytes=facts.size_bytes,
            sha256=facts.sha256, gpu_memory=facts.gpu_memory, created_at=time.time(),
        ))
    got = find_model(store, name, project_id)
    assert got is not None
    return got


def list_models(store: Store, project_id: int | None = None, *,
                every: bool = False) -> list[dict[str, Any]]:
    """Farm-wide models and `project_id`'s own (every project's with `every`)."""
    query = select(t.models, t.projects.c.name.label("project_name")).outerjoin(
        t.projects, t.projects.c.id == t.models.c.project_id)
    if not every:
        query = query.where(or_(t.models.c.project_id.is_(None),
                                t.models.c.project_id == project_id))
    with store.engine.connect() as conn:
        rows = conn.execute(query.order_by(t.models.c.name, t.models.c.id)).all()
    return [_row(r, r.project_name) for r in rows]


def find_model(store: Store, name: str, project_id: int | None = None) -> dict[str, Any] | None:
    """The model `name` as `project_id` sees it: its own first, then the farm-wide one."""
    found = [m for m in list_models(store, project_id) if m["name"] == name]
    found.sort(key=lambda m: m["project"] is None)
    return found[0] if found else None


def remove_model(store: Store, name: str, project_id: int | None = None) -> bool:
    with store.engine.begin() as conn:
        where = (t.models.c.name == name) & (
            t.models.c.project_id.is_(None) if project_id is None
            else t.models.c.project_id == project_id)
        return bool(conn.execute(delete(t.models).where(where)).rowcount)


def set_pick(store: Store, job_id: int, shot: int, candidate: int, verdict: str,
             by: str = "") -> None:
    if verdict not in ("picked", "rejected", "clear"):
        raise StoreError(f"verdict {verdict!r} must be picked, rejected or clear")
    with store.engine.begin() as conn:
        conn.execute(delete(t.gen_picks).where(
            (t.gen_picks.c.job_id == job_id) & (t.gen_picks.c.shot == shot)
            & (t.gen_picks.c.candidate == candidate)))
        if verdict != "clear":
            conn.execute(insert(t.gen_picks).values(
                job_id=job_id, shot=shot, candidate=candidate, verdict=verdict, by=by,
                at=time.time()))


def picks(store: Store, job_id: int) -> dict[tuple[int, int], str]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(t.gen_picks).where(t.gen_picks.c.job_id == job_id)).all()
    return {(r.shot, r.candidate): r.verdict for r in rows}
