"""Domain types shared by every room of wanhe: job and task states, task kinds, resources.

These are plain data: no I/O, no Ray, no database. The store persists them, the scheduler
orders them, the engine runs them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


class TaskState(enum.StrEnum):
    WAITING = "waiting"  # dependencies not finished yet
    READY = "ready"  # may be dispatched
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # out of retries
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED)


class TaskKind(enum.StrEnum):
    """The task kinds of the built-in job types. Task kinds are open: a job type may compile
    tasks of any kind string that an executor registered for (`wanhe.engine.executors`)."""

    RENDER = "render"  # Blender renders one tile (or the whole frame) of one frame
    ASSEMBLE = "assemble"  # tiles (and sample chunks) -> one full-frame multilayer EXR
    DENOISE = "denoise"  # OIDN on the assembled frame with albedo + normal
    PREVIEW = "preview"  # PNG preview next to the master EXR
    QC = "qc"  # automatic quality checks of a finished frame
    VIDEO = "video"  # preview MP4 + contact sheet for the whole job
    NOOP = "noop"  # does nothing; used by the dispatch benchmark
    COMMAND = "command"  # a command line in its own working directory (OpenJD actions, tools)


class AttemptOutcome(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"  # the task itself failed (bad scene, Blender crash, QC error)
    TIMEOUT = "timeout"  # past its wall-clock limit
    SILENT = "silent"  # silent in its log longer than its limit
    OUT_OF_MEMORY = "out_of_memory"  # ran out of memory (killed by the kernel's OOM killer)
    CANCELLED = "cancelled"  # a user cancelled the job
    LOST = "lost"  # the worker, node or service died mid-attempt


@dataclass(frozen=True, slots=True)
class Resources:
    """What one task asks of a machine. Memory in bytes."""

    cpus: float = 1.0
    memory: int = 0
    gpus: float = 0.0

    def fits_in(self, free: Resources) -> bool:
        return (
            self.cpus <= free.cpus + 1e-9
            and self.memory <= free.memory
            and self.gpus <= free.gpus + 1e-9
        )

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpus + other.cpus, self.memory + other.memory, self.gpus + other.gpus)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.cpus - other.cpus, self.memory - other.memory, self.gpus - other.gpus)


@dataclass(slots=True)
class TaskSpec:
    """One node of a job's task graph, as a job type compiles it (before it has a database id).

    `key` is unique within the job and stable across compilations of the same spec, so a
    resumed job can match its tasks; `deps` are keys of tasks in the same job.
    """

    key: str
    kind: str  # a TaskKind, or any kind an executor registered for
    payload: dict[str, Any]
    deps: list[str] = field(default_factory=list)
    frame: int | None = None
    tile: int | None = None
    chunk: int | None = None
    resources: Resources = field(default_factory=Resources)
    affinity: str | None = None  # a warm key (a model): prefer workers that hold it


def human_bytes(n: int) -> str:
    """Bytes for people: `19.7 GiB`, `263.0 MiB`."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def human_duration(seconds: float) -> str:
    """Seconds for people: `0.042 s`, `3.21 s`, `45 s`, `12.5 min`, `3.2 h`, `4.5 days`. Three
    significant digits under 10 s (a model's step takes a fraction of one), whole seconds up to
    two minutes."""
    if seconds < 10:
        return f"{seconds:.3g} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
