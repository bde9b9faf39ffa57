"""A film on a mixed pool of CPU machines and GPUs, driving the REAL policy's device rule.

Every frame is cut into tiles (or sample chunks) of an `--device any` job: each may render on
a CPU machine or a GPU, but the tiles of one frame never mix the two (CPU and GPU Cycles give
different pixels). The policy (`SchedulingPolicy` with `QueuedTask.any_device`) binds each
frame to the kind of the first slot that takes one of its tiles; the simulator checks that no
frame ever mixed kinds, and reports how the pool was used. A tile takes `tile_core_hours` on a
CPU machine (all its cores) and that time divided by `gpu_speedup` on a GPU.
"""

from __future__ import annotations

import heapq
import math
import random
import time

from pydantic import BaseModel, ConfigDict, Field

from wanhe.model import Resources
from wanhe.sched import QueuedTask, SchedulingPolicy

__all__ = ["MixedConfig", "MixedReport", "simulate_mixed"]


class MixedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    cpu_machines: int = Field(default=1_000, ge=0)
    cores: int = Field(default=16, ge=1, le=4096)
    gpus: int = Field(default=250, ge=0, description="GPU slots (one GPU each)")
    gpu_speedup: float = Field(default=4.0, gt=0, description="GPU tile time = CPU time / this")
    frames: int = Field(default=2_000, ge=1)
    tiles: int = Field(default=16, ge=1, description="tiles or sample chunks per frame")
    tile_core_hours: float = Field(default=2.0, gt=0, description="a tile's cost on a CPU machine")
    sigma: float = Field(default=0.5, ge=0, le=3, description="lognormal sigma of frame cost")
    seed: int = 0


class MixedReport(BaseModel):
    frames: int
    tiles: int
    makespan_s: float
    lower_bound_s: float  # the work spread over the pool's combined speed
    ratio: float
    tiles_on_cpu: int
    tiles_on_gpu: int
    frames_on_cpu: int
    frames_on_gpu: int
    mixed_frames: int  # frames whose tiles ran on both kinds: must be 0
    cpu_utilisation: float
    gpu_utilisation: float
    device_skips: int  # lane heads a slot passed over because their frame is the other kind's
    decisions: int
    sim_wall_s: float


def simulate_mixed(cfg: MixedConfig) -> MixedReport:
    if cfg.cpu_machines + cfg.gpus == 0:
        raise ValueError("the pool is empty: give it cpu_machines or gpus")
    wall0 = time.perf_counter()
    rng = random.Random(cfg.seed)
    policy = SchedulingPolicy()
    res = Resources(cpus=float(cfg.cores))
    cpu_free = Resources(cpus=float(cfg.cores), memory=1 << 50)
    gpu_free = Resources(cpus=1e9, memory=1 << 50, gpus=1.0)  # what a GPU slot offers
    n = cfg.frames * cfg.tiles
    cpu_s: list[float] = []
    tasks: list[QueuedTask] = []
    for f in range(cfg.frames):
        scale = rng.lognormvariate(-cfg.sigma**2 / 2, cfg.sigma)
        for t in range(cfg.tiles):
            i = f * cfg.tiles + t
            cpu_s.append(cfg.tile_core_hours * 3600 / cfg.cores * scale)
            q = QueuedTask(i, "film", "film", 50, 0, i, res, any_device=True, group=f)
            tasks.append(q)
            policy.push(q)
    slots = [(False, f"cpu{m}") for m in range(cfg.cpu_machines)]
    slots += [(True, f"gpu{g}") for g in range(cfg.gpus)]
    kinds: list[set[bool]] = [set() for _ in range(cfg.frames)]
    events: list[tuple[float, int, int]] = []  # (time, slot, task)
    idle: list[int] = []
    busy_cpu = busy_gpu = 0.0
    on_cpu = on_gpu = decisions = 0

    def offer(s: int, now: float) -> bool:
        nonlocal busy_cpu, busy_gpu, on_cpu, on_gpu, decisions
        gpu, node = slots[s]
        decisions += 1
        q = policy.pick(gpu_free if gpu else cpu_free, node=node, gpu_only=gpu)
        if q is None:
            return False
        took = cpu_s[q.task_id] / (cfg.gpu_speedup if gpu else 1.0)
        if gpu:
            busy_gpu += took
            on_gpu += 1
        else:
            busy_cpu += took
            on_cpu += 1
        kinds[q.group or 0].add(gpu)
        heapq.heappush(events, (now + took, s, q.task_id))
        return True

    for s in range(len(slots)):
        if not offer(s, 0.0):
            idle.append(s)
    now = 0.0
    done = 0
    while events:
        now, s, i = heapq.heappop(events)
        policy.finished(tasks[i], cpu_s[i] * cfg.cores)
        done += 1
        if not offer(s, now):
            idle.append(s)
        while idle and policy.ready_count():  # a slot passed over may take work now
            if not offer(idle[-1], now):
                break
            idle.pop()
    if done != n:
        raise RuntimeError(f"simulator bug: {n - done} tiles never ran")
    speed = cfg.cpu_machines + cfg.gpus * cfg.gpu_speedup  # tiles' CPU-seconds per second
    fastest = max(cfg.gpu_speedup if cfg.gpus else 0.0, 1.0 if cfg.cpu_machines else 0.0)
    bound = max(sum(cpu_s) / speed, max(cpu_s) / fastest)
    return MixedReport(
        frames=cfg.frames, tiles=n, makespan_s=now, lower_bound_s=bound,
        ratio=now / bound if bound > 0 else math.nan,
        tiles_on_cpu=on_cpu, tiles_on_gpu=on_gpu,
        frames_on_cpu=sum(1 for k in kinds if k == {False}),
        frames_on_gpu=sum(1 for k in kinds if k == {True}),
        mixed_frames=sum(1 for k in kinds if len(k) > 1),
        cpu_utilisation=busy_cpu / (now * cfg.cpu_machines) if cfg.cpu_machines and now else 0.0,
        gpu_utilisation=busy_gpu / (now * cfg.gpus) if cfg.gpus and now else 0.0,
        device_skips=policy.stats().skipped_device, decisions=decisions,
        sim_wall_s=time.perf_counter() - wall0,
    )
