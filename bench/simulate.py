"""Benchmark: the scheduling policy's speed, the farm-size sweep, six months vs two weeks.

Prints Markdown for bench/RESULTS.md with the exact command. Run:

    .venv/bin/python bench/simulate.py                 # full film (129,600 frames), ~10 min
    .venv/bin/python bench/simulate.py --frames 20000  # quicker

Timings are medians of repeated runs in this one process; the policy's time is measured
inside pick()/push()/finished() only, apart from the simulator's own overhead.
"""

from __future__ import annotations

import argparse
import math
import platform
import random
import resource
import shlex
import statistics
import sys
import time
from pathlib import Path

from wanhe.model import Resources
from wanhe.sched import QueuedTask, SchedulingPolicy
from wanhe.sim import SimConfig, simulate
from wanhe.sim.config import TWO_WEEKS_S
from wanhe.sim.study import six_months_vs_elastic, sweep, with_changes


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def policy_micro(queue: int, picks: int, repeats: int) -> dict[str, float]:
    """Steady state with `queue` ready tasks: pick, finish the oldest running, push a new one.

    4 projects (weights 4:2:1:1), 2 priorities, 1,000 jobs, whole-machine tasks.
    """
    rng = random.Random(1)
    before = rss_mb()
    policy = SchedulingPolicy()
    for name, w in (("a", 4), ("b", 2), ("c", 1), ("d", 1)):
        policy.set_project(name, weight=w)
    res = Resources(cpus=16)
    jobs = [(f"j{j}", "abcd"[j % 4], 70 if j % 10 == 0 else 50, j) for j in range(1000)]
    tid = 0

    def new_task() -> QueuedTask:
        nonlocal tid
        job, proj, prio, seq = jobs[rng.randrange(len(jobs))]
        t = QueuedTask(tid, job, proj, prio, seq, tid, res)
        tid += 1
        return t

    initial = [new_task() for _ in range(queue)]
    t0 = time.perf_counter()
    for t in initial:
        policy.push(t)
    push_us = 1e6 * (time.perf_counter() - t0) / queue
    mem = rss_mb() - before  # the tasks themselves and the policy's structures
    del initial
    free = Resources(cpus=16)
    running: list[QueuedTask] = []
    for _ in range(1000):  # a farm of 1,000 busy slots
        t = policy.pick(free, "n0")
        assert t is not None
        running.append(t)
    fresh = [new_task() for _ in range(picks * repeats)]
    pick_times = []
    cycle_times = []
    k = 0
    for _ in range(repeats):
        pick_s = 0.0
        c0 = time.perf_counter()
        for _ in range(picks):
            done = running.pop(0)
            policy.finished(done, 3600.0)
            policy.push(fresh[k])
            k += 1
            p0 = time.perf_counter()
            t = policy.pick(free, "n0")
            pick_s += time.perf_counter() - p0
            assert t is not None
            running.append(t)
        cycle_times.append((time.perf_counter() - c0) / picks)
        pick_times.append(pick_s / picks)
    us = 1e6 * statistics.median(pick_times)
    return {
        "queue": queue,
        "us_per_pick": us,
        "picks_per_s": 1e6 / us,
        "us_per_cycle": 1e6 * statistics.median(cycle_times),
        "push_us": push_us,
        "mb_per_million": mem / queue * 1e6,
    }


def fmt_h(seconds: float) -> str:
    return f"{seconds / 3600:,.2f} h" if seconds < 2 * 86400 else f"{seconds / 86400:,.1f} days"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=129_600)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--machines", default="100,1000,10000,30000")
    ap.add_argument("--queues", default="10000,100000,1000000,2000000")
    ap.add_argument("--plots", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sizes = [int(x) for x in args.machines.split(",")]
    queues = [int(x) for x in args.queues.split(",")]

    print("## Simulator and scheduling policy (`bench/simulate.py`)\n")
    print(f"Command: `.venv/bin/python bench/simulate.py {shlex.join(sys.argv[1:])}`".rstrip())
    print(
        f"\nPython {platform.python_version()} on {platform.machine()}, "
        f"{platform.processor() or 'cpu'}; one core; medians of {args.repeats} repeats.\n"
    )

    # 1. the policy alone, with a big queue
    print("### Policy alone: pick() with a queue of N ready tasks\n")
    print(
        "| queued tasks | µs / pick | picks / s | µs / (finished+push+pick) | "
        "µs / push | MB per million queued |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    micro = []
    for q in queues:
        m = policy_micro(q, picks=20_000, repeats=args.repeats)
        micro.append(m)
        print(
            f"| {q:,} | {m['us_per_pick']:.2f} | {m['picks_per_s']:,.0f} | "
            f"{m['us_per_cycle']:.2f} | {m['push_us']:.2f} | {m['mb_per_million']:,.0f} |",
            flush=True,
        )
    if len(micro) > 1:
        g = micro[-1]["us_per_pick"] / micro[0]["us_per_pick"]
        lg = math.log(micro[-1]["queue"]) / math.log(micro[0]["queue"])
        print(
            f"\nµs/pick grew {g:.2f}× from {micro[0]['queue']:,} to {micro[-1]['queue']:,} "
            f"queued tasks (log n grew {lg:.2f}×).\n"
        )

    # 2. the sweep: the same film on fixed farms of each size
    base = SimConfig(frames=args.frames, seed=args.seed)
    print(f"### Sweep: the same film ({args.frames:,} frames) on fixed farms of 16-core machines\n")

    def on_run(m: int, r: int, rep: object) -> None:
        print(f"  (ran {m:,} machines, repeat {r + 1})", file=sys.stderr, flush=True)

    points = sweep(base, sizes, repeats=args.repeats, on_run=on_run)
    print(
        "| machines | tasks | decisions | makespan | lower bound ratio | utilisation | "
        "µs / decision | decisions / s | policy µs / task | policy s | sim wall s |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p in points:
        print(
            f"| {p.machines:,} | {p.tasks:,} | {p.picks:,} | {fmt_h(p.makespan_hours * 3600)} | "
            f"{p.ratio:.4f} | {p.utilisation:.2%} | {p.us_per_decision:.2f} | "
            f"{p.decisions_per_s:,.0f} | {p.us_per_task:.2f} | {p.policy_s:.1f} | "
            f"{p.sim_wall_s:.1f} |",
            flush=True,
        )
    if len(points) > 1:
        first, last = points[0], points[-1]
        g = last.us_per_decision / first.us_per_decision
        lg = math.log(last.machines) / math.log(first.machines)
        print(
            f"\nµs/decision grew {g:.2f}× from {first.machines:,} to {last.machines:,} machines "
            f"(log(machines) grew {lg:.2f}×): "
            f"{'within' if g <= lg else 'ABOVE'} the log bound.\n"
        )
    big = points[-1]
    print(
        f"Targets at {big.machines:,} machines: makespan ≤ 1.03 × lower bound: "
        f"{big.ratio:.4f} ({'met' if big.ratio <= 1.03 else 'NOT met'}); "
        f"≥ 10,000 decisions/s: {big.decisions_per_s:,.0f} "
        f"({'met' if big.decisions_per_s >= 10_000 else 'NOT met'}).\n"
    )

    # 3. with failures at the largest size
    fail_cfg = with_changes(base, machines=sizes[-1], failure_rate=0.002, repair_hours=0.5)
    fr = simulate(fail_cfg)
    print(
        f"With failures (0.002 per machine-hour, 0.5 h repair) at {sizes[-1]:,} machines: "
        f"{fr.failures:,} failures, {fr.retries:,} retries, {fr.lost_core_hours:,.0f} core-hours "
        f"lost, every task done once: {fr.completed and fr.tasks_done == fr.tasks}, "
        f"makespan/LB {fr.ratio:.4f}.\n"
    )

    # 4. six months vs elastic
    elastic_base = with_changes(base, machines=30_000, elastic=True)
    six, _fixed, elastic = six_months_vs_elastic(elastic_base)
    print("### Six months vs two weeks: the same film, fixed farm vs elastic pool\n")
    print("| farm | machines | makespan | makespan / LB | machine-hours |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| fixed, sized for ~six months | {six.fixed_machines:,} | "
        f"{six.fixed_makespan_days:,.1f} days | {six.fixed_ratio:.4f} | "
        f"{six.fixed_machine_hours:,.0f} |"
    )
    print(
        f"| elastic, {six.elastic_start:,} + 1,000 per 3 min up to {six.elastic_max_machines:,} "
        f"| peak {six.elastic_peak_machines:,} | {six.elastic_makespan_days:,.3f} days "
        f"({six.elastic_makespan_days * 24:,.2f} h) | {six.elastic_ratio:.4f} | "
        f"{six.elastic_machine_hours:,.0f} |"
    )
    print(
        f"\nWork: {six.work_core_hours:,.0f} core-hours. Elastic finishes within two weeks: "
        f"{'yes' if six.within_two_weeks else 'no'} (speed-up {six.speedup:,.0f}×)."
    )
    seed_work = 4e8 * 3600
    seed_bound = seed_work / (30_000 * 16)
    print(
        f"For scale: the seed's 4×10⁸ core-hours on 30,000 × 16 cores needs at least "
        f"{seed_bound / 86400:,.1f} days ({'within' if seed_bound <= TWO_WEEKS_S else 'more than'}"
        f" two weeks), i.e. {4e8 / six.work_core_hours:,.0f}× this film's work.\n"
    )

    if args.plots is not None:
        from wanhe.sim.plots import plot_scheduler_cost, plot_utilisation

        big_report = simulate(with_changes(base, machines=sizes[-1]))
        print(
            f"plots: {plot_utilisation(big_report, args.plots / 'utilisation.png')}, "
            f"{plot_utilisation(elastic, args.plots / 'utilisation_elastic.png')}, "
            f"{plot_scheduler_cost(points, args.plots / 'scheduler_cost.png')}"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nPeak RSS of the whole benchmark process: {peak:,.0f} MB.")


if __name__ == "__main__":
    main()
