"""What a job type is: one kind of farm work (a Blender render, an OpenJD template, AI
generation, a story reel) behind one interface.

A job type says what options a submission takes (a pydantic model), checks them cheaply,
inspects the job's input files (the only step that may do I/O: read a scene, a template),
compiles options + inspection into a task graph (pure), and says how its tasks are labelled
for people, how often a task may fail, and what the job delivers. The API, the CLI, the
service, the dashboard and the dispatcher ask `wanhe.jobtypes.registry`; none imports a job
type. A new kind of job is one module that subclasses `JobType` and registers itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from wanhe.lifecycle import DEFAULT_MAX_ATTEMPTS, RetryRules
from wanhe.model import TaskSpec


class InputError(ValueError):
    """A user mistake in a submission: `field` names where (e.g. "options.frames", "main"),
    the message says what is wrong and what to do. The API answers 422 at that field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class IntakeContext:
    """What inspection may use: the farm's Blender, and overrides a service was made with
    (tests give a scene inspector that needs no Blender), keyed by job kind."""

    blender: str | None = None
    inspectors: dict[str, Callable[[Path], Any]] = field(default_factory=dict)
    # AI generation: the submitting project's view of the model catalogue (name -> record or
    # None), and what the farm's largest worker offers (wanhe.ai.capacity.Capacity)
    models: Callable[[str], dict[str, Any] | None] | None = None
    capacity: Callable[[], Any] | None = None
    local_paths: bool = False  # inputs may be named by absolute path (a local run, not a farm)
    # On the farm: the job's own input folder (its uploaded files, as checked out). Every file
    # the job names must resolve inside it (`wanhe.storage.job_input`); None: a local run.
    inputs: Path | None = None
    cache_dir: Path | None = None  # where probes keep their answers per scene
    # The submitting project (on the farm): Blender reads its scene in that project's sandbox.
    project: str | None = None
    project_id: int | None = None
    # OpenJD: the submitting project's queue environments (`wanhe project env add`), entered
    # after the farm's and before the job's own
    queue_environments: Callable[[], list[dict[str, Any]]] | None = None


@dataclass(slots=True)
class Inspected:
    """What a job type learned from the job's inputs, and warnings for the submitter."""

    facts: Any = None
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class JobFolder:
    """Where a job's files live on the workers: its inputs, its deliverables, its scratch."""

    input: Path
    output: Path
    work: Path


@dataclass(slots=True)
class CompiledJob:
    """A job ready to store: its resolved spec (JSON-able), a fingerprint (same submission,
    same fingerprint: how a rerun finds the job to resume) and its task graph."""

    spec: dict[str, Any]
    fingerprint: str
    tasks: list[TaskSpec]


@dataclass(frozen=True, slots=True)
class TaskView:
    """A stored task as a job type sees it to label it."""

    key: str
    kind: str
    frame: int | None = None
    tile: int | None = None
    chunk: int | None = None


class JobType(ABC):
    kind: ClassVar[str]
    title: ClassVar[str]
    options_model: ClassVar[type[BaseModel]]
    # The job's main input file: "required", "optional" or "none"; and the suffixes it may have.
    main_file: ClassVar[str] = "required"
    main_suffixes: ClassVar[tuple[str, ...]] = ()
    # The panels of this kind's job page on the dashboard, in order, besides those every job
    # has (tasks and logs, usage, failures, outputs, spec): "frames" (frames and tiles by
    # state), "heatmap" (core-seconds per tile and frame), "latest" (the last finished
    # frame), "video" (the preview video), "reel" (a story's reel), "candidates" (AI
    # generation's contact sheet), "steps" (tasks grouped by step), "deliverable" (the
    # job's deliverable movie). A panel not named here never shows for the kind.
    panels: ClassVar[tuple[str, ...]] = ()
    # The farm's own kind (e.g. an estimate's probe): made by the farm, never submitted, and
    # not listed among the kinds a user may submit (GET /api/job-types).
    internal: ClassVar[bool] = False

    def parse_options(self, raw: dict[str, Any]) -> BaseModel:
        """Validate a submission's options; a bad value raises InputError at its field."""
        try:
            return self.options_model.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in ("options", *first.get("loc", ())))
            raise InputError(where, str(first.get("msg", exc))) from None

    def check_main(self, main: str | None) -> None:
        """The main file's name fits this job type (before any file is fetched)."""
        if self.main_file == "required" and not main:
            raise InputError("main", f"a {self.title} job needs a main file")
        if self.main_file == "none" and main:
            raise InputError("main", f"a {self.title} job takes no main file")
        if main and self.main_suffixes and not main.lower().endswith(self.main_suffixes):
            wanted = " or ".join(self.main_suffixes)
            raise InputError("main", f"main file {main!r} is not a {wanted} file")

    def input_files(self, options: BaseModel, base: Path) -> list[Path]:
        """The local files a `wanhe submit --kind K --options FILE` of these options carries
        to the farm besides its main file, found from `base` (the options file's folder);
        they keep their paths relative to it. Raise InputError for a missing one."""
        return []

    def summary(self, spec: dict[str, Any]) -> str:
        """One line for people about what a stored job of this kind makes (`wanhe job`)."""
        return ""

    def check(self, options: BaseModel) -> None:  # noqa: B027  (a hook)
        """Cheap checks of the options alone, before the inputs are fetched."""

    def inspect(self, ctx: IntakeContext, main: Path | None, options: BaseModel) -> Inspected:
        """Read the job's inputs (may do I/O); raise InputError for a user mistake."""
        return Inspected()

    @abstractmethod
    def compile(
        self, options: BaseModel, inspected: Inspected, main: Path | None, folder: JobFolder
    ) -> CompiledJob:
        """The job's spec and task graph (pure); raise InputError when they cannot be made."""

    def retry_rules(self, spec: dict[str, Any]) -> RetryRules:
        """How often a task of this job may fail of its own fault or be lost."""
        return RetryRules(max_attempts=int(spec.get("max_attempts", DEFAULT_MAX_ATTEMPTS)))

    def any_device(self, spec: dict[str, Any]) -> bool:
        """Whether this job's tasks that reserve cores (and no GPU) may also run on a GPU slot;
        the tasks of one frame then all run on one kind of device (`wanhe.sched.devices`)."""
        return False

    def task_label(self, task: TaskView) -> str:
        """How a task is named for people (in a failure reason, the dashboard, the CLI)."""
        return f"task {task.key}"

    def deliverables(self, spec: dict[str, Any]) -> list[str]:
        """The files a finished job leaves for the user (absolute paths on the workers)."""
        return []


def confine_tasks(tasks: list[TaskSpec], folder: JobFolder) -> None:
    """Name the job's own folder in each task's payload (`job_root`): the executors check
    every file they are about to open against it (`wanhe.storage.within_job`)."""
    for task in tasks:
        task.payload.setdefault("job_root", str(folder.input.parent))
