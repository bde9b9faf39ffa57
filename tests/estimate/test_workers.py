"""A generation job's wall time on N workers (exact list scheduling of its known tasks): a
worker pays its start and each model's load once, more workers never finish later (also on
shot mixes where the plain greedy would), the bill grows by the extra loads, and the deadline
search gives the fewest workers or says it is impossible with the earliest finish."""

from __future__ import annotations

import itertools
import random

import pytest

from wanhe.estimate.workers import WorkTask, farm_runs, list_schedule, workers_for_deadline

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
