"""QC thresholds from the command line: ``--qc-threshold NAME=VALUE`` (repeatable), into the
detectors' :class:`~wanhe.imaging.qc.QCThresholds`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from wanhe.imaging.qc import QCThresholds

__all__ = ["parse_threshold_args", "thresholds_from"]


def _names() -> list[str]:
    return sorted(QCThresholds.__dataclass_fields__)


def thresholds_from(values: dict[str, Any] | None) -> QCThresholds:
    """QCThresholds from ``{name: value}``; unknown names and out-of-range values raise
    ValueError naming the problem (and the valid names or range)."""
    if not values:
        return QCThresholds()
    unknown = sorted(set(values) - set(_names()))
    if unknown:
        raise ValueError(
            f"unknown QC threshold(s) {', '.join(unknown)}; known: {', '.join(_names())}"
        )
    fields = QCThresholds.__dataclass_fields__
    typed: dict[str, Any] = {}
    for name, value in values.items():
        if fields[name].type in ("int", int) and isinstance(value, float) and value.is_integer():
            value = int(value)
        typed[name] = value
    return QCThresholds(**typed)


def parse_threshold_args(items: Iterable[str]) -> dict[str, float]:
    """``["firefly_ratio=12", "flicker_ratio=0.4"]`` → a checked ``{name: value}``."""
    values: dict[str, float] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise ValueError(f"--qc-threshold {item!r}: expected NAME=VALUE, e.g. firefly_ratio=12")
        try:
            values[name] = float(text)
        except ValueError:
            raise ValueError(f"--qc-threshold {item!r}: {text.strip()!r} is not a number") from None
    thresholds_from(values)  # raises for unknown names and out-of-range values
    return values
