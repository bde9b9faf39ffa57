"""What the farm will do with the panel's settings, before Submit: frames, tiles, tasks, and
an estimate of the core-hours from this file's last finished job on the farm. Pure.

The frame and tile syntax is the farm's own code (`wanhe.plan.frames`, `wanhe.plan.tiles`,
which the add-on's zip carries: `shared.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .shared import frames as farm_frames
from .shared import tiles as farm_tiles

QUALITY_PRESETS = ("draft", "preview", "final")


class PlanError(ValueError):
    """A setting in the panel the farm would refuse, with the fix."""


def parse_frames(spec: str) -> list[int]:
    """`1-5x2,10` -> [1, 3, 5, 10] (sorted, each once): the farm's own parser."""
    try:
        return farm_frames.parse_frames(spec)
    except farm_frames.FrameSpecError as exc:
        raise PlanError(str(exc)) from None


def parse_tiles(spec: str) -> tuple[int, int]:
    """`4x2` -> (4 columns, 2 rows): the farm's own parser."""
    try:
        grid = farm_tiles.parse_grid(spec)
        farm_tiles.check_tile_count(grid)  # the frame's size is checked with the plan
    except farm_tiles.TileSpecError as exc:
        raise PlanError(str(exc)) from None
    return grid.columns, grid.rows


@dataclass
class Settings:
    """The panel's settings, as plain values (the Blender properties, read once)."""

    scene_start: int
    scene_end: int
    scene_step: int = 1
    frames: str = ""  # empty: the scene's range
    tiles: str = "1x1"
    sample_chunks: int = 1
    split: int = 0  # > 0: spread each frame over this many workers (the farm picks how)
    quality_mode: str = "SCENE"  # SCENE, SAMPLES, PRESET
    samples: int = 64
    quality: str = "preview"
    scene_samples: int | None = None
    denoise: bool = True
    qc: bool = False
    video: bool = False
    width: int = 1920
    height: int = 1080
    engine: str = "CYCLES"


@dataclass
class Plan:
    frames: list[int]
    columns: int
    rows: int
    chunks: int
    samples: int | None
    render_tasks: int
    total_tasks: int
    problems: list[str] = field(default_factory=list)
    split: int = 0

    @property
    def tiles(self) -> int:
        return self.columns * self.rows


def frames_of(settings: Settings) -> list[int]:
    if settings.frames.strip():
        frames = parse_frames(settings.frames)
        outside = [f for f in frames if not settings.scene_start <= f <= settings.scene_end]
        if outside:
            raise PlanError(f"frame {outside[0]} is outside the scene's range "
                            f"{settings.scene_start}-{settings.scene_end} — pick frames inside "
                            "it, or change the scene's frame range")
        return frames
    return list(range(settings.scene_start, settings.scene_end + 1, max(1, settings.scene_step)))


def make_plan(settings: Settings) -> Plan:
    """The task counts the farm will compile (its `compile_render_job`), or PlanError."""
    frames = frames_of(settings)
    columns, rows = parse_tiles(settings.tiles)
    samples = (settings.samples if settings.quality_mode == "SAMPLES"
               else settings.scene_samples)
    chunks = max(1, settings.sample_chunks)
    problems: list[str] = []
    if settings.split > 0:  # the farm picks tiles × chunks = split parts per frame
        columns, rows, chunks = 1, 1, settings.split
        if settings.engine != "CYCLES" and settings.split > 1:
            problems.append(f"split needs Cycles; this scene uses {settings.engine} — set "
                            "split to 0")
    if settings.split <= 0 and settings.engine != "CYCLES" and (columns * rows > 1 or chunks > 1):
        problems.append(f"tiles and sample chunks need Cycles; this scene uses "
                        f"{settings.engine} — set tiles to 1x1 and sample chunks to 1")
    if settings.split <= 0 and chunks > 1 and samples is not None and chunks > samples:
        problems.append(f"{chunks} sample chunks need at least {chunks} samples")
    if columns > settings.width or rows > settings.height:
        problems.append(f"a {columns}x{rows} grid does not fit {settings.width}x"
                        f"{settings.height} pixels — use fewer tiles")
    render = len(frames) * columns * rows * chunks
    per_frame = 1 + (1 if settings.denoise and settings.engine == "CYCLES" else 0) + 1
    per_frame += 1 if settings.qc else 0
    total = render + len(frames) * per_frame + (1 if settings.video else 0)
    return Plan(frames, columns, rows, chunks, samples, render, total, problems,
                max(0, settings.split))


def format_frames(frames: list[int]) -> str:
    """[1,2,3,7] -> '1-3,7' (the farm's), cut to fit the panel."""
    text = farm_frames.format_frames(frames)
    return text if len(text) <= 40 else text[:39] + "…"


def describe(plan: Plan) -> list[str]:
    """Lines for the panel: what Submit will ask of the farm."""
    n = len(plan.frames)
    parts = [f"{n} frame{'s' if n != 1 else ''}"]
    if plan.split > 0:
        parts.append(f"split {plan.split} (the farm picks tiles or sample chunks)")
    elif plan.tiles > 1:
        parts.append(f"{plan.columns}x{plan.rows} tiles")
    if plan.chunks > 1 and plan.split <= 0:
        parts.append(f"{plan.chunks} sample chunks")
    lines = [" × ".join(parts) + f" = {plan.render_tasks} render task"
             + ("s" if plan.render_tasks != 1 else "")]
    lines.append(f"{plan.total_tasks} tasks in all (frames {format_frames(plan.frames)})")
    return lines


def options_body(settings: Settings) -> dict[str, Any]:
    """The `blender_render` options the farm takes (GET /api/job-types publishes the schema)."""
    options: dict[str, Any] = {
        "frames": settings.frames.strip() or None,
        "tiles": settings.tiles.strip() or "1x1",
        "sample_chunks": max(1, settings.sample_chunks),
        "denoise": settings.denoise,
        "qc": settings.qc,
        "video": settings.video,
    }
    if settings.split > 0:  # the farm refuses --split beside explicit tiles or chunks
        del options["tiles"], options["sample_chunks"]
        options["split"] = settings.split
    if settings.quality_mode == "SAMPLES":
        options["samples"] = settings.samples
    elif settings.quality_mode == "PRESET":
        options["quality"] = settings.quality
    return options  # no frames: the farm renders the scene's range with its step


def known_options(options: dict[str, Any], schema: dict[str, Any] | None) -> tuple[
    dict[str, Any], list[str]
]:
    """Options the farm's schema names, and the names it does not know (an older farm)."""
    if not schema or "properties" not in schema:
        return options, []
    props = schema["properties"]
    kept = {k: v for k, v in options.items() if k in props}
    return kept, sorted(k for k in options if k not in props)


def estimate_core_hours(plan: Plan, settings: Settings, past: dict[str, Any]) -> float | None:
    """Core-hours for this plan, scaled from a finished job of the same file: its core-hours
    per pixel-sample-frame (the `spec` of its detail), times this plan's. None when the past
    job says too little."""
    spec = past.get("spec") or {}
    spent = float(past.get("core_hours") or 0.0)
    frames = len(spec.get("frames") or [])
    width, height = spec.get("width"), spec.get("height")
    if spent <= 0 or not frames or not width or not height:
        return None
    past_samples = spec.get("samples") or 1
    samples = plan.samples or past_samples
    per_unit = spent / (frames * float(width) * float(height) * float(past_samples))
    return per_unit * len(plan.frames) * settings.width * settings.height * float(samples)
