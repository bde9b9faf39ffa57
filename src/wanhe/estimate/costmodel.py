"""How much a Blender job costs, from a few probe renders: the fitted model and its uncertainty.

Costs are CPU seconds: what a render task bills on a machine whose cores it has to itself
(cores × wall = CPU seconds when Cycles keeps its threads busy). Wall clock is not used to
fit: on a shared machine it measures the other tenants (here, a 2-core machine under load
8–15 gave a frame 8.4–9.4 s of wall for 2.1–2.4 s of CPU, while the CPU seconds of the same
frame and of its cells agreed within 10 %). The form, per scene, for one render task at the
job's samples and resolution::

    cpu(frame, task) = a + w(frame) · pixels(task) / pixels(frame) · samples share(task)

``a`` is what every render pays whatever its size (syncing the frame's scene, building its
BVH, writing the EXR): measured as the CPU of an 8×8-pixel render of the anchor frame (its
pixel work is nil), twice, after the render that loads the scene. ``w(frame)`` is the
frame's pixel work at the job's own samples and resolution: each sample frame renders the
diagonal cells of a G×G grid at full resolution (Blender border crops, like tiles; the k-th
sample frame takes the diagonal shifted by k columns, so the frames see different cells), so
adaptive sampling and the pixel footprint are exactly the job's, and
``w = Σ (cell cpu − a) · pixels(frame) / Σ pixels(cell)``. Frames between sample frames get
``w`` interpolated linearly by frame number. A whole job's core-seconds are
``Σ_frames Σ_tasks cpu`` for the renders, plus the image work per frame (OIDN, preview:
``c + d · pixels``, timed at 8×8 and at the frame's size) and one scene load per worker. The probe
also measures how much of its cores it got (``contention`` = threads × wall / CPU): wall
times on this machine are that much longer.

The uncertainty is the root-sum-square of four relative parts, and the range is ±2σ:

* ``spatial``: each diagonal is a sample of G of the G² cells: the spread of the cells' work
  per pixel, / √G, with the finite-population correction; RMS over the sample frames, / √K
  (K frames, different cells);
* ``noise``: timing noise (the repeated fixed render's relative spread), averaged over every
  cell rendered;
* ``interpolation``: leave-one-out over the interior sample frames (each predicted from its
  neighbours: a conservative bound, the gaps are twice the real ones), weighted by the share
  of frames that were not rendered;
* ``floor``: 5 %, what a probe on one machine cannot see (machine load, per-task overhead).

Pure: no I/O. The probe renders that feed it are made in :mod:`wanhe.runs.estimate`.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "FLOOR_SIGMA",
    "CostBreakdown",
    "FrameProbe",
    "JobEstimate",
    "JobShape",
    "ProbeSet",
    "estimate_job",
    "interpolate",
    "probe_grid",
    "sample_frames",
]

FLOOR_SIGMA = 0.05
RANGE_SIGMAS = 2.0
PROBE_BUDGET = 0.02  # the probe renders about this share of the job's pixel work
MIN_GRID, MAX_GRID = 2, 4  # the diagonal of a G×G grid: G renders of 1/G² of the frame
MIN_CELL = 32  # pixels: smaller cells time little but noise (adaptive sampling, set-up)


def probe_grid(job_frames: int, sample_count: int, width: int, height: int) -> int:
    """G: each sample frame renders 1/G of its pixels, so that the probe's pixel work is
    about :data:`PROBE_BUDGET` of the job's; G in [2, 4], cells at least 32 pixels a side
    (1 for a frame too small to split)."""
    wanted = math.ceil(sample_count / (PROBE_BUDGET * max(job_frames, 1)))
    fits = min(width, height) // MIN_CELL
    return max(1, min(max(wanted, MIN_GRID), MAX_GRID, fits))


def sample_frames(frames: Sequence[int], count: int = 5) -> list[int]:
    """``count`` frames spread evenly over ``frames`` (its first and last included)."""
    ordered = sorted(set(frames))
    if not ordered:
        raise ValueError("no frames to sample")
    if count >= len(ordered):
        return ordered
    if count == 1:
        return [ordered[len(ordered) // 2]]
    picks = {ordered[round(i * (len(ordered) - 1) / (count - 1))] for i in range(count)}
    return sorted(picks)


def interpolate(known: Sequence[tuple[int, float]], frame: int) -> float:
    """Piecewise-linear in frame number between ``known`` (frame, value); flat beyond."""
    ordered = sorted(known)
    frames = [f for f, _ in ordered]
    i = bisect_right(frames, frame)
    if i == 0:
        return ordered[0][1]
    if i == len(ordered):
        return ordered[-1][1]
    (f0, v0), (f1, v1) = ordered[i - 1], ordered[i]
    return v0 + (v1 - v0) * (frame - f0) / (f1 - f0)


@dataclass(frozen=True)
class FrameProbe:
    """One sample frame's diagonal cells: each cell's pixels and Blender's CPU seconds."""

    frame: int
    frame_pixels: int
    cell_pixels: tuple[int, ...]
    cell_cpu_s: tuple[float, ...]

    def work_s(self, fixed_s: float) -> float:
        """The frame's pixel work: the cells' CPU less their fixed part, scaled by area."""
        variable = sum(max(w - fixed_s, 0.0) for w in self.cell_cpu_s)
        return max(variable * self.frame_pixels / sum(self.cell_pixels), 1e-9)

    def spatial_rel(self, fixed_s: float) -> float:
        """Relative standard error of ``work_s`` from sampling G of the G² cells."""
        g = len(self.cell_cpu_s)
        if g < 2:
            return 0.0
        rates = [max(w - fixed_s, 0.0) / p
                 for w, p in zip(self.cell_cpu_s, self.cell_pixels, strict=True)]
        mean = sum(rates) / g
        if mean <= 0:
            return 0.0
        sd = math.sqrt(sum((r - mean) ** 2 for r in rates) / (g - 1))
        population = g * g
        return sd / mean / math.sqrt(g) * math.sqrt(1 - g / population)


@dataclass(frozen=True)
class ProbeSet:
    """What the probe measured for one scene at the job's samples and resolution."""

    anchor: int  # the frame the fixed cost and the load were measured on
    fixed_s: float  # a: a render's CPU seconds whatever its size (mean of the repeats)
    repeat_rel: float  # relative spread of the repeated fixed render (timing noise)
    frames: tuple[FrameProbe, ...]
    threads: int  # threads every probe render (and the job's render tasks) used
    load_s: float  # the first render's extra CPU: loading the scene into a worker
    image_fixed_s: float  # image work (OIDN + preview) of a frame, whatever its size
    image_s_per_pixel: float  # ... and per pixel (1 core)
    probe_core_s: float  # what the probe itself cost: its CPU seconds (Blender + image work)
    contention: float = 1.0  # threads × wall / CPU of the probe renders (1: cores to itself)


@dataclass(frozen=True)
class JobShape:
    """The job to price: its frames and, per frame, the pixels each render task draws."""

    frames: tuple[int, ...]
    task_pixels: tuple[int, ...]  # one entry per render task of a frame (tiles, chunks)
    pixel_share: tuple[float, ...]  # each task's share of the frame's samples (chunks: < 1)
    frame_pixels: int  # the assembled frame's pixels (image work)
    threads: int  # cores each render task is given


@dataclass(frozen=True)
class CostBreakdown:
    render_core_s: float
    image_core_s: float
    load_core_s: float

    @property
    def total_core_s(self) -> float:
        return self.render_core_s + self.image_core_s + self.load_core_s


@dataclass(frozen=True)
class JobEstimate:
    """A job's core-hours with its range, and the per-frame costs the simulator needs."""

    core_hours: float
    low_core_hours: float
    high_core_hours: float
    sigma_rel: float
    parts: dict[str, float]  # each relative σ part (spatial, noise, interpolation, floor)
    breakdown: CostBreakdown
    fixed_s: float
    frame_work_s: dict[int, float]  # the sample frames' pixel work w (CPU seconds)
    frame_task_core_s: dict[int, tuple[float, ...]]  # frame → its render tasks' core-seconds
    frame_image_core_s: float  # image work per frame (1 core)
    load_s: float

    def form(self) -> str:
        """The fitted model in one line, with its numbers."""
        works = list(self.frame_work_s.values())
        return (f"render CPU = {self.fixed_s:.3f} s + w(frame) × task pixels / frame pixels; "
                f"w = {min(works):.3g}–{max(works):.3g} s over {len(works)} sample frames "
                f"(±{RANGE_SIGMAS:g}σ = ±{100 * RANGE_SIGMAS * self.sigma_rel:.0f} %)")


def estimate_job(probe: ProbeSet, job: JobShape, workers: int = 1) -> JobEstimate:
    """Scale the probe to ``job`` (see the module docstring); ``workers`` load the scene."""
    if not job.frames:
        raise ValueError("the job has no frames")
    if not probe.frames:
        raise ValueError("the probe rendered no sample frames")
    fixed = probe.fixed_s
    works = [(f.frame, f.work_s(fixed)) for f in probe.frames]
    render_core_s = 0.0
    per_frame: dict[int, tuple[float, ...]] = {}
    for frame in job.frames:
        work = interpolate(works, frame)
        costs = tuple(
            fixed + work * pixels / job.frame_pixels * share
            for pixels, share in zip(job.task_pixels, job.pixel_share, strict=True)
        )
        per_frame[frame] = costs
        render_core_s += sum(costs)
    image_frame = probe.image_fixed_s + probe.image_s_per_pixel * job.frame_pixels
    breakdown = CostBreakdown(
        render_core_s=render_core_s,
        image_core_s=image_frame * len(job.frames),
        load_core_s=probe.load_s * workers,
    )
    parts = _sigma_parts(probe, works, job)
    sigma = math.sqrt(sum(v * v for v in parts.values()))
    total_h = breakdown.total_core_s / 3600
    return JobEstimate(
        core_hours=total_h,
        low_core_hours=total_h * max(0.0, 1 - RANGE_SIGMAS * sigma),
        high_core_hours=total_h * (1 + RANGE_SIGMAS * sigma),
        sigma_rel=sigma,
        parts=parts,
        breakdown=breakdown,
        fixed_s=fixed,
        frame_work_s=dict(works),
        frame_task_core_s=per_frame,
        frame_image_core_s=image_frame,
        load_s=probe.load_s,
    )


def _sigma_parts(
    probe: ProbeSet, works: list[tuple[int, float]], job: JobShape
) -> dict[str, float]:
    spatial = math.sqrt(sum(f.spatial_rel(probe.fixed_s) ** 2 for f in probe.frames)
                        / len(probe.frames)) / math.sqrt(len(probe.frames))
    cells = sum(len(f.cell_cpu_s) for f in probe.frames)
    noise = probe.repeat_rel / math.sqrt(max(cells, 1))
    interp = 0.0
    if len(works) >= 3:
        errors = []
        for i in range(1, len(works) - 1):
            predicted = interpolate(works[:i] + works[i + 1:], works[i][0])
            errors.append((predicted - works[i][1]) / works[i][1])
        unsampled = max(1 - len(works) / len(job.frames), 0.0)
        interp = math.sqrt(sum(e * e for e in errors) / len(errors)) * unsampled
    return {"spatial": spatial, "noise": noise, "interpolation": interp, "floor": FLOOR_SIGMA}
