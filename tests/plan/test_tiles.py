"""Tile grids: every pixel in exactly one core box, overscan clamped, borders exact."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wanhe.plan.tiles import TileGrid, TileSpecError, parse_grid, plan_tiles, scaled_size


@pytest.mark.parametrize(("spec", "grid"), [("4x2", (4, 2)), ("1x1", (1, 1)), (" 3X5 ", (3, 5))])
def test_parse_grid(spec: str, grid: tuple[int, int]) -> None:
    parsed = parse_grid(spec)
    assert (parsed.columns, parsed.rows) == grid


@pytest.mark.parametrize("spec", ["0x0", "0x2", "2x0", "4", "axb", ""])
def test_bad_grids_are_refused(spec: str) -> None:
    with pytest.raises(TileSpecError):
        parse_grid(spec)


def test_grid_larger_than_frame_says_what_fits() -> None:
    with pytest.raises(TileSpecError, match="at most 100x50"):
        plan_tiles(100, 50, TileGrid(1000, 1000))
    with pytest.raises(TileSpecError, match="limit"):
        plan_tiles(10**6, 10**6, parse_grid("1000000x1000000"))


def test_too_many_tiles_is_refused() -> None:
    with pytest.raises(TileSpecError, match="limit"):
        plan_tiles(10_000, 10_000, TileGrid(100, 100))


sizes = st.tuples(st.integers(1, 300), st.integers(1, 300))


@given(sizes, st.integers(1, 12), st.integers(1, 12), st.integers(0, 40))
def test_core_boxes_cover_every_pixel_once(
    size: tuple[int, int], cols: int, rows: int, overscan: int
) -> None:
    width, height = size
    if cols > width or rows > height:
        return
    tiles = plan_tiles(width, height, TileGrid(cols, rows), overscan)
    assert len(tiles) == cols * rows
    cover = np.zeros((height, width), dtype=np.int32)
    for tile in tiles:
        x0, y0, x1, y1 = tile.core_box
        cover[y0:y1, x0:x1] += 1
        rx0, ry0, rx1, ry1 = tile.render_box
        # overscan is clamped to the frame and never smaller than the core
        assert 0 <= rx0 <= x0 < x1 <= rx1 <= width
        assert 0 <= ry0 <= y0 < y1 <= ry1 <= height
        assert x0 - rx0 == min(overscan, x0) and rx1 - x1 == min(overscan, width - x1)
        kx0, ky0, kx1, ky1 = tile.keep_box
        assert (kx1 - kx0, ky1 - ky0) == (x1 - x0, y1 - y0)
    assert (cover == 1).all()


@given(sizes, st.integers(1, 8), st.integers(1, 8), st.integers(0, 20))
def test_border_fractions_land_on_the_render_box(
    size: tuple[int, int], cols: int, rows: int, overscan: int
) -> None:
    """Blender truncates float32(fraction) × size; the nudge must survive that (and rounding)."""
    width, height = size
    if cols > width or rows > height:
        return
    for tile in plan_tiles(width, height, TileGrid(cols, rows), overscan):
        min_x, max_x, min_y, max_y = (np.float32(v) for v in tile.border(width, height))
        x0, y0, x1, y1 = tile.render_box
        for frac, size_px, expected in (
            (min_x, width, x0), (max_x, width, x1),
            (min_y, height, height - y1), (max_y, height, height - y0),
        ):
            assert int(np.float32(frac) * size_px) == expected
            assert round(float(frac) * size_px) == expected


def test_percentage_uses_blender_integer_maths() -> None:
    assert scaled_size(1920, 1080, 50) == (960, 540)
    assert scaled_size(101, 51, 50) == (50, 25)
