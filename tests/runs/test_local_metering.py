"""A local run's workers are threads of one process: the CPU seconds its in-process tasks are
billed add up to what the process used, not to twice it. Real store, real dispatcher, two
workers of this process running a task kind of this test's that burns CPU in-process
(metered like every in-process executor, `measured`)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from wanhe.config import Settings
from wanhe.engine.executors.base import (
    APPORTIONED,
    Executor,
    TaskContext,
    TaskResult,
    measured,
)
from wanhe.engine.executors.registry import register_executor
from wanhe.metering import process_cpu
from wanhe.model import JobState, TaskSpec
from wanhe.runs.local import NewJob, open_or_resume, run_local_job
from wanhe.store.store import Store

KIND = "test-burn"
_BOTH = threading.Barrier(2, timeout=10)  # the two tasks run at the same time, for sure
_READINGS: list[float] = []  # the process's CPU as each task's work starts and ends


@register_executor
class BurnExecutor(Executor):
    """Burns `burn_s` seconds of its thread's CPU once both tasks are running."""

    kinds = frozenset({KIND})

    def run(self, kind: str, payload: dict[str, Any], ctx: TaskContext) -> TaskResult:
        def work() -> dict[str, Any]:
            _READINGS.append(sum(process_cpu()))
            _BOTH.wait()
            end = time.thread_time() + float(payload["burn_s"])
            while time.thread_time() < end:
                sum(range(200))
            _BOTH.wait()
            _READINGS.append(sum(process_cpu()))
            return {"burnt": True}

        return measured(work)


def test_two_local_workers_are_billed_the_process_cpu_once(store: Store,
                                                           tmp_path: Path) -> None:
    _BOTH.reset()
    _READINGS.clear()
    local = open_or_resume(store, "burn", lambda: NewJob(
        name="burn", kind="noop", spec={}, work_dir="",
        tasks=[TaskSpec(f"b{i}", KIND, {"burn_s": 0.6}) for i in range(2)]))
    settings = Settings(home=tmp_path / "home",
                        db=store.engine.url.render_as_string(hide_password=False))
    before = sum(process_cpu())
    run_local_job(store, local, settings=settings, threads=1, workers=2)
    spent = sum(process_cpu()) - before
    job = store.job(local.job.id)
    assert job is not None and job.state is JobState.DONE
    billed = sum(float(a["cpu_s"]) for a in store.attempts(local.job.id))
    during = max(_READINGS) - min(_READINGS)  # the process's CPU while the tasks ran
    assert billed >= 1.1  # both burns are in it
    assert abs(billed - during) <= 0.25 * during, (billed, during)  # not ~2x
    assert billed <= 1.05 * spent, (billed, spent)  # never more than the whole run used
    assert all(t.output.get(APPORTIONED) for t in store.tasks(local.job.id))
