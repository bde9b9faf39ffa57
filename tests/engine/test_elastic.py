"""Elastic mode on Ray's own autoscaler: the queue grows the cluster and lets it shrink.

A real Ray cluster with its real autoscaler deciding, on simulated nodes of this machine
(Ray's fake multi-node provider: every node it launches is a real raylet here, of 1 core; see
`tests/engine/_autoscaling.py`). The head has no cores, so every render slot lives on a node
the autoscaler added because the dispatcher asked for it (`request_resources`). Tasks are
no-op sleeps (the point is placement, not rendering). CPU-heavy for a 2-core machine: one
cluster for the module, at most 2-3 one-core nodes, every wait bounded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from pydantic import BaseModel

from tests.engine._autoscaling import RAY_ENV, AutoscalingCluster, alive_worker_nodes
from wanhe.engine.dispatcher import Dispatcher
from wanhe.jobtypes.base import CompiledJob, Inspected, JobFolder, JobType
from wanhe.jobtypes.registry import register_job_type
from wanhe.model import JobState, Resources, TaskKind, TaskSpec
from wanhe.sched.elastic import Caps
from wanhe.store.store import Store

# `isolated`: its own pytest process (make test runs it after the rest) — the fake multi-node
# cluster and the session's embedded Ray of the other engine tests do not share a process well
pytestmark = [pytest.mark.slow, pytest.mark.isolated, pytest.mark.timeout(600)]

KIND = "test_elastic"


class _NoOptions(BaseModel):
    pass


@register_job_type
class SleepJob(JobType):
    kind = KIND
    title = "test sleeps"
    options_model = _NoOptions
    main_file = "none"

    def compile(self, options: BaseModel, inspected: Inspected, main: Path | None,
                folder: JobFolder) -> CompiledJob:
        raise NotImplementedError("stored directly by these tests")


def wait_for(what: Callable[[], Any], timeout: float, message: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


@pytest.fixture(scope="module")
def autoscaling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AutoscalingCluster]:
    saved = {k: os.environ.get(k) for k in RAY_ENV}
    os.environ.update(RAY_ENV)
    cluster = AutoscalingCluster(max_nodes=3, idle_timeout_s=4.0,
                                 log=tmp_path_factory.mktemp("ray") / "head.log")
    from wanhe.engine import cluster as wanhe_cluster

    try:
        cluster.start()
        wanhe_cluster.connect(cluster.address)
        yield cluster
    finally:
        wanhe_cluster.shutdown()
        cluster.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Farm:
    """A dispatcher in elastic mode serving a fresh database, on a thread of its own."""

    def __init__(self, tmp_path: Path, caps: Caps) -> None:
        self.store = Store(f"sqlite:///{tmp_path / 'wanhe.db'}")
        self.dispatcher = Dispatcher(self.store, threads=1, log_root=tmp_path / "logs",
                                     elastic=True, caps=caps, elastic_idle_s=1.0)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.dispatcher.serve, args=(self.stop,),
                                       daemon=True)
        self.thread.start()

    def submit(self, tasks: int, sleep_s: float, *, budget_core_hours: float | None = None,
               project: str = "p") -> int:
        row = self.store.create_project(project, budget_core_hours=budget_core_hours)
        specs = [TaskSpec(f"s{i}", TaskKind.NOOP, {"sleep_s": sleep_s},
                          resources=Resources(cpus=1)) for i in range(tasks)]
        job = self.store.create_job(project_id=row.id, name="sleeps", kind=KIND, spec={},
                                    fingerprint=f"s-{time.monotonic()}", tasks=specs)
        self.dispatcher.poke()
        return job

    def done(self, job: int) -> bool:
        row = self.store.job(job)
        return row is not None and row.state.is_final

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.dispatcher.close()
        self.store.dispose()


@pytest.fixture
def farm_factory(
    autoscaling: AutoscalingCluster, tmp_path: Path
) -> Iterator[Callable[[Caps], Farm]]:
    farms: list[Farm] = []

    def make(caps: Caps) -> Farm:
        farm = Farm(tmp_path / f"farm{len(farms)}", caps)
        farms.append(farm)
        return farm

    yield make
    for farm in farms:
        farm.close()
    # every test leaves the cluster as it found it: no worker nodes
    wait_for(lambda: not alive_worker_nodes(), 90, "the cluster to shrink back to its head")


def overlap(attempts: list[dict[str, Any]]) -> int:
    """The most attempts that ran at the same moment."""
    edges = sorted([(a["started_at"], 1) for a in attempts]
                   + [(a["ended_at"], -1) for a in attempts])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def test_the_queue_grows_the_cluster_a_lost_node_reruns_elsewhere_and_it_shrinks_back(
    autoscaling: AutoscalingCluster, farm_factory: Callable[[Caps], Farm],
) -> None:
    assert alive_worker_nodes() == []  # 0 worker nodes: nothing can run until Ray adds some
    farm = farm_factory(Caps(max_cores=2))
    submitted = time.time()
    job = farm.submit(tasks=4, sleep_s=6.0)  # long enough to be caught running
    peak = 0

    def running_on_a_node() -> tuple[str, Any] | None:
        nonlocal peak
        peak = max(peak, len(alive_worker_nodes()))
        for a in farm.store.attempts(job):
            if a["outcome"] is None:
                for node_id, raylet in autoscaling.raylets().items():
                    if a["node"].endswith(node_id[-8:]):
                        return a["node"], raylet
        return None

    node, raylet = wait_for(running_on_a_node, 240, "a task running on an added node")
    first = min(a["started_at"] for a in farm.store.attempts(job)) - submitted
    print(f"submit -> first task on an autoscaler-added node: {first:.1f} s")
    # the node leaves, as a preempted VM does: its raylet and every process it started (the
    # worker running the task among them) die at once
    for proc in [*raylet.children(recursive=True), raylet]:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGKILL)
    wait_for(lambda: farm.done(job), 240, "the job to finish without the node")
    row = farm.store.job(job)
    assert row is not None and row.state is JobState.DONE, row
    # the queue drained: within a sync, nothing is asked for any more
    wait_for(lambda: farm.dispatcher.requested == [], 10, "the request to be withdrawn")
    attempts = farm.store.attempts(job)
    lost = [a for a in attempts if a["outcome"] == "lost"]
    assert lost and all(a["node"] == node for a in lost)
    for a in lost:  # each lost task ran again, on another node, and finished: not a failure
        again = [b for b in attempts if b["task_id"] == a["task_id"] and b["outcome"] == "ok"]
        assert len(again) == 1 and again[0]["node"] != node
    assert sum(a["outcome"] == "ok" for a in attempts) == 4
    assert overlap(attempts) <= 2  # max_cores=2: never more than two 1-core tasks at once
    assert 1 <= peak <= 2
    # the idle slots are let go, so the nodes hold nothing and the autoscaler removes them
    wait_for(lambda: not alive_worker_nodes(), 90, "the autoscaler to remove the idle nodes")


def test_a_used_up_budget_asks_for_nothing(farm_factory: Callable[[Caps], Farm]) -> None:
    farm = farm_factory(Caps())
    job = farm.submit(tasks=2, sleep_s=1.0, budget_core_hours=0.0, project="broke")
    time.sleep(8)  # eight autoscaler updates
    assert alive_worker_nodes() == []
    assert farm.dispatcher.requested in (None, [])
    row = farm.store.job(job)
    assert row is not None and row.state is JobState.QUEUED
    assert "budget" in (row.message or ""), row.message
