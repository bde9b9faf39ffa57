"""Scores for a shot's candidates, with measures that run on any CPU: a no-reference quality
(sharpness normalised by noise), exposure and clipping, wanhe's QC detectors, near-duplicates
between candidates, and an NSFW detector (nudenet, whose ONNX model ships inside the package).
NumPy and SciPy except `NsfwCheck`.

- sharpness: 1 − Crété-Roffet's blur effect (how much of the image's local variation survives
  a further 9-pixel blur: little survives in a blurred image, much in a sharp one) — it does
  not grow with contrast or size, unlike the variance of the Laplacian;
- noise: the sigma of Gaussian noise, from the median absolute response of Immerkær's
  Laplacian-difference kernel (the median, so that edges do not count as noise), ×20, capped
  at 1 (sigma 0.05 — 13 grey levels — counts as fully noisy);
- quality = sharpness × (1 − noise): noise reads as fine detail to any sharpness measure, so
  its own estimate cancels it (pure RGB noise scores 0, a blurred board below the clean one).

`rank` combines them into one number per candidate (higher is better) and a rank per shot:
    score = quality · (0.6 + 0.4 · exposure)
with a candidate that QC flags as an error, or that NSFW flags, or that duplicates a better
one, put after the rest.
"""

from __future__ import annotations

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
    sharpness: float  # 0..1 (1 − blur effect)
    exposure: float  # 0..1 (1: mid-grey mean, nothing clipped)
    mean_luminance: float
    clipped_dark: float  # fraction of pixels at black
    clipped_bright: float  # fraction at white
    noise: float  # 0..1 (estimated sigma, ×20, capped)
    quality: float = 0.0  # 0..1: sharpness × (1 − noise)
    qc: list[str] = field(default_factory=list)  # QC issue codes (errors)
    nsfw: float = 0.0  # the detector's highest score for an exposed class
    prompt_adherence: float | None = None  # CLIP image-text cosine, 0..1 (a CLIP model given)
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


BLUR_WIDTH = 9  # the re-blur of the blur effect, pixels (Crété-Roffet et al. 2007)
NOISE_FULL = 0.05  # sigma (0..1 grey) that counts as noise 1


def sharpness(gray: NDArray[np.float64]) -> float:
    """1 − the blur effect (Crété-Roffet, Dolmiere, Ladret, Nicolas, 2007): per axis, the share
    of the neighbour differences that a further box blur removes; the blurrier axis counts.
    0: flat or fully blurred, near 1: sharp."""
    from scipy.ndimage import uniform_filter1d

    if min(gray.shape) < 2:
        return 0.0
    blur = 0.0
    for axis in (0, 1):
        reblurred = uniform_filter1d(gray, BLUR_WIDTH, axis=axis, mode="nearest")
        d_image = np.abs(np.diff(gray, axis=axis))
        d_reblurred = np.abs(np.diff(reblurred, axis=axis))
        total = float(d_image.sum())
        if total <= 1e-12:
            return 0.0  # a flat image has no detail to be sharp
        lost = float(np.maximum(0.0, d_image - d_reblurred).sum())
        blur = max(blur, (total - lost) / total)
    return float(min(1.0, max(0.0, 1.0 - blur)))


def exposure(gray: NDArray[np.float64]) -> tuple[float, float, float, float]:
    """(score, mean, dark-clipped fraction, bright-clipped fraction)."""
    mean = float(gray.mean())
    dark = float((gray <= 2 / 255).mean())
    bright = float((gray >= 253 / 255).mean())
    score = max(0.0, 1.0 - abs(mean - 0.5) * 2.0 - 2.0 * (dark + bright))
    return score, mean, dark, bright


def noise(gray: NDArray[np.float64]) -> float:
    """The sigma of Gaussian noise, from Immerkær's kernel (its response to unit noise has a
    sigma of 6) by the median absolute deviation (edges are few: they do not move the median),
    ×(1/NOISE_FULL), capped at 1."""
    if min(gray.shape) < 3:
        return 0.0
    g = gray
    conv = (g[:-2, :-2] - 2 * g[:-2, 1:-1] + g[:-2, 2:]
            - 2 * g[1:-1, :-2] + 4 * g[1:-1, 1:-1] - 2 * g[1:-1, 2:]
            + g[2:, :-2] - 2 * g[2:, 1:-1] + g[2:, 2:])
    sigma = float(np.median(np.abs(conv))) / 0.6745 / 6.0
    return float(min(1.0, sigma / NOISE_FULL))


def quality(sharp: float, noisy: float) -> float:
    """Sharpness normalised by noise (0..1)."""
    return sharp * (1.0 - noisy)


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
        quality=float(np.mean([quality(a, b) for a, b in zip(sharp, noisy, strict=True)])),
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
        s.score = s.quality * (0.6 + 0.4 * s.exposure)
        if s.prompt_adherence is not None:
            s.score = 0.5 * s.score + 0.5 * s.prompt_adherence
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


class ClipAdherence:
    """Prompt adherence with a local CLIP-type model (transformers CLIPModel + processor):
    the cosine of the image's and the prompt's embeddings, floored at 0."""

    def __init__(self, path: str) -> None:
        import os

        from transformers import CLIPModel, CLIPProcessor

        os.environ["HF_HUB_OFFLINE"] = "1"
        model: Any = CLIPModel.from_pretrained(path, local_files_only=True)
        model.train(False)  # inference mode (eval)
        self.model = model
        self.processor = CLIPProcessor.from_pretrained(path, local_files_only=True)

    def score(self, frames: list[NDArray[np.uint8]], prompt: str) -> float:
        import torch

        inputs = self.processor(text=[prompt], images=list(frames), return_tensors="pt",
                                padding=True, truncation=True)
        with torch.inference_mode():
            out = self.model(**inputs)
        image = torch.nn.functional.normalize(out.image_embeds, dim=-1)
        text = torch.nn.functional.normalize(out.text_embeds, dim=-1)
        return float(max(0.0, float((image @ text.T).mean())))


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
