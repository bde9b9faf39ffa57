"""The store's rows as the rest of wanhe sees them, and the mappings from database rows."""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from wanhe.model import JobState, Resources, TaskState


class StoreError(ValueError):
    """A request the store cannot satisfy (unknown project, duplicate name, …)."""


PROJECT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
"""What a project may be called, everywhere (CLI, API, store): it lands in URLs, metric labels
and file names, so letters, digits and `_ . -`, starting with a letter or digit."""
_PROJECT_NAME = re.compile(PROJECT_NAME_PATTERN)


class ProjectNameTaken(StoreError):
    """A new project's name that would be another project's in all but spelling (its
    normalised name or its OS user's name is the other's)."""


def normalise_project_name(name: str) -> str:
    """The one spelling a project is stored under, for the CLI and the API alike: trimmed and
    lowercase, so `Alpha` and `alpha` are one name."""
    return name.strip().lower()


def project_slug(name: str) -> str:
    """The part of a project's OS user name taken from its name: lowercase, and every run of
    other characters (`.`, spaces) one `-`. Two projects with one slug would read as one user
    in `ps` and `ls -l`, so a new project's slug must be its own."""
    return re.sub(r"[^a-z0-9_-]+", "-", name.lower()).replace("_", "-").strip("-") or "p"


def check_project_name(name: str) -> None:
    """StoreError naming the rule unless `name` is a valid project name."""
    if not name or len(name) > 100 or not _PROJECT_NAME.match(name):
        raise StoreError(
            f"project name {name[:120]!r} is not allowed: use 1 to 100 letters, digits, "
            "'_', '.' or '-', starting with a letter or digit (e.g. lionboy-2)"
        )


@dataclass(frozen=True, slots=True)
class ProjectRow:
    id: int
    name: str
    weight: float
    budget_core_hours: float | None
    budget_gpu_hours: float | None = None


SCOPE_SUBMIT = "submit"  # read the project and submit / control its jobs
SCOPE_MANAGE = "manage"  # also create and revoke the project's tokens
TOKEN_SCOPES = (SCOPE_SUBMIT, SCOPE_MANAGE)


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: int
    project_id: int | None  # None: an admin token
    name: str
    scope: str = SCOPE_SUBMIT
    expires_at: float | None = None
    last_used_at: float | None = None

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (now or time.time()) >= self.expires_at


@dataclass(frozen=True, slots=True)
class JobRow:
    id: int
    project_id: int
    name: str
    kind: str
    spec: dict[str, Any]
    fingerprint: str
    state: JobState
    priority: int
    submitter: str
    message: str
    depends_on: list[int]
    work_dir: str
    created_at: float
    started_at: float | None
    finished_at: float | None


@dataclass(frozen=True, slots=True)
class TaskRow:
    id: int
    job_id: int
    key: str
    seq: int
    kind: str
    frame: int | None
    tile: int | None
    chunk: int | None
    state: TaskState
    payload: dict[str, Any]
    attempts: int
    resources: Resources
    output: dict[str, Any]
    error: str
    progress: float
    faults: int = 0  # own-fault attempts since last (re)queued by a user
    losses: int = 0  # attempts lost with their node since then
    affinity: str | None = None  # a warm key: prefer workers that hold it


@dataclass(frozen=True, slots=True)
class AttemptEnd:
    """What ending an attempt did: the state machine's verdict for the task, the tasks it
    made ready, whether (and why) its job failed with it, and whether its node is
    blocklisted for the job."""

    verdict: str  # a wanhe.lifecycle.Verdict value
    ready: list[int]
    job_failed: bool = False
    reason: str = ""
    blocklist: bool = False  # the node it ran on is blocklisted for its job now


@dataclass(frozen=True, slots=True)
class AttemptStart:
    """A ready task the dispatcher starts on a worker (`Store.start_attempts`)."""

    task_id: int
    node: str
    worker: str
    cores: float
    log_path: str = ""


@dataclass(frozen=True, slots=True)
class AttemptFinish:
    """A succeeded attempt the dispatcher records (`Store.finish_attempts`)."""

    attempt_id: int
    task_id: int
    usage: Usage
    output: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Usage:
    """What one attempt used: cores allocated × wall seconds, and what the process really used."""

    wall_s: float
    cores: float
    cpu_s: float | None = None
    peak_rss: int | None = None
    gpu_s: float = 0.0


@dataclass(frozen=True, slots=True)
class ReadyTask:
    """What the dispatcher queues for a ready task; it reads the whole row when it starts it."""

    id: int
    job_id: int
    seq: int
    resources: Resources
    frame: int | None = None
    affinity: str | None = None


@dataclass(frozen=True, slots=True)
class TrackedJob:
    """A job as the dispatcher's sync sees it: its row, and the revision at which its ready
    tasks last changed outside the dispatcher."""

    job: JobRow
    tasks_revision: int


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed outside the dispatcher since a revision (see `tables` on change tracking)."""

    revision: int  # the counter as read before the rows: rows stamped later are read next time
    projects: list[ProjectRow]
    jobs: list[TrackedJob]


def _now() -> float:
    return time.time()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _job(row: Any) -> JobRow:
    return JobRow(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        kind=row.kind,
        spec=json.loads(row.spec),
        fingerprint=row.fingerprint,
        state=JobState(row.state),
        priority=row.priority,
        submitter=row.submitter,
        message=row.message,
        depends_on=json.loads(row.depends_on),
        work_dir=row.work_dir,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _tracked(row: Any) -> TrackedJob:
    return TrackedJob(_job(row), int(row.tasks_revision))


def _project(row: Any) -> ProjectRow:
    return ProjectRow(row.id, row.name, row.weight, row.budget_core_hours,
                      row.budget_gpu_hours)


def _task(row: Any) -> TaskRow:
    return TaskRow(
        id=row.id,
        job_id=row.job_id,
        key=row.key,
        seq=row.seq,
        kind=row.kind,
        frame=row.frame,
        tile=row.tile,
        chunk=row.chunk,
        state=TaskState(row.state),
        payload=json.loads(row.payload),
        attempts=row.attempts,
        resources=Resources(row.cpus, row.memory, row.gpus),
        output=json.loads(row.output),
        error=row.error,
        progress=row.progress,
        faults=row.faults,
        losses=row.losses,
        affinity=getattr(row, "affinity", None),
    )
