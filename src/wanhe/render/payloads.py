"""The typed payload of a Blender `render` task: one whole frame, one tile of it, or one
sample chunk of a tile (`wanhe.payloads`: built where the job type compiles it, read where
the executor runs it). Rows stored before jobs chose a device have none: they render on the
CPU."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from wanhe.blender.protocol import RenderRequest
from wanhe.payloads import TaskPayload
from wanhe.sched.devices import Device


class Placement(BaseModel):
    """Where one tile's renders go in the frame: its files (sample chunks, with their
    sample counts as weights), the part of each kept, and its corner in the frame."""

    model_config = ConfigDict(extra="ignore")

    paths: list[str]
    samples: list[int]
    src: list[int] = Field(min_length=4, max_length=4)
    dst: list[int] = Field(min_length=2, max_length=2)


class PartialPlan(BaseModel):
    """The progressive preview a finished sample chunk writes of its frame so far."""

    model_config = ConfigDict(extra="ignore")

    output: str
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    placements: list[Placement]


class RenderTask(TaskPayload):
    """A `render` task's payload."""

    kind: ClassVar[str] = "render"

    scene: str = Field(min_length=1, description="absolute path of the .blend")
    frame: int
    output: str = Field(min_length=1, description="the EXR the task leaves")
    resolution_percentage: int | None = Field(default=None, ge=1, le=32767)
    resolution: tuple[int, int] | None = None  # overrides the scene's (a storyboard's film)
    border: tuple[float, float, float, float] | None = None  # None: the whole frame
    expected_size: tuple[int, int] | None = None
    samples: int | None = Field(default=None, ge=1)
    seed: int | None = None
    camera: str | None = None
    threads: int | None = Field(default=None, ge=1)
    denoise_passes: bool = False
    sample_offset: int | None = Field(default=None, ge=0)
    sample_subset_length: int | None = Field(default=None, ge=1)
    timeout_s: float | None = Field(default=None, gt=0)
    silence_s: float | None = Field(default=None, gt=0)
    device: Device | None = None  # None: stored before jobs chose a device (the CPU)
    partial: PartialPlan | None = None

    def request(self, output: str, device: Literal["CPU", "GPU"]) -> RenderRequest:
        """What the warm Blender process is asked to do (writing `output`, on `device`)."""
        return RenderRequest(
            scene=self.scene, frame=self.frame, output=output,
            resolution_percentage=self.resolution_percentage, resolution=self.resolution,
            border=self.border,
            expected_size=self.expected_size, samples=self.samples, seed=self.seed,
            camera=self.camera, threads=self.threads, denoise_passes=self.denoise_passes,
            sample_offset=self.sample_offset, sample_subset_length=self.sample_subset_length,
            device=device,
        )
