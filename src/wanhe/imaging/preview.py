"""8-bit sRGB previews of linear renders.

This is the plain sRGB display transform (IEC 61966-2-1): exposure, clip to 0..1, sRGB
transfer function. It is not Blender's view transform (AgX/Filmic by default), so highlights
clip where Blender would roll them off; previews are for checking frames, not for grading.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from wanhe.imaging.atomic import atomic_write
from wanhe.imaging.exr import read_layers

__all__ = ["srgb_encode", "to_display_8bit", "write_preview_png"]


def srgb_encode(array: NDArray[Any]) -> NDArray[np.float32]:
    """Linear values → sRGB-encoded values in 0..1 (clipped; NaN becomes 0)."""
    linear = np.nan_to_num(np.asarray(array, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    linear = np.clip(linear, 0.0, 1.0)
    low = linear * np.float32(12.92)
    high = np.float32(1.055) * np.power(linear, np.float32(1.0 / 2.4)) - np.float32(0.055)
    return np.where(linear <= np.float32(0.0031308), low, high).astype(np.float32)


def to_display_8bit(
    rgba: NDArray[Any], *, exposure: float = 0.0, premultiplied: bool = True
) -> NDArray[np.uint8]:
    """H×W×3 or H×W×4 linear → uint8 display values (alpha stays linear).

    Blender's Combined is premultiplied by alpha; PNG stores straight alpha, so colour is
    divided by alpha where 0 < alpha < 1 (``premultiplied=True``).
    """
    data = np.asarray(rgba, dtype=np.float32)
    if data.ndim != 3 or data.shape[2] not in (3, 4):
        raise ValueError(f"expected an H×W×3 or H×W×4 array, got shape {data.shape}")
    color = data[..., :3] * np.float32(2.0**exposure)
    if data.shape[2] == 4:
        alpha = np.clip(np.nan_to_num(data[..., 3:4], nan=0.0), 0.0, 1.0)
        if premultiplied:
            partial = (alpha > 0) & (alpha < 1)
            color = np.where(partial, color / np.where(partial, alpha, 1), color)
        channels = np.concatenate([srgb_encode(color), alpha], axis=-1)
    else:
        channels = srgb_encode(color)
    out: NDArray[np.uint8] = np.round(channels * 255.0).astype(np.uint8)
    return out


def write_preview_png(
    exr_path: os.PathLike[str] | str,
    png_path: os.PathLike[str] | str,
    *,
    exposure: float = 0.0,
    pass_name: str = "Combined",
    alpha: bool | None = None,
) -> tuple[int, int]:
    """Write an 8-bit sRGB PNG preview of ``pass_name`` of an EXR, atomically.

    ``exposure`` is in stops (×2**exposure before encoding). ``alpha=None`` writes RGBA only
    when the frame has transparent pixels, else RGB. Returns ``(width, height)``.
    """
    frame = read_layers(exr_path)
    rgba = frame.rgba(pass_name)
    keep_alpha = bool((rgba[..., 3] < 1.0).any()) if alpha is None else alpha
    pixels = to_display_8bit(rgba if keep_alpha else rgba[..., :3], exposure=exposure)
    image = Image.fromarray(np.ascontiguousarray(pixels))  # mode from the shape: RGB or RGBA
    with atomic_write(png_path) as tmp:
        image.save(tmp, format="PNG")
    return frame.width, frame.height
