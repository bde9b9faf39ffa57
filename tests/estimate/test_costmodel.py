"""The cost model: a frame's work is recovered from its diagonal cells, the job total scales
the probe as the stated form says, and the stated range widens when the cells, the timing
or the frames disagree."""

from __future__ import annotations

import pytest

from wanhe.estimate.costmodel import (
    FLOOR_SIGMA,
    FrameProbe,
    JobShape,
    ProbeSet,
    estimate_job,
    interpolate,
    probe_grid,
    sample_frames,
)

FIXED = 0.05  # a: CPU seconds of any render
FRAME_PX = 40_000


def _cells(work: float, g: int = 4, spread: float = 0.0) -> FrameProbe:
    """The diagonal of a g×g grid on a frame of `work` CPU seconds of pixel work; `spread`
    makes the cells' cost per pixel differ (alternately above and below the mean)."""
    px = FRAME_PX // (g * g)
    cell_work = [work / (g * g) * (1 + spread * (-1) ** i) for i in range(g)]
    return FrameProbe(0, FRAME_PX, (px,) * g, tuple(FIXED + w for w in cell_work))


def _probe(work_of: dict[int, float], spread: float = 0.0, noise: float = 0.0) -> ProbeSet:
    frames = []
    for frame, work in sorted(work_of.items()):
        cells = _cells(work, spread=spread)
        frames.append(FrameProbe(frame, cells.frame_pixels, cells.cell_pixels, cells.cell_cpu_s))
    return ProbeSet(anchor=sorted(work_of)[len(work_of) // 2], fixed_s=FIXED, repeat_rel=noise,
                    frames=tuple(frames), threads=4, load_s=2.0, image_fixed_s=0.1,
                    image_s_per_pixel=1e-6, probe_core_s=10.0)


def _job(frames: range, tiles: int = 1, chunks: int = 1) -> JobShape:
    return JobShape(frames=tuple(frames), task_pixels=(FRAME_PX // tiles,) * tiles * chunks,
                    pixel_share=(1 / chunks,) * tiles * chunks, frame_pixels=FRAME_PX, threads=4)


def test_frame_work_is_the_cells_less_their_fixed_cost_scaled_by_area() -> None:
    assert _cells(8.0).work_s(FIXED) == pytest.approx(8.0)
    assert _cells(8.0, spread=0.3).work_s(FIXED) == pytest.approx(8.0)
    assert _cells(8.0).spatial_rel(FIXED) == 0.0
    assert _cells(8.0, spread=0.3).spatial_rel(FIXED) > 0.1


def test_sample_frames_spread_over_the_range() -> None:
    assert sample_frames(range(1, 101), 5) == [1, 26, 51, 75, 100]
    assert sample_frames([3, 4], 5) == [3, 4]
    assert sample_frames(range(1, 11), 1) == [6]


def test_interpolate_is_linear_between_and_flat_beyond() -> None:
    known = [(1, 1.0), (11, 3.0)]
    assert interpolate(known, 6) == pytest.approx(2.0)
    assert interpolate(known, -5) == 1.0
    assert interpolate(known, 50) == 3.0


def test_probe_grid_keeps_the_probe_small_and_its_cells_wide_enough() -> None:
    assert probe_grid(1000, 5, 1920, 1080) == 2  # a long job: half of each sample frame
    assert probe_grid(30, 5, 1920, 1080) == 4  # a short one: a quarter (at most)
    assert probe_grid(30, 5, 96, 64) == 2  # 32-pixel cells at least
    assert probe_grid(30, 5, 40, 30) == 1  # too small to split: whole frames


def test_job_total_is_the_stated_form() -> None:
    estimate = estimate_job(_probe({1: 8.0, 50: 8.0, 100: 8.0}), _job(range(1, 101)))
    expected = 100 * (FIXED + 8.0) + 100 * (0.1 + 1e-6 * FRAME_PX) + 2.0
    assert estimate.breakdown.total_core_s == pytest.approx(expected)
    # exact cells, flat frames, no noise: only the floor is left in the range
    assert estimate.sigma_rel == pytest.approx(FLOOR_SIGMA)
    assert estimate.low_core_hours == pytest.approx(estimate.core_hours * (1 - 2 * FLOOR_SIGMA))
    assert "w(frame)" in estimate.form()


def test_tiles_and_sample_chunks_pay_the_fixed_cost_each() -> None:
    probe = _probe({1: 8.0, 10: 8.0})
    whole = estimate_job(probe, _job(range(1, 11)))
    tiled = estimate_job(probe, _job(range(1, 11), tiles=4))
    chunked = estimate_job(probe, _job(range(1, 11), chunks=2))
    assert tiled.breakdown.render_core_s - whole.breakdown.render_core_s == pytest.approx(
        10 * 3 * FIXED)
    assert chunked.breakdown.render_core_s - whole.breakdown.render_core_s == pytest.approx(
        10 * FIXED)


def test_growing_cost_is_followed_across_frames() -> None:
    estimate = estimate_job(_probe({f: 0.1 * f for f in (1, 25, 50, 75, 100)}),
                            _job(range(1, 101)))
    costs = estimate.frame_task_core_s
    assert costs[100][0] > 10 * costs[5][0]
    truth = sum(FIXED + 0.1 * f for f in range(1, 101))
    assert estimate.breakdown.render_core_s == pytest.approx(truth, rel=0.01)


def test_uneven_cells_frames_and_noise_widen_the_range() -> None:
    frames = (1, 25, 50, 75, 100)
    flat = estimate_job(_probe({f: 8.0 for f in frames}), _job(range(1, 101)))
    bumpy = estimate_job(_probe({1: 8.0, 25: 24.0, 50: 8.0, 75: 24.0, 100: 8.0}),
                         _job(range(1, 101)))
    patchy = estimate_job(_probe({f: 8.0 for f in frames}, spread=0.5), _job(range(1, 101)))
    noisy = estimate_job(_probe({f: 8.0 for f in frames}, noise=0.2), _job(range(1, 101)))
    assert bumpy.parts["interpolation"] > 0.5
    assert patchy.parts["spatial"] > 0.05
    assert noisy.parts["noise"] > 0.02
    for wider in (bumpy, patchy, noisy):
        assert wider.sigma_rel > flat.sigma_rel
        assert wider.high_core_hours - wider.low_core_hours > (
            flat.high_core_hours - flat.low_core_hours)
