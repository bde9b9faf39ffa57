"""The film as tasks: frame costs, tiles for heavy frames, assemble tasks, jobs and order.

Frame costs are lognormal with the configured mean and a heavy tail clipped at the heaviest
frame. A frame above the split threshold becomes 64–128 tiles (about `tile_core_hours` each,
clamped to the tile range) plus an assemble task that depends on all of them. Every task also
pays a fixed overhead (Blender start-up and scene sync). Tasks are kept in flat lists (not
objects) so that a film of half a million tasks costs little memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from wanhe.sim.config import SimConfig

__all__ = ["Workload", "build_workload"]


@dataclass(slots=True)
class Workload:
    """Every task of the film. Index i is task id i."""

    duration_s: list[float]  # wall seconds on `cpus` cores
    core_seconds: list[float]
    cpus: int  # cores every task asks for
    project: list[int]  # index into project_names
    job: list[int]  # index into job_ids
    seq: list[int]  # order inside the job
    parent: list[int]  # the assemble task waiting for this tile, or -1
    n_deps: list[int]  # unfinished dependencies (assemble tasks: its tiles)
    job_ids: list[str]
    job_project: list[int]
    project_names: list[str]
    frames: int
    split_frames: int
    tiles: int
    frame_core_hours_mean: float
    frame_core_hours_max: float
    chain_s: float  # the longest dependent chain (a frame, or its longest tile + assemble)

    @property
    def tasks(self) -> int:
        return len(self.duration_s)

    @property
    def total_core_seconds(self) -> float:
        return math.fsum(self.core_seconds)


def build_workload(cfg: SimConfig) -> Workload:
    rng = np.random.default_rng(cfg.seed)
    cpus = cfg.cores_per_task
    sigma = cfg.sigma
    mu = math.log(cfg.mean_core_hours) - sigma * sigma / 2  # so that the mean is as asked
    overhead = cfg.task_overhead_core_seconds
    asm_cs = cfg.assemble_core_hours * 3600 + overhead

    duration: list[float] = []
    core_s: list[float] = []
    project: list[int] = []
    job: list[int] = []
    seq: list[int] = []
    parent: list[int] = []
    n_deps: list[int] = []
    job_ids: list[str] = []
    job_project: list[int] = []
    split_frames = 0
    tiles = 0
    chain = 0.0
    all_costs: list[npt.NDArray[np.float64]] = []

    per_project = cfg.project_frames()
    # jobs are numbered so that the projects' jobs interleave in submission order
    chunks = [
        [(0, f)] if cfg.frames_per_job == 0 else _chunks(f, cfg.frames_per_job) for f in per_project
    ]
    n_rounds = max(len(c) for c in chunks)
    job_index: dict[tuple[int, int], int] = {}
    for r in range(n_rounds):
        for p, c in enumerate(chunks):
            if r < len(c):
                job_index[(p, r)] = len(job_ids)
                job_ids.append(f"{cfg.projects[p].name}/job{r:05d}")
                job_project.append(p)

    for p, frames in enumerate(per_project):
        costs = rng.lognormal(mu, sigma, frames) if sigma > 0 else np.full(frames, math.exp(mu))
        costs = np.clip(costs, 1e-3, cfg.max_frame_core_hours)
        all_costs.append(costs)
        split = costs > cfg.split_above_core_hours
        n_tiles = np.clip(
            np.ceil(costs / cfg.tile_core_hours), cfg.tiles_min, cfg.tiles_max
        ).astype(np.int64)
        noise = (
            rng.lognormal(0.0, cfg.estimate_error, frames)
            if cfg.estimate_error > 0
            else np.ones(frames)
        )
        cost_list = costs.tolist()
        split_list = split.tolist()
        ntiles_list = n_tiles.tolist()
        noise_list = noise.tolist()
        for r, (start, count) in enumerate(chunks[p]):
            j = job_index[(p, r)]
            # (estimated cost of the task, task ids): order inside the job
            order_keys: list[tuple[float, int]] = []
            for f in range(start, start + count):
                cost_cs = cost_list[f] * 3600
                if split_list[f]:
                    split_frames += 1
                    n = ntiles_list[f]
                    tiles += n
                    tile_cs = cost_cs / n + overhead
                    asm = len(duration) + n
                    for _ in range(n):
                        order_keys.append((tile_cs * noise_list[f], len(duration)))
                        _add(duration, core_s, project, job, parent, n_deps, tile_cs, cpus, p, j)
                        parent[-1] = asm
                    _add(duration, core_s, project, job, parent, n_deps, asm_cs, cpus, p, j)
                    n_deps[-1] = n
                    seq.extend([0] * (n + 1))
                    seq[asm] = -1 - (f - start)  # assemble as soon as its tiles are done
                    chain = max(chain, (tile_cs + asm_cs) / cpus)
                else:
                    frame_cs = cost_cs + overhead
                    order_keys.append((frame_cs * noise_list[f], len(duration)))
                    _add(duration, core_s, project, job, parent, n_deps, frame_cs, cpus, p, j)
                    seq.append(0)
                    chain = max(chain, frame_cs / cpus)
            if cfg.order == "longest-first":
                order_keys.sort(key=lambda k: -k[0])
            for rank, (_, tid) in enumerate(order_keys):
                seq[tid] = rank

    all_c = np.concatenate(all_costs)
    return Workload(
        duration_s=duration,
        core_seconds=core_s,
        cpus=cpus,
        project=project,
        job=job,
        seq=seq,
        parent=parent,
        n_deps=n_deps,
        job_ids=job_ids,
        job_project=job_project,
        project_names=[p.name for p in cfg.projects],
        frames=int(sum(per_project)),
        split_frames=split_frames,
        tiles=tiles,
        frame_core_hours_mean=float(all_c.mean()),
        frame_core_hours_max=float(all_c.max()),
        chain_s=chain,
    )


def _chunks(frames: int, per_job: int) -> list[tuple[int, int]]:
    return [(s, min(per_job, frames - s)) for s in range(0, frames, per_job)]


def _add(
    duration: list[float],
    core_s: list[float],
    project: list[int],
    job: list[int],
    parent: list[int],
    n_deps: list[int],
    cs: float,
    cpus: int,
    p: int,
    j: int,
) -> None:
    duration.append(cs / cpus)
    core_s.append(cs)
    project.append(p)
    job.append(j)
    parent.append(-1)
    n_deps.append(0)
