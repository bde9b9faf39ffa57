"""`wanhe estimate`: the probe renders of a Blender job, and the estimate made from them.

The probe (what :mod:`wanhe.estimate.costmodel` fits) runs in one warm Blender process with
the job's thread count and samples: an 8×8 render of the anchor frame (the middle sample
frame) that loads the scene, two more that measure the fixed cost of a render and the timing
noise, then on every sample frame the diagonal cells of a G×G grid at the job's resolution
(border crops, as tiles render; shifted by one column per frame); the image work (OIDN,
preview) is timed on the 8×8 image and on a frame-sized one tiled from a cell. The
measurements are cached per scene content and spec, like the `--quality` probe, so asking
again (other prices, farm, deadline) renders nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wanhe.estimate.costmodel import (
    FrameProbe,
    JobEstimate,
    JobShape,
    ProbeSet,
    estimate_job,
    probe_grid,
    sample_frames,
)
from wanhe.estimate.deadline import DeadlineAnswer, farm_wall_s, machines_for_deadline
from wanhe.localrender import Prepared
from wanhe.render.spec import RenderOptions, RenderSpec, SceneFacts

__all__ = ["EstimateReport", "Farm", "Prices", "estimate_render", "frame_core_s", "job_shape",
           "kept_estimate", "prepare_spec"]

PROBE_VERSION = 5  # bump when the probe's plan changes: older cached probes are not reused
SAMPLE_FRAMES = 5
TINY = (8, 8)  # a render this small is all fixed cost


@dataclass(frozen=True)
class Farm:
    machines: int
    cores: int


@dataclass(frozen=True)
class Prices:
    core_hour: float = 0.0
    gpu_hour: float = 0.0


@dataclass
class EstimateReport:
    """Everything `wanhe estimate` prints (``to_dict`` is its --json)."""

    spec: RenderSpec
    estimate: JobEstimate
    probe: ProbeSet
    cached: bool
    farm: Farm
    wall_s: float
    prices: Prices
    deadline_s: float | None = None
    deadline: DeadlineAnswer | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def cost(self) -> tuple[float, float, float]:
        """(estimate, low, high) at the core-hour price; GPU-hours are 0 on CPU renders."""
        price = self.prices.core_hour
        e = self.estimate
        return e.core_hours * price, e.low_core_hours * price, e.high_core_hours * price

    def to_dict(self) -> dict[str, Any]:
        e = self.estimate
        cost, low, high = self.cost
        probe_core_h = self.probe.probe_core_s / 3600
        return {
            "scene": self.spec.scene,
            "frames": len(self.spec.frames),
            "size": [self.spec.width, self.spec.height],
            "tiles": [self.spec.tiles_x, self.spec.tiles_y],
            "samples": self.spec.samples,
            "core_hours": e.core_hours,
            "core_hours_range": [e.low_core_hours, e.high_core_hours],
            "sigma_rel": e.sigma_rel,
            "sigma_parts": e.parts,
            "gpu_hours": 0.0,
            "breakdown_core_hours": {
                "render": e.breakdown.render_core_s / 3600,
                "image": e.breakdown.image_core_s / 3600,
                "scene_load": e.breakdown.load_core_s / 3600,
            },
            "model": e.form(),
            "fixed_s": e.fixed_s,
            "frame_work_s": e.frame_work_s,
            "cost": cost,
            "cost_range": [low, high],
            "prices": asdict(self.prices),
            "farm": asdict(self.farm),
            "wall_s": self.wall_s,
            "deadline_s": self.deadline_s,
            "deadline": None if self.deadline is None else {
                **asdict(self.deadline),
                "explanation": self.deadline.explain(self.deadline_s or 0.0),
            },
            "probe": {
                "cached": self.cached,
                "frames": [f.frame for f in self.probe.frames],
                "cells_per_frame": len(self.probe.frames[0].cell_cpu_s),
                "share_of_frame": sum(self.probe.frames[0].cell_pixels)
                / self.probe.frames[0].frame_pixels,
                "core_hours": probe_core_h,
                "share_of_job": probe_core_h / e.core_hours if e.core_hours > 0 else 0.0,
                "load_s": self.probe.load_s,
                "contention": self.probe.contention,
            },
            "notes": self.notes,
            "frame_core_s": {str(f): s for f, s in frame_core_s(e).items()},
        }


def frame_core_s(estimate: JobEstimate) -> dict[int, float]:
    """Each frame's share of the job's core-seconds: its render tasks and image work, the
    scene loads spread evenly, so that the frames add up to the job's estimate (what a job
    keeps to be compared with its frames' actual cost as they finish)."""
    raw = {frame: sum(tasks) + estimate.frame_image_core_s
           for frame, tasks in estimate.frame_task_core_s.items()}
    total = sum(raw.values())
    scale = estimate.core_hours * 3600 / total if total > 0 else 1.0
    return {frame: core_s * scale for frame, core_s in sorted(raw.items())}


def kept_estimate(data: dict[str, Any], made_by: str) -> dict[str, Any]:
    """What a job keeps of an estimate (`to_dict`'s): its core-hours, range and per-frame
    core-seconds, and who made it."""
    low, high = data["core_hours_range"]
    return {"core_hours": float(data["core_hours"]), "core_hours_range": [low, high],
            "frame_core_s": dict(data["frame_core_s"]), "made_by": made_by}


def prepare_spec(scene: Path, options: RenderOptions, blender: str | None, *,
                 process: Any = None, within: Path | None = None) -> Prepared:
    """Inspect the scene and resolve the job's spec, writing nothing (no output folder).
    `process`: the Blender to read it in (a farm's sandboxed one); `within`: the job's files."""
    from wanhe.blender.inspect import inspect_scene
    from wanhe.jobtypes.blender_render import facts_from_report, resolve_spec, scene_notes
    from wanhe.storage import sha256_file

    scene = scene.expanduser().resolve()
    report = inspect_scene(scene, blender=blender, process=process, within=within)
    facts: SceneFacts = facts_from_report(report).model_copy(update={"path": str(scene)})
    spec = resolve_spec(options, facts)
    if spec.engine != "CYCLES":
        raise ValueError(f"wanhe estimate models Cycles' render time; this scene renders with "
                         f"{spec.engine} — switch it to Cycles")
    return Prepared(spec=spec, facts=facts, missing=[str(p) for p in report.missing],
                    dependencies=[], scene_digest=sha256_file(scene),
                    notes=scene_notes(options, facts))


def job_shape(spec: RenderSpec) -> JobShape:
    """Per frame, the pixels and sample share of each render task the job compiles to."""
    from wanhe.plan.samples import plan_sample_chunks
    from wanhe.plan.tiles import plan_tiles

    tiles = plan_tiles(spec.width, spec.height, spec.grid, spec.overscan)
    chunks = (plan_sample_chunks(spec.samples, spec.sample_chunks)
              if spec.samples is not None and spec.sample_chunks > 1 else [])
    shares = [c.length / (spec.samples or 1) for c in chunks] or [1.0]
    pixels: list[int] = []
    share: list[float] = []
    for tile in tiles:
        width, height = tile.render_size
        for s in shares:
            pixels.append(width * height)
            share.append(s)
    return JobShape(frames=tuple(spec.frames), task_pixels=tuple(pixels),
                    pixel_share=tuple(share), frame_pixels=spec.width * spec.height,
                    threads=spec.threads)


def estimate_render(
    prepared: Prepared, *, farm: Farm, prices: Prices, blender: str | None = None,
    cache_dir: Path | None = None, deadline_s: float | None = None,
    process: Any = None, renders: Path | None = None,
    on_probe: Callable[[], None] | None = None,
) -> EstimateReport:
    """Probe (or reuse the cached probe), fit, scale to the job, simulate it on ``farm``.
    `process`, `renders`: the Blender to probe in and the folder it writes its renders to
    (a farm's sandbox and its scratch folder); else a fresh one and a temporary folder.
    `on_probe`: told just before a probe renders (not when the cached one is used)."""
    spec = prepared.spec
    cache = None if cache_dir is None else cache_dir / f"estimate-{_probe_key(prepared)}.json"
    probe = _read_probe(cache)
    cached = probe is not None
    if probe is None:
        if on_probe is not None:
            on_probe()
        probe = run_probe(spec, blender, process=process, renders=renders)
        if cache is not None:
            from wanhe.imaging.atomic import atomic_write

            cache.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(cache) as tmp:
                tmp.write_text(json.dumps(asdict(probe)))
    shape = job_shape(spec)
    workers = min(farm.machines, len(spec.frames) * len(shape.task_pixels))
    estimate = estimate_job(probe, shape, workers=workers)
    tasks = estimate.frame_task_core_s  # core-seconds taken as the same on any thread count
    wall = farm_wall_s(tasks, machines=farm.machines, cores=farm.cores,
                       image_tail_s=estimate.frame_image_core_s, load_s=probe.load_s)
    answer = None
    if deadline_s is not None:
        answer = machines_for_deadline(tasks, cores=farm.cores, seconds=deadline_s,
                                       image_tail_s=estimate.frame_image_core_s,
                                       load_s=probe.load_s)
    return EstimateReport(spec=spec, estimate=estimate, probe=probe, cached=cached, farm=farm,
                          wall_s=wall, prices=prices, deadline_s=deadline_s, deadline=answer,
                          notes=list(prepared.notes))


def run_probe(spec: RenderSpec, blender: str | None, *, process: Any = None,
              renders: Path | None = None) -> ProbeSet:
    """Render the probe (see the module docstring) and measure the image work. `process`
    renders into `renders` (a sandboxed Blender and its scratch folder); the image work
    writes into a temporary folder of this process's own."""
    from wanhe.blender.runner import BlenderProcess
    from wanhe.plan.tiles import parse_grid, plan_tiles

    frames = sample_frames(spec.frames, SAMPLE_FRAMES)
    anchor = frames[len(frames) // 2]
    g = probe_grid(len(spec.frames), len(frames), spec.width, spec.height)
    grid = plan_tiles(spec.width, spec.height, parse_grid(f"{g}x{g}"), 0)
    with tempfile.TemporaryDirectory(prefix="wanhe-estimate-") as tmp, \
            contextlib.ExitStack() as stack:
        if process is None:
            process = stack.enter_context(BlenderProcess(blender))
        own = Path(tmp)
        work = renders if renders is not None else own
        first = _render(process, spec, anchor, work / "load.exr", size=TINY)
        repeats = [_render(process, spec, anchor, work / f"fixed{k}.exr", size=TINY)
                   for k in range(2)]
        timed = [first, *repeats]
        probed: list[FrameProbe] = []
        cell_exr = work / "none.exr"
        for k, frame in enumerate(frames):
            walls: list[float] = []
            pixels: list[int] = []
            # the diagonal shifted by k: every row and column once, other cells per frame
            for cell in (t for t in grid if (t.column - t.row) % g == k % g):
                cell_exr = work / f"f{frame}_c{cell.index}.exr"
                timing = _render(process, spec, frame, cell_exr, cell=cell)
                timed.append(timing)
                walls.append(timing.cpu_s)
                pixels.append(timing.pixels)
            probed.append(FrameProbe(frame, spec.width * spec.height, tuple(pixels),
                                     tuple(walls)))
        _image_work(work / "fixed0.exr", own)  # warm-up: OIDN's first call sets itself up
        tiny_image = _image_work(work / "fixed0.exr", own)
        full_exr = _full_size(cell_exr, spec.width, spec.height, own / "full.exr")
        full_image = _image_work(full_exr, own)
        blender_cpu = _process_cpu(process.pid)  # start-up and scene load included
    fixed = sum(t.cpu_s for t in repeats) / len(repeats)
    full_px = spec.width * spec.height
    per_px = max(full_image - tiny_image, 0.0) / max(full_px - TINY[0] * TINY[1], 1)
    cpu = sum(t.cpu_s for t in timed)
    contention = spec.threads * sum(t.wall_s for t in timed) / max(cpu, 1e-9)
    return ProbeSet(
        anchor=anchor, fixed_s=fixed,
        repeat_rel=abs(repeats[0].cpu_s - repeats[1].cpu_s) / max(fixed, 1e-9),
        frames=tuple(probed), threads=spec.threads, load_s=max(first.cpu_s - fixed, 0.0),
        image_fixed_s=tiny_image, image_s_per_pixel=per_px,
        probe_core_s=max(blender_cpu, cpu) + 2 * tiny_image + full_image,
        contention=contention,
    )


def _process_cpu(pid: int | None) -> float:
    """CPU seconds a running process has used (Linux /proc; 0 where it cannot be read)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


@dataclass(frozen=True)
class _Timing:
    wall_s: float
    cpu_s: float
    pixels: int


def _render(process: Any, spec: RenderSpec, frame: int, out: Path, *,
            size: tuple[int, int] | None = None, cell: Any = None) -> _Timing:
    """Blender's wall and CPU seconds and the pixels of one probe render: the whole frame at
    ``size``, or one ``cell`` of it at the job's resolution (a border crop, as a tile renders)."""
    from wanhe.blender.protocol import RenderRequest

    request = RenderRequest(
        scene=spec.scene, frame=frame, output=str(out), samples=spec.samples, seed=spec.seed,
        camera=spec.camera, threads=spec.threads, denoise_passes=spec.denoise,
        # a cell at the job's size, set outright (as a story's shots set the film's size,
        # which need not be the scene's)
        resolution=size or (spec.width, spec.height), resolution_percentage=100,
        border=None if cell is None else cell.border(spec.width, spec.height),
        expected_size=None if cell is None else cell.render_size,
    )
    reply = process.render(request)
    if not reply.ok or not out.exists():
        raise RuntimeError(f"the estimate's probe render of frame {frame} failed: "
                           f"{reply.error or 'no output written'}")
    return _Timing(float(reply.wall_s), float(reply.cpu_s), int(reply.width * reply.height))


def _full_size(cell: Path, width: int, height: int, out: Path) -> Path:
    """A frame-sized EXR made by repeating a probe cell's passes: OIDN's and the preview's
    cost depends on the pixel count, not on what the pixels show, and this times them at
    the job's size without rendering a whole frame."""
    import numpy as np

    from wanhe.imaging.exr import Frame, read_layers, write_layers

    source = read_layers(cell)
    reps = (-(-height // source.height), -(-width // source.width))
    channels = {name: np.ascontiguousarray(np.tile(array, reps)[:height, :width])
                for name, array in source.channels.items()}
    write_layers(Frame(width, height, channels, dict(source.attributes),
                       dict(source.color_spaces)), out)
    return out


def _image_work(exr: Path, work: Path) -> float:
    """CPU seconds of a frame's image tasks on one probe EXR (OIDN, then the PNG preview);
    assembling one tile is a copy, too small to count."""
    from wanhe.imaging.denoise import denoise_frame
    from wanhe.imaging.preview import write_preview_png

    started = time.process_time()
    denoised = work / "denoised.exr"
    denoise_frame(exr, denoised)
    write_preview_png(denoised, work / "preview.png")
    return time.process_time() - started


def _probe_key(prepared: Prepared) -> str:
    spec = prepared.spec
    basis = (f"{PROBE_VERSION}:{prepared.scene_digest}:{spec.samples}:{spec.width}x"
             f"{spec.height}:{spec.threads}:{spec.camera}:{spec.denoise}:"
             f"{sample_frames(spec.frames, SAMPLE_FRAMES)}:{len(spec.frames)}")
    return hashlib.sha256(basis.encode()).hexdigest()


def _read_probe(path: Path | None) -> ProbeSet | None:
    if path is None:
        return None
    try:
        data = json.loads(path.read_text())
        frames = tuple(
            FrameProbe(int(f["frame"]), int(f["frame_pixels"]), tuple(f["cell_pixels"]),
                       tuple(f["cell_cpu_s"]))
            for f in data.pop("frames")
        )
        return ProbeSet(frames=frames, **data)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # none yet, or unreadable: probe again
