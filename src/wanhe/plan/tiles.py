"""Tile grids: split a frame into C×R tiles with overscan, and say how to put them back.

Coordinates are pixels with the origin at the top-left and exclusive ends, the way images are
stored. Blender's border fractions count y from the bottom; `Tile.border` converts.

A tile renders `render_box` (its core plus up to `overscan` pixels on every side, clamped to the
frame) and keeps `core_box` on assembly. Overscan keeps adaptive sampling exact at the seams.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Box = tuple[int, int, int, int]  # x0, y0, x1, y1; top-left origin; exclusive ends

# Blender truncates border fraction × size to whole pixels and stores the fraction as float32;
# a quarter-pixel nudge lands every edge on the intended pixel whether it truncates or rounds.
_BORDER_NUDGE = 0.25
MAX_TILES = 4096


class TileSpecError(ValueError):
    """A tile grid the user asked for is malformed or does not fit the frame."""


@dataclass(frozen=True, slots=True)
class TileGrid:
    columns: int
    rows: int

    @property
    def count(self) -> int:
        return self.columns * self.rows

    def __str__(self) -> str:
        return f"{self.columns}x{self.rows}"


@dataclass(frozen=True, slots=True)
class Tile:
    index: int
    column: int
    row: int  # 0 is the top row
    core_box: Box
    render_box: Box

    @property
    def render_size(self) -> tuple[int, int]:
        x0, y0, x1, y1 = self.render_box
        return x1 - x0, y1 - y0

    @property
    def keep_box(self) -> Box:
        """The core box in the coordinates of the rendered tile image."""
        rx0, ry0, _, _ = self.render_box
        x0, y0, x1, y1 = self.core_box
        return x0 - rx0, y0 - ry0, x1 - rx0, y1 - ry0

    def border(self, width: int, height: int) -> tuple[float, float, float, float]:
        """Blender's (min_x, max_x, min_y, max_y) fractions for `render_box`, y from the bottom."""
        return box_border(self.render_box, width, height)


def box_border(box: Box, width: int, height: int) -> tuple[float, float, float, float]:
    """Blender's (min_x, max_x, min_y, max_y) border fractions for a pixel box (top-left
    origin, exclusive ends), y counted from the bottom."""
    x0, y0, x1, y1 = box
    return (
        _fraction(x0, width),
        _fraction(x1, width),
        _fraction(height - y1, height),
        _fraction(height - y0, height),
    )


def _fraction(pixel: int, size: int) -> float:
    if pixel <= 0:
        return 0.0
    if pixel >= size:
        return 1.0
    return (pixel + _BORDER_NUDGE) / size


def parse_grid(spec: str) -> TileGrid:
    """`4x2` -> 4 columns, 2 rows."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", spec or "")
    if match is None:
        raise TileSpecError(
            f"malformed tile grid {spec!r} — use COLUMNSxROWS, e.g. 4x2 (1x1 renders whole frames)"
        )
    grid = TileGrid(int(match.group(1)), int(match.group(2)))
    if grid.columns < 1 or grid.rows < 1:
        raise TileSpecError(f"tile grid {spec} has no tiles — use at least 1x1")
    return grid


def check_tile_count(grid: TileGrid) -> None:
    """Raise if `grid` makes more tiles than a frame may have (after the frame-size check,
    whose message says more when both fail)."""
    if grid.count > MAX_TILES:
        raise TileSpecError(
            f"tile grid {grid} makes {grid.count:,} tiles; the limit is {MAX_TILES:,} per frame"
        )


def _cuts(size: int, parts: int) -> list[int]:
    """Edges that split `size` pixels into `parts` near-equal spans (the first get the extra)."""
    base, extra = divmod(size, parts)
    edges = [0]
    for i in range(parts):
        edges.append(edges[-1] + base + (1 if i < extra else 0))
    return edges


def plan_tiles(width: int, height: int, grid: TileGrid, overscan: int = 16) -> list[Tile]:
    """The tiles of one frame, row by row from the top; their core boxes cover it exactly once."""
    if width < 1 or height < 1:
        raise TileSpecError(f"frame size {width}x{height} has no pixels")
    if overscan < 0:
        raise TileSpecError(f"overscan must be 0 or more pixels, not {overscan}")
    if grid.columns > width or grid.rows > height:
        raise TileSpecError(
            f"tile grid {grid} does not fit a {width}x{height} frame: each tile needs at least "
            f"one pixel — use at most {min(grid.columns, width)}x{min(grid.rows, height)}"
        )
    check_tile_count(grid)
    xs = _cuts(width, grid.columns)
    ys = _cuts(height, grid.rows)
    tiles: list[Tile] = []
    for row in range(grid.rows):
        for column in range(grid.columns):
            core = (xs[column], ys[row], xs[column + 1], ys[row + 1])
            render = (
                max(0, core[0] - overscan),
                max(0, core[1] - overscan),
                min(width, core[2] + overscan),
                min(height, core[3] + overscan),
            )
            tiles.append(Tile(len(tiles), column, row, core, render))
    return tiles


def scaled_size(resolution_x: int, resolution_y: int, percentage: int) -> tuple[int, int]:
    """Pixel size Blender renders for a resolution and percentage (integer maths, as Blender)."""
    return resolution_x * percentage // 100, resolution_y * percentage // 100
