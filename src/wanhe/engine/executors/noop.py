"""The no-op executor: sleeps for `sleep_s` and succeeds (dispatch benchmarks and tests);
`hang_s` sleeps without looking at cancel, as a long step inside a worker's own process."""

from __future__ import annotations

import threading
import time
from typing import Any

from wanhe.engine.executors.base import Executor, TaskContext, TaskResult
from wanhe.engine.executors.registry import register_executor
from wanhe.lifecycle import TaskCancelled, TaskFailed
from wanhe.model import TaskKind


@register_executor
class NoopExecutor(Executor):
    kinds = frozenset({TaskKind.NOOP.value})

    _stop = threading.Event()

    def run(self, kind: str, payload: dict[str, Any], ctx: TaskContext) -> TaskResult:
        seconds = float(payload.get("sleep_s", 0.0))
        self._stop = threading.Event()
        started = time.monotonic()
        if seconds and self._stop.wait(seconds):
            raise TaskCancelled("cancelled", wall_s=time.monotonic() - started)
        if payload.get("hang_s"):  # tests: work that never looks at its cancel flag
            time.sleep(float(payload["hang_s"]))
        if payload.get("fail"):  # tests: an attempt that fails of its own fault
            raise TaskFailed(str(payload["fail"]), wall_s=seconds)
        return TaskResult(seconds, 0.0, 0, {})

    def cancel(self) -> None:
        self._stop.set()
