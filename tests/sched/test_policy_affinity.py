"""Affinity: a slot that holds a model gets that model's tasks first, within what priority
and fair share allow."""

from __future__ import annotations

from wanhe.model import Resources
from wanhe.sched.policy import QueuedTask, SchedulingPolicy

GPU = Resources(cpus=1.0, gpus=1.0)


def task(tid: int, affinity: str | None, *, job: str = "1", priority: int = 50,
         project: str = "p") -> QueuedTask:
    return QueuedTask(tid, job, project, priority, int(job), tid, GPU, affinity=affinity)


def test_a_warm_slot_takes_its_models_tasks_first() -> None:
    policy = SchedulingPolicy()
    policy.push_many([task(1, "A"), task(2, "A"), task(3, "B"), task(4, "B")])
    free = Resources(cpus=8, gpus=1)
    got = policy.pick(free, node="n", gpu_only=True, warm={"B"})
    assert got is not None and got.task_id == 3
    got = policy.pick(free, node="n", gpu_only=True, warm={"A"})
    assert got is not None and got.task_id == 1
    cold = policy.pick(free, node="n", gpu_only=True, warm=set())
    assert cold is not None and cold.task_id == 2  # nothing held: submission order
    only_b = policy.pick(free, node="n", gpu_only=True, warm={"C"})
    assert only_b is not None and only_b.task_id == 4  # nothing warm fits: take the first
    assert policy.pick(free, node="n", gpu_only=True, warm={"B"}) is None


def test_affinity_never_beats_priority() -> None:
    policy = SchedulingPolicy()
    policy.push_many([task(1, "A", job="1", priority=90), task(2, "B", job="2", priority=10)])
    got = policy.pick(Resources(cpus=8, gpus=1), node="n", gpu_only=True, warm={"B"})
    assert got is not None and got.task_id == 1


def test_discard_and_finish_with_affinity_lanes() -> None:
    policy = SchedulingPolicy()
    policy.push_many([task(1, "A"), task(2, "B")])
    assert policy.discard(2)
    got = policy.pick(Resources(cpus=8, gpus=1), node="n", warm={"B"})
    assert got is not None and got.task_id == 1
    policy.finished(got, 1.0, 1.0)
    assert policy.ready_count() == 0 and policy.running_count() == 0
