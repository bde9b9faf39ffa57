"""QC detectors: automatic checks on rendered frames, before a person has to look.

Pure NumPy/SciPy functions on H×W×3 (or ×4, alpha ignored) linear RGB arrays, row 0 = top.
Each detector returns a list of :class:`QCIssue`; :func:`check_frame` runs them all and
returns a :class:`QCResult` that serialises to a JSON-able dict. A frame passes when no issue
has severity ``error``.

Detectors: wrong resolution, NaN/Inf pixels, black or blank (uniform) frame, fireflies,
missing or blank tiles, seams at tile borders, and brightness / histogram jumps against
neighbouring frames (flicker, a light that went missing).

Pure functions only; the QC task that runs them on each finished frame (and re-renders one that
fails) is :mod:`wanhe.engine.frame_checks`, the ``--qc-threshold`` parsing
:mod:`wanhe.imaging.qc_thresholds`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from wanhe.imaging.exr import read_layers
from wanhe.imaging.preview import srgb_encode

__all__ = [
    "HISTOGRAM_BINS",
    "FrameStats",
    "QCIssue",
    "QCResult",
    "QCThresholds",
    "Severity",
    "check_black_or_blank",
    "check_exr",
    "check_fireflies",
    "check_frame",
    "check_neighbours",
    "check_nonfinite",
    "check_resolution",
    "check_seams",
    "check_tiles",
    "frame_stats",
    "grid_boxes",
    "luminance",
]

Box = tuple[int, int, int, int]
FloatArray = NDArray[np.float32]
HISTOGRAM_BINS = 16
_REC709 = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class QCIssue:
    """One finding: which check, how bad, a sentence for people, numbers for machines."""

    check: str
    severity: Severity
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "severity": str(self.severity),
            "message": self.message,
            "details": _jsonable(self.details),
        }


@dataclass(frozen=True)
class FrameStats:
    """What a frame is compared with its neighbours by: mean linear luminance and a
    normalised histogram (:data:`HISTOGRAM_BINS` bins of sRGB-encoded luminance, 0..1)."""

    mean_luminance: float
    histogram: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"mean_luminance": self.mean_luminance, "histogram": list(self.histogram)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FrameStats:
        return cls(float(data["mean_luminance"]), tuple(float(v) for v in data["histogram"]))


# name: (low, high, low inclusive, high inclusive, meaning)
_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "max_nonfinite_pixels": (0, math.inf, True, False),
    "black_level": (0.0, 1.0, True, True),
    "blank_tolerance": (0.0, 1.0, True, True),
    "firefly_ratio": (1.0, 1e6, False, True),
    "firefly_floor": (0.0, 1e6, True, True),
    "firefly_window": (3, 15, True, True),
    "max_fireflies": (0, math.inf, True, False),
    "firefly_error_count": (0, math.inf, True, False),
    "tile_tolerance": (0.0, 1.0, True, True),
    "seam_ratio": (1.0, 1e3, False, True),
    "seam_min_step": (0.0, 1.0, True, True),
    "seam_context": (2, 32, True, True),
    "seam_z": (0.0, 100.0, False, True),
    "flicker_ratio": (0.0, 10.0, False, True),
    "flicker_floor": (0.0, 1.0, True, True),
    "histogram_distance": (0.0, 2.0, False, True),
}


@dataclass(frozen=True)
class QCThresholds:
    """Detector thresholds. Luminance values are linear unless noted as display (sRGB 0..1).

    Out-of-range values raise :class:`ValueError` naming the field and its valid range.
    """

    max_nonfinite_pixels: int = 0  # more NaN/Inf pixels than this is an error
    black_level: float = 1e-4  # every pixel's luminance <= this: black frame
    blank_tolerance: float = 1e-6  # max-min of all RGB values <= this: uniform frame
    firefly_ratio: float = 8.0  # luminance > ratio × local median ...
    firefly_floor: float = 0.5  # ... and > this absolute (linear) luminance
    firefly_window: int = 5  # odd size of the local median window
    max_fireflies: int = 0  # more fireflies than this: warning
    firefly_error_count: int = 100  # more than this: error
    tile_tolerance: float = 1e-6  # a tile whose values vary by <= this is blank
    seam_ratio: float = 4.0  # step across a tile border > ratio × steps beside it ...
    seam_min_step: float = 0.01  # ... and > this mean step (display luminance)
    seam_context: int = 4  # columns/rows on each side used as "beside it"
    seam_z: float = 5.0  # ... and > this many standard errors of the mean step (not noise)
    flicker_ratio: float = 0.25  # |mean - neighbours' median| / that median above this: error
    flicker_floor: float = 1e-3  # ratios are taken against at least this mean luminance
    histogram_distance: float = 0.5  # L1 distance to neighbours' mean histogram (0..2): warning

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            low, high, low_in, high_in = _RANGES[f.name]
            is_int = f.type in ("int", int)
            if is_int and (not isinstance(value, int) or isinstance(value, bool)):
                raise ValueError(f"QCThresholds.{f.name} must be an integer, got {value!r}")
            if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
                raise ValueError(f"QCThresholds.{f.name} must be a number, got {value!r}")
            ok = (value >= low if low_in else value > low) and (
                value <= high if high_in else value < high
            )
            if f.name == "firefly_window" and value % 2 == 0:
                ok = False
            if not ok:
                lo = f"{'[' if low_in else '('}{low:g}"
                hi = f"{high:g}{']' if high_in else ')'}"
                odd = " and odd" if f.name == "firefly_window" else ""
                raise ValueError(
                    f"QCThresholds.{f.name} = {value!r} is out of range: must be in {lo}, {hi}{odd}"
                )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class QCResult:
    """All issues found in one frame, and the frame's stats (for its neighbours' checks)."""

    issues: tuple[QCIssue, ...]
    stats: FrameStats | None = None

    @property
    def passed(self) -> bool:
        return not any(i.severity is Severity.ERROR for i in self.issues)

    def by_check(self, check: str) -> list[QCIssue]:
        return [i for i in self.issues if i.check == check]

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "issues": [i.to_dict() for i in self.issues],
            "stats": self.stats.to_dict() if self.stats is not None else None,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


# -- helpers ----------------------------------------------------------------------------------
def _rgb(array: NDArray[Any]) -> FloatArray:
    data = np.asarray(array, dtype=np.float32)
    if data.ndim != 3 or data.shape[2] not in (3, 4):
        raise ValueError(f"expected an H×W×3 or H×W×4 image, got shape {data.shape}")
    return data[..., :3]


def luminance(rgb: NDArray[Any]) -> FloatArray:
    """Rec.709 luminance of linear RGB (H×W)."""
    out: FloatArray = (_rgb(rgb) @ _REC709).astype(np.float32)
    return out


def _finite(rgb: FloatArray) -> FloatArray:
    if np.isfinite(rgb).all():
        return rgb
    return np.nan_to_num(rgb, nan=0.0, posinf=0.0, neginf=0.0)


def grid_boxes(width: int, height: int, cols: int, rows: int) -> list[Box]:
    """Boxes (x0, y0, x1, y1), top-left origin, of a ``cols`` × ``rows`` grid whose edges are
    at ``size * i // n``. Pass ``tile_boxes`` to :func:`check_frame` if the plan differs."""
    if cols <= 0 or rows <= 0:
        raise ValueError(f"tile grid must be at least 1x1, got {cols}x{rows}")
    xs = [width * i // cols for i in range(cols + 1)]
    ys = [height * j // rows for j in range(rows + 1)]
    return [(xs[c], ys[r], xs[c + 1], ys[r + 1]) for r in range(rows) for c in range(cols)]


def frame_stats(rgb: NDArray[Any]) -> FrameStats:
    """Mean linear luminance and a normalised histogram of display luminance."""
    lum = luminance(_finite(_rgb(rgb)))
    hist, _ = np.histogram(srgb_encode(lum), bins=HISTOGRAM_BINS, range=(0.0, 1.0))
    total = max(int(hist.sum()), 1)
    return FrameStats(float(lum.mean(dtype=np.float64)), tuple(float(h) / total for h in hist))


# -- detectors --------------------------------------------------------------------------------
def check_resolution(rgb: NDArray[Any], expected_size: tuple[int, int]) -> list[QCIssue]:
    """``expected_size`` is (width, height)."""
    height, width = np.shape(rgb)[:2]
    if (width, height) == tuple(expected_size):
        return []
    return [
        QCIssue(
            "resolution",
            Severity.ERROR,
            f"frame is {width}x{height}, expected {expected_size[0]}x{expected_size[1]}",
            {"width": width, "height": height, "expected": list(expected_size)},
        )
    ]


def check_nonfinite(rgb: NDArray[Any], thresholds: QCThresholds) -> list[QCIssue]:
    bad = ~np.isfinite(_rgb(rgb)).all(axis=-1)
    count = int(bad.sum())
    if count <= thresholds.max_nonfinite_pixels:
        return []
    ys, xs = np.nonzero(bad)
    return [
        QCIssue(
            "nonfinite",
            Severity.ERROR,
            f"{count} pixels are NaN or Inf (first at x={int(xs[0])}, y={int(ys[0])})",
            {
                "count": count,
                "nan": int(np.isnan(rgb[..., :3]).any(axis=-1).sum()),
                "positions": [[int(x), int(y)] for x, y in zip(xs[:20], ys[:20], strict=True)],
            },
        )
    ]


def check_black_or_blank(rgb: NDArray[Any], thresholds: QCThresholds) -> list[QCIssue]:
    data = _finite(_rgb(rgb))
    lum = luminance(data)
    peak = float(lum.max())
    if peak <= thresholds.black_level:
        return [
            QCIssue(
                "black",
                Severity.ERROR,
                f"frame is black (brightest luminance {peak:.3g})",
                {"max_luminance": peak},
            )
        ]
    spread = float(data.max() - data.min())
    if spread <= thresholds.blank_tolerance:
        value = [float(v) for v in data[0, 0]]
        return [
            QCIssue(
                "blank",
                Severity.ERROR,
                f"frame is one uniform colour {value}",
                {"value": value, "spread": spread},
            )
        ]
    return []


def check_fireflies(rgb: NDArray[Any], thresholds: QCThresholds) -> list[QCIssue]:
    """Isolated pixels far brighter than their neighbourhood's median.

    A pixel is a firefly when its luminance exceeds ``firefly_ratio`` × the median of its
    ``firefly_window`` neighbourhood and ``firefly_floor``, and at most one other pixel in its
    3×3 neighbourhood does too (a small bright highlight of 2×2 pixels or more is not one).
    """
    from scipy import ndimage  # here, not at the top: the CLI imports this module to start

    lum = luminance(_finite(_rgb(rgb)))
    median = ndimage.median_filter(lum, size=thresholds.firefly_window, mode="reflect")
    candidates = (lum > thresholds.firefly_ratio * median) & (lum > thresholds.firefly_floor)
    if not candidates.any():
        return []
    crowd = ndimage.convolve(
        candidates.astype(np.uint8), np.ones((3, 3), np.uint8), mode="constant"
    )
    fireflies = candidates & (crowd <= 2)
    count = int(fireflies.sum())
    if count <= thresholds.max_fireflies:
        return []
    ys, xs = np.nonzero(fireflies)
    order = np.argsort(-lum[ys, xs])[:20]
    severity = Severity.ERROR if count > thresholds.firefly_error_count else Severity.WARNING
    ratios = lum[ys, xs] / np.maximum(median[ys, xs], 1e-12)
    return [
        QCIssue(
            "fireflies",
            severity,
            f"{count} firefly pixels (isolated, > {thresholds.firefly_ratio:g}× local median); "
            f"brightest at x={int(xs[order[0]])}, y={int(ys[order[0]])}",
            {
                "count": count,
                "positions": [[int(xs[i]), int(ys[i])] for i in order],
                "max_luminance": float(lum[ys, xs].max()),
                "max_ratio": float(min(ratios.max(), 1e12)),
            },
        )
    ]


def _boxes(
    width: int, height: int, tile_grid: tuple[int, int] | None, tile_boxes: Sequence[Box] | None
) -> list[Box]:
    if tile_boxes is not None:
        return [tuple(int(v) for v in b) for b in tile_boxes]  # type: ignore[misc]
    if tile_grid is not None:
        return grid_boxes(width, height, tile_grid[0], tile_grid[1])
    return []


def check_tiles(rgb: NDArray[Any], boxes: Sequence[Box], thresholds: QCThresholds) -> list[QCIssue]:
    """A tile that is all zero (error: missing) or one constant colour (warning: blank)
    while the frame as a whole is not."""
    data = _rgb(rgb)
    finite = _finite(data)
    if float(finite.max() - finite.min()) <= thresholds.tile_tolerance:
        return []  # the whole frame is uniform; check_black_or_blank reports it
    issues = []
    for index, (x0, y0, x1, y1) in enumerate(boxes):
        tile = finite[y0:y1, x0:x1]
        if tile.size == 0:
            continue
        spread = float(tile.max() - tile.min())
        if spread > thresholds.tile_tolerance:
            continue
        value = [float(v) for v in tile[0, 0]]
        zero = all(v == 0.0 for v in value)
        issues.append(
            QCIssue(
                "tile",
                Severity.ERROR if zero else Severity.WARNING,
                f"tile {index} at {(x0, y0, x1, y1)} is "
                + ("empty (all zero): missing tile" if zero else f"one flat colour {value}"),
                {"tile": index, "box": [x0, y0, x1, y1], "value": value},
            )
        )
    return issues


def _border_lines(boxes: Sequence[Box], width: int, height: int) -> list[tuple[str, int, int, int]]:
    """Unique interior border segments: ("x", x, y0, y1) between columns x-1 and x, or
    ("y", y, x0, x1) between rows y-1 and y."""
    lines: set[tuple[str, int, int, int]] = set()
    for x0, y0, x1, y1 in boxes:
        for x in (x0, x1):
            if 0 < x < width:
                lines.add(("x", x, y0, y1))
        for y in (y0, y1):
            if 0 < y < height:
                lines.add(("y", y, x0, x1))
    return sorted(lines)


def check_seams(
    rgb: NDArray[Any],
    boxes: Sequence[Box],
    thresholds: QCThresholds,
    *,
    skip: set[tuple[str, int, int, int]] | None = None,
) -> list[QCIssue]:
    """Visible seams at tile borders, on display (sRGB) luminance.

    For each border segment, the mean signed step between the two pixel rows/columns that meet
    there is compared with the same step between the ``seam_context`` neighbouring rows/columns
    on either side: a seam is a step > ``seam_min_step``, > ``seam_ratio`` × the median step
    beside it, and > ``seam_z`` standard errors (so render noise is not a seam).

    A real edge in the picture that runs exactly along a tile border looks the same (measured:
    a flat-shaded sphere's meridian on a 4×4 grid), so one seam line is a warning; seams on
    every interior border of one tile are errors.
    """
    display = srgb_encode(luminance(_finite(_rgb(rgb))))
    height, width = display.shape
    k = thresholds.seam_context
    issues = []
    for axis, pos, a, b in _border_lines(boxes, width, height):
        if skip and (axis, pos, a, b) in skip:
            continue
        # work on a view where the border is between columns pos-1 and pos
        band = display[a:b, :] if axis == "x" else display[:, a:b].T
        lo, hi = max(1, pos - k), min(band.shape[1] - 1, pos + k)
        diffs = np.diff(band[:, lo - 1 : hi + 1], axis=1)  # diffs[:, i]: cols lo+i-1 -> lo+i
        steps = np.abs(diffs.mean(axis=0))
        i = pos - lo
        at = float(steps[i])
        beside = np.delete(steps, i)
        if beside.size == 0:
            continue
        reference = float(np.median(beside))
        stderr = float(diffs[:, i].std()) / math.sqrt(diffs.shape[0])
        significant = at > thresholds.seam_z * stderr
        if at > thresholds.seam_min_step and at > thresholds.seam_ratio * reference and significant:
            where = f"x={pos}, y {a}..{b - 1}" if axis == "x" else f"y={pos}, x {a}..{b - 1}"
            issues.append(
                QCIssue(
                    "seam",
                    Severity.WARNING,
                    f"visible seam at the tile border {where}: step {at:.3f} vs {reference:.3f} "
                    "beside it",
                    {
                        "axis": axis,
                        "position": pos,
                        "span": [a, b],
                        "step": at,
                        "reference": reference,
                        "z": at / stderr if stderr > 0 else None,
                    },
                )
            )
    return _escalate_odd_tiles(issues, boxes, width, height)


def _escalate_odd_tiles(
    issues: list[QCIssue], boxes: Sequence[Box], width: int, height: int
) -> list[QCIssue]:
    """A single seam line may be a real edge in the picture that happens to run along a tile
    border (a warning). A tile with a seam on every one of its (two or more) interior borders
    differs from all its neighbours: those seams are errors, naming the tile."""
    found = {(i.details["axis"], i.details["position"], *i.details["span"]): i for i in issues}
    odd: dict[tuple[str, int, int, int], int] = {}
    for index, box in enumerate(boxes):
        lines = _border_lines([box], width, height)
        if len(lines) >= 2 and all(line in found for line in lines):
            for line in lines:
                odd.setdefault(line, index)
    out = []
    for key, issue in found.items():
        if key in odd:
            details = {**issue.details, "tile": odd[key]}
            message = f"{issue.message}; tile {odd[key]} differs from all its neighbours"
            issue = QCIssue(issue.check, Severity.ERROR, message, details)
        out.append(issue)
    return out


def check_neighbours(
    stats: FrameStats, neighbour_stats: Sequence[FrameStats], thresholds: QCThresholds
) -> list[QCIssue]:
    """Brightness jump (error) or histogram jump (warning) against neighbouring frames."""
    if not neighbour_stats:
        return []
    issues = []
    reference = float(np.median([n.mean_luminance for n in neighbour_stats]))
    base = max(reference, thresholds.flicker_floor)
    change = (stats.mean_luminance - reference) / base
    if abs(change) > thresholds.flicker_ratio:
        issues.append(
            QCIssue(
                "flicker",
                Severity.ERROR,
                f"mean luminance {stats.mean_luminance:.4g} is {change:+.0%} against the "
                f"neighbouring frames' {reference:.4g} (a light missing, or flicker?)",
                {"mean": stats.mean_luminance, "neighbours": reference, "change": change},
            )
        )
    mean_hist = np.mean([n.histogram for n in neighbour_stats], axis=0)
    distance = float(np.abs(np.asarray(stats.histogram) - mean_hist).sum())
    if distance > thresholds.histogram_distance:
        issues.append(
            QCIssue(
                "histogram",
                Severity.WARNING,
                f"luminance histogram differs from the neighbouring frames' by {distance:.2f} "
                f"(L1, limit {thresholds.histogram_distance:g})",
                {"distance": distance},
            )
        )
    return issues


def check_frame(
    rgb: NDArray[Any],
    *,
    expected_size: tuple[int, int] | None = None,
    tile_grid: tuple[int, int] | None = None,
    tile_boxes: Sequence[Box] | None = None,
    neighbour_stats: Sequence[FrameStats] | None = None,
    thresholds: QCThresholds | None = None,
) -> QCResult:
    """Run every detector on one frame (H×W×3 or ×4 linear RGB, row 0 = top).

    ``expected_size`` is (width, height). ``tile_grid`` is (columns, rows), split as in
    :func:`grid_boxes`; ``tile_boxes`` (x0, y0, x1, y1) take precedence when both are given.
    ``neighbour_stats`` are :func:`frame_stats` of nearby frames of the same shot.
    """
    limits = thresholds if thresholds is not None else QCThresholds()
    data = _rgb(rgb)
    height, width = data.shape[:2]
    issues: list[QCIssue] = []
    if expected_size is not None:
        issues += check_resolution(data, expected_size)
    issues += check_nonfinite(data, limits)
    blank = check_black_or_blank(data, limits)
    issues += blank
    stats = frame_stats(data)
    if not blank:
        issues += check_fireflies(data, limits)
        boxes = _boxes(width, height, tile_grid, tile_boxes)
        if boxes:
            tiles = check_tiles(data, boxes, limits)
            issues += tiles
            flat = {i.details["tile"] for i in tiles}
            skip = set(_border_lines([boxes[i] for i in flat], width, height))
            issues += check_seams(data, boxes, limits, skip=skip)
    if neighbour_stats:
        issues += check_neighbours(stats, neighbour_stats, limits)
    return QCResult(tuple(issues), stats)


def check_exr(
    path: os.PathLike[str] | str,
    *,
    pass_name: str = "Combined",
    **kwargs: Any,
) -> QCResult:
    """:func:`check_frame` on a pass of an EXR file (keyword arguments as for check_frame)."""
    return check_frame(read_layers(path).rgb(pass_name), **kwargs)
