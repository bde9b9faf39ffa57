"""Helpers shared by the Blender tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Small enough to keep the whole tests/blender run quick, odd enough to catch rounding bugs.
TINY_SIZE = (67, 45)
TINY_SAMPLES = 8


@dataclass(frozen=True)
class Scenes:
    tiny: Path  # Cycles, 67x45, 8 samples, adaptive off, uncompressed
    tiny_zstd: Path  # the same scene saved zstd-compressed (Blender's default)
    no_camera: Path
    eevee: Path
    missing_texture: Path
    embedded_script: Path
    marker: Path  # the file embedded_script's text block would write if it ever ran
    armed_script: Path  # the same kind of scene, for the control test that lets it run
    armed_marker: Path


def read_exr(path: Path) -> dict[str, np.ndarray]:
    """All channels of a (multi-part) EXR by their full name, e.g. 'ViewLayer.Combined'."""
    import OpenEXR

    out: dict[str, np.ndarray] = {}
    with OpenEXR.File(str(path)) as f:
        for part in f.parts:
            for name, ch in part.channels.items():
                out[name] = np.array(ch.pixels, copy=True)
    return out
