"""Image similarity: PSNR and SSIM of a frame against a reference, as a viewer sees them.

Both are taken on display-referred values: linear RGB through the plain sRGB transfer
function, clipped to 0..1 (the same transform as wanhe's PNG previews), so a dB figure means
the same for a dark interior and a bright exterior, and HDR highlights above 1.0 (which a
viewer sees clipped) do not dominate the error. ``data_range`` is 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from skimage.metrics import structural_similarity

from wanhe.imaging.preview import srgb_encode

__all__ = ["PSNR_CAP_DB", "Score", "display", "psnr", "score", "ssim"]

#: PSNR of identical images is infinite; reports cap it here so JSON stays finite.
PSNR_CAP_DB = 100.0


@dataclass(frozen=True)
class Score:
    psnr_db: float
    ssim: float

    def to_dict(self) -> dict[str, float]:
        return {"psnr_db": self.psnr_db, "ssim": self.ssim}


def display(rgb: NDArray[Any]) -> NDArray[np.float32]:
    """H×W×3 (or ×4, alpha dropped) linear RGB → sRGB-encoded 0..1 floats."""
    data = np.asarray(rgb, dtype=np.float32)
    if data.ndim != 3 or data.shape[2] not in (3, 4):
        raise ValueError(f"expected an H×W×3 or H×W×4 image, got shape {data.shape}")
    return srgb_encode(data[..., :3])


def _pair(image: NDArray[Any], reference: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
    a, b = display(image), display(reference)
    if a.shape != b.shape:
        raise ValueError(f"image is {a.shape[1]}x{a.shape[0]} but the reference is "
                         f"{b.shape[1]}x{b.shape[0]}; compare frames of one size")
    return a, b


def psnr(image: NDArray[Any], reference: NDArray[Any]) -> float:
    """Peak signal-to-noise ratio in dB (capped at :data:`PSNR_CAP_DB`)."""
    a, b = _pair(image, reference)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse <= 0.0:
        return PSNR_CAP_DB
    return min(PSNR_CAP_DB, 10.0 * math.log10(1.0 / mse))


def ssim(image: NDArray[Any], reference: NDArray[Any]) -> float:
    """Mean structural similarity (scikit-image, 7×7 window, per channel), 1 = identical."""
    a, b = _pair(image, reference)
    window = min(7, *a.shape[:2])
    if window % 2 == 0:
        window -= 1
    if window < 3:
        raise ValueError(f"SSIM needs images of at least 3x3 pixels, got {a.shape[1]}x{a.shape[0]}")
    value = structural_similarity(  # type: ignore[no-untyped-call]
        a, b, data_range=1.0, channel_axis=2, win_size=window
    )
    return float(value)


def score(image: NDArray[Any], reference: NDArray[Any]) -> Score:
    return Score(psnr(image, reference), ssim(image, reference))
