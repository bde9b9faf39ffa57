"""Scores for a shot's candidates, with measures that run on any CPU: sharpness, exposure and
clipping, noise, wanhe's QC detectors, near-duplicates between candidates, and an NSFW
detector (nudenet, whose ONNX model ships inside the package). Pure NumPy except `NsfwCheck`.

`rank` combines them into one number per candidate (higher is better) and a rank per shot:
    score = 0.4 · sharpness + 0.3 · exposure + 0.3 · (1 − noise)
with a candidate that QC flags as an error, or that NSFW flags, or that duplicates a better
one, put after the rest.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

NSFW_LABELS = ("FEMALE_BREAST_EXPOSED", "FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED",
               "BUTTOCKS_EXPOSED", "ANUS_EXPOSED")
NSFW_THRESHOLD = 0.5
DUPLICATE_DISTANCE = 0.02  # mean absolute difference of 32×32 grey thumbnails, 0..1


@dataclass(slots=True)
class CandidateScore:
    index: int
    seed: int
    output: str
    sharpness: float  # 0..1
    exposure: float  # 0..1 (1: mid-grey mean, nothing clipped)
    mean_luminance: float
    clipped_dark: float  # fraction of pixels at black
    clipped_bright: float  # fraction at white
    noise: float  # 0..1 (estimated sigma, ×10, capped)
    qc: list[str] = field(default_factory=list)  # QC issue codes (errors)
    nsfw: float = 0.0  # the detector's highest score for an exposed class
    duplicate_of: int | None = None
    score: float = 0.0
    rank: int = 0
    flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _luma(rgb: NDArray[Any]) -> NDArray[np.float64]:
    data = rgb.astype(np.float64) / 255.0
    gray: NDArray[np.float64] = (0.2126 * data[..., 0] + 0.7152 * data[..., 1]
                                 + 0.0722 * data[..., 2])
    return gray


def sharpness(gray: NDArray[np.float64]) -> float:
    """Variance of the Laplacian, mapped to 0..1 (1 − e^(−v·50))."""
    lap = (-4 * gray[1:-1, 1:-1] + gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2]
           + gray[1:-1, 2:])
    return float(1.0 - math.exp(-float(lap.var()) * 50.0)) if lap.size else 0.0


def exposure(gray: NDArray[np.float64]) -> tuple[float, float, float, float]:
    """(score, mean, dark-clipped fraction, bright-clipped fraction)."""
    mean = float(gray.mean())
    dark = float((gray <= 2 / 255).mean())
    bright = float((gray >= 253 / 255).mean())
    score = max(0.0, 1.0 - abs(mean - 0.5) * 2.0 - 2.0 * (dark + bright))
    return score, mean, dark, bright


def noise(gray: NDArray[np.float64]) -> float:
    """Immerkær's fast noise estimate (sigma of Gaussian noise from a Laplacian-difference
    kernel), ×10, capped at 1."""
    if min(gray.shape) < 3:
        return 0.0
    g = gray
    conv = (g[:-2, :-2] - 2 * g[:-2, 1:-1] + g[:-2, 2:]
            - 2 * g[1:-1, :-2] + 4 * g[1:-1, 1:-1] - 2 * g[1:-1, 2:]
            + g[2:, :-2] - 2 * g[2:, 1:-1] + g[2:, 2:])
    sigma = math.sqrt(math.pi / 2) * float(np.abs(conv).sum()) / (6.0 * conv.size)
    return float(min(1.0, sigma * 10.0))


def qc_codes(rgb: NDArray[np.uint8]) -> list[str]:
    """wanhe's frame QC (black, blank, non-finite, fireflies) on the candidate, linearised."""
    from wanhe.imaging.qc import Severity, check_frame

    linear = (rgb.astype(np.float32) / 255.0) ** 2.2
    return [i.check for i in check_frame(linear).issues if i.severity == Severity.ERROR]


def thumbnail(rgb: NDArray[np.uint8]) -> NDArray[np.float64]:
    from PIL import Image

    small: NDArray[np.float64] = np.asarray(
        Image.fromarray(rgb).convert("L").resize((32, 32)), dtype=np.float64) / 255.0
    return small


def measure(index: int, seed: int, output: str, frames: list[NDArray[np.uint8]]) -> CandidateScore:
    """Measure one candidate (an image, or a video's sampled frames: the worst frame counts
    for QC, the mean for the rest)."""
    sharp, expo, mean, dark, bright, noisy = [], [], [], [], [], []
    codes: list[str] = []
    for rgb in frames:
        gray = _luma(rgb)
        sharp.append(sharpness(gray))
        e = exposure(gray)
        expo.append(e[0])
        mean.append(e[1])
        dark.append(e[2])
        bright.append(e[3])
        noisy.append(noise(gray))
        codes += [c for c in qc_codes(rgb) if c not in codes]
    return CandidateScore(
        index=index, seed=seed, output=output, sharpness=float(np.mean(sharp)),
        exposure=float(np.mean(expo)), mean_luminance=float(np.mean(mean)),
        clipped_dark=float(np.mean(dark)), clipped_bright=float(np.mean(bright)),
        noise=float(np.mean(noisy)), qc=codes,
    )


def mark_duplicates(scores: list[CandidateScore], thumbs: list[NDArray[np.float64]]) -> None:
    """A candidate within DUPLICATE_DISTANCE of an earlier one is its duplicate."""
    for i in range(len(scores)):
        for j in range(i):
            if scores[j].duplicate_of is None and float(
                    np.abs(thumbs[i] - thumbs[j]).mean()) < DUPLICATE_DISTANCE:
                scores[i].duplicate_of = scores[j].index
                break


def rank(scores: list[CandidateScore]) -> list[CandidateScore]:
    for s in scores:
        s.score = 0.4 * s.sharpness + 0.3 * s.exposure + 0.3 * (1.0 - s.noise)
        s.flags = []
        if s.qc:
            s.flags.append("qc: " + ", ".join(s.qc))
        if s.nsfw >= NSFW_THRESHOLD:
            s.flags.append(f"nsfw {s.nsfw:.2f}")
        if s.duplicate_of is not None:
            s.flags.append(f"duplicate of candidate {s.duplicate_of}")
    order = sorted(scores, key=lambda s: (bool(s.flags), -s.score, s.index))
    for position, s in enumerate(order, start=1):
        s.rank = position
    return order


class NsfwCheck:
    """nudenet's detector (its bundled ONNX model, on the CPU), loaded once."""

    def __init__(self) -> None:
        from nudenet import NudeDetector

        self.detector = NudeDetector()

    def score(self, rgb: NDArray[np.uint8]) -> float:
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        found = self.detector.detect(bgr)
        return max((float(d["score"]) for d in found if d.get("class") in NSFW_LABELS),
                   default=0.0)
