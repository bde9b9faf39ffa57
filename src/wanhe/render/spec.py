"""A Blender render job's spec (resolved against its scene), the options a user asks for, and
the facts inspection reads from a scene. Pure: no Blender, no files."""

from __future__ import annotations

import hashlib
import json
from pathlib import PurePath

from pydantic import BaseModel, Field, field_validator, model_validator

from wanhe.plan.frames import expand_output_pattern
from wanhe.plan.tiles import TileGrid
from wanhe.sched.devices import Device

MAX_TIMEOUT_S = 30 * 86400.0


class RenderKnobs(BaseModel):
    """Settings a user asks for that the spec keeps as they are (shared by options and spec)."""

    overscan: int | None = Field(
        default=None, ge=0, le=4096,
        description="pixels each tile renders past its edges; default: the least that is exact",
    )
    samples: int | None = Field(default=None, ge=1, le=1_000_000)
    sample_chunks: int = Field(default=1, ge=1, le=4096)
    camera: str | None = None
    denoise: bool = True
    threads: int = Field(default=1, ge=1, le=1024)
    # Cycles' seed is a 32-bit int; a timeout under a second only ever kills the attempt
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    task_timeout_s: float | None = Field(default=None, ge=1, le=MAX_TIMEOUT_S)
    silence_timeout_s: float | None = Field(default=None, ge=1, le=MAX_TIMEOUT_S)
    max_attempts: int = Field(default=3, ge=1, le=100)
    qc: bool = False
    qc_thresholds: dict[str, float] = Field(default_factory=dict)
    video: bool = False
    device: Device = Field(
        default=Device.ANY,
        description="what render tasks run on: cpu, gpu (Cycles on CUDA/OptiX/HIP/oneAPI/Metal, "
        "as Blender finds them), or any (either; one frame never mixes them)",
    )

    @field_validator("qc_thresholds")
    @classmethod
    def _thresholds_in_range(cls, values: dict[str, float]) -> dict[str, float]:
        if not values:  # nothing to check: the QC module (numpy) stays unimported
            return values
        from wanhe.imaging.qc_thresholds import thresholds_from

        thresholds_from(values)
        return values


class RenderSpec(RenderKnobs):
    """Everything needed to render a job, resolved against the scene (sizes, frames, samples)."""

    scene: str = Field(description="absolute path of the .blend the workers open")
    frames: list[int] = Field(min_length=1)
    width: int = Field(ge=1, le=65536, description="pixel width after the percentage")
    height: int = Field(ge=1, le=65536)
    resolution_percentage: int | None = Field(default=None, ge=1, le=10000)
    engine: str = "CYCLES"
    tiles_x: int = Field(default=1, ge=1, le=4096)
    tiles_y: int = Field(default=1, ge=1, le=4096)
    output: str = Field(description="output pattern, # = frame-number padding; no extension")
    fps: float = Field(default=24.0, gt=0)
    quality_note: str | None = Field(
        default=None, description="set when --quality was not reached: frames are flagged"
    )
    overscan: int = Field(default=0, ge=0, le=4096)
    split_note: str | None = Field(default=None, description="what --split chose and why")
    tile_note: str | None = Field(
        default=None, description="set when tiles were asked for on a scene whose border "
        "renders are not exact: frames are flagged"
    )

    @field_validator("frames")
    @classmethod
    def _unique_sorted(cls, frames: list[int]) -> list[int]:
        return sorted(set(frames))

    @model_validator(mode="after")
    def _check(self) -> RenderSpec:
        if self.engine != "CYCLES" and (self.tiles_x * self.tiles_y > 1 or self.sample_chunks > 1):
            raise ValueError(
                f"tiles and sample chunks need Cycles; this scene renders with {self.engine} — "
                "render whole frames (--tiles 1x1) or switch the scene to Cycles"
            )
        if self.sample_chunks > 1 and self.samples is None:
            raise ValueError("sample chunks need the frame's sample count (samples)")
        return self

    @property
    def grid(self) -> TileGrid:
        return TileGrid(self.tiles_x, self.tiles_y)

    def fingerprint(self) -> str:
        """Same spec, same fingerprint: how a re-run finds the job to resume."""
        return hashlib.sha256(
            json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        ).hexdigest()

    def master_path(self, frame: int) -> str:
        return expand_output_pattern(self.output, frame) + ".exr"

    def preview_path(self, frame: int) -> str:
        return expand_output_pattern(self.output, frame) + ".png"

    def partial_path(self, frame: int) -> str:
        """The progressive preview written while a frame's sample chunks render."""
        return expand_output_pattern(self.output, frame) + ".partial.png"

    def video_path(self) -> str:
        return _job_output_stem(self.output) + ".mp4"

    def contact_sheet_path(self) -> str:
        return _job_output_stem(self.output) + "_contact.png"


def _job_output_stem(pattern: str) -> str:
    path = PurePath(pattern)
    stem = path.name.replace("#", "").rstrip("._- ") or "preview"
    return str(path.with_name(stem))


class RenderOptions(RenderKnobs):
    """What the user asked for (CLI flags or REST body), before it meets the scene."""

    frames: str | None = None
    tiles: str = "1x1"
    split: int | None = Field(
        default=None, ge=1, le=4096,
        description="spread each frame over N workers: wanhe picks tiles, sample chunks or both",
    )
    resolution_percentage: int | None = Field(default=None, ge=1, le=10000)
    output: str | None = None
    quality: str | None = Field(default=None, description="--quality: dB or draft/preview/final")

    @field_validator("quality")
    @classmethod
    def _known_quality(cls, value: str | None) -> str | None:
        from wanhe.samplecount.levels import parse_quality_target

        if value is not None:
            parse_quality_target(value)
        return value


class SceneFacts(BaseModel):
    """What inspection found in the scene that a spec depends on."""

    path: str
    frame_start: int
    frame_end: int
    frame_step: int = 1
    fps: float = 24.0
    resolution_x: int
    resolution_y: int
    resolution_percentage: int = 100
    engine: str = "CYCLES"
    camera: str | None = None
    cameras: list[str] = Field(default_factory=list)
    samples: int | None = None
    output_path: str = ""
    adaptive_sampling: bool = False
    adaptive_threshold: float = 0.01
    adaptive_min_samples: int = 0
    border_exact: bool | None = Field(
        default=None, description="the border probe's answer; None when it did not run"
    )
    border_why_not: str = ""
    border_hints: list[str] = Field(default_factory=list)  # features that make borders inexact
    python_drivers: list[str] = Field(default_factory=list)  # drivers that will not run
    missing_caches: list[str] = Field(default_factory=list)  # missing point caches
    time_limit: float = 0.0  # Cycles' render time limit (s); > 0 makes every split inexact
    # what the memory estimate weighs (wanhe.blender.memory)
    polygons: int = 0
    blend_bytes: int = 0
    texture_bytes: int = 0
