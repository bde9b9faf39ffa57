"""Local workers: `wanhe render`'s own worker takes tasks while its embedded Ray is starting.

The dispatcher is handed a `LocalWorker` and a Ray start that has not finished: tasks must run
on the local worker at once, Ray's workers must join once Ray is up, a failed Ray start must
say so, and a local worker that breaks is replaced like a dead Ray actor.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from wanhe.engine.cluster import EmbeddedStart
from wanhe.engine.dispatcher import Dispatcher, RayStartError
from wanhe.engine.handles import LocalWorker
from wanhe.model import JobState, Resources, TaskKind, TaskSpec
from wanhe.store.store import Store


def noop_job(store: Store, n: int, *, light: int = 0) -> int:
    """`n` one-core tasks and `light` tasks that reserve no cores (like assemble, preview)."""
    project = store.ensure_project("local")
    tasks = [TaskSpec(f"n{i:03d}", TaskKind.NOOP, {"sleep_s": 0.05}) for i in range(n)]
    tasks += [
        TaskSpec(f"l{i:03d}", TaskKind.NOOP, {}, resources=Resources(cpus=0))
        for i in range(light)
    ]
    return store.create_job(project_id=project.id, name="noop", kind="noop", spec={},
                            fingerprint=f"noop-{time.monotonic()}", tasks=tasks)


def nodes_of(store: Store, job_id: int) -> set[str]:
    return {str(a["node"]) for a in store.attempts(job_id)}


def test_local_worker_runs_every_task_while_ray_is_still_starting(
    store: Store, tmp_path: Path
) -> None:
    starting = EmbeddedStart()  # never becomes ready: Ray is "still starting" throughout
    dispatcher = Dispatcher(store, threads=1, workers=2, log_root=tmp_path / "logs",
                            local_workers=[LocalWorker("w0")], ray_start=starting)
    job = noop_job(store, 4, light=2)
    try:
        dispatcher.run_jobs([job])
    finally:
        dispatcher.close()
    done = store.job(job)
    assert done is not None and done.state is JobState.DONE
    assert all(node.endswith(":local") for node in nodes_of(store, job))
    assert [s.name for s in dispatcher.slots] == []  # closed
    assert len(store.attempts(job)) == 6


@pytest.mark.usefixtures("ray_local")
def test_ray_workers_join_once_ray_is_up(store: Store, tmp_path: Path) -> None:
    starting = EmbeddedStart()
    dispatcher = Dispatcher(store, threads=1, workers=2, log_root=tmp_path / "logs",
                            local_workers=[LocalWorker("w0")], ray_start=starting)
    try:
        first = noop_job(store, 2)
        dispatcher.run_jobs([first])
        assert len(dispatcher.slots) == 1 and dispatcher.slots[0].local  # Ray not up yet
        starting.ready.set()  # Ray (the session's, already running) is up now
        # Each job takes ≈ 1 s on the local worker alone; a Ray actor may take longer than
        # that to start on a loaded machine, so jobs follow until it has joined (60 s at most).
        deadline = time.monotonic() + 60
        while True:
            second = noop_job(store, 20)
            dispatcher.run_jobs([second])
            if any(not n.endswith(":local") for n in nodes_of(store, second)) \
                    or time.monotonic() > deadline:
                break
        render_slots = [s for s in dispatcher.slots if not s.light]
        assert [s.local for s in render_slots] == [True, False]  # workers=2: one local, one Ray
        assert any(s.light for s in dispatcher.slots)  # the image worker lives on Ray
        second_nodes = nodes_of(store, second)
        assert any(n.endswith(":local") for n in second_nodes)
        assert any(not n.endswith(":local") for n in second_nodes)
    finally:
        dispatcher.close()


def test_failed_ray_start_names_the_cause(store: Store, tmp_path: Path) -> None:
    failed = EmbeddedStart(error=OSError("no space left on device"))
    failed.ready.set()
    dispatcher = Dispatcher(store, threads=1, workers=1, log_root=tmp_path / "logs",
                            local_workers=[LocalWorker("w0")], ray_start=failed)
    try:
        with pytest.raises(RayStartError, match="could not start Ray: no space left on device"):
            dispatcher.run_jobs([noop_job(store, 1)])
    finally:
        dispatcher.close()


def test_a_broken_local_worker_is_replaced_and_its_task_retried(
    store: Store, tmp_path: Path
) -> None:
    broken = LocalWorker("w0")

    def crash(task: object) -> dict[str, object]:
        raise MemoryError("the worker's own process ran out of memory")

    broken.worker.run = crash  # type: ignore[method-assign]
    starting = EmbeddedStart()
    dispatcher = Dispatcher(store, threads=1, workers=1, log_root=tmp_path / "logs",
                            local_workers=[broken], ray_start=starting)
    job = noop_job(store, 1)
    try:
        dispatcher.run_jobs([job])
    finally:
        dispatcher.close()
    attempts = store.attempts(job)
    assert [a["outcome"] for a in attempts] == ["lost", "ok"]
    assert "MemoryError" in str(attempts[0]["message"])
    assert attempts[1]["worker"] != "w0"  # a fresh local worker took the retry
    done = store.job(job)
    assert done is not None and done.state is JobState.DONE


def test_without_ray_image_work_gets_a_local_worker_of_its_own(
    store: Store, tmp_path: Path
) -> None:
    """`wanhe render` whose one worker takes every core starts no Ray: the tasks that reserve
    no cores (assemble, preview) run on a light worker of this process beside the renders."""
    dispatcher = Dispatcher(store, threads=1, workers=1, log_root=tmp_path / "logs",
                            local_workers=[LocalWorker("w0")], use_ray=False)
    job = noop_job(store, 3, light=3)
    try:
        dispatcher.run_jobs([job])
        assert [(s.local, s.light) for s in dispatcher.slots] == [(True, False), (True, True)]
    finally:
        dispatcher.close()
    done = store.job(job)
    assert done is not None and done.state is JobState.DONE
    attempts = store.attempts(job)
    assert all(str(a["node"]).endswith(":local") for a in attempts)
    workers = {str(a["key"])[0]: set() for a in attempts}  # n: render-like, l: light
    for a in attempts:
        workers[str(a["key"])[0]].add(str(a["worker"]))
    assert workers["n"] == {"w0"}
    assert len(workers["l"]) == 1 and next(iter(workers["l"])).startswith("img")


def test_without_ray_a_broken_image_worker_is_replaced_by_another_local_one(
    store: Store, tmp_path: Path
) -> None:
    dispatcher = Dispatcher(store, threads=1, workers=1, log_root=tmp_path / "logs",
                            local_workers=[LocalWorker("w0")], use_ray=False)
    dispatcher.start_pool()
    light = next(s for s in dispatcher.slots if s.light)

    def crash(task: object) -> dict[str, object]:
        raise MemoryError("out of memory while assembling")

    light.worker.worker.run = crash  # type: ignore[attr-defined]
    job = noop_job(store, 0, light=1)
    try:
        dispatcher.run_jobs([job])
        fresh = [s for s in dispatcher.slots if s.light]
        assert len(fresh) == 1 and fresh[0].local and fresh[0].name != light.name
    finally:
        dispatcher.close()
    attempts = store.attempts(job)
    assert [a["outcome"] for a in attempts] == ["lost", "ok"]
    assert attempts[1]["worker"] not in (light.name, "w0")


def test_a_local_worker_does_not_import_ray() -> None:
    """`wanhe render`'s default runs without Ray: its local worker must not pay for
    importing it (0.3-0.5 s) just to learn it holds no GPU."""
    import subprocess
    import sys

    code = ("import sys\nfrom wanhe.engine.handles import LocalWorker\n"
            "w = LocalWorker('w0')\nassert w.worker.info.gpu_ids == ()\n"
            "print('ray' in sys.modules)\nw.kill()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "False"
