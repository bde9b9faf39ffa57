"""Wall time of a generation job on N workers, by exact list scheduling of its known tasks.

A generation job's tasks (one per candidate, or per batch) come in the farm's order, shot by
shot. A worker (a GPU, or on CPUs a slot of ``threads`` cores) pays its start once (its
imports) and each model's cold cost (load and warm-up) the first time it runs that model,
then keeps the model loaded. Each task goes to the worker where it would finish first, as
the dispatcher's affinity sends a model's tasks to the workers that hold it while a cold one
would finish later. Task seconds are billed seconds (GPU-seconds, or CPU seconds spread over
the task's threads: ``speed``); the farm's bill on N workers is every worker's busy time, so
it grows with N by the extra loads.

Greedy list scheduling is not always monotone (with one more worker an early task may take
it and pay a load that a later one regrets: about 1 % of random shot mixes). A farm of N
workers may leave some idle, so the answer on N is the best of 1 … N workers: the wall never
rises with N, and the deadline search (:func:`wanhe.estimate.deadline.fewest_within`)
holds. Every farm size is scheduled in one pass (numpy, one row per size).

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from wanhe.estimate.deadline import DeadlineAnswer, fewest_within

__all__ = ["MOST_WORKERS", "FarmRun", "WorkTask", "farm_runs", "list_schedule",
           "workers_for_deadline"]

MOST_WORKERS = 256  # farm sizes scheduled at most (beyond, the job's tasks are as spread)


@dataclass(frozen=True)
class WorkTask:
    """One task: the model it runs (its cold cost's key) and its warm seconds."""

    model: str
    seconds: float


@dataclass(frozen=True)
class FarmRun:
    workers: int  # workers used (the best of 1 … those given)
    wall_s: float  # from the first task's start to the last one's end
    seconds: float  # billed seconds of every worker: tasks, starts and loads
    loads: int  # models loaded, over all workers


def _greedy_all(tasks: Sequence[WorkTask], most: int, start_s: float,
                cold: Mapping[str, float], speed: float) -> list[FarmRun]:
    """The greedy schedule on k = 1 … `most` workers, row k-1 for k workers."""
    models = sorted({t.model for t in tasks})
    index = {m: i for i, m in enumerate(models)}
    k = np.arange(1, most + 1)[:, None]
    idle = np.arange(most)[None, :] >= k  # worker w does not exist on a farm of k
    free = np.zeros((most, most))
    started = np.zeros((most, most), dtype=bool)
    loaded = np.zeros((len(models), most, most), dtype=bool)
    billed = np.zeros(most)
    loads = np.zeros(most, dtype=int)
    rows = np.arange(most)
    for task in tasks:
        m = index[task.model]
        cost = (task.seconds + np.where(started, 0.0, start_s)
                + np.where(loaded[m], 0.0, cold.get(task.model, 0.0)))
        end = np.where(idle, np.inf, free + cost / speed)
        best = np.argmin(end, axis=1)  # the first worker of the earliest end
        billed += cost[rows, best]
        loads += ~loaded[m][rows, best]
        free[rows, best] = end[rows, best]
        started[rows, best] = True
        loaded[m][rows, best] = True
    used = (started.sum(axis=1)).tolist()
    walls = free.max(axis=1).tolist()
    return [FarmRun(int(u), float(w), float(b), int(n))
            for u, w, b, n in zip(used, walls, billed.tolist(), loads.tolist(), strict=True)]


def farm_runs(tasks: Sequence[WorkTask], most: int, *, start_s: float = 0.0,
              cold: Mapping[str, float] | None = None, speed: float = 1.0) -> list[FarmRun]:
    """The job on 1 … `most` workers (item n-1: on n; at most MOST_WORKERS items), each the
    best of the greedy schedules on 1 … n (see the module docstring)."""
    if most < 1:
        raise ValueError(f"a farm needs at least one worker, got {most}")
    if not tasks:
        raise ValueError("the job has no tasks")
    useful = min(most, len(tasks), MOST_WORKERS)
    greedy = _greedy_all(tasks, useful, start_s, cold or {}, speed)
    best: list[FarmRun] = []
    for run in greedy:
        best.append(run if not best or run.wall_s < best[-1].wall_s else best[-1])
    return best + [best[-1]] * (min(most, MOST_WORKERS) - useful)


def list_schedule(tasks: Sequence[WorkTask], workers: int, *, start_s: float = 0.0,
                  cold: Mapping[str, float] | None = None, speed: float = 1.0) -> FarmRun:
    """The job on `workers` workers (see the module docstring); `speed`: billed seconds per
    second of wall (a CPU task's threads; 1 on a GPU)."""
    return farm_runs(tasks, workers, start_s=start_s, cold=cold, speed=speed)[-1]


def workers_for_deadline(tasks: Sequence[WorkTask], seconds: float, *, start_s: float = 0.0,
                         cold: Mapping[str, float] | None = None, speed: float = 1.0,
                         unit: str = "GPU") -> DeadlineAnswer:
    """The fewest workers that finish within `seconds` (or why none can, with the earliest
    finish: one worker per task)."""
    most = min(len(tasks), MOST_WORKERS)
    runs = farm_runs(tasks, most, start_s=start_s, cold=cold, speed=speed)
    return fewest_within(lambda n: runs[n - 1].wall_s, most, seconds, unit=unit)
