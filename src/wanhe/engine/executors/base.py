"""What a task executor is: the code a worker runs for one or more task kinds, owning the warm
resource those tasks share (a Blender process with the scene loaded, a loaded model, a session
directory), with setup on first use and teardown when the worker stops.

An executor runs one attempt at a time (its worker serialises them) and may be asked, from
another thread, to cancel the running one. It reports how an attempt ended by returning a
`TaskResult` or raising one of the typed errors of `wanhe.lifecycle`; it never needs Ray, so
each can be made and tested alone.
"""

from __future__ import annotations

import json
import resource
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

LogSink = Callable[[str], None]
ProgressSink = Callable[[float], None]
StatusSink = Callable[[str], None]


def _quiet(_: Any) -> None:
    return None


@dataclass(slots=True)
class TaskResult:
    """How a successful attempt went: what it used and what it made (JSON-able)."""

    wall_s: float
    cpu_s: float
    peak_rss: int
    output: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """The worker an executor lives in. `gpu_ids`: the GPUs this worker holds (as Ray
    assigned them, e.g. ["0"]); empty for a CPU worker, whose tasks must never see a GPU."""

    name: str = "worker"
    node: str = ""
    blender: str | None = None
    gpu_ids: tuple[str, ...] = ()


@dataclass(slots=True)
class TaskContext:
    """What one attempt gets besides its payload."""

    log: LogSink = _quiet
    progress: ProgressSink = _quiet
    key: str = ""
    cancelled: threading.Event = field(default_factory=threading.Event)
    attempt: int = 1  # this attempt's number (a retry after running out of memory may shrink)
    status: StatusSink = _quiet
    """The task's status line (e.g. OpenJD's `openjd_status`), shown beside its progress."""
    project: str = ""
    """The project whose job this task belongs to (who the work runs as may depend on it)."""
    memory: int | None = None
    """The memory the task asked for, in bytes (its sandbox's limit); None: not said."""


class Executor(ABC):
    """Runs the task kinds in `kinds`. Subclasses register with
    `wanhe.engine.executors.registry.register_executor`."""

    kinds: ClassVar[frozenset[str]] = frozenset()
    warm_scope: ClassVar[str | None] = None
    """"job": what a warm key holds belongs to one job, and is let go (`release`) when that
    job ends; None: it may serve later jobs too (a scene, a model)."""

    def __init__(self, worker: WorkerInfo) -> None:
        self.worker = worker

    def warm_key(self, payload: dict[str, Any]) -> str | None:
        """What this task needs loaded (a scene, a model): a worker that has run a task with
        the same key holds it warm. None when nothing is kept."""
        return None

    def loaded_keys(self) -> list[str] | None:
        """Every warm key this executor holds now (one that evicts reports what is left);
        None: only the last task's key is known (`warm_key`)."""
        return None

    def warm(self, key: str) -> None:  # noqa: B027  (a hook: most executors keep nothing)
        """Load `key` before the first task needs it."""

    @abstractmethod
    def run(self, kind: str, payload: dict[str, Any], ctx: TaskContext) -> TaskResult:
        """Run one attempt; raise a `wanhe.lifecycle.AttemptError` when it does not succeed."""

    def cancel(self) -> None:  # noqa: B027
        """Stop the running attempt now (called from another thread); its `run` then raises
        `TaskCancelled` (or any AttemptError: the worker records it as cancelled)."""

    def release(self, key: str) -> None:  # noqa: B027
        """Let go of what warm key `key` holds (its job ended; see `warm_scope`)."""

    def close(self) -> None:  # noqa: B027
        """Release the warm resource (the worker is stopping)."""


def self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def self_peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measured(work: Callable[[], dict[str, Any]]) -> TaskResult:
    """Run in-process work and meter it with this process's own rusage."""
    started, cpu0 = time.monotonic(), self_cpu_s()
    output = work()
    return TaskResult(time.monotonic() - started, self_cpu_s() - cpu0, self_peak_rss(), output)


def jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "__dataclass_fields__"):
        return json.loads(json.dumps(asdict(value), default=str))
    return value
