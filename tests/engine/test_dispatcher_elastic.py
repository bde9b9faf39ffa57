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


class _Handle:
    """A stand-in worker handle: trimming only kills, it never calls."""

    def __init__(self) -> None:
        self.killed = False

    def kill(self) -> None:
        self.killed = True


def test_trim_lets_go_of_slots_beyond_what_the_queue_wants() -> None:
    from concurrent.futures import Future

    from wanhe.engine.pool import Slot, WorkerPool

    pool = WorkerPool(threads=1, workers=None, tools={}, local_workers=[], ray_start=None,
                      use_ray=True)
    pool.elastic = True

    def slot(name: str, idle_since: float, *, gpus: float = 0.0, light: bool = False) -> Slot:
        return Slot(name=name, worker=_Handle(), cpus=0.0 if gpus or light else 1.0,  # type: ignore[arg-type]
                    gpus=gpus, light=light, idle_since=idle_since)

    old, new, busy, light, gpu = (slot("old", 0.0), slot("new", 99.0), slot("busy", 0.0),
                                  slot("img", 0.0, light=True), slot("gpu", 0.0, gpus=1.0))
    busy.busy = object()  # type: ignore[assignment]
    starting = slot("starting", 0.0)
    pool.slots = [old, new, busy, light, gpu]
    pool.pending = {Future(): starting}
    assert pool.trim(5.0, now=100.0) == 0  # no want yet: the pool is not elastic-sized
    pool.want = (1, 0)
    gone = pool.trim(5.0, now=100.0)
    # the one still starting goes first, then the idle one idle longest; the busy one stays,
    # the one idle only 1 s stays for now, the light slot always stays
    assert gone == 3 and starting.worker.killed and old.worker.killed and gpu.worker.killed
    assert pool.slots == [new, busy, light] and not pool.pending
    assert pool.trim(5.0, now=200.0) == 1 and pool.slots == [busy, light]
