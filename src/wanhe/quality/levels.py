"""``--quality TARGET``: a PSNR in dB, or a named level.

The named levels are PSNR (display-referred, against a 1024-sample reference; see
:mod:`wanhe.quality.metrics`) measured by ``bench/denoise.py`` on the demo and interior scenes:

* ``draft``   — 30 dB: noise is visible on close look, layout, lighting and animation read
  clearly (the interior's raw 32 samples; OIDN reaches it from 4–8 samples).
* ``preview`` — 34 dB: about the scene's own full-sample raw render on the simple demo; clean
  enough for a director's review.
* ``final``   — 38 dB: above what either scene reaches raw at its full samples; what OIDN
  reaches at 32–128 samples on these scenes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["LEVELS", "MAX_DB", "QualityTarget", "parse_quality_target"]

LEVELS: dict[str, float] = {"draft": 30.0, "preview": 34.0, "final": 38.0}
MAX_DB = 100.0


@dataclass(frozen=True)
class QualityTarget:
    db: float
    name: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.db:g} dB)" if self.name else f"{self.db:g} dB"


def parse_quality_target(text: str) -> QualityTarget:
    """``"final"`` → 38 dB; ``"35"`` or ``"35dB"`` → 35 dB. Raises ValueError with the fix."""
    raw = text.strip().lower()
    if raw in LEVELS:
        return QualityTarget(LEVELS[raw], raw)
    number = raw.removesuffix("db").strip()
    names = ", ".join(f"{k} = {v:g} dB" for k, v in LEVELS.items())
    try:
        value = float(number)
    except ValueError:
        raise ValueError(
            f"--quality {text!r} is neither a PSNR in dB nor a level; use a number in "
            f"(0, {MAX_DB:g}] such as 35, or one of: {names}"
        ) from None
    if not math.isfinite(value) or value <= 0.0 or value > MAX_DB:
        raise ValueError(
            f"--quality {text!r} is out of range: a PSNR target must be in (0, {MAX_DB:g}] dB "
            f"(typical: 30–45); or use a level: {names}"
        )
    return QualityTarget(value)
