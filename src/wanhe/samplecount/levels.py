"""``--quality TARGET``: a PSNR in dB, or a named level.

PSNR is display-referred (:mod:`wanhe.imaging.similarity`) and, in the probe, estimated
against a noise-free frame (:mod:`wanhe.samplecount.probe`). The named levels come from
``bench/denoise.py`` (bench/RESULTS.md, 320x180, 1024-sample reference; estimated
noise-free dB in brackets):

* ``draft``   — 30 dB: noise visible on a close look; layout, light and motion read clearly.
  OIDN reaches it from the fewest probed samples on both scenes (4 + OIDN: demo [33.9],
  interior [31.9]); the interior's own raw 128-sample frame is only [29.2].
* ``preview`` — 34 dB: clean at a glance, for review. Demo 8 + OIDN [35.7], interior
  16 + OIDN [35.1].
* ``final``   — 38 dB: the demo's raw frame at its full 64 samples [38.7], the quality the
  scene was set up for. Demo 16–24 + OIDN [38.0 / 39.4], interior 64 + OIDN [38.3].
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
