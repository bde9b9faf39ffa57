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
