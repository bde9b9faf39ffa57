"""The discrete-event loop: a virtual clock, machines, failures, elasticity, the REAL policy.

Every free machine asks `wanhe.sched.SchedulingPolicy.pick` for work, exactly as the
dispatcher does; every finished task is reported with `finished` (metering its core-seconds);
tasks that become ready (an assemble whose tiles are done, a retry after a machine failure)
are `push`ed. The time spent inside those three calls is measured on its own, so the
policy's cost is reported apart from the simulator's.

Events (a heap of (time, serial, kind, a, b)):
  FINISH  task a, attempt b ends on its machine (stale if the attempt was lost)
  FAIL    a failure candidate (thinning: candidates come at rate λ × all machine slots; the
          slot drawn fails if it is up, so failures hit up machines at exactly rate λ)
  REPAIR  machine a is back
  GROW    elastic: add up to `elastic_step` machines if work is waiting
  RELEASE elastic: machine a, idle since token b, is given back if still idle and no work
"""

from __future__ import annotations

import heapq
import math
import random
import resource
import time
from collections.abc import Callable

from wanhe.model import Resources
from wanhe.sched import QueuedTask, SchedulingPolicy
from wanhe.sched.elastic import Caps, Demand, plan_bundles, requested
from wanhe.sim.config import SimConfig
from wanhe.sim.metrics import (
    ProjectReport,
    SchedulerCost,
    SimReport,
    elastic_work_bound,
)
from wanhe.sim.workload import Workload, build_workload

__all__ = ["simulate"]

FINISH, FAIL, REPAIR, GROW, RELEASE = 0, 1, 2, 3, 4
ABSENT, UP, DOWN = 0, 1, 2


def simulate(
    cfg: SimConfig,
    *,
    workload: Workload | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SimReport:
    """Run the film on the farm; return the report. `progress(done, total)` is called now and
    then."""
    wall0 = time.perf_counter()
    wl = workload if workload is not None else build_workload(cfg)
    build_s = time.perf_counter() - wall0
    pc = time.perf_counter
    rng = random.Random(cfg.seed ^ 0x5EED)

    n_tasks = wl.tasks
    tc = wl.cpus
    cores = cfg.cores
    n_slots = cfg.machines  # machine ids 0..machines-1
    names = [f"m{i}" for i in range(n_slots)]
    free_res = {c: Resources(cpus=c) for c in range(cores + 1)}

    policy = SchedulingPolicy()
    n_proj = len(cfg.projects)
    for pcfg in cfg.projects:
        policy.set_project(
            pcfg.name,
            weight=pcfg.weight,
            budget_core_seconds=(
                None if pcfg.budget_core_hours is None else pcfg.budget_core_hours * 3600
            ),
        )
    proj_names = wl.project_names
    prio_of = [p.priority for p in cfg.projects]
    weights = [p.weight for p in cfg.projects]
    budgeted = [p.budget_core_hours is not None for p in cfg.projects]
    blocked = [False] * n_proj

    # --- task state
    attempt = [0] * n_tasks
    completed_flag = [False] * n_tasks
    machine_of = [-1] * n_tasks
    start_of = [0.0] * n_tasks
    queued_obj: list[QueuedTask | None] = [None] * n_tasks
    n_deps = list(wl.n_deps)
    parent = wl.parent
    duration = wl.duration_s
    core_s = wl.core_seconds
    task_project = wl.project
    task_job = wl.job
    task_seq = wl.seq
    job_ids = wl.job_ids
    job_seq = list(range(len(job_ids)))
    res = Resources(cpus=tc)

    # --- machines
    state = [ABSENT] * n_slots
    free = [0] * n_slots
    running_on: list[list[int]] = [[] for _ in range(n_slots)]
    in_avail = [False] * n_slots
    avail: list[int] = []  # machines with room for a task (lazy: check in_avail)
    idle_token = [0] * n_slots
    absent: list[int] = []
    pool = cfg.elastic_start if cfg.elastic else cfg.machines
    for m in range(n_slots - 1, -1, -1):
        if m < pool:
            state[m] = UP
            free[m] = cores
        else:
            absent.append(m)
    up_machines = pool
    down_machines = 0
    peak_machines = pool

    # --- counters and clocks
    t_pick = t_push = t_fin = 0.0
    n_pick = n_push = n_fin = 0
    done = 0
    retries = 0
    failures = 0
    lost_cs = 0.0
    busy_cs = 0.0
    now = 0.0
    up_area = 0.0  # ∫ up machines dt
    busy_cores = 0
    ready_p = [0] * n_proj
    run_p = [0] * n_proj  # running cores per project
    share_area = [0.0] * n_proj
    contention_s = 0.0
    done_p = [0] * n_proj
    total_p = [0] * n_proj
    for p in task_project:
        total_p[p] += 1

    lb_work = (
        elastic_work_bound(
            wl.total_core_seconds,
            cores,
            cfg.elastic_start,
            cfg.elastic_step,
            cfg.elastic_interval_s,
            cfg.machines,
        )
        if cfg.elastic
        else wl.total_core_seconds / (cfg.machines * cores)
    )
    lower_bound = max(lb_work, wl.chain_s)
    sample_dt = max(lower_bound / cfg.sample_points, 1e-6)
    next_sample = 0.0
    timeline: list[tuple[float, int, int]] = []

    events: list[tuple[float, int, int, int, int]] = []
    serial = 0

    def push_task(i: int) -> None:
        nonlocal t_push, n_push, serial
        p = task_project[i]
        q = queued_obj[i]
        if q is None:
            j = task_job[i]
            q = QueuedTask(i, job_ids[j], proj_names[p], prio_of[p], job_seq[j], task_seq[i], res)
            queued_obj[i] = q
        t0 = pc()
        policy.push(q)
        t_push += pc() - t0
        n_push += 1
        ready_p[p] += 1

    elastic_caps = Caps(max_cores=float(cfg.machines * cores), max_bundles=10**9)

    def elastic_demands() -> list[Demand]:
        out = []
        for p in sorted(range(n_proj), key=lambda p: -prio_of[p]):
            name = proj_names[p]
            budget = cfg.projects[p].budget_core_hours
            left = None if budget is None else budget * 3600 - policy.used_core_seconds(name)
            out.append(Demand(name, {res: ready_p[p]}, {res: run_p[p] // tc}, left))
        return out

    def waiting() -> int:
        """Ready tasks of projects that may still get work."""
        return sum(ready_p[p] for p in range(n_proj) if not blocked[p])

    dispatch_cost = cfg.dispatch_cost_s
    dispatcher_free = 0.0  # when the one dispatcher is done with the tasks it was given
    dispatch_wait = dispatch_wait_max = 0.0
    dispatched = 0

    def start(q: QueuedTask, m: int) -> None:
        nonlocal serial, busy_cores, dispatcher_free, dispatch_wait, dispatch_wait_max
        nonlocal dispatched
        i = q.task_id
        # the machine is taken now; the task runs once the dispatcher has started it
        begins = now
        if dispatch_cost > 0:
            begins = dispatcher_free = max(now, dispatcher_free) + dispatch_cost
            dispatch_wait += begins - now
            dispatch_wait_max = max(dispatch_wait_max, begins - now)
            dispatched += 1
        p = task_project[i]
        ready_p[p] -= 1
        run_p[p] += tc
        busy_cores += tc
        free[m] -= tc
        running_on[m].append(i)
        machine_of[i] = m
        start_of[i] = begins
        serial += 1
        heapq.heappush(events, (begins + duration[i], serial, FINISH, i, attempt[i]))

    def mark_avail(m: int) -> None:
        nonlocal serial
        if not in_avail[m]:
            in_avail[m] = True
            avail.append(m)
        if cfg.elastic and free[m] == cores:
            idle_token[m] += 1
            serial += 1
            heapq.heappush(events, (now + cfg.idle_release_s, serial, RELEASE, m, idle_token[m]))

    def fill(m: int) -> None:
        """Give machine m work until it is full or nothing fits; else mark it available."""
        nonlocal t_pick, n_pick
        while free[m] >= tc:
            t0 = pc()
            q = policy.pick(free_res[free[m]], names[m])
            t_pick += pc() - t0
            n_pick += 1
            if q is None:
                mark_avail(m)
                return
            start(q, m)

    def fill_available() -> None:
        nonlocal t_pick, n_pick
        while avail and policy.ready_count():
            m = avail[-1]
            if not in_avail[m] or state[m] != UP or free[m] < tc:
                avail.pop()
                in_avail[m] = False
                continue
            t0 = pc()
            q = policy.pick(free_res[free[m]], names[m])
            t_pick += pc() - t0
            n_pick += 1
            if q is None:
                return
            start(q, m)
            if free[m] < tc:
                avail.pop()
                in_avail[m] = False

    def finish_in_policy(i: int, cs: float) -> None:
        nonlocal t_fin, n_fin
        q = queued_obj[i]
        assert q is not None
        t0 = pc()
        policy.finished(q, cs)
        t_fin += pc() - t0
        n_fin += 1
        p = task_project[i]
        run_p[p] -= tc
        if budgeted[p]:
            blocked[p] = policy.blocked_reason(proj_names[p]) is not None

    # --- t = 0: submit every ready task, start the clocks
    for i in range(n_tasks):
        if n_deps[i] == 0:
            push_task(i)
    rss_after_push_mb = _rss_mb()
    for m in range(pool):
        fill(m)
    if cfg.failure_rate > 0:
        serial += 1
        heapq.heappush(
            events, (rng.expovariate(cfg.failure_rate * n_slots / 3600), serial, FAIL, 0, 0)
        )
    if cfg.elastic:
        serial += 1
        heapq.heappush(events, (cfg.elastic_interval_s, serial, GROW, 0, 0))

    report_every = max(1, n_tasks // 50)
    next_report = report_every
    makespan = 0.0
    stuck = False
    while events and done < n_tasks:
        t, _, kind, a, b = heapq.heappop(events)
        if t > now:
            dt = t - now
            while next_sample <= t:
                timeline.append((next_sample, busy_cores, up_machines * cores))
                next_sample += sample_dt
            up_area += up_machines * dt
            if n_proj > 1:
                contended = True
                for p in range(n_proj):
                    if ready_p[p] == 0 or blocked[p]:
                        contended = False
                        break
                if contended:
                    contention_s += dt
                    for p in range(n_proj):
                        share_area[p] += run_p[p] * dt
            now = t
        if kind == FINISH:
            if attempt[a] != b:
                continue  # this attempt was lost with its machine
            if completed_flag[a]:
                raise RuntimeError(f"simulator bug: task {a} completed twice")
            completed_flag[a] = True
            m = machine_of[a]
            running_on[m].remove(a)
            free[m] += tc
            busy_cores -= tc
            busy_cs += core_s[a]
            finish_in_policy(a, core_s[a])
            done += 1
            p = task_project[a]
            done_p[p] += 1
            makespan = now
            par = parent[a]
            pushed = False
            if par >= 0:
                n_deps[par] -= 1
                if n_deps[par] == 0:
                    push_task(par)
                    pushed = True
            fill(m)
            if pushed:
                fill_available()
            if progress is not None and done >= next_report:
                progress(done, n_tasks)
                next_report += report_every
        elif kind == FAIL:
            serial += 1
            heapq.heappush(
                events,
                (now + rng.expovariate(cfg.failure_rate * n_slots / 3600), serial, FAIL, 0, 0),
            )
            m = rng.randrange(n_slots)
            if state[m] != UP:
                continue
            failures += 1
            state[m] = DOWN
            up_machines -= 1
            down_machines += 1
            in_avail[m] = False
            for i in running_on[m]:
                attempt[i] += 1  # its FINISH event is now stale
                elapsed_cs = max(0.0, now - start_of[i]) * tc
                lost_cs += elapsed_cs
                busy_cs += elapsed_cs
                busy_cores -= tc
                finish_in_policy(i, elapsed_cs)
                retries += 1
                push_task(i)
            running_on[m].clear()
            free[m] = 0
            serial += 1
            heapq.heappush(events, (now + cfg.repair_hours * 3600, serial, REPAIR, m, 0))
            fill_available()
        elif kind == REPAIR:
            state[a] = UP
            up_machines += 1
            down_machines -= 1
            free[a] = cores
            fill(a)
        elif kind == GROW:
            serial += 1
            heapq.heappush(events, (now + cfg.elastic_interval_s, serial, GROW, 0, 0))
            # the dispatcher's own request policy: bundles for what runs and what waits,
            # within the farm's size and the projects' budgets; grow towards it
            bundles = plan_bundles(elastic_demands(), elastic_caps)
            want = math.ceil(requested(bundles).cpus / cores - 1e-9) - up_machines
            add = min(cfg.elastic_step, len(absent), want)
            for _ in range(max(0, add)):
                m = absent.pop()
                state[m] = UP
                free[m] = cores
                up_machines += 1
                fill(m)
            peak_machines = max(peak_machines, up_machines + down_machines)
        elif kind == RELEASE:
            m = a
            if state[m] == UP and idle_token[m] == b and free[m] == cores and waiting() == 0:
                state[m] = ABSENT
                up_machines -= 1
                in_avail[m] = False
                absent.append(m)
        if busy_cores == 0 and down_machines == 0 and done < n_tasks:
            # nothing runs and nothing will come back from repair: start what can start;
            # if nothing can (budgets used up) and no machine will be added, the rest is stuck
            fill_available()
            if busy_cores == 0 and (not cfg.elastic or waiting() == 0):
                stuck = True
                break
    while next_sample <= makespan:
        timeline.append((next_sample, busy_cores, up_machines * cores))
        next_sample += sample_dt
    wall_s = time.perf_counter() - wall0

    stats = policy.stats()
    policy_s = t_pick + t_push + t_fin
    cost = SchedulerCost(
        picks=n_pick,
        picked=stats.picked,
        pushes=n_push,
        finishes=n_fin,
        pick_s=t_pick,
        push_s=t_push,
        finished_s=t_fin,
        policy_s=policy_s,
        us_per_decision=1e6 * t_pick / max(1, n_pick),
        decisions_per_s=n_pick / t_pick if t_pick > 0 else 0.0,
        us_per_task=1e6 * policy_s / max(1, n_tasks),
        sim_wall_s=wall_s,
        build_s=build_s,
        sim_overhead_s=wall_s - build_s - policy_s,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        rss_after_submit_mb=rss_after_push_mb,
    )
    total_w = sum(weights)
    total_share = sum(share_area)
    projects = []
    for p, pc_ in enumerate(cfg.projects):
        achieved = share_area[p] / total_share if total_share > 0 else None
        target = pc_.weight / total_w
        projects.append(
            ProjectReport(
                name=pc_.name,
                weight=pc_.weight,
                budget_core_hours=pc_.budget_core_hours,
                used_core_hours=policy.used_core_seconds(pc_.name) / 3600,
                tasks=total_p[p],
                tasks_done=done_p[p],
                target_share=target,
                achieved_share=achieved,
                share_error=None if achieved is None else abs(achieved - target),
                blocked_reason=policy.blocked_reason(pc_.name),
            )
        )
    errors = [p.share_error for p in projects if p.share_error is not None]
    machine_s = up_area  # machine-seconds the pool was up (rented)
    return SimReport(
        machines=cfg.machines,
        cores=cores,
        task_cores=tc,
        elastic=cfg.elastic,
        frames=wl.frames,
        tasks=n_tasks,
        split_frames=wl.split_frames,
        tiles=wl.tiles,
        frame_core_hours_mean=wl.frame_core_hours_mean,
        frame_core_hours_max=wl.frame_core_hours_max,
        work_core_hours=wl.total_core_seconds / 3600,
        completed=done == n_tasks,
        stuck=stuck,
        tasks_done=done,
        makespan_s=makespan,
        lower_bound_s=lower_bound,
        lb_work_s=lb_work,
        lb_chain_s=wl.chain_s,
        ratio=makespan / lower_bound if lower_bound > 0 else float("nan"),
        utilisation=busy_cs / (machine_s * cores) if machine_s > 0 else 0.0,
        machine_hours=machine_s / 3600,
        peak_machines=peak_machines,
        fair_share_error=max(errors) if errors else None,
        contention_s=contention_s,
        failures=failures,
        retries=retries,
        lost_core_hours=lost_cs / 3600,
        dispatch_wait_mean_s=dispatch_wait / dispatched if dispatched else 0.0,
        dispatch_wait_max_s=dispatch_wait_max,
        dispatcher_busy=dispatched * dispatch_cost / makespan if makespan > 0 else 0.0,
        projects=projects,
        scheduler=cost,
        timeline=timeline,
        seed=cfg.seed,
    )


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * resource.getpagesize() / 2**20
    except OSError:
        return float("nan")
