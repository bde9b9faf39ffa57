"""What a model's candidates cost when the farm made them before: its metered `gen` attempts
(the attempts table), for an estimate of the same model at the same shape (`wanhe estimate`).

Only attempts that finished ok count (a failed one made no candidates to divide by); each
is billed as the farm bills it: GPU-seconds on a GPU, the attempt's CPU seconds on a CPU
(cores × wall where a worker did not report them). Its loads are in it, as billed.
"""

from __future__ import annotations

import json

from sqlalchemy import select

from wanhe.ai.models import TEXT_TO_IMAGE
from wanhe.estimate.ai import GenHistory
from wanhe.store import tables as t
from wanhe.store.store import Store


def model_history(store: Store, warm_key: str, *, device: str, width: int, height: int,
                  frames: int | None, task: str) -> GenHistory | None:
    """The metered history of the model named by `warm_key` (its name and content, as its
    tasks' affinity) on `device` at `width`×`height` (and `frames`, for a video model);
    None when it has none."""
    query = (
        select(t.attempts.c.job_id, t.attempts.c.wall_s, t.attempts.c.cores,
               t.attempts.c.cpu_s, t.attempts.c.gpu_s, t.tasks.c.payload)
        .join(t.tasks, t.tasks.c.id == t.attempts.c.task_id)
        .where((t.attempts.c.kind == "gen") & (t.attempts.c.outcome == "ok")
               & (t.tasks.c.affinity == warm_key))
    )
    jobs: set[int] = set()
    candidates = steps = 0
    seconds = 0.0
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    for row in rows:
        try:
            payload = json.loads(row.payload)
        except (TypeError, ValueError):
            continue
        if (payload.get("device") != device or payload.get("width") != width
                or payload.get("height") != height
                or (task != TEXT_TO_IMAGE and payload.get("frames") != frames)):
            continue
        made = len(payload.get("candidates") or [])
        if made == 0:
            continue
        if device == "gpu":
            cost = float(row.gpu_s or 0.0)
        else:
            cost = float(row.cpu_s if row.cpu_s is not None
                         else (row.cores or 0.0) * (row.wall_s or 0.0))
        jobs.add(int(row.job_id))
        candidates += made
        steps += made * int(payload.get("steps") or 1)
        seconds += cost
    if not jobs:
        return None
    return GenHistory(runs=len(jobs), candidates=candidates, candidate_steps=steps,
                      seconds=seconds)
