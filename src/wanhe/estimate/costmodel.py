"""How much a Blender job costs, from a few probe renders: the fitted model and its uncertainty.

The form, per scene, for one render at the job's sample count on ``threads`` threads::

    wall(frame, pixels) = a + b(frame) · pixels

``a`` is what every render pays whatever its size (syncing the frame's scene, building its
BVH, writing the EXR); ``b(frame)`` is the cost of one pixel at the job's samples on that
frame. The probe renders every sample frame at the job's own samples (so adaptive sampling
behaves as in the job) but at a fraction of the pixels; the anchor frame (the middle sample)
is rendered at three sizes and ``a``, ``b`` are fitted by least squares on them. Each other
sample frame's ``b`` is ``(wall − a) / pixels``; frames between samples get ``b``
interpolated linearly by frame number. A whole job's core-seconds are then
``threads · Σ_frames Σ_tasks (a + b(frame) · pixels_task)`` for the renders, plus the image
work (assemble, OIDN, preview: metered at one core, linear in the frame's pixels) and one
scene load per worker.

The uncertainty is the root-sum-square of four relative parts, and the range is ±2σ:

* ``fit``: the anchor line's standard error at the full frame's pixels (extrapolation);
* ``noise``: the renders' own timing noise (the fit's residuals and a repeated render),
  averaged over the sample frames;
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
    "JobEstimate",
    "JobShape",
    "LineFit",
    "ProbeRender",
    "ProbeSet",
    "estimate_job",
    "fit_line",
    "interpolate",
    "probe_fraction",
    "sample_frames",
]

FLOOR_SIGMA = 0.05
RANGE_SIGMAS = 2.0
PROBE_BUDGET = 0.02  # the probe renders about this share of the job's pixel-work
MAX_PROBE_FRACTION = 0.25  # never more pixels than half the width and height
MIN_PROBE_WIDTH = 32  # the smallest anchor level is half the main level's width


@dataclass(frozen=True)
class ProbeRender:
    """One probe render: which frame, how many pixels, how long (Blender's wall seconds)."""

    frame: int
    pixels: int
    wall_s: float


@dataclass(frozen=True)
class LineFit:
    """``wall = fixed_s + per_pixel_s · pixels`` by least squares, with its covariance."""

    fixed_s: float
    per_pixel_s: float
    var_fixed: float
    var_slope: float
    cov: float
    residual_rel: float  # RMS of the residuals relative to the measured walls
    points: int

    def predict(self, pixels: float) -> tuple[float, float]:
        """(wall seconds, its standard error) at ``pixels``."""
        mean = self.fixed_s + self.per_pixel_s * pixels
        var = self.var_fixed + pixels * pixels * self.var_slope + 2 * pixels * self.cov
        return mean, math.sqrt(max(var, 0.0))


def fit_line(points: Sequence[tuple[float, float]]) -> LineFit:
    """Fit ``wall = a + b · pixels`` to (pixels, wall) points: at least two distinct sizes.

    ``a`` is kept in [0, the smallest wall] (a render cannot cost less than its fixed part,
    and timing noise must not make the fixed part negative); ``b`` is then refitted."""
    if len({p for p, _ in points}) < 2:
        raise ValueError("fitting the cost line needs renders at two or more sizes")
    n = len(points)
    xs = [float(p) for p, _ in points]
    ys = [float(w) for _, w in points]
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    fixed = my - slope * mx
    clamped = min(max(fixed, 0.0), min(ys))
    if clamped != fixed:  # refit the slope through the clamped intercept
        fixed = clamped
        slope = sum(x * (y - fixed) for x, y in zip(xs, ys, strict=True)) / sum(x * x for x in xs)
    slope = max(slope, 1e-15)
    residuals = [y - (fixed + slope * x) for x, y in zip(xs, ys, strict=True)]
    rel = math.sqrt(sum((r / y) ** 2 for r, y in zip(residuals, ys, strict=True)) / n)
    dof = n - 2
    # with two points the line is exact: no variance from the fit itself (noise covers it)
    s2 = sum(r * r for r in residuals) / dof if dof > 0 else 0.0
    var_slope = s2 / sxx
    var_fixed = s2 * (1.0 / n + mx * mx / sxx)
    cov = -mx * s2 / sxx
    return LineFit(fixed, slope, var_fixed, var_slope, cov, rel, n)


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


def probe_fraction(job_frames: int, sample_count: int, width: int) -> float:
    """The share of a frame's pixels each probe render takes: about :data:`PROBE_BUDGET` of
    the job in all, at most a quarter, never so few that the smallest level is narrower
    than :data:`MIN_PROBE_WIDTH` pixels."""
    levels = sample_count + 0.75  # the anchor adds a half and a quarter level
    wanted = PROBE_BUDGET * job_frames / levels
    floor = min(1.0, (2 * MIN_PROBE_WIDTH / max(width, 1)) ** 2)
    return min(max(wanted, floor), max(MAX_PROBE_FRACTION, floor))


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
class ProbeSet:
    """What the probe measured for one scene and sample count."""

    anchor: int  # the frame rendered at three sizes
    anchor_renders: tuple[ProbeRender, ...]  # the fit's points (after the load repeat)
    frame_renders: tuple[ProbeRender, ...]  # one per sample frame, all at the main level
    threads: int  # threads every probe render (and the job's render tasks) used
    load_s: float  # the first render's extra wall: loading the scene into a worker
    repeat_rel: float  # relative difference of the repeated smallest render (timing noise)
    image_s_per_pixel: float  # assemble + OIDN + preview wall per full-frame pixel (1 core)
    probe_core_s: float  # what the probe itself cost: threads × its renders' wall + image work


@dataclass(frozen=True)
class JobShape:
    """The job to price: its frames and, per frame, the pixels each render task draws."""

    frames: tuple[int, ...]
    task_pixels: tuple[int, ...]  # one entry per render task of a frame (tiles, chunks)
    pixel_share: tuple[float, ...]  # each task's share of the frame's samples (chunks: < 1)
    frame_pixels: int  # the assembled frame's pixels (image work)
    threads: int  # cores each render task is metered at


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
    parts: dict[str, float]  # each relative σ part (fit, noise, interpolation, floor)
    breakdown: CostBreakdown
    fit: LineFit
    frame_task_core_s: dict[int, tuple[float, ...]]  # frame → its render tasks' core-seconds
    frame_image_core_s: float  # image work per frame (1 core)
    load_s: float

    def form(self) -> str:
        """The fitted model in one line, in the job's terms."""
        return (f"render wall = {self.fit.fixed_s:.3f} s + {self.fit.per_pixel_s * 1e6:.3f} µs"
                f" × pixels × frame weight (at the job's samples, {self.fit.points} anchor "
                f"renders; ±{RANGE_SIGMAS:g}σ = ±{100 * RANGE_SIGMAS * self.sigma_rel:.0f} %)")


def estimate_job(probe: ProbeSet, job: JobShape, workers: int = 1) -> JobEstimate:
    """Scale the probe to ``job`` (see the module docstring); ``workers`` load the scene."""
    if not job.frames:
        raise ValueError("the job has no frames")
    fit = fit_line([(r.pixels, r.wall_s) for r in probe.anchor_renders])
    slopes = [(r.frame, max((r.wall_s - fit.fixed_s) / r.pixels, 1e-15))
              for r in probe.frame_renders]
    if not slopes:
        raise ValueError("the probe rendered no sample frames")
    scale = job.threads
    render_core_s = 0.0
    per_frame: dict[int, tuple[float, ...]] = {}
    for frame in job.frames:
        slope = interpolate(slopes, frame)
        costs = tuple(
            scale * (fit.fixed_s + slope * pixels * share)
            for pixels, share in zip(job.task_pixels, job.pixel_share, strict=True)
        )
        per_frame[frame] = costs
        render_core_s += sum(costs)
    image_frame = probe.image_s_per_pixel * job.frame_pixels
    breakdown = CostBreakdown(
        render_core_s=render_core_s,
        image_core_s=image_frame * len(job.frames),
        load_core_s=probe.load_s * job.threads * workers,
    )
    parts = _sigma_parts(probe, fit, slopes, job)
    sigma = math.sqrt(sum(v * v for v in parts.values()))
    total_h = breakdown.total_core_s / 3600
    return JobEstimate(
        core_hours=total_h,
        low_core_hours=total_h * max(0.0, 1 - RANGE_SIGMAS * sigma),
        high_core_hours=total_h * (1 + RANGE_SIGMAS * sigma),
        sigma_rel=sigma,
        parts=parts,
        breakdown=breakdown,
        fit=fit,
        frame_task_core_s=per_frame,
        frame_image_core_s=image_frame,
        load_s=probe.load_s,
    )


def _sigma_parts(
    probe: ProbeSet, fit: LineFit, slopes: list[tuple[int, float]], job: JobShape
) -> dict[str, float]:
    full = job.frame_pixels
    mean, sd = fit.predict(full)
    fit_rel = sd / mean if mean > 0 else 0.0
    # timing noise of one render, as a share of its per-pixel part, averaged over the samples
    main = probe.frame_renders[0]
    variable = max(main.wall_s - fit.fixed_s, 1e-9)
    noise_one = max(fit.residual_rel, probe.repeat_rel) * main.wall_s / variable
    noise_rel = noise_one / math.sqrt(len(slopes))
    interp_rel = 0.0
    if len(slopes) >= 3:
        errors = []
        for i in range(1, len(slopes) - 1):
            others = slopes[:i] + slopes[i + 1:]
            predicted = interpolate(others, slopes[i][0])
            errors.append((predicted - slopes[i][1]) / slopes[i][1])
        unsampled = 1 - len(slopes) / max(len(job.frames), 1)
        interp_rel = math.sqrt(sum(e * e for e in errors) / len(errors)) * max(unsampled, 0.0)
    return {"fit": fit_rel, "noise": noise_rel, "interpolation": interp_rel,
            "floor": FLOOR_SIGMA}
