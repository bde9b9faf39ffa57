"""The dispatcher's autoscaler requests in elastic mode, against a real store.

Ray's autoscaler SDK is replaced by a recorder (a stand-in: these fast tests start no Ray;
tests/engine/test_elastic.py runs the real autoscaler). The pool has no Ray either, so it
never grows: only what the dispatcher asks for is checked here.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.engine.test_dispatcher_failures import KIND  # registers the commands job type
from wanhe.engine.dispatcher import Dispatcher
from wanhe.model import Resources, TaskKind, TaskSpec
from wanhe.sched.elastic import Bundle, Caps
from wanhe.store.store import Store


def _job(store: Store, project: str, n: int, res: Resources, budget: float | None = None,
         priority: int = 50) -> int:
    row = store.create_project(project, budget_core_hours=budget)
    tasks = [TaskSpec(f"t{i}", TaskKind.NOOP, {}, resources=res) for i in range(n)]
    return store.create_job(project_id=row.id, name="j", kind=KIND, priority=priority,
                            spec={"max_attempts": 1, "blocklist": 3},
                            fingerprint=f"e-{time.monotonic()}", tasks=tasks)


def _dispatcher(
    store: Store, tmp_path: Path, caps: Caps, asked: list[list[Bundle]]
) -> Dispatcher:
    return Dispatcher(store, threads=1, log_root=tmp_path / "logs", use_ray=False,
                      elastic=True, caps=caps, request_resources=asked.append)


def test_the_queue_is_asked_for_capped_by_project_budgets_and_withdrawn(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'w.db'}")
    asked: list[list[Bundle]] = []
    d = _dispatcher(store, tmp_path, Caps(max_cores=5, max_gpus=1), asked)
    try:
        d.sync(full=True)
        # nothing queued: the first sync says so, withdrawing what a service before this one
        # may have left standing
        assert asked == [[]]
        hi = _job(store, "hi", 3, Resources(cpus=1), priority=90)
        _job(store, "gpu", 2, Resources(cpus=1, gpus=1))
        _job(store, "broke", 4, Resources(cpus=1), budget=0.0)
        d.sync(full=True)
        assert asked[-1].count({"CPU": 1.0}) == 3 and asked[-1].count({"GPU": 1.0}) == 1
        assert d.pool.want == (3, 1)
        d.sync(full=True)
        assert len(asked) == 2  # unchanged: not sent again
        store.cancel_job(hi)
        d.sync(full=True)
        assert asked[-1] == [{"GPU": 1.0}]
    finally:
        d.close()
        store.dispose()


def test_an_emptied_queue_withdraws_the_request_on_close(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'w.db'}")
    asked: list[list[Bundle]] = []
    d = _dispatcher(store, tmp_path, Caps(), asked)
    _job(store, "p", 2, Resources(cpus=2))
    d.sync(full=True)
    assert asked == [[{"CPU": 2.0}] * 2]  # the first sync already saw the job
    d.close()
    assert asked[-1] == []
    store.dispose()


def test_an_attempt_on_a_gpu_slot_is_metered_in_gpu_seconds(tmp_path: Path) -> None:
    from wanhe.engine.dispatcher import metered_cores, metered_gpus
    from wanhe.engine.pool import Slot

    store = Store(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        job = _job(store, "p", 1, Resources(cpus=2))  # an `any` render task's shape
        light = _job(store, "q", 1, Resources(cpus=0))
        (task,) = store.tasks(job)
        (image,) = store.tasks(light)
        gpu = Slot(name="gpu1", worker=None, cpus=0.0, gpus=1.0)  # type: ignore[arg-type]
        cpu = Slot(name="w1", worker=None, cpus=2.0)  # type: ignore[arg-type]
        assert (metered_cores(gpu, task), metered_gpus(gpu, task)) == (2.0, 1.0)
        assert (metered_cores(cpu, task), metered_gpus(cpu, task)) == (2.0, 0.0)
        assert metered_gpus(gpu, image) == 0.0
    finally:
        store.dispose()
