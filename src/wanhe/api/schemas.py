"""Request and response bodies of the REST API, with the ranges the farm accepts.

A value out of range answers 422 with the field's location (FastAPI's validation error body).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)

from wanhe.storage import UnsafePath, safe_relpath
from wanhe.store.rows import PROJECT_NAME_PATTERN

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
ProjectName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=PROJECT_NAME_PATTERN)
]
MAX_FILES = 100_000


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


MAX_TOKEN_LIFE_S = 10 * 366 * 86400.0


class Me(BaseModel):
    project: str | None
    admin: bool
    token_id: int = 0
    scope: str = Field(default="submit", description="submit, manage or admin")
    expires_at: float | None = None


class ProjectCreate(_In):
    name: ProjectName
    budget_core_hours: float | None = Field(default=None, ge=0, le=1e12)
    budget_gpu_hours: float | None = Field(default=None, ge=0, le=1e12)
    weight: float = Field(default=1.0, gt=0, le=1e6)


class ProjectPatch(_In):
    weight: float | None = Field(default=None, gt=0, le=1e6)
    budget_core_hours: float | None = Field(
        default=None, ge=0, le=1e12, description="null removes the budget"
    )
    budget_gpu_hours: float | None = Field(
        default=None, ge=0, le=1e12, description="null removes the GPU-hour budget"
    )


class QueueEnvironmentIn(_In):
    template: dict[str, Any] = Field(
        description="an OpenJD environment template (specificationVersion environment-2023-09)")
    replace: bool = Field(default=False,
                          description="take the place of the project's environment of that name")


class QueueEnvironmentOut(BaseModel):
    name: str
    template: dict[str, Any]


class ProjectOut(BaseModel):
    name: str
    weight: float
    budget_core_hours: float | None
    used_core_hours: float
    budget_gpu_hours: float | None
    used_gpu_hours: float
    over_budget: bool = Field(description="either budget (core-hours or GPU-hours) is used up")


class ProjectCreated(BaseModel):
    project: ProjectOut
    token: str


class TokenCreate(_In):
    project: ProjectName | None = Field(
        default=None, description="default: the caller's project; admins may name any"
    )
    name: str = Field(default="", max_length=200)
    admin: bool = Field(default=False, description="an admin token (admins only)")
    scope: Literal["submit", "manage"] = Field(
        default="submit",
        description="submit: read and submit; manage: also create and revoke the project's "
                    "tokens (creating a token needs a managing or an admin token)",
    )
    expires_in_s: float | None = Field(
        default=None, gt=0, le=MAX_TOKEN_LIFE_S,
        description="seconds until the token stops working (default: never; never later "
                    "than the token that creates it)",
    )


class TokenOut(BaseModel):
    id: int
    project: str | None
    name: str
    created_at: float
    revoked: bool
    scope: str = "submit"
    expires_at: float | None = None
    last_used_at: float | None = None
    expired: bool = False


class TokenCreated(BaseModel):
    id: int
    project: str | None
    name: str
    token: str
    scope: str = "submit"
    expires_at: float | None = None


class BlobQuery(_In):
    hashes: list[Sha256] = Field(max_length=MAX_FILES)


class BlobMissing(BaseModel):
    missing: list[str]


class BlobStored(BaseModel):
    stored: list[str]
    bytes: int


Money = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]
Amount = Annotated[float, Field(ge=0, le=1e15, allow_inf_nan=False)]


def _safe_main(value: str) -> str:
    return str(JobCreate._main_is_safe(value))


def _safe_files(value: dict[str, str]) -> dict[str, str]:
    return dict(JobCreate._safe_paths(value))


class KeptEstimate(_In):
    """A render's estimate as a job keeps it (`wanhe.runs.estimate.kept_estimate`)."""

    core_hours: float = Field(ge=0, le=1e12, allow_inf_nan=False)
    core_hours_range: tuple[Amount, Amount] = Field(
        description="[low, high] core-hours (±2σ)")
    frame_core_s: dict[int, Amount] = Field(
        default_factory=dict, max_length=1_000_000,
        description="frame -> its estimated core-seconds (empty: spread evenly)")
    made_by: str = Field(default="the submitter", max_length=200)

    @model_validator(mode="after")
    def _range_holds_the_estimate(self) -> KeptEstimate:
        low, high = self.core_hours_range
        if not low <= self.core_hours <= high:
            raise ValueError(f"core_hours_range [{low:g}, {high:g}] must hold core_hours "
                             f"{self.core_hours:g}")
        return self


class EstimateRequest(_In):
    """`POST /api/estimate`: a render's files (uploaded as for a job) and its options, a
    generation spec (`kind: gen`, the spec in `options`, as a gen job's), or a storyboard
    (`kind: story`: `main` and `files` as a story job's)."""

    kind: Literal["blender_render", "gen", "story"] = Field(
        default="blender_render",
        description="blender_render (a scene), gen (a spec) or story (a storyboard)")
    main: str | None = Field(default=None, min_length=1, max_length=1024,
                             description="the .blend or the storyboard, as in a job")
    files: dict[str, Sha256] = Field(default_factory=dict, max_length=MAX_FILES)
    options: dict[str, Any] = Field(
        default_factory=dict, description="the render's options, as a blender_render job's; "
                                          "a gen job's spec")
    machines: int = Field(default=1, ge=1, le=1_000_000, description="machines on the farm")
    cores: int | None = Field(default=None, ge=1, le=4096,
                              description="cores per machine; default: the service's")
    gpus: int | None = Field(default=None, ge=1, le=1_000_000,
                             description="GPUs on the farm (a gen spec on the GPU); GPUs a "
                                         "machine (a storyboard)")
    timeout_s: float | None = Field(
        default=None, gt=0, le=86400, description="answer within this many seconds or 504 "
                                                  "(at most the service's limit)")
    price_core_hour: Money = 0.0
    price_gpu_hour: Money = 0.0

    @field_validator("main")
    @classmethod
    def _main_is_safe(cls, value: str | None) -> str | None:
        return None if value is None else str(_safe_main(value))

    @field_validator("files")
    @classmethod
    def _safe_paths(cls, value: dict[str, str]) -> dict[str, str]:
        return _safe_files(value)


class KitsuTarget(_In):
    shot: str | None = Field(
        default=None, min_length=3, max_length=201, pattern=r"^[^/\s][^/]*/[^/\s][^/]*$",
        description="a render: SEQUENCE/SHOT in the linked production, e.g. SQ01/SH010")
    sequence: str | None = Field(
        default=None, min_length=1, max_length=100, pattern=r"^[^/\s][^/]*$",
        description="a story reel: the sequence; each shot's clip goes to SEQUENCE/<shot id>, "
                    "the reel to the sequence's own task")
    task: str = Field(min_length=1, max_length=200,
                      description="the shots' task type, e.g. Lighting (a reel: Animatic)")
    reel_task: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="a story reel: the sequence's task type the reel goes to (Kitsu names "
                    "shot and sequence task types apart, e.g. Reel); default: task")
    create_shots: bool = Field(
        default=False, description="a story reel: create the shots (and their task) the "
        "sequence lacks in Kitsu, with frame in/out and count from the reel's timing; "
        "without it they are left out and named")

    @model_validator(mode="after")
    def _one_target(self) -> KitsuTarget:
        if (self.shot is None) == (self.sequence is None):
            raise ValueError("give shot (a render) or sequence (a story reel), one of them")
        if self.reel_task is not None and self.sequence is None:
            raise ValueError("reel_task goes with sequence (a story reel)")
        if self.create_shots and self.sequence is None:
            raise ValueError("create_shots goes with sequence (a story reel)")
        return self

    @property
    def target(self) -> str:
        """What the publication row keeps: SEQUENCE/SHOT, or SEQUENCE alone for a reel."""
        return (self.shot or self.sequence or "").strip()


class JobCreate(_In):
    kind: str = Field(
        default="blender_render", min_length=1, max_length=50, pattern=r"^[a-z][a-z0-9_]*$",
        description="the job type (GET /api/job-types lists them with their options)",
    )
    name: str | None = Field(default=None, max_length=300)
    main: str | None = Field(
        default=None, min_length=1, max_length=1024,
        description="relative path of the job's main file (a .blend for blender_render)",
    )
    files: dict[str, Sha256] = Field(
        default_factory=dict, max_length=MAX_FILES,
        description="relative path -> SHA-256 of its bytes",
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="the job type's options (validated by it)"
    )
    priority: int = Field(default=50, ge=0, le=100)
    depends_on: list[Annotated[int, Field(ge=1, le=2**62)]] = Field(
        default_factory=list, max_length=1000
    )
    paused: bool = Field(
        default=False, description="store the job paused: nothing runs until it is resumed"
    )
    estimate: KeptEstimate | None = Field(
        default=None, description="a render's estimate to keep with the job (what `wanhe "
        "submit --estimate` found): `wanhe job` and the job page show it against the actual")
    estimate_on_farm: bool = Field(
        default=False, description="estimate the render at submit on the farm (as POST "
        "/api/estimate) and keep it with the job")
    kitsu: KitsuTarget | None = Field(
        default=None, description="publish to this shot's task in the project's linked Kitsu "
                                  "production when the job finishes (docs/kitsu.md)")

    @field_validator("main")
    @classmethod
    def _main_is_safe(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(safe_relpath(value))
        except UnsafePath as exc:
            raise ValueError(str(exc)) from None

    @field_validator("files")
    @classmethod
    def _safe_paths(cls, value: dict[str, str]) -> dict[str, str]:
        clean: dict[str, str] = {}
        for path, sha in value.items():
            try:
                name = str(safe_relpath(path))
            except UnsafePath as exc:
                raise ValueError(str(exc)) from None
            if name in clean and clean[name] != sha:
                raise ValueError(f"path {name!r} is sent twice with different contents")
            clean[name] = sha
        return clean


class KitsuLinkIn(_In):
    url: str = Field(min_length=8, max_length=1000, pattern=r"^https?://\S+$",
                     description="Kitsu's API address, e.g. https://kitsu.studio/api")
    production: str = Field(min_length=1, max_length=300)
    email: str | None = Field(default=None, max_length=300)
    password: str | None = Field(default=None, max_length=1000)
    token: str | None = Field(default=None, max_length=5000,
                              description="an API token instead of email and password")

    @model_validator(mode="after")
    def _one_way_in(self) -> KitsuLinkIn:
        if not self.token and not (self.email and self.password):
            raise ValueError("give an email and password, or a token")
        return self


class KitsuLinkOut(BaseModel):
    project: str
    url: str
    production: str
    login: str
    linked_by: str
    linked_at: float
    publications: dict[str, int] = Field(default_factory=dict)


class PriorityPatch(_In):
    priority: StrictInt = Field(ge=0, le=100, description="0-100, an integer (not a string or "
                                "a boolean)")


class JobAction(BaseModel):
    id: int
    state: str
    message: str = ""


class JobSummary(BaseModel):
    id: int
    kind: str = "blender_render"
    name: str
    project: str
    state: str
    priority: int
    submitter: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    message: str
    progress: float
    tasks: dict[str, int]
    core_hours: float
    gpu_hours: float = 0.0
    eta_s: float | None
    depends_on: list[int] = Field(default_factory=list)


class TileOut(BaseModel):
    tile: int | None
    chunk: int | None = None
    key: str
    state: str
    core_seconds: float


class FrameOut(BaseModel):
    frame: int
    state: str
    tiles: list[TileOut]
    core_seconds: float
    preview_url: str | None
    qc: dict[str, Any] | None = None  # the frame's quality checks, once its QC task ran


class OutputFile(BaseModel):
    path: str
    bytes: int
    url: str


class JobDetail(JobSummary):
    frames: list[FrameOut]
    spec: dict[str, Any]
    failures: list[dict[str, Any]]
    usage: dict[str, float]  # {outcome}_core_seconds
    gpu_usage: dict[str, float] = Field(default_factory=dict)  # {outcome}_gpu_seconds
    # core-seconds of outages after lost attempts' last sign of life: not billed, shown
    unbilled_core_seconds: float = 0.0
    outputs: list[OutputFile]
    # False when storage could not be asked (a warning says why): `outputs` is then unknown,
    # not empty
    outputs_listed: bool = True
    warnings: list[str] = Field(default_factory=list)
    story: dict[str, Any] | None = Field(
        default=None, description="a story job: shots in order, the reel, overrunning lines")
    panels: list[str] = Field(default_factory=list, description=(
        "the dashboard panels the job's type shows (frames, heatmap, latest, video, reel, "
        "candidates, steps, deliverable)"))
    summary: str = Field(default="", description="what the job makes, in one line")
    deliverables: list[OutputFile] = Field(default_factory=list, description=(
        "the files the job leaves for the user, once published"))
    estimate: dict[str, Any] | None = Field(
        default=None, description="the estimate the job keeps against its actual cost so far "
        "(wanhe.api.estimate_view), with the ETA from that cost; null: none kept")
    kitsu: dict[str, Any] | None = Field(
        default=None, description="where the job publishes in Kitsu, and how that stands")


class TaskOut(BaseModel):
    id: int
    key: str
    label: str = Field(default="", description="how the job type names the task for people")
    kind: str
    frame: int | None
    tile: int | None
    chunk: int | None
    state: str
    attempts: int
    progress: float
    error: str
    core_seconds: float
    started_at: float | None
    finished_at: float | None
    status: str = Field(default="", description="the task's status line (e.g. openjd_status): "
                        "live while it runs, the last one after")


class JobTypeOut(BaseModel):
    kind: str
    title: str
    main_file: str
    main_suffixes: list[str]
    options_schema: dict[str, Any]
    panels: list[str] = Field(default_factory=list)


class Health(BaseModel):
    ok: bool
