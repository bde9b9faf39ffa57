"""The cost model: the line fit recovers a known render-time law, the job total scales the
probe correctly, and the stated range widens when the probe is noisy or frames vary."""

from __future__ import annotations

import math

import pytest

from wanhe.estimate.costmodel import (
    FLOOR_SIGMA,
    JobShape,
    ProbeRender,
    ProbeSet,
    estimate_job,
    fit_line,
    interpolate,
    probe_fraction,
    sample_frames,
)


def test_fit_recovers_fixed_and_per_pixel_cost() -> None:
    points = [(p, 0.4 + 2e-5 * p) for p in (1000, 2000, 4000)]
    fit = fit_line(points)
    assert fit.fixed_s == pytest.approx(0.4)
    assert fit.per_pixel_s == pytest.approx(2e-5)
    mean, sd = fit.predict(100_000)
    assert mean == pytest.approx(2.4)
    assert sd == pytest.approx(0.0, abs=1e-9)  # exact points: no fit error


def test_fit_error_grows_with_extrapolation() -> None:
    fit = fit_line([(1000, 0.43), (2000, 0.79), (4000, 1.62)])
    _, near = fit.predict(2000)
    _, far = fit.predict(100_000)
    assert 0 < near < far
    assert fit.residual_rel > 0


def test_fit_never_gives_a_negative_fixed_cost() -> None:
    fit = fit_line([(1000, 0.1), (2000, 0.35), (4000, 0.9)])  # intercept would be < 0
    assert fit.fixed_s == 0.0
    assert fit.per_pixel_s > 0


def test_fit_needs_two_sizes() -> None:
    with pytest.raises(ValueError, match="two or more sizes"):
        fit_line([(1000, 0.5), (1000, 0.6)])


def test_sample_frames_spread_over_the_range() -> None:
    assert sample_frames(range(1, 101), 5) == [1, 26, 51, 75, 100]
    assert sample_frames([3, 4], 5) == [3, 4]
    assert sample_frames(range(1, 11), 1) == [6]


def test_interpolate_is_linear_between_and_flat_beyond() -> None:
    known = [(1, 1.0), (11, 3.0)]
    assert interpolate(known, 6) == pytest.approx(2.0)
    assert interpolate(known, -5) == 1.0
    assert interpolate(known, 50) == 3.0


def test_probe_fraction_keeps_the_probe_small_but_wide_enough() -> None:
    assert probe_fraction(1000, 5, 1920) == 0.25  # capped at a quarter of the pixels
    small = probe_fraction(30, 5, 1920)
    assert small == pytest.approx(0.02 * 30 / 5.75)
    assert probe_fraction(2, 2, 96) == pytest.approx((64 / 96) ** 2)  # width floor


def _probe(slope_of: dict[int, float], fixed: float = 0.3, noise: float = 0.0) -> ProbeSet:
    anchor = sorted(slope_of)[len(slope_of) // 2]
    pixels = 10_000
    anchor_renders = tuple(
        ProbeRender(anchor, p, (fixed + slope_of[anchor] * p) * (1 + noise * k))
        for k, p in enumerate((2500, 5000, 10_000))
    )
    renders = tuple(ProbeRender(f, pixels, fixed + s * pixels) for f, s in sorted(slope_of.items()))
    return ProbeSet(anchor=anchor, anchor_renders=anchor_renders, frame_renders=renders,
                    threads=4, load_s=2.0, repeat_rel=noise, image_s_per_pixel=1e-6,
                    probe_core_s=10.0)


def _job(frames: range, pixels: int = 40_000, tiles: int = 1) -> JobShape:
    return JobShape(frames=tuple(frames), task_pixels=(pixels // tiles,) * tiles,
                    pixel_share=(1.0,) * tiles, frame_pixels=pixels, threads=4)


def test_job_total_is_the_scaled_law() -> None:
    slopes = {1: 1e-4, 50: 1e-4, 100: 1e-4}
    estimate = estimate_job(_probe(slopes), _job(range(1, 101)))
    per_frame = 4 * (0.3 + 1e-4 * 40_000)
    expected = 100 * per_frame + 100 * 1e-6 * 40_000 + 4 * 2.0
    assert estimate.breakdown.total_core_s == pytest.approx(expected)
    # exact probe, flat frames: only the floor is left in the range
    assert estimate.sigma_rel == pytest.approx(FLOOR_SIGMA)
    assert estimate.low_core_hours < estimate.core_hours < estimate.high_core_hours


def test_tiles_pay_the_fixed_cost_each() -> None:
    slopes = {1: 1e-4, 10: 1e-4}
    whole = estimate_job(_probe(slopes), _job(range(1, 11)))
    tiled = estimate_job(_probe(slopes), _job(range(1, 11), tiles=4))
    assert tiled.breakdown.render_core_s - whole.breakdown.render_core_s == pytest.approx(
        10 * 3 * 4 * 0.3)


def test_growing_cost_is_followed_across_frames() -> None:
    slopes = {f: 1e-5 * f for f in (1, 25, 50, 75, 100)}
    estimate = estimate_job(_probe(slopes), _job(range(1, 101)))
    costs = estimate.frame_task_core_s
    assert costs[100][0] > 10 * costs[5][0]
    truth = sum(4 * (0.3 + 1e-5 * f * 40_000) for f in range(1, 101))
    assert estimate.breakdown.render_core_s == pytest.approx(truth, rel=0.01)


def test_uneven_frames_and_noise_widen_the_range() -> None:
    flat = estimate_job(_probe({f: 1e-4 for f in (1, 25, 50, 75, 100)}), _job(range(1, 101)))
    bumpy = estimate_job(_probe({1: 1e-4, 25: 3e-4, 50: 1e-4, 75: 3e-4, 100: 1e-4}),
                         _job(range(1, 101)))
    noisy = estimate_job(_probe({1: 1e-4, 50: 1e-4, 100: 1e-4}, noise=0.05),
                         _job(range(1, 101)))
    assert bumpy.parts["interpolation"] > 0.5
    assert bumpy.sigma_rel > flat.sigma_rel
    assert noisy.parts["noise"] > 0 and noisy.parts["fit"] > 0
    assert noisy.sigma_rel > flat.sigma_rel
    assert math.isclose(flat.sigma_rel, FLOOR_SIGMA)
    assert "µs × pixels" in flat.form()
