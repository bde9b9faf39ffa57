"""Wall time of a priced job on a farm, and the machines it needs to meet a deadline.

The job's render tasks (per frame: its tiles or sample chunks, each with its estimated
core-seconds) run through :func:`wanhe.sim.simulate`, which drives the farm's real scheduling
policy (`wanhe.sched.SchedulingPolicy`, longest task first). Every render task takes a whole
machine (``cores`` threads); core-seconds are taken as the same on any thread count (Cycles
scales close to linearly with threads). The light image tasks (assemble, OIDN, preview) run
beside the renders, so only the last frame's add to the end; each machine loads the scene once.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from wanhe.model import human_duration
from wanhe.sim.config import ProjectConfig, SimConfig
from wanhe.sim.engine import simulate
from wanhe.sim.workload import Workload

__all__ = ["DeadlineAnswer", "farm_wall_s", "fewest_within", "job_workload",
           "machines_for_deadline"]


def job_workload(frame_tasks: Mapping[int, Sequence[float]], cores: int) -> Workload:
    """The job's render tasks as the simulator's workload, in the policy's order."""
    durations: list[float] = []
    core_s: list[float] = []
    for frame in sorted(frame_tasks):
        for cost in frame_tasks[frame]:
            durations.append(cost / cores)
            core_s.append(cost)
    if not durations:
        raise ValueError("the job has no render tasks")
    n = len(durations)
    ranks = sorted(range(n), key=lambda i: -durations[i])  # longest first, as the policy sees
    seq = [0] * n
    for rank, i in enumerate(ranks):
        seq[i] = rank
    frame_costs = [sum(c) / 3600 for c in frame_tasks.values()]
    return Workload(
        duration_s=durations, core_seconds=core_s, cpus=cores, project=[0] * n, job=[0] * n,
        seq=seq, parent=[-1] * n, n_deps=[0] * n, job_ids=["estimate"], job_project=[0],
        project_names=["estimate"], frames=len(frame_tasks), split_frames=0, tiles=0,
        frame_core_hours_mean=sum(frame_costs) / len(frame_costs),
        frame_core_hours_max=max(frame_costs), chain_s=max(durations),
    )


def farm_wall_s(
    frame_tasks: Mapping[int, Sequence[float]], *, machines: int, cores: int,
    image_tail_s: float = 0.0, load_s: float = 0.0,
) -> float:
    """Seconds from start to the last frame done on ``machines`` × ``cores``."""
    if machines < 1 or cores < 1:
        raise ValueError(f"a farm needs at least one machine and one core, got "
                         f"{machines} × {cores}")
    workload = job_workload(frame_tasks, cores)
    config = SimConfig(machines=machines, cores=cores, frames=workload.frames,
                       projects=(ProjectConfig(name="estimate"),), estimate_error=0.0,
                       sample_points=10)
    report = simulate(config, workload=workload)
    if not report.completed:
        raise RuntimeError("the simulated job did not finish")  # no budgets, no failures here
    return load_s + report.makespan_s + image_tail_s


@dataclass(frozen=True)
class DeadlineAnswer:
    """The fewest machines that finish within the time, or why none can."""

    possible: bool
    machines: int | None  # fewest machines that meet it (None: impossible)
    wall_s: float | None  # the wall time on that many
    earliest_s: float  # the earliest finish with any number of machines (every task at once)
    most_useful_machines: int  # more than this many machines cannot help
    unit: str = "machine"  # what is counted: machines, or GPUs (a GPU job's workers)

    def explain(self, seconds: float) -> str:
        if self.possible and self.machines is not None and self.wall_s is not None:
            return (f"{self.machines} {self.unit}(s) finish in {human_duration(self.wall_s)} "
                    f"(within {human_duration(seconds)})")
        return (f"impossible: {human_duration(seconds)} is too little; even "
                f"{self.most_useful_machines} {self.unit}s (one per task) need "
                f"{human_duration(self.earliest_s)}")


def fewest_within(wall: Callable[[int], float], most: int, seconds: float, *,
                  unit: str = "machine") -> DeadlineAnswer:
    """The fewest of 1 … `most` (machines, GPUs) whose `wall(n)` is within `seconds`: a
    binary search, so `wall` must not rise as n grows; `most` is the most that can help
    (one per task), whose wall is the earliest finish there is."""
    earliest = wall(most)
    if earliest > seconds:
        return DeadlineAnswer(False, None, None, earliest, most, unit)
    low, high = 1, most
    walls = {most: earliest}
    while low < high:
        mid = (low + high) // 2
        walls[mid] = wall(mid)
        if walls[mid] <= seconds:
            high = mid
        else:
            low = mid + 1
    return DeadlineAnswer(True, low, walls.get(low, wall(low)), earliest, most, unit)


def machines_for_deadline(
    frame_tasks: Mapping[int, Sequence[float]], *, cores: int, seconds: float,
    image_tail_s: float = 0.0, load_s: float = 0.0,
) -> DeadlineAnswer:
    """The fewest machines of ``cores`` cores that finish the job within ``seconds``.

    Binary search over machines (1 … one per task), each point simulated: the wall time
    falls as machines are added (longest task first on identical machines)."""
    most = sum(len(tasks) for tasks in frame_tasks.values())

    def wall(machines: int) -> float:
        return farm_wall_s(frame_tasks, machines=machines, cores=cores,
                           image_tail_s=image_tail_s, load_s=load_s)

    return fewest_within(wall, most, seconds)
