"""The autoscaler request policy: bundles for what runs and waits, within caps and budgets."""

from __future__ import annotations

from wanhe.model import Resources
from wanhe.sched.elastic import Caps, Demand, bundle_of, plan_bundles, requested

TILE = Resources(cpus=2)
GPU = Resources(cpus=1, gpus=1)
LIGHT = Resources(cpus=0)


def test_bundles_follow_the_queue_and_running_work() -> None:
    got = plan_bundles([Demand("a", {TILE: 3, LIGHT: 5, GPU: 2}, {TILE: 1})])
    assert got.count({"CPU": 2.0}) == 4  # 1 running + 3 queued; light work needs no node
    assert got.count({"GPU": 1.0}) == 2  # a GPU slot reserves its GPU, not the feeding core
    assert requested(got) == Resources(cpus=8, memory=0, gpus=2)


def test_an_empty_queue_asks_for_nothing() -> None:
    assert plan_bundles([]) == []
    assert plan_bundles([Demand("a", {LIGHT: 4})]) == []  # the head's light slot does it


def test_caps_bound_the_request_running_first() -> None:
    got = plan_bundles([Demand("a", {TILE: 10}, {TILE: 2}), Demand("b", {GPU: 9})],
                       Caps(max_cores=7, max_gpus=2))
    assert requested(got) == Resources(cpus=6, gpus=2)  # 3 bundles of 2 fit in 7 cores


def test_budgets_stop_growth() -> None:
    used_up = Demand("a", {TILE: 10}, {TILE: 1}, budget_left_core_s=0.0)
    assert plan_bundles([used_up]) == [{"CPU": 2.0}]  # its running task keeps its node
    # 240 core-seconds left pays for 4 cores for a 60 s rental: 2 tiles of 2 cores, and one
    # of them runs already
    small = Demand("b", {TILE: 10}, {TILE: 1}, budget_left_core_s=240.0)
    assert requested(plan_bundles([small], Caps(min_rental_s=60))).cpus == 4
    # by default a core is rented for ten minutes: 240 core-seconds pay for none
    assert requested(plan_bundles([small])).cpus == 2  # only what runs
    no_gpu = Demand("c", {GPU: 3, TILE: 1}, budget_left_gpu_s=0.0)
    assert plan_bundles([no_gpu]) == []


def test_priority_order_is_the_callers_and_memory_is_asked_for() -> None:
    big = Resources(cpus=1, memory=1 << 30)
    got = plan_bundles([Demand("hi", {big: 2}), Demand("lo", {TILE: 5})], Caps(max_cores=4))
    assert got[:2] == [{"CPU": 1.0, "memory": float(1 << 30)}] * 2
    assert requested(got).cpus == 4
    assert bundle_of(LIGHT) is None
    assert plan_bundles([Demand("a", {TILE: 10_000})], Caps(max_bundles=50)).__len__() == 50
