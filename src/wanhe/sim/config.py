"""Inputs of a farm simulation, validated (pydantic), with clear one-line errors."""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = ["ProjectConfig", "SimConfig", "config_error_message", "parse_projects"]

SIX_MONTHS_S = 182.5 * 86400
TWO_WEEKS_S = 14 * 86400


class ProjectConfig(BaseModel):
    """One project (a studio show) on the farm."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    weight: float = Field(default=1.0, gt=0, description="fair-share weight")
    budget_core_hours: float | None = Field(
        default=None, gt=0, description="no new tasks once this many core-hours are metered"
    )
    priority: int = Field(default=50, ge=0, le=100)
    frames: int | None = Field(
        default=None,
        ge=1,
        description="frames this project renders; default: an equal part of the film",
    )


class SimConfig(BaseModel):
    """A film on a farm. Defaults: a 90-minute film (129,600 frames) on 30,000 16-core machines."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # the farm
    machines: int = Field(default=30_000, ge=1, description="machines (the maximum when elastic)")
    cores: int = Field(default=16, ge=1, le=4096, description="cores per machine")
    task_cores: int | None = Field(
        default=None, ge=1, description="cores each task asks for (default: a whole machine)"
    )
    # the film
    frames: int = Field(default=129_600, ge=1, description="frames in the film (90 min × 24 fps)")
    mean_core_hours: float = Field(default=6.0, gt=0, description="mean cost of a frame")
    sigma: float = Field(default=1.0, ge=0, le=3, description="lognormal sigma of frame cost")
    max_frame_core_hours: float = Field(
        default=160.0, gt=0, description="heaviest frame (tail clip)"
    )
    split_above_core_hours: float = Field(
        default=24.0, gt=0, description="frames costlier than this are split into tiles"
    )
    tiles_min: int = Field(default=64, ge=2)
    tiles_max: int = Field(default=128, ge=2)
    tile_core_hours: float = Field(default=1.0, gt=0, description="target cost of one tile")
    assemble_core_hours: float = Field(default=0.05, ge=0, description="cost of assembling a frame")
    task_overhead_core_seconds: float = Field(
        default=320.0, ge=0, description="fixed cost of every task (Blender start, scene sync)"
    )
    estimate_error: float = Field(
        default=0.25,
        ge=0,
        le=3,
        description="lognormal sigma of the cost estimates used for ordering",
    )
    order: Literal["longest-first", "frame"] = Field(
        default="longest-first",
        description="task order inside a job: by estimated cost or by frame",
    )
    frames_per_job: int = Field(
        default=0, ge=0, description="frames per job; 0: one job per project"
    )
    projects: tuple[ProjectConfig, ...] = (ProjectConfig(name="film"),)
    # the dispatcher
    dispatch_cost_s: float = Field(
        default=0.0,
        ge=0,
        le=3600,
        description="seconds of the one dispatcher's time per task (its start and its end "
        "recorded): a task starts that long after its machine asks, later while the "
        "dispatcher is busy with others",
    )
    # failures
    failure_rate: float = Field(default=0.0, ge=0, le=10, description="failures per machine-hour")
    repair_hours: float = Field(
        default=0.5, gt=0, description="time until a failed machine is back"
    )
    # elasticity
    elastic: bool = False
    elastic_start: int = Field(default=1_000, ge=0, description="machines at the start (elastic)")
    elastic_step: int = Field(default=1_000, ge=1, description="machines added per interval")
    elastic_interval_s: float = Field(default=180.0, gt=0, description="seconds between additions")
    idle_release_s: float = Field(
        default=180.0, ge=0, description="release a machine idle this long"
    )
    # the run
    seed: int = 0
    sample_points: int = Field(default=400, ge=10, le=100_000)

    @model_validator(mode="after")
    def _consistent(self) -> SimConfig:
        if not self.projects:
            raise ValueError("at least one project is needed")
        names = [p.name for p in self.projects]
        if len(set(names)) != len(names):
            raise ValueError(f"project names must be unique, got {names}")
        if self.task_cores is not None and self.task_cores > self.cores:
            raise ValueError(
                f"task_cores={self.task_cores} is more than a machine has ({self.cores} cores): "
                "no task could ever run"
            )
        if self.tiles_min > self.tiles_max:
            raise ValueError(f"tiles_min={self.tiles_min} is above tiles_max={self.tiles_max}")
        if self.mean_core_hours > self.max_frame_core_hours:
            raise ValueError(
                f"mean_core_hours={self.mean_core_hours} is above the heaviest frame "
                f"({self.max_frame_core_hours} core-hours)"
            )
        explicit = [p.frames for p in self.projects if p.frames is not None]
        if len(explicit) < len(self.projects) and self.frames < len(self.projects) - len(explicit):
            raise ValueError(
                f"{self.frames} frames cannot be shared by {len(self.projects)} projects"
            )
        if self.elastic and self.elastic_start > self.machines:
            raise ValueError(
                f"elastic_start={self.elastic_start} is above the maximum of {self.machines} "
                "machines"
            )
        if self.failure_rate > 0:
            # a task that almost never survives its own runtime would retry forever
            longest_h = self.longest_task_core_hours() / self.cores_per_task
            if self.failure_rate * longest_h > 5:
                raise ValueError(
                    f"failure_rate={self.failure_rate}/machine-hour is impossible: the longest "
                    f"task ({longest_h:.1f} h) would finish only once in "
                    f"{math.exp(self.failure_rate * longest_h):.0f} tries"
                )
        return self

    @property
    def cores_per_task(self) -> int:
        return self.cores if self.task_cores is None else self.task_cores

    def longest_task_core_hours(self) -> float:
        unsplit = min(self.max_frame_core_hours, self.split_above_core_hours)
        return unsplit + self.task_overhead_core_seconds / 3600

    def project_frames(self) -> list[int]:
        """Frames per project: explicit ones as given, the rest share the film equally."""
        implicit = [i for i, p in enumerate(self.projects) if p.frames is None]
        out = [p.frames or 0 for p in self.projects]
        if implicit:
            base, extra = divmod(self.frames, len(implicit))
            for k, i in enumerate(implicit):
                out[i] = base + (1 if k < extra else 0)
        return out


_PROJECT_RE = re.compile(r"^([A-Za-z0-9_.-]+)(?::([0-9.eE+-]+))?(?::([0-9.eE+-]+))?$")


def parse_projects(spec: str) -> tuple[ProjectConfig, ...]:
    """'a:2,b:1' → projects a (weight 2) and b (weight 1); 'a:2:5000' gives a a budget of 5000
    core-hours."""
    out = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        m = _PROJECT_RE.match(part)
        if m is None:
            raise ValueError(
                f"bad project {part!r}: write name[:weight[:budget_core_hours]], e.g. 'a:2,b:1'"
            )
        name, weight, budget = m.groups()
        try:
            out.append(
                ProjectConfig(
                    name=name,
                    weight=float(weight) if weight else 1.0,
                    budget_core_hours=float(budget) if budget else None,
                )
            )
        except ValueError as e:  # pydantic's ValidationError is a ValueError
            raise ValueError(f"bad project {part!r}: {config_error_message(e)}") from None
    if not out:
        raise ValueError("no projects given: write e.g. 'a:2,b:1'")
    return tuple(out)


def config_error_message(error: Exception) -> str:
    """One line that names the bad setting and what is wrong with it."""
    if isinstance(error, ValidationError):
        parts = []
        for e in error.errors():
            where = ".".join(str(x) for x in e["loc"])
            msg = str(e["msg"]).removeprefix("Value error, ")
            parts.append(f"{where}: {msg}" if where else msg)
        return "; ".join(parts)
    return str(error)
