"""Does the real dispatcher keep 30,000 machines busy with minute-long tiles?

    .venv/bin/python bench/sim_dispatch.py [--costs-ms 0,0.3,1,2,3,5] [--frames 2000]

The simulator (`wanhe.sim`, the real scheduling policy) runs a film whose every frame is split
into 64–128 tiles of about a minute on 30,000 16-core machines, once per dispatch cost: the
seconds of the one dispatcher's time each task takes (`SimConfig.dispatch_cost_s`; measure
it with `bench/dispatch.py`: the dispatcher's CPU per task on a quiet machine, or 1 / its
tasks/s under load). A task starts that long after its machine asks, later while the
dispatcher is busy. Prints a markdown table: makespan against the run without a dispatch
cost, the farm's utilisation, the dispatcher's busy share and a task's wait.
"""

from __future__ import annotations

import argparse
import sys

from wanhe.sim import SimConfig, simulate
from wanhe.sim.workload import build_workload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--costs-ms", default="0,0.3,1,2,3,5")
    parser.add_argument("--machines", type=int, default=30_000)
    parser.add_argument("--frames", type=int, default=2_000)
    args = parser.parse_args()
    costs = [float(c) / 1000 for c in args.costs_ms.split(",")]
    # A 17 core-hour frame (lognormal, up to 34) in 64–128 tiles of 0.27 core-hours: about 60 s
    # on a 16-core machine, plus a 1 s fixed cost per task (a warm worker).
    base = SimConfig(machines=args.machines, frames=args.frames, mean_core_hours=17.0,
                     sigma=0.3, max_frame_core_hours=34.0, split_above_core_hours=0.5,
                     tiles_min=64, tiles_max=128, tile_core_hours=16 / 60,
                     task_overhead_core_seconds=16.0, assemble_core_hours=16 / 3600,
                     estimate_error=0.0)
    workload = build_workload(base)
    mean_s = sum(workload.duration_s) / workload.tasks
    print(f"{workload.tasks:,} tasks ({workload.tiles:,} tiles, mean {mean_s:.0f} s on a "
          f"machine) on {args.machines:,} machines: {args.machines / mean_s:,.0f} tasks/s to "
          "keep them busy", file=sys.stderr)
    rows = []
    for cost in costs:
        report = simulate(base.model_copy(update={"dispatch_cost_s": cost}), workload=workload)
        rows.append((cost, report))
        print(f"{1000 * cost:g} ms: makespan {report.makespan_s:.0f} s", file=sys.stderr)
    command = "python " + " ".join(["bench/sim_dispatch.py", *sys.argv[1:]])
    print(f"\n`{command}`: {workload.tasks:,} tasks of {mean_s:.0f} s (mean) on "
          f"{args.machines:,} 16-core machines, i.e. {args.machines / mean_s:,.0f} tasks/s "
          "wanted\n")
    print("| dispatch cost per task | dispatcher's ceiling | makespan | × no dispatch cost | "
          "utilisation | dispatcher busy | a task's wait: mean / max |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    plain = rows[0][1].makespan_s
    for cost, r in rows:
        ceiling = f"{1 / cost:,.0f} tasks/s" if cost else "∞"
        print(f"| {1000 * cost:g} ms | {ceiling} | {r.makespan_s / 60:,.1f} min | "
              f"{r.makespan_s / plain:.3f} | {r.utilisation:.1%} | {r.dispatcher_busy:.0%} | "
              f"{r.dispatch_wait_mean_s:.2f} / {r.dispatch_wait_max_s:.1f} s |")


if __name__ == "__main__":
    main()
