"""The probe's correction for the reference's own noise (pure arithmetic)."""

from __future__ import annotations

import math

import pytest

from wanhe.samplecount.probe import MAX_CORRECTION_DB, noise_free_psnr


def test_a_raw_frame_gains_exactly_the_references_share() -> None:
    # raw N samples vs an R-sample reference: MSE = c/N + c/R; against the truth c/N
    for n, r in ((4, 1024), (64, 1024), (256, 512)):
        got = noise_free_psnr(30.0, 30.0, n, r)
        assert got == pytest.approx(30.0 + 10 * math.log10((n + r) / r))


def test_consistent_estimates_from_any_raw_point() -> None:
    c, r = 0.16, 1024  # a noisy interior: MSE_raw(N) = c/N + c/R
    def db(mse: float) -> float:
        return -10 * math.log10(mse)
    denoised_true = 1e-4
    measured = db(denoised_true + c / r)
    for n in (8, 64, 256):
        raw = db(c / n + c / r)
        assert noise_free_psnr(measured, raw, n, r) == pytest.approx(db(denoised_true))


def test_the_correction_is_capped() -> None:
    assert noise_free_psnr(30.0, 10.0, 1000, 1000) == pytest.approx(30.0 + MAX_CORRECTION_DB)
