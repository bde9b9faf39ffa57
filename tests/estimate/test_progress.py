"""A running job against its estimate (projected total and ETA from the actual cost so far)
and the budget check a submit makes with an estimate."""

from __future__ import annotations

import pytest

from wanhe.estimate.progress import check_budget, project

ESTIMATE = {f: 360.0 for f in range(1, 11)}  # 10 frames of 0.1 core-h: 1 core-h in all


def test_before_anything_runs_the_projection_is_the_estimate() -> None:
    p = project(ESTIMATE, {})
    assert p.projected_core_h == pytest.approx(1.0)
    assert p.ratio is None and p.eta_s is None


def test_a_job_running_over_is_projected_over_with_an_eta() -> None:
    done = {1: 432.0, 2: 432.0}  # 20 % over on the finished frames
    p = project(ESTIMATE, done, running_actual_core_s=100.0, elapsed_s=1000.0)
    assert p.ratio == pytest.approx(1.2)
    assert p.projected_core_h == pytest.approx(1.2)
    burned = 864.0 + 100.0
    assert p.eta_s == pytest.approx((1.2 * 3600 - burned) / (burned / 1000.0))
    assert "+20 %" in p.describe() and "ETA" in p.describe()


def test_projection_never_falls_below_what_is_metered() -> None:
    p = project({1: 10.0}, {1: 50.0}, running_actual_core_s=30.0)
    assert p.projected_core_h == pytest.approx(80.0 / 3600)


def test_budget_fits_warns_or_refuses() -> None:
    assert check_budget(1.0, 1.5, None, 0.0).fits
    assert "fits" in check_budget(1.0, 1.5, 10.0, 2.0).message
    edge = check_budget(1.0, 1.5, 3.2, 2.0)
    assert edge.fits and "high end" in edge.message
    over = check_budget(1.0, 1.5, 2.5, 2.0)
    assert not over.fits
    assert "0.5 of 2.5" in over.message and "wanhe project budget" in over.message


def test_a_kept_estimate_against_the_jobs_frames_as_they_stand() -> None:
    """What `wanhe job` and the job page show: the job's kept estimate (per frame, keys as
    JSON has them) against its frames (done or not, the core-seconds each has cost so far);
    the ETA is the rest of the projected work at the rate burnt so far."""
    from wanhe.estimate.progress import versus_frames

    kept = {"core_hours": 1.0, "core_hours_range": [0.8, 1.2],
            "frame_core_s": {str(f): 360.0 for f in range(1, 11)}}
    frames = [(1, True, 270.0), (2, True, 270.0), (3, False, 60.0),
              *((f, False, 0.0) for f in range(4, 11))]  # 25 % under on the done frames
    p = versus_frames(kept, frames, elapsed_s=600.0)
    assert p.estimate_core_h == pytest.approx(1.0)
    assert p.ratio == pytest.approx(0.75)
    assert p.projected_core_h == pytest.approx((540.0 + 8 * 360.0 * 0.75) / 3600)
    burned = 600.0  # 540 done + 60 running, in 600 s: one core-second per second
    assert p.actual_core_h == pytest.approx(burned / 3600)
    assert p.eta_s == pytest.approx(p.projected_core_h * 3600 - burned)
    # a job that burns twice as fast finishes in half the time
    faster = versus_frames(kept, frames, elapsed_s=300.0)
    assert faster.eta_s == pytest.approx(p.eta_s / 2)


def test_a_kept_total_without_frames_is_spread_over_the_jobs_frames() -> None:
    from wanhe.estimate.progress import frame_estimates, versus_frames

    kept = {"core_hours": 0.5, "core_hours_range": [0.4, 0.6]}
    assert frame_estimates(kept, [1, 2, 3, 4]) == {f: 450.0 for f in range(1, 5)}
    p = versus_frames(kept, [(1, True, 900.0), (2, False, 0.0)], elapsed_s=900.0)
    assert p.ratio == pytest.approx(900.0 / 900.0)  # two frames: 900 core-s each
    assert p.eta_s == pytest.approx(900.0)  # one more frame at the same rate
    assert versus_frames(kept, [], elapsed_s=10.0).eta_s is None  # no frames: no rate
