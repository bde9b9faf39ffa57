"""Memory is reserved like cores: two workers on one machine never run two tasks at once
whose memory requests together pass the machine's; a task bigger than any worker's machine
fails its job with both numbers (no Ray: real local workers, real SQLite/PostgreSQL)."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import psutil
import pytest

from wanhe.engine.dispatcher import Dispatcher
from wanhe.engine.handles import LocalWorker
from wanhe.model import JobState, Resources, TaskKind, TaskSpec
from wanhe.store.store import Store

pytestmark = pytest.mark.timeout(60)
RAM = int(psutil.virtual_memory().total)


def job_of(store: Store, memory: int, n: int, sleep_s: float = 0.3) -> int:
    project = store.ensure_project("local")
    tasks = [TaskSpec(f"m{i}", TaskKind.NOOP, {"sleep_s": sleep_s},
                      resources=Resources(cpus=1, memory=memory)) for i in range(n)]
    return store.create_job(project_id=project.id, name="mem", kind="noop", spec={},
                            fingerprint=f"mem-{time.monotonic_ns()}", tasks=tasks)


def run(store: Store, tmp_path: Path, job: int) -> Dispatcher:
    dispatcher = Dispatcher(store, threads=1, workers=2, log_root=tmp_path / "logs",
                            local_workers=[LocalWorker("w0"), LocalWorker("w1")],
                            use_ray=False)
    try:
        dispatcher.run_jobs([job])
    finally:
        dispatcher.close()
    return dispatcher


def spans(store: Store, job: int) -> list[tuple[float, float]]:
    return sorted((float(a["started_at"]), float(a["ended_at"])) for a in store.attempts(job))


def test_tasks_run_side_by_side_only_while_their_memory_fits(
    store: Store, tmp_path: Path
) -> None:
    small = job_of(store, RAM // 4, 4)
    run(store, tmp_path, small)
    small_spans = spans(store, small)
    assert any(b[0] < a[1] for a, b in itertools.pairwise(small_spans)), \
        "two workers with room for both should overlap"

    big = job_of(store, RAM * 6 // 10, 3)
    run(store, tmp_path, big)
    assert store.job(big).state is JobState.DONE  # type: ignore[union-attr]
    big_spans = spans(store, big)
    for a, b in itertools.pairwise(big_spans):
        assert b[0] >= a[1] - 0.05, "two 60 %-of-RAM tasks ran at once"


def test_a_task_bigger_than_any_worker_fails_its_job_with_the_numbers(
    store: Store, tmp_path: Path
) -> None:
    job = job_of(store, RAM * 2, 1)
    run(store, tmp_path, job)
    failed = store.job(job)
    assert failed is not None and failed.state is JobState.FAILED
    assert "task m0 cannot run on this farm: it needs " in failed.message
    assert "of memory and the largest worker has" in failed.message
