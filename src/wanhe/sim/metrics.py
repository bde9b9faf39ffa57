"""What a simulation reports, and the lower bounds it is judged against."""

from __future__ import annotations

import math

from pydantic import BaseModel, Field

__all__ = [
    "ProjectReport",
    "SchedulerCost",
    "SimReport",
    "SweepPoint",
    "elastic_work_bound",
]


class SchedulerCost(BaseModel):
    """Time spent inside the policy (pick / push / finished), apart from the simulator."""

    picks: int = Field(description="pick() calls: scheduling decisions")
    picked: int = Field(description="pick() calls that returned a task")
    pushes: int
    finishes: int
    pick_s: float
    push_s: float
    finished_s: float
    policy_s: float = Field(description="pick + push + finished")
    us_per_decision: float
    decisions_per_s: float
    us_per_task: float = Field(description="policy time per task of the film")
    sim_wall_s: float = Field(description="the whole run, wall clock")
    build_s: float = Field(description="generating the film's tasks")
    sim_overhead_s: float = Field(description="wall - build - policy: the simulator itself")
    peak_rss_mb: float = Field(description="peak resident memory of the process")
    rss_after_submit_mb: float = Field(description="resident memory with every task queued")


class ProjectReport(BaseModel):
    name: str
    weight: float
    budget_core_hours: float | None
    used_core_hours: float
    tasks: int
    tasks_done: int
    target_share: float = Field(description="weight / sum of weights")
    achieved_share: float | None = Field(
        description="core share while every project had work (None: never all busy)"
    )
    share_error: float | None
    blocked_reason: str | None


class SimReport(BaseModel):
    machines: int
    cores: int
    task_cores: int
    elastic: bool
    frames: int
    tasks: int
    split_frames: int
    tiles: int
    frame_core_hours_mean: float
    frame_core_hours_max: float
    work_core_hours: float
    completed: bool
    stuck: bool = Field(description="stopped with work left that could never run (budgets)")
    tasks_done: int
    makespan_s: float
    lower_bound_s: float = Field(description="max(work bound, longest chain)")
    lb_work_s: float = Field(description="total work / cores (elastic: fastest ramp)")
    lb_chain_s: float
    ratio: float = Field(description="makespan / lower bound")
    utilisation: float = Field(description="busy core-seconds / up core-seconds")
    machine_hours: float
    peak_machines: int
    fair_share_error: float | None = Field(
        description="max |achieved − target| core share while all projects had work"
    )
    contention_s: float
    failures: int
    retries: int
    lost_core_hours: float
    dispatch_wait_mean_s: float = Field(
        default=0.0, description="mean time from a machine asking to its task starting"
    )
    dispatch_wait_max_s: float = 0.0
    dispatcher_busy: float = Field(
        default=0.0, description="the dispatcher's busy time / makespan (1.0: it is the limit)"
    )
    projects: list[ProjectReport]
    scheduler: SchedulerCost
    timeline: list[tuple[float, int, int]] = Field(
        description="(seconds, busy cores, up cores) samples", repr=False
    )
    seed: int

    @property
    def makespan_days(self) -> float:
        return self.makespan_s / 86400

    @property
    def makespan_hours(self) -> float:
        return self.makespan_s / 3600


class SweepPoint(BaseModel):
    """One farm size of a scaling sweep: medians over the repeats."""

    machines: int
    frames: int
    tasks: int
    repeats: int
    ratio: float
    makespan_hours: float
    utilisation: float
    us_per_decision: float
    us_per_decision_runs: list[float]
    decisions_per_s: float
    picks: int
    us_per_task: float
    sim_wall_s: float
    policy_s: float
    peak_rss_mb: float


def elastic_work_bound(
    work_core_seconds: float,
    cores: int,
    start: int,
    step: int,
    interval_s: float,
    maximum: int,
) -> float:
    """The earliest time the work could be done on a pool that grows as fast as allowed.

    The pool has min(maximum, start + step·⌊t / interval⌋) machines at time t.
    """
    if work_core_seconds <= 0:
        return 0.0
    remaining = work_core_seconds
    t = 0.0
    machines = start
    while machines < maximum:
        chunk = machines * cores * interval_s
        if chunk >= remaining:
            return t + remaining / (machines * cores)
        remaining -= chunk
        t += interval_s
        machines = min(maximum, machines + step)
    return t + remaining / (maximum * cores) if maximum > 0 else math.inf
