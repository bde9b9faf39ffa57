"""`--split N`: spread each frame over N workers with tiles, sample chunks or both.

Pure planning. Tiles keep adaptive sampling's savings and need less memory per worker, but a
tile renders its overscan on top of its own pixels, and on some scenes border renders are not
exact (docs/tiles.md). Sample chunks waste no pixels and are checkpoints. The rule: as many
tiles as are exact and waste at most ``WASTE_OK`` of the frame's pixels on overscan; the rest
of N as sample chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

from wanhe.plan.tiles import MAX_TILES, TileGrid, plan_tiles

WASTE_OK = 0.05  # overscan pixels per frame pixel that tiles may cost before chunks win


class SplitError(ValueError):
    """--split cannot be honoured for this scene (bad N, no sample count, …)."""


@dataclass(frozen=True, slots=True)
class SplitPlan:
    grid: TileGrid
    chunks: int
    overscan: int
    ratio: float  # pixels rendered ÷ pixels in the frame
    reason: str

    @property
    def parts(self) -> int:
        return self.grid.count * self.chunks

    @property
    def waste(self) -> float:
        return self.ratio - 1.0

    def describe(self, n: int) -> str:
        """One line: what was chosen, why, and the waste."""
        what = []
        if self.grid.count > 1:
            what.append(f"{self.grid} tiles ({self.overscan} px overscan)")
        if self.chunks > 1:
            what.append(f"{self.chunks} sample chunks")
        chosen = " × ".join(what) or "whole frames"
        return (f"--split {n}: {chosen} = {self.parts} task(s) per frame — {self.reason}; "
                f"pixels rendered {self.ratio:.3f}× the frame ({100 * self.waste:.1f} % waste)")


def pixel_ratio(width: int, height: int, grid: TileGrid, overscan: int) -> float:
    """Pixels the tiles render (overscan included) ÷ pixels in the frame."""
    tiles = plan_tiles(width, height, grid, overscan)
    rendered = sum(t.render_size[0] * t.render_size[1] for t in tiles)
    return rendered / (width * height)


def best_grid(width: int, height: int, count: int, overscan: int) -> TileGrid | None:
    """The C×R grid of exactly `count` tiles that renders the fewest pixels (then the most
    square tiles); None when no such grid fits the frame."""
    best: tuple[float, float, TileGrid] | None = None
    for columns in range(1, count + 1):
        if count % columns:
            continue
        grid = TileGrid(columns, count // columns)
        if grid.columns > width or grid.rows > height:
            continue
        ratio = pixel_ratio(width, height, grid, overscan)
        tile_w, tile_h = width / grid.columns, height / grid.rows
        squareness = max(tile_w, tile_h) / min(tile_w, tile_h)
        key = (round(ratio, 9), squareness, grid)
        if best is None or key[:2] < best[:2]:
            best = key
    return None if best is None else best[2]


def plan_split(
    n: int, *, width: int, height: int, samples: int | None, overscan: int,
    tiles_exact: bool, tiles_why_not: str = "", cycles: bool = True,
) -> SplitPlan:
    """Split one frame `n` ways. `overscan`: the exact overscan for this scene's sampling;
    `tiles_exact`: whether border renders of this scene match the whole frame."""
    if n < 1:
        raise SplitError(f"--split must be at least 1 (1 renders whole frames), got {n}")
    whole = TileGrid(1, 1)
    if n == 1:
        return SplitPlan(whole, 1, overscan, 1.0, "one worker per frame")
    if not cycles:
        return SplitPlan(whole, 1, overscan, 1.0,
                         "this engine renders whole frames only (tiles and chunks need Cycles)")
    max_chunks = samples or 1
    options: list[tuple[int, int]] = []  # (tiles, chunks) with tiles × chunks == n
    for tiles in range(1, n + 1):
        if n % tiles == 0:
            options.append((tiles, n // tiles))
    best: tuple[TileGrid, int, float] | None = None
    for tiles, chunks in options:
        if chunks > max_chunks:
            continue
        if tiles > 1 and not tiles_exact:
            continue
        if tiles > MAX_TILES:
            continue
        grid = best_grid(width, height, tiles, overscan) if tiles > 1 else whole
        if grid is None:
            continue
        ratio = pixel_ratio(width, height, grid, overscan) if tiles > 1 else 1.0
        if ratio - 1.0 > WASTE_OK and tiles > 1:
            continue
        if best is None or grid.count > best[0].count:
            best = (grid, chunks, ratio)
    if best is None:
        if samples is None:
            raise SplitError("--split needs Cycles' sample count to split samples; the scene "
                             "has none — use --tiles instead")
        why = tiles_why_not if not tiles_exact else "no tile grid fits"
        raise SplitError(
            f"cannot split a frame {n} ways: {why}, and {samples} samples make at most "
            f"{samples} sample chunks — use a smaller --split or raise --samples"
        )
    grid, chunks, ratio = best
    if not tiles_exact:
        reason = f"tiles would not be exact on this scene ({tiles_why_not}), so sample chunks"
    elif grid.count == n:
        reason = ("tiles are exact here and need no overscan" if overscan == 0 else
                  f"tiles are exact with {overscan} px overscan (adaptive sampling), "
                  f"costing ≤ {100 * WASTE_OK:.0f} %")
    elif grid.count == 1:
        reason = (f"{n} tiles would waste more than {100 * WASTE_OK:.0f} % on the "
                  f"{overscan} px overscan adaptive sampling needs; sample chunks waste none")
    else:
        reason = (f"more tiles would waste more than {100 * WASTE_OK:.0f} % on the {overscan} px "
                  "overscan adaptive sampling needs; the rest as sample chunks")
    return SplitPlan(grid, chunks, overscan, ratio, reason)
