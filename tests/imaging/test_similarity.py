"""PSNR / SSIM on display-referred frames: exact values on constructed images."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wanhe.imaging.similarity import PSNR_CAP_DB, display, psnr, score, ssim


def test_identical_frames_cap_psnr_and_have_ssim_one() -> None:
    image = np.random.default_rng(0).random((16, 24, 3), dtype=np.float32)
    assert psnr(image, image) == PSNR_CAP_DB
    assert ssim(image, image) == pytest.approx(1.0)


def test_psnr_is_taken_on_display_values() -> None:
    black = np.zeros((8, 8, 3), np.float32)
    white = np.ones((8, 8, 3), np.float32)
    assert psnr(black, white) == pytest.approx(0.0, abs=1e-5)
    half = black.copy()
    half[:4] = 1.0  # half the pixels off by the full range: MSE 0.5
    assert psnr(half, white) == pytest.approx(10 * math.log10(2), abs=1e-5)
    # HDR values above 1 are clipped as a viewer sees them: no error against 1.0
    assert psnr(white * 50, white) == PSNR_CAP_DB


def test_alpha_is_ignored_and_display_is_srgb() -> None:
    rgba = np.full((4, 4, 4), 0.5, np.float32)
    assert display(rgba).shape == (4, 4, 3)
    assert display(rgba)[0, 0, 0] == pytest.approx(0.7354, abs=1e-3)


def test_more_noise_scores_lower() -> None:
    rng = np.random.default_rng(1)
    ref = np.tile(np.linspace(0.05, 0.8, 64, dtype=np.float32), (48, 1))[..., None].repeat(3, 2)
    scores = [score(ref + rng.normal(0, s, ref.shape).astype(np.float32), ref)
              for s in (0.005, 0.02, 0.08)]
    assert scores[0].psnr_db > scores[1].psnr_db > scores[2].psnr_db
    assert scores[0].ssim > scores[1].ssim > scores[2].ssim


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="compare frames of one size"):
        psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))
    with pytest.raises(ValueError, match="H×W×3"):
        psnr(np.zeros((4, 4)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="at least 3x3"):
        ssim(np.zeros((2, 2, 3)), np.zeros((2, 2, 3)))
