"""The candidate score prefers a clean image to a blurred one, and either to noise (the old
variance-of-the-Laplacian score ranked pure RGB noise first, and story AI shots are auto-picked
by it). The three images are made here: a flat-coloured board, the same board blurred, and
uniform RGB noise."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter

from wanhe.ai import scoring


def _board() -> Image.Image:
    image = Image.new("RGB", (160, 120), (200, 190, 170))
    draw = ImageDraw.Draw(image)
    draw.rectangle((10, 60, 70, 110), fill=(60, 80, 140))
    draw.ellipse((90, 20, 140, 70), fill=(220, 120, 40))
    draw.line((0, 58, 160, 50), fill=(20, 20, 20), width=2)
    draw.polygon([(20, 20), (60, 10), (40, 45)], fill=(40, 120, 60))
    return image


def _three() -> dict[str, NDArray[np.uint8]]:
    board = _board()
    return {
        "clean": np.asarray(board),
        "blurred": np.asarray(board.filter(ImageFilter.GaussianBlur(2.5))),
        "noise": np.random.default_rng(7).integers(0, 256, (120, 160, 3), dtype=np.uint8),
    }


def test_noise_scores_below_blurred_below_clean() -> None:
    images = _three()
    scores = [scoring.measure(n, n, name, [pixels])
              for n, (name, pixels) in enumerate(images.items())]
    ranked = scoring.rank(scores)
    by_name = {s.output: s for s in scores}
    assert by_name["noise"].score < by_name["blurred"].score < by_name["clean"].score
    assert [s.output for s in ranked] == ["clean", "blurred", "noise"]
    # each measure says why: noise is sharp but noisy, the blur is clean but soft
    assert by_name["noise"].noise == 1.0 and by_name["noise"].quality == 0.0
    assert by_name["blurred"].sharpness < 0.5 < by_name["clean"].sharpness
    assert by_name["clean"].noise < 0.05 and by_name["blurred"].noise < 0.05


def test_light_grain_costs_a_little_and_a_flat_frame_nothing_sharp() -> None:
    clean = np.asarray(_board())
    grain = np.random.default_rng(3).normal(0, 3, clean.shape)
    grained = np.clip(clean + grain, 0, 255).astype(np.uint8)
    a, b = scoring.measure(0, 0, "clean", [clean]), scoring.measure(1, 1, "grain", [grained])
    assert 0.5 * a.quality < b.quality < a.quality
    flat = np.full((64, 64, 3), 128, np.uint8)
    assert scoring.measure(2, 2, "flat", [flat]).sharpness == 0.0
