"""`SchedulingPolicy.pick_from_job`: a slot holding a job's session takes that job's next task
— never jumping priority, a pause, a budget or a blocklist — and the rest of the queue is
unharmed (every task is picked exactly once)."""

from __future__ import annotations

from wanhe.model import Resources
from wanhe.sched.policy import QueuedTask, SchedulingPolicy

FREE = Resources(cpus=1, memory=1 << 40)


def task(tid: int, job: str, project: str = "p", priority: int = 50, seq: int = 0) -> QueuedTask:
    return QueuedTask(task_id=tid, job_id=job, project=project, priority=priority,
                      job_seq=int(job[1:]), task_seq=seq)


def test_the_warm_job_goes_first_and_every_task_runs_once() -> None:
    policy = SchedulingPolicy()
    for i in range(4):
        policy.push(task(i, "j1", "a", seq=i))
        policy.push(task(10 + i, "j2", "b", seq=i))
    got = policy.pick_from_job("j2", FREE, node="n1")
    assert got is not None and got.task_id == 10
    picked = [got.task_id]
    while (nxt := policy.pick_from_job("j2", FREE, node="n1") or policy.pick(FREE, "n1")):
        picked.append(nxt.task_id)
    assert picked[:4] == [10, 11, 12, 13]
    assert sorted(picked) == [0, 1, 2, 3, 10, 11, 12, 13]
    assert policy.ready_count() == 0


def test_it_never_jumps_priority_pause_budget_or_blocklist() -> None:
    policy = SchedulingPolicy()
    policy.push(task(1, "j1", priority=50))
    policy.push(task(2, "j2", priority=90))
    assert policy.pick_from_job("j1", FREE) is None  # a higher priority is waiting
    assert policy.pick(FREE).task_id == 2  # type: ignore[union-attr]
    assert policy.pick_from_job("j1", FREE) is not None
    policy.push(task(3, "j3"))
    policy.pause_job("j3")
    assert policy.pick_from_job("j3", FREE) is None
    policy.resume_job("j3")
    policy.blocklist("j3", "bad")
    assert policy.pick_from_job("j3", FREE, node="bad") is None
    assert policy.pick_from_job("j3", Resources(cpus=0.5)) is None  # does not fit
    policy.set_project("p", budget_core_seconds=1.0, used_core_seconds=2.0)
    assert policy.pick_from_job("j3", FREE) is None
    assert policy.pick_from_job("nope", FREE) is None
