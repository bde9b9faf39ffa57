"""What to ask a cluster's autoscaler for, as a pure function of the queue.

Ray's autoscaler takes a standing request, `ray.autoscaler.sdk.request_resources(bundles=...)`:
"make the cluster big enough that these resource shapes fit at once" (counting what already
runs). `plan_bundles` turns the farm's queue into that request: one bundle per task that
reserves something, running tasks first (they hold their nodes), then the queued tasks of each
project in the order given (the dispatcher gives projects by priority), within

- `Caps.max_cores` / `Caps.max_gpus` (`wanhe serve --max-cores/--max-gpus`): the most the
  farm may rent at once;
- each project's remaining budget: a project whose core-hours (or GPU-hours) are used up asks
  for nothing more, and one with budget left asks, running tasks included, for at most the
  cores (GPUs) that budget keeps busy for `Caps.min_rental_s` (ten minutes by default: about
  one render task) — there is no point renting a node the project cannot pay to use.

An empty list means "ask for nothing": the autoscaler may release idle nodes. The dispatcher
(`engine.dispatcher`, elastic mode) sends it to Ray and `wanhe simulate --elastic` grows its
simulated pool by it: the same function.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from wanhe.model import Resources

__all__ = ["Bundle", "Caps", "Demand", "bundle_of", "plan_bundles", "requested"]

Bundle = dict[str, float]  # a resource shape as Ray writes it: {"CPU": 2, "GPU": 1}


@dataclass(frozen=True, slots=True)
class Demand:
    """One project's tasks, by resource shape, and what budget it has left (None: no budget)."""

    project: str
    queued: Mapping[Resources, int] = field(default_factory=dict)
    running: Mapping[Resources, int] = field(default_factory=dict)
    budget_left_core_s: float | None = None
    budget_left_gpu_s: float | None = None


@dataclass(frozen=True, slots=True)
class Caps:
    max_cores: float | None = None
    max_gpus: float | None = None
    min_rental_s: float = 600.0  # what a rented core is expected to work once it comes
    max_bundles: int = 4096  # keeps the request a message of modest size


def bundle_of(need: Resources) -> Bundle | None:
    """What a worker slot for a task of this shape reserves: a GPU slot reserves its GPU (the
    core feeding it is not reserved), a render slot its cores; memory when asked. A task that
    reserves nothing (image work on the light slot) needs no bundle."""
    out: Bundle = {}
    if need.gpus > 0:
        out["GPU"] = float(need.gpus)
    elif need.cpus > 0:
        out["CPU"] = float(need.cpus)
    else:
        return None
    if need.memory > 0:
        out["memory"] = float(need.memory)
    return out


def _allowance(left: float | None, min_rental_s: float) -> float:
    if left is None:
        return math.inf
    if left <= 0:
        return 0.0
    return left / min_rental_s if min_rental_s > 0 else math.inf


def plan_bundles(demands: Sequence[Demand], caps: Caps = Caps()) -> list[Bundle]:
    """The bundles to request for these projects' running and queued tasks (see module doc).

    Deterministic: the same queue gives the same request (so a caller can skip resending it).
    Running tasks are always included (within the caps): they occupy their nodes already."""
    cores_left = math.inf if caps.max_cores is None else float(caps.max_cores)
    gpus_left = math.inf if caps.max_gpus is None else float(caps.max_gpus)
    out: list[Bundle] = []

    def take(
        bundle: Bundle, count: int, cores_cap: float, gpus_cap: float
    ) -> tuple[int, float, float]:
        nonlocal cores_left, gpus_left
        c = bundle.get("CPU", 0.0)
        g = bundle.get("GPU", 0.0)
        n = count
        room = caps.max_bundles - len(out)
        n = min(n, room)
        for per, room_left in ((c, min(cores_left, cores_cap)), (g, min(gpus_left, gpus_cap))):
            if per > 0 and not math.isinf(room_left):
                n = min(n, int(room_left / per + 1e-9))
        n = max(0, n)
        out.extend(dict(bundle) for _ in range(n))
        cores_left -= n * c
        gpus_left -= n * g
        return n, n * c, n * g

    def ordered(shapes: Mapping[Resources, int]) -> list[tuple[Resources, int]]:
        return sorted(shapes.items(), key=lambda kv: (kv[0].gpus, kv[0].cpus, kv[0].memory))

    for d in demands:  # running work first, every project's
        for need, count in ordered(d.running):
            bundle = bundle_of(need)
            if bundle is not None and count > 0:
                take(bundle, count, math.inf, math.inf)
    for d in demands:
        if (d.budget_left_core_s is not None and d.budget_left_core_s <= 0) or (
            d.budget_left_gpu_s is not None and d.budget_left_gpu_s <= 0
        ):
            continue  # budget used up: its queued work waits for a raise, not for nodes
        held_cores = sum(n * need.cpus for need, n in d.running.items() if need.gpus <= 0)
        held_gpus = sum(n * need.gpus for need, n in d.running.items() if need.gpus > 0)
        cores_cap = _allowance(d.budget_left_core_s, caps.min_rental_s) - held_cores
        gpus_cap = _allowance(d.budget_left_gpu_s, caps.min_rental_s) - held_gpus
        if cores_cap <= 0 and gpus_cap <= 0:
            continue  # what it has left is spoken for by what runs
        for need, count in ordered(d.queued):
            bundle = bundle_of(need)
            if bundle is None or count <= 0:
                continue
            _, used_c, used_g = take(bundle, count, cores_cap, gpus_cap)
            cores_cap -= used_c
            gpus_cap -= used_g
    return out


def requested(bundles: Sequence[Bundle]) -> Resources:
    """The total a request asks for (cores, memory, GPUs)."""
    return Resources(
        cpus=sum(b.get("CPU", 0.0) for b in bundles),
        memory=int(sum(b.get("memory", 0.0) for b in bundles)),
        gpus=sum(b.get("GPU", 0.0) for b in bundles),
    )
