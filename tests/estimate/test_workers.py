"""A generation job's wall time on N workers (exact list scheduling of its known tasks): a
worker pays its start and each model's load once, more workers never finish later (also on
shot mixes where the plain greedy would), the bill grows by the extra loads, and the deadline
search gives the fewest workers or says it is impossible with the earliest finish."""

from __future__ import annotations

import itertools
import random

import pytest

from wanhe.estimate.workers import (
    GraphTask,
    WorkTask,
    farm_runs,
    graph_runs,
    graph_schedule,
    list_schedule,
    machines_for_graph,
    workers_for_deadline,
)

TASKS = [WorkTask("a", 1.0)] * 4


def test_one_worker_pays_its_start_and_the_load_once() -> None:
    run = list_schedule(TASKS, 1, start_s=2.0, cold={"a": 3.0})
    assert (run.workers, run.wall_s, run.seconds, run.loads) == (1, 9.0, 9.0, 1)


def test_more_workers_finish_sooner_and_bill_their_loads() -> None:
    two = list_schedule(TASKS, 2, start_s=2.0, cold={"a": 3.0})
    assert (two.wall_s, two.seconds, two.loads) == (7.0, 14.0, 2)
    many = list_schedule(TASKS, 10, start_s=2.0, cold={"a": 3.0})  # one a task, 6 idle
    assert (many.workers, many.wall_s, many.seconds) == (4, 6.0, 24.0)


def test_each_model_is_loaded_once_a_worker() -> None:
    tasks = [WorkTask("a", 1.0), WorkTask("a", 1.0), WorkTask("b", 2.0), WorkTask("b", 2.0)]
    run = list_schedule(tasks, 1, start_s=1.0, cold={"a": 3.0, "b": 5.0})
    assert (run.wall_s, run.seconds, run.loads) == (15.0, 15.0, 2)
    # two workers: each loads a, then each b (a worker that holds b is no sooner than one
    # that does not)
    two = list_schedule(tasks, 2, start_s=1.0, cold={"a": 3.0, "b": 5.0})
    assert (two.wall_s, two.loads) == (12.0, 4)


def test_cpu_tasks_run_on_their_threads() -> None:
    assert list_schedule(TASKS, 1, speed=4.0).wall_s == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(40))
def test_the_wall_never_rises_with_more_workers(seed: int) -> None:
    rng = random.Random(seed)
    models = [f"m{i}" for i in range(rng.randint(1, 3))]
    tasks: list[WorkTask] = []
    for _ in range(rng.randint(1, 4)):
        task = WorkTask(rng.choice(models), rng.uniform(0.1, 5))
        tasks += [task] * rng.randint(1, 8)
    cold = {m: rng.uniform(0, 20) for m in models}
    walls = [r.wall_s for r in farm_runs(tasks, len(tasks), start_s=rng.uniform(0, 5),
                                         cold=cold)]
    assert all(b <= a for a, b in itertools.pairwise(walls)), walls


def test_the_deadline_gets_the_fewest_workers_or_the_earliest_finish() -> None:
    tasks = [WorkTask("a", 10.0)] * 8
    answer = workers_for_deadline(tasks, 25.0, start_s=1.0, cold={"a": 4.0})
    assert answer.possible and answer.machines == 4 and answer.wall_s == 25.0
    assert list_schedule(tasks, 3, start_s=1.0, cold={"a": 4.0}).wall_s > 25.0
    assert "4 GPU(s) finish in 25 s" in answer.explain(25.0)
    never = workers_for_deadline(tasks, 12.0, start_s=1.0, cold={"a": 4.0}, unit="machine")
    assert not never.possible and never.earliest_s == 15.0
    assert never.explain(12.0) == ("impossible: 12 s is too little; even 8 machines (one per "
                                   "task) need 15 s")


def test_a_farm_needs_a_worker_and_a_job_its_tasks() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        list_schedule(TASKS, 0)
    with pytest.raises(ValueError, match="no tasks"):
        list_schedule([], 1)


# ------------------------------------------------------------------ jobs with dependencies


def test_a_chain_runs_one_after_another_whatever_the_farm() -> None:
    chain = [GraphTask(2.0), GraphTask(3.0, (0,)), GraphTask(4.0, (1,))]
    assert [graph_schedule(chain, n, cores=c) for n, c in [(1, 1), (5, 16)]] == [9.0, 9.0]


def test_a_fan_in_waits_for_its_last_input() -> None:
    fan = [GraphTask(s) for s in (1.0, 5.0, 2.0, 2.0)] + [GraphTask(1.0, (0, 1, 2, 3))]
    assert graph_schedule(fan, 1, cores=4) == 6.0  # all four at once, then the last
    assert graph_schedule(fan, 1, cores=2) == 6.0  # 5 on one slot; 1, 2, 2 on the other
    assert graph_schedule(fan, 1, cores=1) == 11.0


def test_light_tasks_hold_no_slot_and_gpu_tasks_wait_for_a_gpu() -> None:
    tasks = [GraphTask(4.0), GraphTask(1.0, cpus=0), GraphTask(3.0, (1,), gpus=1),
             GraphTask(3.0, (1,), gpus=1), GraphTask(0.5, (0, 2, 3), cpus=0)]
    assert graph_schedule(tasks, 1, cores=1, gpus=1) == 10.5  # the CPU slot is held
    assert graph_schedule(tasks, 1, cores=3, gpus=1) == 7.5
    assert graph_schedule(tasks, 1, cores=3, gpus=2) == 4.5


@pytest.mark.parametrize("seed", range(30))
def test_a_graph_never_finishes_later_on_more_machines(seed: int) -> None:
    rng = random.Random(seed)
    tasks: list[GraphTask] = []
    for i in range(rng.randint(1, 40)):
        deps = tuple(rng.sample(range(i), rng.randint(0, min(i, 3))))
        tasks.append(GraphTask(rng.uniform(0.1, 10), deps, rng.choice([0, 1, 1, 2]),
                               rng.choice([0, 0, 1])))
    walls = graph_runs(tasks, 30, cores=2, gpus=1)
    assert len(walls) == 30 and all(b <= a for a, b in itertools.pairwise(walls)), walls
    assert walls[0] == graph_schedule(tasks, 1, cores=2, gpus=1)


def test_a_graph_deadline_gets_the_fewest_machines_or_the_earliest_finish() -> None:
    renders = [GraphTask(10.0) for _ in range(8)]
    tasks = [*renders, GraphTask(2.0, tuple(range(8)))]
    answer = machines_for_graph(tasks, 25.0, cores=2)
    assert answer.possible and answer.machines == 2 and answer.wall_s == 22.0
    never = machines_for_graph(tasks, 10.0, cores=2)
    assert not never.possible and never.earliest_s == 12.0 and never.most_useful_machines == 5


def test_a_graph_the_farm_cannot_run_is_one_line() -> None:
    with pytest.raises(ValueError, match="needs 1 GPU"):
        graph_schedule([GraphTask(1.0, gpus=1)], 1, cores=1)
    with pytest.raises(ValueError, match="needs 4 cores"):
        graph_schedule([GraphTask(1.0, cpus=4)], 1, cores=2)
    with pytest.raises(ValueError, match="does not come before"):
        graph_schedule([GraphTask(1.0, (0,))], 1, cores=1)
