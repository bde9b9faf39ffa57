"""`--split N`: tiles when exact and cheap, sample chunks otherwise, and the waste said."""

from __future__ import annotations

import pytest

from wanhe.plan.split import SplitError, best_grid, pixel_ratio, plan_split
from wanhe.plan.tiles import TileGrid


def test_16x8_of_1080p_wastes_nothing_without_adaptive_sampling() -> None:
    assert pixel_ratio(1920, 1080, TileGrid(16, 8), 16) > 1.5  # the old default overscan
    assert pixel_ratio(1920, 1080, TileGrid(16, 8), 0) == 1.0
    assert pixel_ratio(1920, 1080, TileGrid(16, 8), 1) <= 1.05


def test_exact_scene_without_adaptive_gets_tiles() -> None:
    plan = plan_split(8, width=640, height=360, samples=64, overscan=0, tiles_exact=True)
    assert plan.grid.count == 8 and plan.chunks == 1 and plan.ratio == 1.0
    assert "exact" in plan.describe(8) and "0.0 % waste" in plan.describe(8)


def test_inexact_scene_gets_sample_chunks_with_the_reason() -> None:
    plan = plan_split(8, width=640, height=360, samples=64, overscan=0, tiles_exact=False,
                      tiles_why_not="the scene has volumes")
    assert plan.grid == TileGrid(1, 1) and plan.chunks == 8
    assert "would not be exact" in plan.describe(8) and "volumes" in plan.describe(8)


def test_large_adaptive_overscan_moves_work_to_chunks() -> None:
    plan = plan_split(16, width=640, height=360, samples=4096, overscan=251, tiles_exact=True)
    assert plan.grid == TileGrid(1, 1) and plan.chunks == 16
    both = plan_split(128, width=1920, height=1080, samples=128, overscan=3, tiles_exact=True)
    assert both.grid.count > 1 and both.chunks > 1 and both.parts == 128
    assert both.waste <= 0.05


def test_best_grid_prefers_square_tiles() -> None:
    assert best_grid(1920, 1080, 128, 0) == TileGrid(16, 8)
    assert best_grid(100, 100, 4, 0) == TileGrid(2, 2)


def test_cannot_split_beyond_the_samples_on_an_inexact_scene() -> None:
    with pytest.raises(SplitError, match="at most 4 sample chunks"):
        plan_split(8, width=64, height=48, samples=4, overscan=0, tiles_exact=False,
                   tiles_why_not="volumes")


def test_whole_frames_for_other_engines_and_one_worker() -> None:
    assert plan_split(1, width=64, height=48, samples=8, overscan=0, tiles_exact=True).parts == 1
    eevee = plan_split(4, width=64, height=48, samples=None, overscan=0, tiles_exact=True,
                       cycles=False)
    assert eevee.parts == 1 and "whole frames" in eevee.reason
