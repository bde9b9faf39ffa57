"""Studies built from several simulations: the scaling sweep and six months vs two weeks."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from wanhe.sim.config import SIX_MONTHS_S, TWO_WEEKS_S, SimConfig
from wanhe.sim.engine import simulate
from wanhe.sim.metrics import SimReport, SweepPoint
from wanhe.sim.workload import build_workload

__all__ = ["SixMonths", "six_months_vs_elastic", "sweep", "with_changes"]

DEFAULT_SWEEP = (100, 1_000, 10_000, 30_000)


def with_changes(cfg: SimConfig, **changes: Any) -> SimConfig:
    """A validated copy of `cfg` with some fields changed."""
    return SimConfig.model_validate({**cfg.model_dump(), **changes})


def sweep(
    base: SimConfig,
    machines: Sequence[int] = DEFAULT_SWEEP,
    *,
    repeats: int = 1,
    on_run: Callable[[int, int, SimReport], None] | None = None,
) -> list[SweepPoint]:
    """The same film on fixed farms of each size; medians over `repeats` runs (same seed)."""
    workload = build_workload(base)
    points = []
    for m in machines:
        cfg = with_changes(base, machines=m, elastic=False)
        runs = []
        for r in range(repeats):
            rep = simulate(cfg, workload=workload)
            runs.append(rep)
            if on_run is not None:
                on_run(m, r, rep)
        med = statistics.median
        points.append(
            SweepPoint(
                machines=m,
                frames=base.frames,
                tasks=runs[0].tasks,
                repeats=repeats,
                ratio=med(x.ratio for x in runs),
                makespan_hours=med(x.makespan_hours for x in runs),
                utilisation=med(x.utilisation for x in runs),
                us_per_decision=med(x.scheduler.us_per_decision for x in runs),
                us_per_decision_runs=[x.scheduler.us_per_decision for x in runs],
                decisions_per_s=med(x.scheduler.decisions_per_s for x in runs),
                picks=runs[0].scheduler.picks,
                us_per_task=med(x.scheduler.us_per_task for x in runs),
                sim_wall_s=med(x.scheduler.sim_wall_s for x in runs),
                policy_s=med(x.scheduler.policy_s for x in runs),
                peak_rss_mb=max(x.scheduler.peak_rss_mb for x in runs),
            )
        )
    return points


class SixMonths(BaseModel):
    """The seed's claim: a film that takes six months on a fixed farm, two weeks elastic."""

    work_core_hours: float
    fixed_machines: int = Field(description="sized so the film takes about six months")
    fixed_makespan_days: float
    fixed_ratio: float
    elastic_max_machines: int
    elastic_start: int
    elastic_makespan_days: float
    elastic_ratio: float
    elastic_peak_machines: int
    elastic_machine_hours: float
    fixed_machine_hours: float
    speedup: float
    within_two_weeks: bool


def six_months_vs_elastic(
    base: SimConfig,
    *,
    on_run: Callable[[str, SimReport], None] | None = None,
) -> tuple[SixMonths, SimReport, SimReport]:
    """Run the film on a fixed farm sized for ~six months and on the elastic pool of `base`
    (its `machines` is the pool's maximum)."""
    workload = build_workload(base)
    cores = base.cores
    fixed_n = max(1, round(workload.total_core_seconds / (cores * SIX_MONTHS_S)))
    fixed = simulate(with_changes(base, machines=fixed_n, elastic=False), workload=workload)
    if on_run is not None:
        on_run("fixed", fixed)
    elastic = simulate(with_changes(base, elastic=True), workload=workload)
    if on_run is not None:
        on_run("elastic", elastic)
    return (
        SixMonths(
            work_core_hours=workload.total_core_seconds / 3600,
            fixed_machines=fixed_n,
            fixed_makespan_days=fixed.makespan_days,
            fixed_ratio=fixed.ratio,
            elastic_max_machines=base.machines,
            elastic_start=base.elastic_start,
            elastic_makespan_days=elastic.makespan_days,
            elastic_ratio=elastic.ratio,
            elastic_peak_machines=elastic.peak_machines,
            elastic_machine_hours=elastic.machine_hours,
            fixed_machine_hours=fixed.machine_hours,
            speedup=fixed.makespan_s / elastic.makespan_s if elastic.makespan_s else 0.0,
            within_two_weeks=elastic.completed and elastic.makespan_s <= TWO_WEEKS_S,
        ),
        fixed,
        elastic,
    )
