"""Tests of the pure scheduling policy: rules, fairness, budgets, blocklists, lifecycle."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from wanhe.model import Resources
from wanhe.sched import QueuedTask, SchedulingPolicy

BIG = Resources(cpus=1_000_000, memory=1 << 50, gpus=1000)


def task(
    tid: int,
    job: str = "j",
    project: str = "p",
    priority: int = 50,
    job_seq: int = 0,
    task_seq: int | None = None,
    resources: Resources = Resources(),
) -> QueuedTask:
    return QueuedTask(
        tid, job, project, priority, job_seq, tid if task_seq is None else task_seq, resources
    )


def drain(policy: SchedulingPolicy, free: Resources = BIG, node: str | None = None) -> list[int]:
    out = []
    while (t := policy.pick(free, node)) is not None:
        out.append(t.task_id)
    return out


# ---------------------------------------------------------------------------- ordering


@given(
    st.lists(
        st.tuples(st.integers(0, 100), st.integers(0, 5), st.integers(0, 20)),
        min_size=1,
        max_size=80,
    )
)
def test_priority_then_submission_order(specs: list[tuple[int, int, int]]) -> None:
    policy = SchedulingPolicy()
    tasks = []
    for i, (_prio, job, seq) in enumerate(specs):
        # a job's priority is the priority of its first pushed task
        prio_of_job = next(p for p, j, _ in specs if j == job)
        t = task(i, job=f"j{job}", priority=prio_of_job, job_seq=job, task_seq=seq)
        tasks.append(t)
        policy.push(t)
    picked = [policy.pick(BIG) for _ in tasks]
    assert policy.pick(BIG) is None
    keys = [(-t.priority, t.job_seq, t.task_seq) for t in picked if t is not None]
    assert len(keys) == len(tasks)
    assert keys == sorted(keys)
    assert sorted(t.task_id for t in picked if t is not None) == list(range(len(tasks)))


def test_set_job_priority_reorders_queued_tasks() -> None:
    policy = SchedulingPolicy()
    for i in range(3):
        policy.push(task(i, job="low", priority=10, job_seq=0))
    for i in range(3, 6):
        policy.push(task(i, job="high", priority=90, job_seq=1))
    policy.set_job_priority("low", 95)
    got = [policy.pick(BIG) for _ in range(6)]
    assert [t.task_id for t in got if t] == [0, 1, 2, 3, 4, 5]
    assert all(t.priority == 95 for t in got[:3] if t)
    with pytest.raises(ValueError, match=r"outside 0\.\.100"):
        policy.set_job_priority("low", 101)


def test_priority_out_of_range_is_rejected() -> None:
    with pytest.raises(ValueError, match="priority -1"):
        SchedulingPolicy().push(task(1, priority=-1))


def test_same_task_cannot_be_queued_or_running_twice() -> None:
    policy = SchedulingPolicy()
    policy.push(task(1))
    with pytest.raises(ValueError, match="already queued"):
        policy.push(task(1))
    t = policy.pick(BIG)
    assert t is not None
    with pytest.raises(ValueError, match="running"):
        policy.push(task(1))
    policy.finished(t, 10.0)
    with pytest.raises(ValueError, match="not running"):
        policy.finished(t, 10.0)
    policy.push(t)  # a retry after finished() is fine
    assert policy.pick(BIG) == t


# ---------------------------------------------------------------------------- fair share


def run_fair(
    policy: SchedulingPolicy, slots: int, rounds: int, rng: random.Random
) -> list[QueuedTask]:
    """Keep `slots` one-core slots busy; finish a random running task each round."""
    running = []
    for _ in range(slots):
        t = policy.pick(Resources(1))
        assert t is not None
        running.append(t)
    for _ in range(rounds):
        done = running.pop(rng.randrange(len(running)))
        policy.finished(done, 1.0)
        t = policy.pick(Resources(1))
        if t is not None:
            running.append(t)
    return running


@given(
    weights=st.lists(st.integers(1, 5), min_size=2, max_size=4),
    slots=st.integers(1, 60),
    seed=st.integers(0, 2**32),
)
@settings(max_examples=60, deadline=None)
def test_fair_share_converges_to_weights(weights: list[int], slots: int, seed: int) -> None:
    policy = SchedulingPolicy()
    names = [f"p{i}" for i in range(len(weights))]
    tid = 0
    for name, w in zip(names, weights, strict=True):
        policy.set_project(name, weight=w)
        for k in range(slots * 4 + 50):
            policy.push(task(tid, job=name, project=name, job_seq=k % 3, task_seq=k))
            tid += 1
    run_fair(policy, slots, rounds=slots * 2, rng=random.Random(seed))
    total = sum(weights)
    for name, w in zip(names, weights, strict=True):
        ideal = slots * w / total
        # within one task of the weighted share
        assert abs(policy.running_cores(name) - ideal) <= 1.0 + 1e-9, (name, ideal)


def test_idle_projects_share_goes_to_others() -> None:
    policy = SchedulingPolicy()
    policy.set_project("a", weight=2)
    policy.set_project("b", weight=1)
    policy.set_project("idle", weight=5)
    for i in range(400):
        policy.push(task(i, job="ja", project="a"))
        policy.push(task(1000 + i, job="jb", project="b"))
    rng = random.Random(1)
    running = run_fair(policy, 30, rounds=60, rng=rng)
    assert policy.running_cores("a") == 20
    assert policy.running_cores("b") == 10
    assert policy.running_cores("idle") == 0
    # the idle project gets work: it converges to its share as slots free up
    for i in range(200):
        policy.push(task(5000 + i, job="ji", project="idle"))
    for _ in range(60):
        policy.finished(running.pop(rng.randrange(len(running))), 1.0)
        t = policy.pick(Resources(1))
        assert t is not None
        running.append(t)
    assert policy.running_cores("idle") == pytest.approx(30 * 5 / 8, abs=1)
    assert policy.running_cores("a") == pytest.approx(30 * 2 / 8, abs=1)


def test_fair_share_ties_break_on_usage_then_name() -> None:
    policy = SchedulingPolicy()
    policy.set_project("a", used_core_seconds=100)
    policy.set_project("b", used_core_seconds=10)
    policy.push(task(1, job="ja", project="a"))
    policy.push(task(2, job="jb", project="b"))
    policy.push(task(3, job="jc", project="c"))
    assert [t.project for t in (policy.pick(BIG), policy.pick(BIG), policy.pick(BIG)) if t] == [
        "c",
        "b",
        "a",
    ]


def test_priority_beats_fair_share() -> None:
    policy = SchedulingPolicy()
    policy.set_project("a", weight=100)
    policy.push(task(1, job="ja", project="a", priority=10))
    policy.push(task(2, job="jb", project="b", priority=20))
    policy.push(task(3, job="jb", project="b", priority=20))
    assert drain(policy) == [2, 3, 1]


# ---------------------------------------------------------------------------- budgets


def test_budget_blocks_new_picks_and_says_why() -> None:
    policy = SchedulingPolicy()
    policy.set_project("small", budget_core_seconds=3600 * 120)
    policy.push(task(1, job="s", project="small"))
    policy.push(task(2, job="s", project="small"))
    policy.push(task(3, job="o", project="zother", job_seq=1))
    assert policy.blocked_reason("small") is None
    first = policy.pick(BIG)
    assert first is not None and first.project == "small"
    policy.finished(first, core_seconds=3600 * 120.4)
    reason = policy.blocked_reason("small")
    assert reason is not None
    assert "120.0 core-hours" in reason and "120.4" in reason and "wanhe project budget" in reason
    assert drain(policy) == [3]
    assert policy.ready_count() == 1  # still queued, just not given out
    policy.set_project("small", budget_core_seconds=3600 * 200)
    assert policy.blocked_reason("small") is None
    assert drain(policy) == [2]


def test_running_tasks_of_a_blocked_project_finish_and_are_metered() -> None:
    policy = SchedulingPolicy()
    policy.set_project("p", budget_core_seconds=100)
    for i in range(3):
        policy.push(task(i))
    a, b = policy.pick(BIG), policy.pick(BIG)
    assert a is not None and b is not None
    policy.add_usage("p", 150)
    assert policy.pick(BIG) is None
    policy.finished(a, 10)
    policy.finished(b, 10)
    assert policy.used_core_seconds("p") == 170
    assert policy.running_cores("p") == 0


# ---------------------------------------------------------------------------- blocklists


@given(st.lists(st.sampled_from(["n1", "n2", "n3"]), min_size=1, max_size=40))
def test_blocklisted_node_never_gets_the_job(nodes: list[str]) -> None:
    policy = SchedulingPolicy()
    for i in range(20):
        policy.push(task(i, job="bad", job_seq=0))
        policy.push(task(100 + i, job="good", job_seq=1))
    policy.blocklist("bad", "n1")
    for node in nodes:
        t = policy.pick(BIG, node)
        if t is None:
            continue
        if node == "n1":
            assert t.job_id != "bad"
        policy.finished(t, 1.0)


def test_blocklisted_job_waits_for_other_nodes() -> None:
    policy = SchedulingPolicy()
    policy.push(task(1, job="bad"))
    policy.blocklist("bad", "n1")
    assert policy.pick(BIG, "n1") is None
    assert policy.blocked_nodes("bad") == {"n1"}
    t = policy.pick(BIG, "n2")
    assert t is not None and t.task_id == 1
    with pytest.raises(KeyError):
        policy.blocklist("nope", "n1")


# ---------------------------------------------------------------------------- pause / cancel


def test_pause_resume_remove() -> None:
    policy = SchedulingPolicy()
    for i in range(4):
        policy.push(task(i, job="a", job_seq=0))
    for i in range(4, 6):
        policy.push(task(i, job="b", job_seq=1))
    policy.pause_job("a")
    assert policy.is_paused("a")
    assert policy.ready_count() == 2 and policy.ready_count(include_paused=True) == 6
    first = policy.pick(BIG)
    assert first is not None and first.task_id == 4
    policy.push(task(6, job="a", job_seq=0))  # pushed while paused: hidden too
    policy.resume_job("a")
    assert drain(policy) == [0, 1, 2, 3, 6, 5]
    for i in range(10, 13):
        policy.push(task(i, job="c", job_seq=2))
    assert policy.remove_job("c") == 3
    assert policy.pick(BIG) is None and policy.ready_count(include_paused=True) == 0


def test_pause_before_first_push() -> None:
    policy = SchedulingPolicy()
    policy.pause_job("later")
    policy.push(task(1, job="later"))
    assert policy.pick(BIG) is None
    policy.resume_job("later")
    assert drain(policy) == [1]


def test_discard() -> None:
    policy = SchedulingPolicy()
    for i in range(5):
        policy.push(task(i))
    assert policy.discard(0) and policy.discard(3)
    assert not policy.discard(3) and not policy.discard(99)
    assert drain(policy) == [1, 2, 4]


# ---------------------------------------------------------------------------- resources


def test_tasks_that_do_not_fit_are_skipped_not_blocking() -> None:
    policy = SchedulingPolicy()
    gpu = Resources(cpus=4, gpus=1)
    big = Resources(cpus=64)
    small = Resources(cpus=2)
    policy.push(task(1, job="a", job_seq=0, resources=big))
    policy.push(task(2, job="a", job_seq=0, resources=gpu))
    policy.push(task(3, job="a", job_seq=0, resources=small))
    policy.push(task(4, job="b", project="q", job_seq=1, resources=small))
    got = policy.pick(Resources(cpus=16))
    assert got is not None and got.task_id == 3  # skips the 64-core and the GPU task
    got = policy.pick(Resources(cpus=8))
    assert got is not None and got.task_id == 4  # project q: nothing running yet (fair share)
    assert policy.pick(Resources(cpus=8)) is None  # p's heads need 64 cores or a GPU
    got = policy.pick(Resources(cpus=16, gpus=1))
    assert got is not None and got.task_id == 2
    got = policy.pick(Resources(cpus=64))
    assert got is not None and got.task_id == 1
    assert policy.running_cores("p") == 70


def test_memory_is_a_resource() -> None:
    policy = SchedulingPolicy()
    policy.push(task(1, resources=Resources(cpus=1, memory=8 << 30)))
    assert policy.pick(Resources(cpus=16, memory=4 << 30)) is None
    assert policy.pick(Resources(cpus=16, memory=8 << 30)) is not None


def test_starving_task_reserves_a_node_when_capacity_is_known() -> None:
    policy = SchedulingPolicy(starvation_limit=3)
    node_cap = Resources(cpus=16)
    policy.push(task(1, job="a", job_seq=0, resources=Resources(cpus=16)))
    for i in range(2, 40):
        policy.push(task(i, job="a", job_seq=0, resources=Resources(cpus=1)))
    # a node that always has only part of its cores free: small tasks would take it forever
    got = [policy.pick(Resources(cpus=4), "n1", capacity=node_cap) for _ in range(3)]
    assert all(t is not None and t.resources.cpus == 1 for t in got[:2])
    # the third skip made the 16-core task starving: n1 is now held for it
    assert got[2] is None
    assert policy.pick(Resources(cpus=8), "n1", capacity=node_cap) is None
    t = policy.pick(Resources(cpus=4), "n2", capacity=node_cap)  # other nodes still backfill
    assert t is not None and t.resources.cpus == 1
    t = policy.pick(Resources(cpus=16), "n1", capacity=node_cap)
    assert t is not None and t.task_id == 1
    assert policy.stats().reservations == 1
    t = policy.pick(Resources(cpus=4), "n1", capacity=node_cap)
    assert t is not None and t.resources.cpus == 1  # reservation released


def test_reservation_is_void_when_the_task_goes_away() -> None:
    policy = SchedulingPolicy(starvation_limit=1)
    policy.push(task(1, job="a", resources=Resources(cpus=16)))
    policy.push(task(2, job="b", job_seq=1, resources=Resources(cpus=1)))
    assert policy.pick(Resources(cpus=2), "n1", capacity=Resources(16)) is None  # reserved
    policy.pause_job("a")
    t = policy.pick(Resources(cpus=2), "n1", capacity=Resources(16))
    assert t is not None and t.task_id == 2


def test_without_capacity_a_too_big_task_never_blocks() -> None:
    policy = SchedulingPolicy(starvation_limit=1)
    policy.push(task(1, resources=Resources(cpus=1000)))
    for i in range(2, 10):
        policy.push(task(i, resources=Resources(cpus=1)))
    assert len(drain(policy, Resources(cpus=16), "n1")) == 8


def test_max_scan_bounds_the_work_of_a_decision() -> None:
    policy = SchedulingPolicy(max_scan=5)
    for i in range(20):  # 20 jobs whose tasks need a GPU
        policy.push(task(i, job=f"g{i}", job_seq=i, resources=Resources(cpus=1, gpus=1)))
    policy.push(task(100, job="cpu", job_seq=100))
    policy.push(task(101, job="cpu2", project="zz", job_seq=101))
    t = policy.pick(Resources(cpus=4))
    assert t is not None and t.task_id == 101  # gave up on project p after 5 lanes
    assert policy.stats().skipped_no_fit == 5


def test_invalid_project_settings() -> None:
    policy = SchedulingPolicy()
    with pytest.raises(ValueError, match="weight"):
        policy.set_project("p", weight=0)
    with pytest.raises(ValueError, match="budget"):
        policy.set_project("p", budget_core_seconds=-1)


# ---------------------------------------------------------------------------- model check


@dataclass
class _Ref:
    """A brute-force reference of the rules (no max_scan limit, no reservations)."""

    queued: dict[int, QueuedTask] = field(default_factory=dict)
    running: dict[int, QueuedTask] = field(default_factory=dict)
    prio: dict[str, int] = field(default_factory=dict)
    paused: set[str] = field(default_factory=set)
    blocked: set[tuple[str, str]] = field(default_factory=set)
    weight: dict[str, float] = field(default_factory=dict)
    budget: dict[str, float] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)

    def expected(self, free: Resources, node: str) -> set[int]:
        """Task ids the rules allow as the next pick (ties of equal keys are all allowed)."""
        ok = [
            t
            for t in self.queued.values()
            if t.job_id not in self.paused
            and self.used.get(t.project, 0.0) < self.budget.get(t.project, float("inf"))
        ]
        prios = sorted({self.prio[t.job_id] for t in ok}, reverse=True)
        for p in prios:
            at = [t for t in ok if self.prio[t.job_id] == p]
            names = sorted({t.project for t in at})
            first = {
                n: min((t for t in at if t.project == n), key=lambda t: (t.job_seq, t.task_seq))
                for n in names
            }
            total_r = 0.0
            total_w = 0.0
            for n in names:
                total_r += self.cores(n)
                total_w += self.weight.get(n, 1.0)

            keyed = []
            for n in names:
                w = self.weight.get(n, 1.0)
                c = first[n].resources.cpus
                deficit = self.cores(n) - (total_r + c) * w / total_w
                keyed.append((deficit, self.used.get(n, 0.0) / w, n))
            projects = [k[2] for k in sorted(keyed)]
            for proj in projects:
                cands = [
                    t
                    for t in at
                    if t.project == proj
                    and t.resources.fits_in(free)
                    and (t.job_id, node) not in self.blocked
                ]
                if cands:
                    best = min((t.job_seq, t.task_seq) for t in cands)
                    return {t.task_id for t in cands if (t.job_seq, t.task_seq) == best}
        return set()

    def cores(self, project: str) -> float:
        return sum(t.resources.cpus for t in self.running.values() if t.project == project)


JOBS = [("j0", "a", 0), ("j1", "a", 1), ("j2", "b", 2), ("j3", "c", 3), ("j4", "b", 4)]
SHAPES = [Resources(1), Resources(4), Resources(2, gpus=1), Resources(8, memory=100)]


class PolicyMachine(RuleBasedStateMachine):
    @initialize(
        weights=st.lists(st.integers(1, 4), min_size=3, max_size=3),
        budget=st.one_of(st.none(), st.integers(0, 30)),
    )
    def setup(self, weights: list[int], budget: int | None) -> None:
        self.policy = SchedulingPolicy(max_scan=10_000)
        self.ref = _Ref()
        for name, w in zip("abc", weights, strict=True):
            self.policy.set_project(name, weight=w)
            self.ref.weight[name] = w
        if budget is not None:
            self.policy.set_project("c", weight=weights[2], budget_core_seconds=budget)
            self.ref.budget["c"] = budget
        self.next_id = 0
        self.returned: set[int] = set()

    @rule(job=st.sampled_from(JOBS), seq=st.integers(0, 6), shape=st.sampled_from(SHAPES))
    def push(self, job: tuple[str, str, int], seq: int, shape: Resources) -> None:
        job_id, project, job_seq = job
        prio = self.ref.prio.setdefault(job_id, 50)
        # task_seq is unique inside a job (as in real jobs), ordering still random
        t = QueuedTask(
            self.next_id, job_id, project, prio, job_seq, seq * 1000 + self.next_id, shape
        )
        self.next_id += 1
        self.policy.push(t)
        self.ref.queued[t.task_id] = t

    @rule(data=st.data())
    @precondition(lambda self: self.ref.queued)
    def discard(self, data: st.DataObject) -> None:
        tid = data.draw(st.sampled_from(sorted(self.ref.queued)))
        assert self.policy.discard(tid)
        del self.ref.queued[tid]

    @rule(
        cpus=st.sampled_from([1, 2, 4, 8, 16]),
        gpus=st.sampled_from([0, 1]),
        memory=st.sampled_from([0, 100]),
        node=st.sampled_from(["n1", "n2"]),
    )
    def pick(self, cpus: int, gpus: int, memory: int, node: str) -> None:
        free = Resources(cpus, memory, gpus)
        allowed = self.ref.expected(free, node)
        t = self.policy.pick(free, node)
        if t is None:
            assert not allowed
            return
        assert t.task_id in allowed, (t, allowed)
        assert t.task_id not in self.returned
        self.returned.add(t.task_id)
        del self.ref.queued[t.task_id]
        self.ref.running[t.task_id] = t

    @rule(data=st.data(), cs=st.integers(0, 10))
    @precondition(lambda self: self.ref.running)
    def finish(self, data: st.DataObject, cs: int) -> None:
        tid = data.draw(st.sampled_from(sorted(self.ref.running)))
        t = self.ref.running.pop(tid)
        self.policy.finished(t, cs)
        self.ref.used[t.project] = self.ref.used.get(t.project, 0.0) + cs

    @rule(data=st.data())
    @precondition(lambda self: self.ref.running)
    def retry(self, data: st.DataObject) -> None:
        tid = data.draw(st.sampled_from(sorted(self.ref.running)))
        t = self.ref.running.pop(tid)
        self.policy.finished(t, 1)
        self.ref.used[t.project] = self.ref.used.get(t.project, 0.0) + 1
        self.policy.push(t)
        self.ref.queued[tid] = t
        self.ref.prio.setdefault(t.job_id, t.priority)  # a retry of a removed job revives it
        self.returned.discard(tid)

    @rule(job=st.sampled_from(JOBS), prio=st.integers(0, 100))
    def reprioritise(self, job: tuple[str, str, int], prio: int) -> None:
        if job[0] in self.ref.prio:
            self.policy.set_job_priority(job[0], prio)
            self.ref.prio[job[0]] = prio

    @rule(job=st.sampled_from(JOBS))
    def pause(self, job: tuple[str, str, int]) -> None:
        self.policy.pause_job(job[0])
        self.ref.paused.add(job[0])

    @rule(job=st.sampled_from(JOBS))
    def resume(self, job: tuple[str, str, int]) -> None:
        self.policy.resume_job(job[0])
        self.ref.paused.discard(job[0])

    @rule(job=st.sampled_from(JOBS))
    def remove(self, job: tuple[str, str, int]) -> None:
        n = self.policy.remove_job(job[0])
        gone = [tid for tid, t in self.ref.queued.items() if t.job_id == job[0]]
        assert n == len(gone)
        for tid in gone:
            del self.ref.queued[tid]
        self.ref.paused.discard(job[0])
        self.ref.prio.pop(job[0], None)
        self.ref.blocked = {(j, n) for j, n in self.ref.blocked if j != job[0]}

    @rule(job=st.sampled_from(JOBS), node=st.sampled_from(["n1", "n2"]))
    def blocklist(self, job: tuple[str, str, int], node: str) -> None:
        if job[0] in self.ref.prio:  # known to the policy: pushed and not removed
            self.policy.blocklist(job[0], node)
            self.ref.blocked.add((job[0], node))

    @invariant()
    def counts_agree(self) -> None:
        if not hasattr(self, "policy"):
            return
        visible = [t for t in self.ref.queued.values() if t.job_id not in self.ref.paused]
        assert self.policy.ready_count() == len(visible)
        assert self.policy.ready_count(include_paused=True) == len(self.ref.queued)
        assert self.policy.running_count() == len(self.ref.running)
        for name in "abc":
            assert self.policy.running_cores(name) == pytest.approx(self.ref.cores(name))


PolicyMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
test_policy_matches_reference = PolicyMachine.TestCase
