"""Synthetic frames and tile layouts for the imaging tests."""

from __future__ import annotations

import numpy as np

from wanhe.imaging.exr import Frame


def synthetic_frame(width: int, height: int, seed: int = 0, layer: str = "ViewLayer") -> Frame:
    """A frame with Blender's pass layout and random (but reproducible) float32 pixels."""
    rng = np.random.default_rng(seed)
    frame = Frame(width, height)
    frame.set_pass(
        "Combined", rng.random((height, width, 4), dtype=np.float32) * 4, view_layer=layer
    )
    frame.set_pass(
        "Denoising Normal",
        rng.standard_normal((height, width, 3)).astype(np.float32),
        ("X", "Y", "Z"),
        view_layer=layer,
    )
    frame.set_pass(
        "Denoising Albedo", rng.random((height, width, 3), dtype=np.float32), view_layer=layer
    )
    frame.set_pass(
        "Denoising Depth",
        rng.random((height, width), dtype=np.float32) * 100,
        ("Z",),
        view_layer=layer,
    )
    frame.attributes["Software"] = "wanhe test"
    frame.attributes[f"cycles.{layer}.samples"] = "16"
    return frame


def split_edges(size: int, parts: int) -> list[int]:
    """Tile edges that split ``size`` pixels into ``parts`` nearly equal runs."""
    return [size * i // parts for i in range(parts + 1)]


def grid_boxes(width: int, height: int, cols: int, rows: int) -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) boxes, top-left origin, row by row."""
    xs, ys = split_edges(width, cols), split_edges(height, rows)
    return [(xs[c], ys[r], xs[c + 1], ys[r + 1]) for r in range(rows) for c in range(cols)]
