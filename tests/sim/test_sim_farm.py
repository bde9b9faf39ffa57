"""Simulator tests on small farms: bounds, failures, elasticity, fair share, budgets, errors."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wanhe.sim import SimConfig, parse_projects, simulate
from wanhe.sim.config import ProjectConfig, config_error_message
from wanhe.sim.metrics import elastic_work_bound
from wanhe.sim.study import six_months_vs_elastic, sweep
from wanhe.sim.workload import build_workload

SMALL = {"machines": 50, "frames": 2000, "seed": 3}


def test_workload_shape() -> None:
    cfg = SimConfig(frames=20_000, seed=1)
    wl = build_workload(cfg)
    assert wl.frames == 20_000
    assert wl.frame_core_hours_mean == pytest.approx(6.0, rel=0.1)
    assert wl.frame_core_hours_max <= 160
    assert wl.split_frames > 0
    assemblies = [i for i, n in enumerate(wl.n_deps) if n > 0]
    assert len(assemblies) == wl.split_frames
    assert all(64 <= wl.n_deps[i] <= 128 for i in assemblies)
    assert sum(wl.n_deps[i] for i in assemblies) == wl.tiles
    assert wl.tasks == 20_000 - wl.split_frames + wl.tiles + wl.split_frames
    assert sum(1 for p in wl.parent if p >= 0) == wl.tiles
    # no unsplit task is above the split threshold (+ its overhead)
    limit = (cfg.split_above_core_hours * 3600 + cfg.task_overhead_core_seconds) / cfg.cores
    assert max(wl.duration_s) <= limit + 1e-6


def test_makespan_is_at_least_the_lower_bound_and_close_to_it() -> None:
    r = simulate(SimConfig(**SMALL))
    assert r.completed and r.tasks_done == r.tasks
    assert r.makespan_s >= r.lower_bound_s * (1 - 1e-9)
    assert r.ratio <= 1.05
    assert r.lower_bound_s == max(r.lb_work_s, r.lb_chain_s)
    assert r.utilisation > 0.9
    assert r.scheduler.picked == r.tasks
    assert r.scheduler.us_per_decision > 0


def test_a_dispatcher_slower_than_the_farm_needs_sets_the_makespan() -> None:
    """One dispatcher, `dispatch_cost_s` of its time per task: fast enough, the farm barely
    notices; too slow, the farm waits on it and it is busy the whole film."""
    plain = simulate(SimConfig(**SMALL))
    mean_s = sum(build_workload(SimConfig(**SMALL)).duration_s) / plain.tasks
    needed = SMALL["machines"] / mean_s  # tasks a second that keep every machine busy
    fast = simulate(SimConfig(**SMALL, dispatch_cost_s=0.01 / needed))
    slow = simulate(SimConfig(**SMALL, dispatch_cost_s=10 / needed))
    assert fast.completed and slow.completed and slow.tasks_done == slow.tasks
    assert fast.makespan_s <= plain.makespan_s * 1.01
    assert fast.dispatcher_busy < 0.05
    assert slow.makespan_s >= slow.tasks * 10 / needed  # the dispatcher alone needs that long
    assert slow.dispatcher_busy > 0.95
    assert slow.dispatch_wait_mean_s > fast.dispatch_wait_mean_s
    assert slow.utilisation < plain.utilisation / 5


def test_frame_order_is_worse_than_longest_first() -> None:
    lpt = simulate(SimConfig(**SMALL))
    frame = simulate(SimConfig(**SMALL, order="frame"))
    assert frame.completed and frame.ratio >= lpt.ratio


def test_failures_cause_retries_and_every_task_completes_once() -> None:
    r = simulate(SimConfig(**SMALL, failure_rate=0.02, repair_hours=0.25))
    assert r.failures > 0 and r.retries > 0
    assert r.completed and r.tasks_done == r.tasks
    # every attempt was one pick: each task once, plus once per retry
    assert r.scheduler.picked == r.tasks + r.retries
    assert r.lost_core_hours > 0
    assert r.makespan_s >= r.lower_bound_s


def test_elastic_pool_grows_and_shrinks() -> None:
    cfg = SimConfig(**SMALL, elastic=True, elastic_start=5, elastic_step=5, elastic_interval_s=180)
    r = simulate(cfg)
    assert r.completed
    assert r.peak_machines == 50
    ups = [u for _, _, u in r.timeline]
    assert ups[0] == 5 * 16
    assert max(ups) == 50 * 16
    # grows by at most one step (5 machines) per 180 s interval
    for (t1, _, u1), (t2, _, u2) in itertools.pairwise(r.timeline):
        steps = math.floor(t2 / 180) - math.floor(t1 / 180)
        assert u2 - u1 <= 5 * 16 * steps
    assert r.makespan_s >= r.lower_bound_s
    assert r.lb_work_s == pytest.approx(
        elastic_work_bound(r.work_core_hours * 3600, 16, 5, 5, 180, 50)
    )
    fixed = simulate(SimConfig(**SMALL))
    assert r.makespan_s > fixed.makespan_s  # the ramp costs time...
    assert r.machine_hours <= fixed.machine_hours * 1.01  # ...and idle machines are released


def test_elastic_pool_gives_idle_machines_back() -> None:
    cfg = SimConfig(
        machines=50, frames=80, seed=1, elastic=True, elastic_start=50, idle_release_s=60
    )
    r = simulate(cfg)
    assert r.completed
    ups = [u for _, _, u in r.timeline]
    assert ups[0] == 50 * 16 and ups[-1] < ups[0]
    assert r.machine_hours < 50 * r.makespan_hours * 0.9


def test_elastic_work_bound() -> None:
    # 10 machines × 1 core for 100 s, then 20 machines
    assert elastic_work_bound(1000, 1, 10, 10, 100, 20) == pytest.approx(100)
    assert elastic_work_bound(3000, 1, 10, 10, 100, 20) == pytest.approx(200)
    assert elastic_work_bound(0, 1, 10, 10, 100, 20) == 0
    assert elastic_work_bound(500, 1, 0, 10, 100, 10) == pytest.approx(150)


def test_fair_share_between_two_weighted_projects() -> None:
    r = simulate(SimConfig(**SMALL, projects=parse_projects("a:2,b:1")))
    assert r.completed
    assert r.fair_share_error is not None and r.fair_share_error < 0.02
    a, b = r.projects
    assert a.achieved_share == pytest.approx(2 / 3, abs=0.02)
    assert b.achieved_share == pytest.approx(1 / 3, abs=0.02)
    assert r.contention_s > 0


def test_budget_limited_project_stops() -> None:
    cfg = SimConfig(**SMALL, projects=parse_projects("a:1,b:1:1000"))
    r = simulate(cfg)
    a, b = r.projects
    assert a.tasks_done == a.tasks
    assert b.tasks_done < b.tasks
    assert not r.completed and r.stuck
    assert b.blocked_reason is not None and "1000.0 core-hours" in b.blocked_reason
    # it stopped soon after the budget: at most what was running then could still finish
    longest = (cfg.split_above_core_hours * 3600 + cfg.task_overhead_core_seconds) / 3600
    assert 1000 <= b.used_core_hours <= 1000 + 50 * longest


INVALID = [
    ({"machines": 0}, "machines"),
    ({"frames": 0}, "frames"),
    ({"mean_core_hours": -1}, "mean_core_hours"),
    ({"task_overhead_core_seconds": -5}, "task_overhead_core_seconds"),
    ({"cores": 8, "task_cores": 16}, "no task could ever run"),
    ({"tiles_min": 200}, "tiles_min"),
    ({"mean_core_hours": 500}, "heaviest frame"),
    ({"elastic": True, "elastic_start": 100, "machines": 50}, "elastic_start"),
    ({"failure_rate": 5}, "impossible"),
    ({"projects": [{"name": "a", "budget_core_hours": 0}]}, "budget_core_hours"),
    ({"projects": [{"name": "a"}, {"name": "a"}]}, "unique"),
    ({"projects": []}, "at least one project"),
    ({"mean_core_hours": math.nan}, "mean_core_hours"),
]


@pytest.mark.parametrize(("changes", "needle"), INVALID)
def test_invalid_configs_give_clear_errors(changes: dict[str, object], needle: str) -> None:
    with pytest.raises(ValueError) as info:
        SimConfig.model_validate({**SMALL, **changes})
    msg = config_error_message(info.value)
    assert needle in msg
    assert "\n" not in msg


@pytest.mark.parametrize("spec", ["a:x", "a:0", ":1", "a:1:-5", " , "])
def test_bad_project_specs(spec: str) -> None:
    with pytest.raises(ValueError, match="project"):
        parse_projects(spec)


def test_project_specs() -> None:
    assert parse_projects("a:2, b:1:5000") == (
        ProjectConfig(name="a", weight=2),
        ProjectConfig(name="b", weight=1, budget_core_hours=5000),
    )


def test_project_frames_split() -> None:
    cfg = SimConfig(frames=10, projects=parse_projects("a,b,c"))
    assert cfg.project_frames() == [4, 3, 3]


def test_sweep_and_six_months_on_a_tiny_film() -> None:
    base = SimConfig(frames=300, machines=40, elastic_start=4, elastic_step=4, seed=2)
    points = sweep(base, [5, 40], repeats=2)
    assert [p.machines for p in points] == [5, 40]
    assert all(p.ratio >= 1 - 1e-9 and len(p.us_per_decision_runs) == 2 for p in points)
    six, fixed, elastic = six_months_vs_elastic(base)
    assert fixed.completed and elastic.completed
    assert six.fixed_machines == 1
    assert six.elastic_makespan_days < six.fixed_makespan_days
    assert six.within_two_weeks


# ---------------------------------------------------------------------------- CLI


def test_cli_runs_a_tiny_farm(tmp_path: Path) -> None:
    from wanhe.cli.simulate import app

    out = tmp_path / "r.json"
    res = CliRunner().invoke(
        app,
        ["--machines", "20", "--frames", "200", "--projects", "a:2,b:1", "--json", str(out)],
    )
    assert res.exit_code == 0, res.output
    assert "makespan / lower bound" in res.output
    data = json.loads(out.read_text())
    assert data["report"]["completed"] is True
    assert data["report"]["tasks_done"] == data["report"]["tasks"]


def test_cli_dispatch_cost_says_how_busy_the_dispatcher_was() -> None:
    from wanhe.cli.simulate import app

    res = CliRunner().invoke(app, ["--machines", "20", "--frames", "200",
                                   "--dispatch-cost", "30"])
    assert res.exit_code == 0, res.output
    assert "dispatcher" in res.output and "of the makespan" in res.output
    bad = CliRunner().invoke(app, ["--machines", "20", "--dispatch-cost", "-1"])
    assert bad.exit_code == 2 and "dispatch_cost_s" in bad.output


def test_cli_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from wanhe.cli.simulate import app

    res = CliRunner().invoke(
        app,
        [
            "--machines",
            "20",
            "--frames",
            "100",
            "--sweep",
            "--sweep-machines",
            "5,20",
            "--plots",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "utilisation.png").stat().st_size > 1000
    assert (tmp_path / "scheduler_cost.png").stat().st_size > 1000


@pytest.mark.parametrize(
    "args",
    [
        ["--machines", "0"],
        ["--frames", "0"],
        ["--mean-core-hours", "-2"],
        ["--projects", "a:zero"],
        ["--cores", "8", "--task-cores", "16"],
        ["--sweep", "--sweep-machines", "10,abc"],
    ],
)
def test_cli_bad_input_is_one_line_exit_2(args: list[str]) -> None:
    from wanhe.cli.simulate import app

    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2
    assert "Traceback" not in res.output
    text = res.output.strip()
    assert text.startswith("error:")
    assert len(text.splitlines()) == 1, text
