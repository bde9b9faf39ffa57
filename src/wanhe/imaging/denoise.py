"""Denoise an assembled frame with Intel Open Image Denoise (``pyoidn``).

Denoise once, on the whole assembled frame, never per tile (per-tile denoising leaves
seams; see DESIGN.md). Uses OIDN's ``RT`` filter in HDR mode with the ``Denoising Albedo``
and ``Denoising Normal`` passes that Cycles writes when
``view_layer.cycles.denoising_store_passes`` is on.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pyoidn

from wanhe.imaging.errors import DenoiseError, ExrReadError
from wanhe.imaging.exr import FloatImage, Frame, read_layers, write_layers

__all__ = ["NOISY_PASS", "DenoiseStats", "Quality", "denoise_array", "denoise_frame"]

Quality = Literal["high", "balanced", "fast"]

#: Name of the layer that keeps the original noisy Combined (Blender uses the same name).
NOISY_PASS = "Noisy Image"
ALBEDO_PASS = "Denoising Albedo"
NORMAL_PASS = "Denoising Normal"


@dataclass(frozen=True)
class DenoiseStats:
    """What :func:`denoise_frame` did and how long OIDN took."""

    width: int
    height: int
    quality: str
    used_albedo: bool
    used_normal: bool
    seconds: float  # OIDN filter time only (excludes EXR reading and writing)
    seconds_per_megapixel: float
    nonfinite_pixels: int  # NaN/Inf pixels of the input, set to 0 before filtering
    notes: tuple[str, ...] = ()

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["notes"] = list(self.notes)
        data["megapixels"] = self.megapixels
        return data


def _aux(frame: Frame, name: str, notes: list[str]) -> FloatImage | None:
    if not frame.has_pass(name):
        notes.append(f"no {name!r} pass: render with view_layer.cycles.denoising_store_passes")
        return None
    data = frame.pass_array(name)
    if data.shape[2] < 3:
        notes.append(f"{name!r} pass has {data.shape[2]} channels, need 3; not used")
        return None
    data = np.ascontiguousarray(data[..., :3])
    if not np.isfinite(data).all():
        notes.append(f"{name!r} pass has NaN/Inf values; not used")
        return None
    return data


def denoise_array(
    color: FloatImage,
    albedo: FloatImage | None = None,
    normal: FloatImage | None = None,
    *,
    quality: Quality = "high",
) -> FloatImage:
    """Denoise an H×W×3 linear HDR image (pure function around ``pyoidn.denoise``)."""
    if quality not in ("high", "balanced", "fast"):
        raise DenoiseError(f"quality must be 'high', 'balanced' or 'fast', got {quality!r}")
    if normal is not None and albedo is None:
        raise DenoiseError("OIDN needs the albedo pass to use the normal pass")
    try:
        result = pyoidn.denoise(
            np.ascontiguousarray(color, dtype=np.float32),
            albedo,
            normal,
            hdr=True,
            quality=quality,
            filter_type="RT",
        )
    except (RuntimeError, ValueError, TypeError) as exc:
        raise DenoiseError(f"Open Image Denoise failed: {exc}") from exc
    return np.asarray(result, dtype=np.float32)


def denoise_frame(
    in_path: os.PathLike[str] | str,
    out_path: os.PathLike[str] | str,
    *,
    quality: Quality = "high",
) -> DenoiseStats:
    """Denoise the master EXR ``in_path`` and write the result to ``out_path`` (atomically).

    The output keeps every layer of the input; ``Combined`` RGB is replaced by the denoised
    colour (alpha kept) and the original noisy ``Combined`` is stored as ``Noisy Image``.
    Denoising an already denoised frame starts again from its ``Noisy Image``, so a retried
    task gives the same result. Without albedo/normal passes the colour alone is denoised
    and the stats say so. ``in_path`` and ``out_path`` may be the same file.
    """
    if quality not in ("high", "balanced", "fast"):
        raise DenoiseError(f"quality must be 'high', 'balanced' or 'fast', got {quality!r}")
    try:
        frame = read_layers(in_path)
    except ExrReadError as exc:
        raise DenoiseError(f"cannot denoise: {exc}") from exc
    if not frame.has_pass("Combined"):
        raise DenoiseError(
            f"cannot denoise {in_path}: it has no Combined pass (passes: {frame.passes()})"
        )
    notes: list[str] = []
    combined = frame.rgba("Combined")
    if frame.has_pass(NOISY_PASS):
        noisy = frame.rgba(NOISY_PASS)
        notes.append("input was already denoised; denoised again from its 'Noisy Image'")
    else:
        noisy = combined
    color = np.ascontiguousarray(noisy[..., :3])
    finite = np.isfinite(color).all(axis=-1)
    nonfinite = int((~finite).sum())
    if nonfinite:
        color = np.where(finite[..., np.newaxis], color, np.float32(0.0))
        notes.append(f"{nonfinite} NaN/Inf pixels set to 0 before denoising")
    color = np.maximum(color, np.float32(0.0))  # OIDN HDR input must be non-negative

    albedo = _aux(frame, ALBEDO_PASS, notes)
    normal = _aux(frame, NORMAL_PASS, notes) if albedo is not None else None
    if albedo is None and frame.has_pass(NORMAL_PASS):
        notes.append("normal pass ignored: OIDN uses normals only together with albedo")
    if albedo is not None:
        albedo = np.clip(albedo, 0.0, 1.0)
    if normal is not None:
        normal = np.clip(normal, -1.0, 1.0)
    if albedo is None:
        notes.append("denoised from colour only; expect blurrier detail")

    start = time.perf_counter()
    denoised = denoise_array(color, albedo, normal, quality=quality)
    seconds = time.perf_counter() - start

    out = frame
    out.set_pass(NOISY_PASS, noisy, ("R", "G", "B", "A"), after="Combined")
    result = np.concatenate([denoised, combined[..., 3:4]], axis=-1)
    out.set_pass("Combined", result, ("R", "G", "B", "A"))
    write_layers(out, out_path)
    megapixels = frame.width * frame.height / 1e6
    return DenoiseStats(
        width=frame.width,
        height=frame.height,
        quality=quality,
        used_albedo=albedo is not None,
        used_normal=normal is not None,
        seconds=seconds,
        seconds_per_megapixel=seconds / megapixels,
        nonfinite_pixels=nonfinite,
        notes=tuple(notes),
    )
