"""The least overscan that keeps border tiles bit-exact, from Cycles' adaptive-sampling rule.

Without adaptive sampling every pixel of a Cycles render is independent: its samples come from
its own (frame-wide) pixel coordinates, so a border render needs no overscan at all (0 px).

With adaptive sampling Cycles checks convergence every ``ADAPTIVE_STEP`` samples once past the
minimum, then dilates the "not converged" mask by one pixel left/right and one pixel up/down
(a 3×3 box, in an x pass and a y pass). A tile's edge pixel misses the neighbours outside the
tile, so after the first check its sampling may differ from the whole frame's; every further
check can carry that difference one more pixel inwards. Only checks that still have samples
after them matter. So ``overscan = number of such checks`` is exact whatever the picture, and
that is what :func:`exact_overscan` returns. Measured on odd sizes and several thresholds the
difference rarely gets deeper than 1 px (docs/tiles.md), but "rarely" is not "never".
"""

from __future__ import annotations

import math

ADAPTIVE_STEP = 16  # Cycles: AdaptiveSampling::adaptive_step (a power of two)
MIN_MIN_SAMPLES = 4


def adaptive_min_samples(samples: int, threshold: float, min_samples: int) -> int:
    """Cycles' effective minimum: the scene's, or (when 0) ``ceil(16 / threshold**0.3)``, ≥ 4.
    A threshold of 0 means "automatic": ``max(0.001, 1 / samples)``."""
    if threshold <= 0.0:
        threshold = max(0.001, 1.0 / max(1, samples))
    if min_samples > 0:
        return max(MIN_MIN_SAMPLES, min_samples)
    return max(MIN_MIN_SAMPLES, math.ceil(16.0 / math.pow(threshold, 0.3)))


def adaptive_filter_passes(samples: int, threshold: float, min_samples: int) -> int:
    """How many convergence checks + neighbour filters run with samples still to come.

    Cycles filters after 0-based sample ``s`` when ``s > min_samples`` and
    ``s % ADAPTIVE_STEP == ADAPTIVE_STEP - 1``; a filter after the last sample changes nothing.
    Counted over the frame's whole sample range, so it bounds every sample chunk too."""
    lowest = adaptive_min_samples(samples, threshold, min_samples)
    last = samples - 2  # the last sample index that still has a sample after it
    first = lowest + 1
    first += (ADAPTIVE_STEP - 1 - first % ADAPTIVE_STEP) % ADAPTIVE_STEP
    if first > last:
        return 0
    return (last - first) // ADAPTIVE_STEP + 1


def exact_overscan(
    *, adaptive: bool, samples: int | None, threshold: float = 0.01, min_samples: int = 0
) -> int:
    """The smallest overscan (pixels) that is guaranteed bit-exact for these settings."""
    if not adaptive:
        return 0
    if samples is None:
        raise ValueError("adaptive sampling needs the frame's sample count to size the overscan")
    return adaptive_filter_passes(samples, threshold, min_samples)
