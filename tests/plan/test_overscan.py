"""The exact-overscan rule: 0 without adaptive sampling, else one pixel per neighbour filter."""

from __future__ import annotations

import itertools
import math

import pytest

from wanhe.plan.overscan import adaptive_filter_passes, adaptive_min_samples, exact_overscan


def _brute(samples: int, threshold: float, min_samples: int) -> int:
    """Cycles' rule written out sample by sample: filter after 0-based sample s when
    s > min_samples and s % 16 == 15; only filters with samples after them count."""
    if threshold == 0:
        threshold = max(0.001, 1.0 / samples)
    lowest = max(4, math.ceil(16.0 / threshold**0.3)) if min_samples == 0 else max(4, min_samples)
    return sum(1 for s in range(samples - 1) if s > lowest and s % 16 == 15)


def test_no_overscan_without_adaptive_sampling() -> None:
    assert exact_overscan(adaptive=False, samples=4096) == 0
    assert exact_overscan(adaptive=False, samples=None) == 0


@pytest.mark.parametrize(("threshold", "expected"), [(0.1, 32), (0.01, 64), (0.001, 128)])
def test_automatic_min_samples_match_cycles_comment(threshold: float, expected: int) -> None:
    # Cycles: "Threshold 0.1 -> 32, 0.01 -> 64, 0.001 -> 128"
    assert adaptive_min_samples(1024, threshold, 0) == expected


def test_filter_passes_match_the_sample_by_sample_rule() -> None:
    grid = itertools.product(
        [1, 2, 16, 17, 64, 65, 79, 80, 81, 95, 96, 128, 300, 4096],
        [0.0, 0.001, 0.01, 0.05, 0.1, 0.5],
        [0, 1, 4, 8, 15, 16, 63, 64, 100],
    )
    for samples, threshold, min_samples in grid:
        assert adaptive_filter_passes(samples, threshold, min_samples) == _brute(
            samples, threshold, min_samples
        ), (samples, threshold, min_samples)


def test_typical_values() -> None:
    # 128 samples at the default threshold: filters after samples 79, 95, 111 (127 is last)
    assert exact_overscan(adaptive=True, samples=128, threshold=0.01) == 3
    assert exact_overscan(adaptive=True, samples=64, threshold=0.01) == 0  # min 64: none
    assert exact_overscan(adaptive=True, samples=4096, threshold=0.01) == 251


def test_adaptive_needs_samples() -> None:
    with pytest.raises(ValueError, match="sample count"):
        exact_overscan(adaptive=True, samples=None)
