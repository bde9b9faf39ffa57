"""Put a frame together: tiles into one image, sample chunks into one average.

Coordinates are image coordinates with the origin at the **top-left** and exclusive ends,
exactly as EXR pixel rows are stored (row 0 = top). Blender's border render counts y from
the bottom; converting a border to these boxes is the planner's job (``wanhe.plan.tiles``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from wanhe.imaging.atomic import atomic_write
from wanhe.imaging.errors import AssemblyError
from wanhe.imaging.exr import (
    FloatImage,
    Frame,
    exr_size,
    read_layers,
    split_channel_name,
    write_layers,
)

__all__ = [
    "TilePlacement",
    "assemble_frame",
    "assemble_tiles",
    "merge_frames",
    "merge_sample_chunks",
]


@dataclass(frozen=True)
class TilePlacement:
    """One rendered tile and where its pixels go.

    ``src`` = ``(x0, y0, x1, y1)``: the box inside the tile image that is kept (the rest is
    overscan), top-left origin, exclusive end. ``dst`` = ``(x, y)``: where the box's top-left
    pixel lands in the full frame.
    """

    path: Path
    src: tuple[int, int, int, int]
    dst: tuple[int, int]

    @property
    def size(self) -> tuple[int, int]:
        x0, y0, x1, y1 = self.src
        return x1 - x0, y1 - y0

    @property
    def dst_box(self) -> tuple[int, int, int, int]:
        w, h = self.size
        return self.dst[0], self.dst[1], self.dst[0] + w, self.dst[1] + h


def _check_layout(placements: Sequence[TilePlacement], width: int, height: int) -> None:
    """Every box is valid, inside the frame, and every pixel is covered exactly once."""
    if width <= 0 or height <= 0:
        raise AssemblyError(f"frame size must be positive, got {width}x{height}")
    if not placements:
        raise AssemblyError("no tiles to assemble")
    coverage = np.zeros((height, width), dtype=np.uint16)
    for i, tile in enumerate(placements):
        x0, y0, x1, y1 = tile.src
        if x0 < 0 or y0 < 0 or x1 <= x0 or y1 <= y0:
            raise AssemblyError(
                f"tile {i} ({tile.path.name}): src box {tile.src} is empty or negative; "
                "expected (x0, y0, x1, y1) with x0 < x1 and y0 < y1"
            )
        dx0, dy0, dx1, dy1 = tile.dst_box
        if dx0 < 0 or dy0 < 0 or dx1 > width or dy1 > height:
            raise AssemblyError(
                f"tile {i} ({tile.path.name}): lands on {tile.dst_box}, outside the "
                f"{width}x{height} frame"
            )
        coverage[dy0:dy1, dx0:dx1] += 1
    if (coverage > 1).any():
        ys, xs = np.nonzero(coverage > 1)
        x, y = int(xs[0]), int(ys[0])
        owners = [
            f"tile {i} ({t.path.name}) at {t.dst_box}"
            for i, t in enumerate(placements)
            if t.dst_box[0] <= x < t.dst_box[2] and t.dst_box[1] <= y < t.dst_box[3]
        ]
        raise AssemblyError(
            f"tiles overlap: {len(xs)} pixels are covered more than once, first at "
            f"(x={x}, y={y}) by {', '.join(owners)}; crop the overscan so boxes only touch"
        )
    if (coverage == 0).any():
        ys, xs = np.nonzero(coverage == 0)
        raise AssemblyError(
            f"tiles leave {len(xs)} pixels uncovered, within x {int(xs.min())}..{int(xs.max())}, "
            f"y {int(ys.min())}..{int(ys.max())} (top-left origin); a tile is missing or "
            "its box is too small"
        )


def assemble_frame(placements: Sequence[TilePlacement], width: int, height: int) -> Frame:
    """Read the tiles and copy every channel's kept box into full-frame arrays (bit-exact)."""
    _check_layout(placements, width, height)
    out: Frame | None = None
    names: list[str] = []
    for i, tile in enumerate(placements):
        frame = read_layers(tile.path)
        x0, y0, x1, y1 = tile.src
        if x1 > frame.width or y1 > frame.height:
            raise AssemblyError(
                f"tile {i} ({tile.path}): src box {tile.src} does not fit the tile image "
                f"of {frame.width}x{frame.height}; the tile was rendered at the wrong size"
            )
        if out is None:
            names = list(frame.channels)
            out = Frame(
                width,
                height,
                {n: np.zeros((height, width), dtype=np.float32) for n in names},
                dict(frame.attributes),
                dict(frame.color_spaces),
            )
        elif set(frame.channels) != set(names):
            missing = sorted(set(names) - set(frame.channels))
            extra = sorted(set(frame.channels) - set(names))
            raise AssemblyError(
                f"tile {i} ({tile.path}) has a different channel set than tile 0: "
                f"missing {missing}, extra {extra}; every tile must be rendered with the same "
                "passes"
            )
        dx0, dy0, dx1, dy1 = tile.dst_box
        for name in names:
            out.channels[name][dy0:dy1, dx0:dx1] = frame.channels[name][y0:y1, x0:x1]
    assert out is not None  # _check_layout refused an empty list
    return out


def assemble_tiles(
    placements: Sequence[TilePlacement],
    width: int,
    height: int,
    out_path: os.PathLike[str] | str,
) -> None:
    """Assemble tiles into the master EXR ``out_path`` (written atomically).

    Raises :class:`AssemblyError` naming the tile when boxes overlap, leave gaps, fall outside
    the frame or the tile image, or when tiles have different channel sets.
    """
    whole = _whole_frame_tile(placements, width, height)
    if whole is not None:
        # A 1x1 grid: the tile already is the frame, bit for bit. Copy the bytes rather than
        # decode and re-encode them (≈0.3 s of CPU a 640x360 frame, taken from the renders).
        with atomic_write(out_path) as tmp:
            shutil.copyfile(whole, tmp)
        return
    write_layers(assemble_frame(placements, width, height), out_path)


def _whole_frame_tile(
    placements: Sequence[TilePlacement], width: int, height: int
) -> Path | None:
    """The one tile that covers the whole frame with nothing cropped, if that is the layout."""
    if len(placements) != 1:
        return None
    tile = placements[0]
    if tile.src != (0, 0, width, height) or tile.dst != (0, 0):
        return None
    if exr_size(tile.path) != (width, height):
        return None  # overscan to crop, or a wrong size: the full path says what is wrong
    return Path(tile.path)


def _is_sample_count(channel: str) -> bool:
    return split_channel_name(channel)[1] == "Debug Sample Count"


def merge_frames(frames: Sequence[Frame], samples: Sequence[int]) -> Frame:
    """Sample-count-weighted average of frames rendered with disjoint sample ranges.

    A ``Debug Sample Count`` pass is summed instead (as Cycles' merge does). The sum is taken
    in float64 and rounded once to float32. ``cycles.<layer>.samples`` metadata is set to the
    total.
    """
    if not frames:
        raise AssemblyError("no sample chunks to merge")
    if len(samples) != len(frames):
        raise AssemblyError(f"{len(frames)} chunks but {len(samples)} sample counts")
    if any(s <= 0 for s in samples):
        raise AssemblyError(f"sample counts must be positive, got {list(samples)}")
    first = frames[0]
    for i, frame in enumerate(frames[1:], start=1):
        if (frame.width, frame.height) != (first.width, first.height):
            raise AssemblyError(
                f"chunk {i} is {frame.width}x{frame.height} but chunk 0 is "
                f"{first.width}x{first.height}; chunks must render the same pixels"
            )
        if set(frame.channels) != set(first.channels):
            missing = sorted(set(first.channels) - set(frame.channels))
            extra = sorted(set(frame.channels) - set(first.channels))
            raise AssemblyError(
                f"chunk {i} has a different channel set than chunk 0: missing {missing}, "
                f"extra {extra}"
            )
    total = float(sum(samples))
    merged: dict[str, FloatImage] = {}
    for name in first.channels:
        acc: NDArray[np.float64] = np.zeros((first.height, first.width), dtype=np.float64)
        summed = _is_sample_count(name)
        for frame, count in zip(frames, samples, strict=True):
            data = frame.channels[name].astype(np.float64)
            acc += data if summed else data * count
        merged[name] = (acc if summed else acc / total).astype(np.float32)
    attributes = dict(first.attributes)
    for key in attributes:
        if key.startswith("cycles.") and key.endswith(".samples"):
            attributes[key] = str(int(total))
    return Frame(first.width, first.height, merged, attributes, dict(first.color_spaces))


def merge_sample_chunks(
    paths: Sequence[os.PathLike[str] | str],
    samples: Sequence[int],
    out_path: os.PathLike[str] | str,
) -> None:
    """Merge sample chunks of one frame into the master EXR ``out_path`` (atomically).

    Every channel becomes the sample-count-weighted average of the chunks (what
    ``bpy.ops.cycles.merge_images`` does). ``samples[i]`` is the number of samples chunk ``i``
    rendered (its ``sample_subset_length``). It must come from the plan: Blender 5.0 writes
    the scene's total sample count into ``cycles.<view layer>.samples`` of every chunk, not
    the subset length, so the files cannot tell.
    """
    chunk_paths = [Path(p) for p in paths]
    if len(samples) != len(chunk_paths):
        raise AssemblyError(f"{len(chunk_paths)} chunks but {len(samples)} sample counts")
    write_layers(merge_frames([read_layers(p) for p in chunk_paths], samples), out_path)
