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

A job with dependencies (a storyboard's voices, renders, clips and reel) is scheduled by
:func:`graph_schedule`: events in time, a task starting once its predecessors are done and
enough workers of its kind are free (CPU slots: `cores` a machine; GPUs: `gpus` a machine),
ready tasks taken in the job's order (the farm's), the first that fits first. Its answer on
N machines is, likewise, the best of 1 … N (:func:`graph_runs`).

Pure: no I/O.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from wanhe.estimate.deadline import DeadlineAnswer, fewest_within

__all__ = ["MOST_MACHINES", "MOST_WORKERS", "FarmRun", "GraphTask", "WorkTask", "farm_runs",
           "graph_runs", "graph_schedule", "list_schedule", "machines_for_graph",
           "useful_machines", "workers_for_deadline"]

MOST_WORKERS = 256  # farm sizes scheduled at most (beyond, the job's tasks are as spread)
MOST_MACHINES = 512  # a task graph's farm sizes scheduled at most (each one schedule)


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


# ------------------------------------------------------------------ jobs with dependencies


@dataclass(frozen=True)
class GraphTask:
    """One task of a job with dependencies: its wall seconds once started, the earlier tasks
    it waits for (indices), and the workers it holds while it runs: CPU slots (0: a light
    task, which holds none) and GPUs (a GPU task holds a CPU slot beside, as on the farm)."""

    seconds: float
    deps: tuple[int, ...] = ()
    cpus: int = 1
    gpus: int = 0


def _check_graph(tasks: Sequence[GraphTask], cores: int, gpus: int) -> None:
    if not tasks:
        raise ValueError("the job has no tasks")
    if cores < 1 or gpus < 0:
        raise ValueError(f"a machine needs at least one core, got {cores} core(s), "
                         f"{gpus} GPU(s)")
    for i, task in enumerate(tasks):
        if any(d < 0 or d >= i for d in task.deps):
            raise ValueError(f"task {i} waits for a task that does not come before it")
        if task.cpus > cores:
            raise ValueError(f"a task needs {task.cpus} cores; the farm's machines have "
                             f"{cores}")
        if task.gpus > gpus:
            raise ValueError(f"a task needs {task.gpus} GPU(s); the farm's machines have "
                             f"{gpus} — give more GPUs a machine")


def graph_schedule(tasks: Sequence[GraphTask], machines: int, *, cores: int,
                   gpus: int = 0) -> float:
    """Seconds from the job's start to its last task's end on `machines` machines of `cores`
    CPU slots and `gpus` GPUs (pooled: a task's slots may be on any machine). Tasks come in
    the job's order, each after its dependencies."""
    if machines < 1:
        raise ValueError(f"a farm needs at least one machine, got {machines}")
    _check_graph(tasks, cores, gpus)
    waiting = [len(set(t.deps)) for t in tasks]
    after: list[list[int]] = [[] for _ in tasks]
    for i, task in enumerate(tasks):
        for d in set(task.deps):
            after[d].append(i)
    free_cpu, free_gpu = machines * cores, machines * gpus
    ready: list[int] = []  # a heap of indices: the job's order
    running: list[tuple[float, int]] = []  # (end, task)
    now = end_all = 0.0

    def became_ready(i: int) -> None:
        if tasks[i].cpus == 0 and tasks[i].gpus == 0:  # a light task waits for nothing more
            heapq.heappush(running, (now + tasks[i].seconds, i))
        else:
            heapq.heappush(ready, i)

    for i, count in enumerate(waiting):
        if count == 0:
            became_ready(i)
    while ready or running:
        held: list[int] = []
        while ready and (free_cpu > 0 or free_gpu > 0):
            i = heapq.heappop(ready)
            task = tasks[i]
            if task.cpus <= free_cpu and task.gpus <= free_gpu:
                free_cpu -= task.cpus
                free_gpu -= task.gpus
                heapq.heappush(running, (now + task.seconds, i))
            else:
                held.append(i)
        for i in held:
            heapq.heappush(ready, i)
        end, i = heapq.heappop(running)  # a task holds workers, else nothing could be ready
        now = end_all = max(end_all, end)
        free_cpu += tasks[i].cpus
        free_gpu += tasks[i].gpus
        for j in after[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                became_ready(j)
    return end_all


def useful_machines(tasks: Sequence[GraphTask], cores: int, gpus: int) -> int:
    """Machines beyond which no task ever waits for a worker (every task at once)."""
    need = math.ceil(sum(t.cpus for t in tasks) / max(cores, 1))
    if gpus:
        need = max(need, math.ceil(sum(t.gpus for t in tasks) / gpus))
    return max(1, min(need, MOST_MACHINES))


def graph_runs(tasks: Sequence[GraphTask], most: int, *, cores: int,
               gpus: int = 0) -> list[float]:
    """The job's wall on 1 … `most` machines (item n-1: on n), each the best of the schedules
    on 1 … n (a list schedule may finish later with a machine more; a farm can leave it
    idle). Sizes past those that can help (or MOST_MACHINES) are as the last one."""
    if most < 1:
        raise ValueError(f"a farm needs at least one machine, got {most}")
    _check_graph(tasks, cores, gpus)
    useful = min(most, useful_machines(tasks, cores, gpus))
    best: list[float] = []
    for n in range(1, useful + 1):
        wall = graph_schedule(tasks, n, cores=cores, gpus=gpus)
        best.append(wall if not best else min(wall, best[-1]))
    return best + [best[-1]] * (min(most, MOST_MACHINES) - useful)


def machines_for_graph(tasks: Sequence[GraphTask], seconds: float, *, cores: int,
                       gpus: int = 0) -> DeadlineAnswer:
    """The fewest machines that finish the job within `seconds`, or why none can (with the
    earliest finish: every task as soon as its dependencies allow)."""
    useful = useful_machines(tasks, cores, gpus)
    runs = graph_runs(tasks, useful, cores=cores, gpus=gpus)
    return fewest_within(lambda n: runs[n - 1], useful, seconds)
