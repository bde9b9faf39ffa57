"""`wanhe simulate`: a whole film on a simulated farm, driving the real scheduling policy.

`wanhe.cli.main` registers `simulate_command`; `app` runs it alone.
"""


import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from wanhe.cli.common import fail
from wanhe.cli.common import out as console

if TYPE_CHECKING:
    from rich.table import Table

    from wanhe.sim.metrics import SimReport, SweepPoint
    from wanhe.sim.study import SixMonths

__all__ = ["DEFAULT_SWEEP_TEXT", "app", "simulate_command"]

# wanhe.sim.study.DEFAULT_SWEEP, written out: `--help` does not import the simulator (numpy)
DEFAULT_SWEEP_TEXT = "100,1000,10000,30000"

app = typer.Typer(
    rich_markup_mode=None,  # click's plain help: rich's help renderer costs 0.15-0.3 s
    help="Simulate a film on a farm of thousands of machines.", add_completion=False)


def _parse_machines(spec: str) -> list[int]:
    try:
        out = [int(x.replace("_", "")) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise ValueError(
            f"--sweep-machines {spec!r}: write machine counts like 100,1000,10000"
        ) from None
    if not out or any(m < 1 for m in out):
        raise ValueError(f"--sweep-machines {spec!r}: every count must be at least 1")
    return out


@app.command("simulate")
def simulate_command(
    machines: Annotated[int, typer.Option(help="machines (the pool's maximum with --elastic)")] = (
        30_000
    ),
    cores: Annotated[int, typer.Option(help="cores per machine")] = 16,
    task_cores: Annotated[
        int | None, typer.Option(help="cores per task (default: a whole machine)")
    ] = None,
    frames: Annotated[int, typer.Option(help="frames in the film (90 min × 24 fps)")] = 129_600,
    mean_core_hours: Annotated[float, typer.Option(help="mean cost of a frame")] = 6.0,
    split_above_core_hours: Annotated[
        float, typer.Option(help="split frames costlier than this into tiles")
    ] = 24.0,
    tiles_min: Annotated[int, typer.Option(help="fewest tiles of a split frame")] = 64,
    tiles_max: Annotated[int, typer.Option(help="most tiles of a split frame")] = 128,
    tile_core_hours: Annotated[float, typer.Option(help="target cost of one tile")] = 1.0,
    projects: Annotated[
        str, typer.Option(help="projects as name[:weight[:budget_core_hours]], e.g. 'a:2,b:1'")
    ] = "film",
    failure_rate: Annotated[float, typer.Option(help="machine failures per machine-hour")] = 0.0,
    repair_hours: Annotated[float, typer.Option(help="hours until a failed machine is back")] = 0.5,
    elastic: Annotated[
        bool, typer.Option(help="start small and grow by --elastic-step per 3 minutes")
    ] = False,
    elastic_start: Annotated[int, typer.Option(help="machines at the start (elastic)")] = 1_000,
    elastic_step: Annotated[int, typer.Option(help="machines added per 3 minutes")] = 1_000,
    dispatch_cost_s: Annotated[
        float, typer.Option("--dispatch-cost", help="seconds of the one dispatcher's time per "
                            "task (bench/dispatch.py measures it)")
    ] = 0.0,
    sweep_: Annotated[
        bool, typer.Option("--sweep", help="also run the scaling sweep over farm sizes")
    ] = False,
    sweep_machines: Annotated[str, typer.Option(help="farm sizes of the sweep")] = (
        DEFAULT_SWEEP_TEXT
    ),
    repeats: Annotated[int, typer.Option(help="runs per sweep point (medians)")] = 1,
    compare: Annotated[
        bool,
        typer.Option(
            "--six-months",
            help="compare a fixed farm sized for ~six months with the elastic pool",
        ),
    ] = False,
    plots: Annotated[Path | None, typer.Option(help="write PNG plots into this folder")] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write the full report as JSON")
    ] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    gpus: Annotated[
        int,
        typer.Option(help="GPUs beside the CPU machines: run the film's frames as `--device any` "
                     "jobs on the mixed pool (a frame never mixes CPU and GPU)"),
    ] = 0,
    gpu_speedup: Annotated[float, typer.Option(help="a GPU renders a tile this much faster "
                                                    "than a CPU machine")] = 4.0,
    tiles: Annotated[int, typer.Option(help="tiles per frame on the mixed pool (--gpus)")] = 16,
) -> None:
    """Run a film on a simulated farm with the real scheduling policy and report makespan vs
    the lower bound, utilisation, fair share, retries and the scheduler's own cost."""
    from wanhe.sim.config import SimConfig, config_error_message, parse_projects
    from wanhe.sim.engine import simulate
    from wanhe.sim.study import six_months_vs_elastic, sweep

    if gpus > 0:
        _mixed(machines, cores, gpus, gpu_speedup, frames, tiles, tile_core_hours, seed, json_out)
        return
    try:
        cfg = SimConfig(
            machines=machines,
            cores=cores,
            task_cores=task_cores,
            frames=frames,
            mean_core_hours=mean_core_hours,
            split_above_core_hours=split_above_core_hours,
            tiles_min=tiles_min,
            tiles_max=tiles_max,
            tile_core_hours=tile_core_hours,
            projects=parse_projects(projects),
            failure_rate=failure_rate,
            repair_hours=repair_hours,
            elastic=elastic,
            elastic_start=min(elastic_start, machines),
            elastic_step=elastic_step,
            dispatch_cost_s=dispatch_cost_s,
            seed=seed,
        )
        sizes = _parse_machines(sweep_machines) if sweep_ else []
        if repeats < 1:
            raise ValueError("--repeats must be at least 1")
    except ValueError as e:
        fail(f"invalid simulation settings: {config_error_message(e)}")

    with console.status("simulating…"):
        report = simulate(cfg)
    console.print(report_table(report))
    out: dict[str, Any] = {"report": report.model_dump(mode="json")}

    points: list[SweepPoint] = []
    if sizes:
        with console.status("scaling sweep…"):
            points = sweep(cfg, sizes, repeats=repeats)
        console.print(sweep_table(points))
        out["sweep"] = [p.model_dump(mode="json") for p in points]
    if compare:
        with console.status("six months vs elastic…"):
            six, _, _ = six_months_vs_elastic(cfg.model_copy(update={"elastic": True}))
        console.print(six_months_table(six))
        out["six_months"] = six.model_dump(mode="json")
    if plots is not None:
        from wanhe.sim.plots import PlotsUnavailable, plot_scheduler_cost, plot_utilisation

        try:
            written = [plot_utilisation(report, plots / "utilisation.png")]
            if points:
                written.append(plot_scheduler_cost(points, plots / "scheduler_cost.png"))
        except (PlotsUnavailable, OSError) as e:
            fail(str(e))
        for p in written:
            console.print(f"plot: {p}")
    if json_out is not None:
        try:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(out, indent=1, allow_nan=False))
        except OSError as e:
            fail(f"cannot write {json_out}: {e}")
        console.print(f"json: {json_out}")
    if not report.completed:
        console.print(
            f"[yellow]{report.tasks - report.tasks_done:,} tasks never ran[/yellow] "
            "(a project's budget ran out; see the project table)"
        )


def _mixed(machines: int, cores: int, gpus: int, speedup: float, frames: int, tiles: int,
           tile_core_hours: float, seed: int, json_out: Path | None) -> None:
    from pydantic import ValidationError
    from rich.table import Table

    from wanhe.sim.config import config_error_message
    from wanhe.sim.mixed import MixedConfig, simulate_mixed

    try:
        cfg = MixedConfig(cpu_machines=machines, cores=cores, gpus=gpus, gpu_speedup=speedup,
                          frames=frames, tiles=tiles, tile_core_hours=tile_core_hours, seed=seed)
    except ValidationError as e:
        fail(f"invalid simulation settings: {config_error_message(e)}")
    with console.status("simulating the mixed pool…"):
        r = simulate_mixed(cfg)
    t = Table(title="wanhe simulate --gpus (device any)", show_header=False, title_justify="left")
    t.add_column("what", style="bold")
    t.add_column("value")
    t.add_row("pool", f"{machines:,} CPU machines × {cores} cores + {gpus:,} GPUs "
                      f"({speedup:g}× a CPU machine per tile)")
    t.add_row("film", f"{r.frames:,} frames × {tiles} tiles = {r.tiles:,} tasks")
    t.add_row("makespan", f"{_h(r.makespan_s)} (lower bound {_h(r.lower_bound_s)}, "
                          f"ratio {r.ratio:.4f})")
    t.add_row("frames", f"{r.frames_on_cpu:,} on CPUs, {r.frames_on_gpu:,} on GPUs, "
                        f"{r.mixed_frames} mixed")
    t.add_row("tiles", f"{r.tiles_on_cpu:,} on CPUs, {r.tiles_on_gpu:,} on GPUs")
    t.add_row("utilisation", f"CPU {r.cpu_utilisation:.2%}, GPU {r.gpu_utilisation:.2%}")
    t.add_row("scheduler", f"{r.decisions:,} decisions, {r.device_skips:,} device skips, "
                           f"{r.sim_wall_s:.1f} s wall")
    console.print(t)
    if json_out is not None:
        try:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps({"mixed": r.model_dump(mode="json")}, indent=1))
        except OSError as e:
            fail(f"cannot write {json_out}: {e}")
    if r.mixed_frames:
        fail(f"{r.mixed_frames} frame(s) mixed CPU and GPU tiles")


def _h(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:,.2f} days"
    return f"{seconds / 3600:,.2f} h"


def report_table(r: "SimReport") -> "Table":
    from rich.table import Table

    t = Table(title="wanhe simulate", show_header=False, title_justify="left")
    t.add_column("what", style="bold")
    t.add_column("value")
    pool = f"{r.machines:,} machines × {r.cores} cores ({r.task_cores} cores per task)"
    if r.elastic:
        pool += f", elastic (peak {r.peak_machines:,})"
    t.add_row("farm", pool)
    t.add_row(
        "film",
        f"{r.frames:,} frames, {r.tasks:,} tasks ({r.split_frames:,} frames split into "
        f"{r.tiles:,} tiles), {r.work_core_hours:,.0f} core-hours, mean frame "
        f"{r.frame_core_hours_mean:.2f} core-h, max {r.frame_core_hours_max:.1f}",
    )
    t.add_row("completed", "yes" if r.completed else f"no: {r.tasks_done:,} of {r.tasks:,}")
    t.add_row("makespan", _h(r.makespan_s))
    t.add_row(
        "lower bound",
        f"{_h(r.lower_bound_s)} (work {_h(r.lb_work_s)}, longest chain {_h(r.lb_chain_s)})",
    )
    t.add_row("makespan / lower bound", f"{r.ratio:.4f}")
    t.add_row("core utilisation", f"{r.utilisation:.2%}")
    t.add_row("machine-hours", f"{r.machine_hours:,.0f}")
    t.add_row(
        "failures / retries",
        f"{r.failures:,} / {r.retries:,} ({r.lost_core_hours:,.0f} core-hours lost)",
    )
    if r.dispatcher_busy > 0:
        t.add_row(
            "dispatcher",
            f"busy {r.dispatcher_busy:.1%} of the makespan; a task waits "
            f"{r.dispatch_wait_mean_s:.2f} s on average ({r.dispatch_wait_max_s:.1f} s at most) "
            "from its machine asking to its start",
        )
    if r.fair_share_error is not None:
        t.add_row(
            "fair-share error",
            f"{r.fair_share_error:.4f} (over {_h(r.contention_s)} with every project busy)",
        )
    for p in r.projects:
        share = (
            ""
            if p.achieved_share is None
            else (f", share {p.achieved_share:.3f} vs {p.target_share:.3f}")
        )
        budget = "" if p.budget_core_hours is None else f", budget {p.budget_core_hours:,.0f}"
        line = (
            f"weight {p.weight:g}{budget}, {p.tasks_done:,}/{p.tasks:,} tasks, "
            f"{p.used_core_hours:,.0f} core-h{share}"
        )
        if p.blocked_reason:
            line += f" — {p.blocked_reason}"
        t.add_row(f"project {p.name}", line)
    s = r.scheduler
    t.add_row(
        "scheduler",
        f"{s.picks:,} decisions, {s.us_per_decision:.2f} µs/decision "
        f"({s.decisions_per_s:,.0f}/s); push {1e6 * s.push_s / max(1, s.pushes):.2f} µs, "
        f"finished {1e6 * s.finished_s / max(1, s.finishes):.2f} µs",
    )
    t.add_row(
        "run time",
        f"{s.sim_wall_s:.1f} s wall = policy {s.policy_s:.1f} s + simulator "
        f"{s.sim_overhead_s:.1f} s + film build {s.build_s:.1f} s; peak RSS "
        f"{s.peak_rss_mb:,.0f} MB",
    )
    return t


def sweep_table(points: "list[SweepPoint]") -> "Table":
    from rich.table import Table

    t = Table(title="scaling sweep (medians)", title_justify="left")
    for col in (
        "machines",
        "tasks",
        "makespan",
        "ratio",
        "util",
        "µs/decision",
        "decisions/s",
        "policy s",
        "wall s",
    ):
        t.add_column(col, justify="right")
    for p in points:
        t.add_row(
            f"{p.machines:,}",
            f"{p.tasks:,}",
            _h(p.makespan_hours * 3600),
            f"{p.ratio:.4f}",
            f"{p.utilisation:.2%}",
            f"{p.us_per_decision:.2f}",
            f"{p.decisions_per_s:,.0f}",
            f"{p.policy_s:.1f}",
            f"{p.sim_wall_s:.1f}",
        )
    return t


def six_months_table(s: "SixMonths") -> "Table":
    from rich.table import Table

    t = Table(title="six months vs elastic", show_header=False, title_justify="left")
    t.add_column("what", style="bold")
    t.add_column("value")
    t.add_row("work", f"{s.work_core_hours:,.0f} core-hours")
    t.add_row(
        "fixed farm",
        f"{s.fixed_machines:,} machines: {s.fixed_makespan_days:,.1f} days "
        f"(makespan/LB {s.fixed_ratio:.4f})",
    )
    t.add_row(
        "elastic pool",
        f"{s.elastic_start:,} → {s.elastic_max_machines:,} machines: "
        f"{s.elastic_makespan_days:,.3f} days ({s.elastic_makespan_days * 24:,.2f} h, "
        f"makespan/LB {s.elastic_ratio:.4f}, peak {s.elastic_peak_machines:,})",
    )
    t.add_row("speed-up", f"{s.speedup:,.0f}×")
    t.add_row("within two weeks", "yes" if s.within_two_weeks else "no")
    return t
