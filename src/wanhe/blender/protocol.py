"""Messages exchanged with the in-Blender worker (`worker_script.py`), one JSON object per line.

The worker cannot import this module (it runs inside a user's Blender where `wanhe` is not
installed), so the field names here and there must agree; tests/blender/test_protocol.py checks
them against real replies.

Requests go to the worker's stdin as `{"op": "render", "id": N, ...fields}`; each reply is one
stdout line `MARKER + json`. Everything else Blender prints is the task's log.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Prefix of reply lines on the worker's stdout. Must equal worker_script.MARKER.
MARKER = "@@WANHE@@ "


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RenderRequest(_Msg):
    """Render one frame (or one tile / one sample chunk of it) to a multilayer EXR."""

    op: Literal["render"] = "render"
    scene: str  # absolute path of the .blend
    frame: int
    output: str  # exact path of the EXR to write (a temporary name; the caller renames it)
    resolution_percentage: int | None = Field(default=None, ge=1, le=32767)
    resolution: tuple[int, int] | None = None  # overrides resolution_x / resolution_y
    # (min_x, max_x, min_y, max_y) as Blender border fractions, y counted from the bottom.
    # Rendered with crop, so the EXR holds only the border's pixels. See border_from_pixels.
    border: tuple[float, float, float, float] | None = None
    expected_size: tuple[int, int] | None = None  # (w, h): fail unless the EXR has this size
    samples: int | None = Field(default=None, ge=1)
    seed: int | None = None
    camera: str | None = None  # object name
    threads: int | None = Field(default=None, ge=1)
    denoise_passes: bool = False  # store "Denoising Albedo" / "Denoising Normal" passes
    sample_offset: int | None = Field(default=None, ge=0)
    sample_subset_length: int | None = Field(default=None, ge=1)
    adaptive_sampling: bool | None = None
    # CPU, or GPU: Cycles on the first backend Blender finds (OptiX, CUDA, HIP, oneAPI, Metal);
    # a GPU asked for and none found is an error, never a silent CPU render
    device: Literal["CPU", "GPU"] = "CPU"

    @field_validator("scene", "output")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if not v.startswith("/") and not (len(v) > 2 and v[1] == ":"):
            raise ValueError(f"must be an absolute path, got {v!r}")
        return v

    @field_validator("resolution", "expected_size")
    @classmethod
    def _positive_size(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is not None and (v[0] < 1 or v[1] < 1):
            raise ValueError(f"sizes must be at least 1x1, got {v[0]}x{v[1]}")
        return v

    @field_validator("border")
    @classmethod
    def _border(
        cls, v: tuple[float, float, float, float] | None
    ) -> tuple[float, float, float, float] | None:
        if v is None:
            return v
        x0, x1, y0, y1 = v
        if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
            raise ValueError(f"border must satisfy 0 <= min < max <= 1 on both axes, got {v}")
        return v

    @model_validator(mode="after")
    def _subset_together(self) -> RenderRequest:
        # Cycles' sample subset needs both numbers; an offset alone only shifts the random
        # sequence and gives chunks that merge merely statistically.
        if (self.sample_offset is None) != (self.sample_subset_length is None):
            raise ValueError("sample_offset and sample_subset_length must be given together")
        return self


class RenderReply(_Msg):
    ok: bool
    output: str | None = None
    width: int = 0
    height: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0  # CPU seconds of the Blender process during this task (rusage delta)
    peak_rss_bytes: int = 0  # peak resident memory during the task (VmHWM after a reset)
    error: str | None = None
    engine: str = ""
    samples: int | None = None
    device: str = "CPU"  # what Cycles rendered on
    backend: str = "NONE"  # OPTIX, CUDA, HIP, ONEAPI, METAL for a GPU render
    gpus: list[str] = Field(default_factory=list)  # the GPUs' names


class InspectRequest(_Msg):
    op: Literal["inspect"] = "inspect"
    scene: str


class SceneInfo(BaseModel):
    """What a scene asks for, as stored in the .blend."""

    model_config = ConfigDict(frozen=True)

    frame_start: int
    frame_end: int
    frame_step: int
    fps: float
    resolution_x: int
    resolution_y: int
    resolution_percentage: int
    engine: str  # 'CYCLES', 'BLENDER_EEVEE…', 'BLENDER_WORKBENCH'
    camera: str | None
    cameras: list[str]
    samples: int | None
    adaptive_sampling: bool | None
    output_path: str  # scene.render.filepath as stored, e.g. '//render/demo_####'
    blender_version: str
    # Cycles settings that decide whether border tiles are exact (docs/tiles.md)
    adaptive_threshold: float = 0.01
    adaptive_min_samples: int = 0
    time_limit: float = 0.0
    path_guiding: bool = False
    volumes: list[str] = Field(default_factory=list)  # what renders a volume (world, materials)
    python_drivers: list[str] = Field(default_factory=list)  # drivers that need Python
    polygons: int = 0  # of the scene's meshes, before modifiers (the memory estimate's)

    @property
    def width(self) -> int:
        # Blender truncates: 63 px at 50 % renders 31 px wide (checked in tests).
        return self.resolution_x * self.resolution_percentage // 100

    @property
    def height(self) -> int:
        return self.resolution_y * self.resolution_percentage // 100


def border_fraction(px: int, size: int) -> float:
    """The border fraction that Blender maps to pixel boundary `px` of `size` pixels.

    Blender computes `int(float32(fraction) * size)` in float32 and truncates, so `px / size`
    can land just below `px` (e.g. 63/1920 gives 62). Half a pixel past the boundary is safe
    for any size below 2**23 and is what this returns; the far edge is exactly 1.0.
    """
    if not 0 <= px <= size:
        raise ValueError(f"pixel {px} outside 0..{size}")
    if px == size:
        return 1.0
    return (px + 0.5) / size


def border_from_pixels(
    x0: int, x1: int, y0: int, y1: int, width: int, height: int
) -> tuple[float, float, float, float]:
    """Border fractions for the pixel box [x0, x1) x [y0, y1), y counted from the bottom."""
    if not (x0 < x1 and y0 < y1):
        raise ValueError(f"empty pixel box x {x0}..{x1}, y {y0}..{y1}")
    return (
        border_fraction(x0, width),
        border_fraction(x1, width),
        border_fraction(y0, height),
        border_fraction(y1, height),
    )


def border_to_pixels(
    border: tuple[float, float, float, float], width: int, height: int
) -> tuple[int, int, int, int]:
    """The pixel box (x0, x1, y0, y1) Blender renders for `border`, y from the bottom."""
    import numpy as np  # heavy (≈0.1 s): not on the way to starting a render's Blender

    f = np.float32
    x0, x1, y0, y1 = (f(v) for v in border)
    return (
        int(x0 * f(width)),
        int(x1 * f(width)),
        int(y0 * f(height)),
        int(y1 * f(height)),
    )


def request_dict(msg: BaseModel, request_id: int) -> dict[str, Any]:
    """The JSON object sent to the worker; the id comes back in the reply."""
    d = msg.model_dump(mode="json")
    d["id"] = request_id
    return d
