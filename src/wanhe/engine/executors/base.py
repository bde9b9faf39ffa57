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
import shutil
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from wanhe.metering import METER, Share

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


class MissingTool(LookupError):
    """A worker lacks a tool an executor needs (its message says how to give it one)."""


def tool_pairs(tools: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    """Named tools as WorkerInfo keeps them (sorted pairs: the record stays hashable)."""
    return tuple(sorted((k, v) for k, v in (tools or {}).items() if v))


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """The worker an executor lives in. `tools`: the programs this worker was given by name
    (`blender`, `ffmpeg`, `python`, …: settings `WANHE_TOOLS` / `WANHE_BLENDER`, per node);
    an executor asks for the ones it needs with `tool()`. `gpu_ids`: the GPUs this worker
    holds (as Ray assigned them, e.g. ["0"]); empty for a CPU worker, whose tasks must never
    see a GPU."""

    name: str = "worker"
    node: str = ""
    tools: tuple[tuple[str, str], ...] = ()
    gpu_ids: tuple[str, ...] = ()

    @property
    def blender(self) -> str | None:
        """The Blender binary this worker was given; None: the bpy module."""
        return dict(self.tools).get("blender")

    def tool(self, name: str) -> str:
        """The path of tool `name` on this worker: the one it was given, else the program of
        that name on this node's PATH; MissingTool when neither exists."""
        given = dict(self.tools).get(name)
        if given:
            return given
        found = shutil.which(name)
        if found is None:
            where = f"{self.name!r} on {self.node}" if self.node else repr(self.name)
            raise MissingTool(
                f"worker {where} has no {name!r}: install it on the node's PATH, or name it "
                f"in WANHE_TOOLS (e.g. WANHE_TOOLS='{{\"{name}\": \"/path/to/{name}\"}}')")
        return found


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
    memory_bytes: int = 0
    """Memory the task asked for and the dispatcher reserved for it on this node (bytes; 0:
    none asked). The sandbox limits the task's cgroup to it."""
    project_id: int | None = None
    """Its id: a project's OS user carries it, so two projects are never one user."""


class Executor(ABC):
    """Runs the task kinds in `kinds`. Subclasses register with
    `wanhe.engine.executors.registry.register_executor`."""

    kinds: ClassVar[frozenset[str]] = frozenset()
    tools: ClassVar[tuple[str, ...]] = ()
    """The named tools its tasks run (`WorkerInfo.tool`): a worker without one fails the task
    with a line saying how to give it one."""
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


def self_peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


APPORTIONED = "cpu_apportioned"
"""The output key marking a task whose `cpu_s` is a share of this process's CPU: it overlapped
another in-process task (a local run's workers are threads of one process; `wanhe.metering`).
The attempt record has no column for it, so it travels in the task's output."""


def noted(share: Share, output: dict[str, Any]) -> dict[str, Any]:
    """`output`, marked when `share`'s figure was apportioned."""
    if share.apportioned:
        output[APPORTIONED] = True
    return output


def measured(work: Callable[[], dict[str, Any]]) -> TaskResult:
    """Run in-process work and meter it with this process's meter (`wanhe.metering`): the
    process's CPU while it ran, split with any in-process task running at the same time."""
    started = time.monotonic()
    with METER.task() as share:
        output = work()
    return TaskResult(time.monotonic() - started, share.cpu_s, self_peak_rss(),
                      noted(share, output))


def jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "__dataclass_fields__"):
        return json.loads(json.dumps(asdict(value), default=str))
    return value
