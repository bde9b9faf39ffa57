"""`wanhe simulate --elastic` grows its pool by the dispatcher's own request policy."""

from __future__ import annotations

import wanhe.sim.engine as sim_engine
from wanhe.sched import elastic
from wanhe.sim.config import ProjectConfig, SimConfig
from wanhe.sim.engine import simulate


def test_the_simulator_imports_the_request_policy_not_a_copy() -> None:
    assert sim_engine.plan_bundles is elastic.plan_bundles


def _cfg(**over: object) -> SimConfig:
    base: dict[str, object] = dict(
        machines=400, cores=16, frames=2_000, mean_core_hours=2.0, split_above_core_hours=24.0,
        elastic=True, elastic_start=10, elastic_step=50, elastic_interval_s=60.0, seed=3,
    )
    base.update(over)
    return SimConfig(**base)  # type: ignore[arg-type]


def test_the_queue_grows_the_pool_and_a_spent_budget_stops_it() -> None:
    free = simulate(_cfg())
    assert free.completed and free.peak_machines > 100
    # a budget of 200 core-hours is spent by the first machines: the pool stops growing
    capped = simulate(_cfg(projects=(ProjectConfig(name="film", budget_core_hours=200.0),)))
    assert not capped.completed
    assert capped.peak_machines < free.peak_machines / 4
