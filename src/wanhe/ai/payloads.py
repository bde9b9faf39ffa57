"""The typed payload of a `gen` task: a batch of seeded candidates of one shot, with the
model that makes them (`wanhe.payloads`: built where the spec is compiled, read where the
diffusion executor runs it). Hooks set after compiling (`job_root` by the farm, a test's
`test_oom_over_batch`) are stored only when set."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from wanhe.payloads import TaskPayload


class ModelRecord(BaseModel):
    """The catalogue's record of the model, as much of it as a worker needs to load it."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    name: str = Field(min_length=1)
    path: str = Field(min_length=1)
    format: str = ""
    pipeline_class: str | None = None
    task: str = Field(min_length=1)
    sha256: str = Field(min_length=16)
    gpu_memory: int | None = Field(default=None, ge=0)


class Candidate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    index: int = Field(ge=0)
    seed: int = Field(ge=0)
    output: str = Field(min_length=1)


class GenTask(TaskPayload):
    """A `gen` task's payload."""

    kind: ClassVar[str] = "gen"
    hooks: ClassVar[tuple[str, ...]] = ("job_root", "test_oom_over_batch")
    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    model: ModelRecord
    warm_key: str = Field(min_length=1)
    device: Literal["gpu", "cpu"] = "cpu"
    threads: int = Field(default=0, ge=0)  # 0: every core
    shot: int = Field(ge=0)
    shot_name: str = Field(min_length=1)
    job_seed: int = 0
    prompt: str = ""
    negative: str = ""
    width: int = Field(ge=8)
    height: int = Field(ge=8)
    steps: int = Field(ge=1)
    guidance: float = Field(ge=0)
    image: str | None = None
    strength: float | None = None
    frames: int | None = Field(default=None, ge=1)
    fps: int | None = Field(default=None, ge=1)
    candidates: list[Candidate] = Field(min_length=1)
    job_root: str | None = None  # set by the farm (`confine_tasks`): files stay inside it
    test_oom_over_batch: int | None = None  # tests: a device that holds no more at once



class ClipModelRecord(BaseModel):
    """The CLIP model a score task measures prompt adherence with."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1)
    path: str = Field(min_length=1)
    sha256: str = ""


class ScoreTask(TaskPayload):
    """A `gen_score` task's payload: a shot's candidates, ranked into its scores.json."""

    kind: ClassVar[str] = "gen_score"
    hooks: ClassVar[tuple[str, ...]] = ("job_root",)

    shot: int = Field(ge=0)
    shot_name: str = Field(min_length=1)
    prompt: str = ""
    video: bool = False
    candidates: list[Candidate] = Field(min_length=1)
    output: str = Field(min_length=1, description="the shot's scores.json")
    clip: ClipModelRecord | None = None  # None: no prompt adherence measured
    job_root: str | None = None
