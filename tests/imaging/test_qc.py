"""wanhe.imaging.qc: every detector catches its planted defect and passes clean frames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from wanhe.imaging.denoise import denoise_frame
from wanhe.imaging.exr import read_layers
from wanhe.imaging.qc import (
    FrameStats,
    QCResult,
    QCThresholds,
    Severity,
    check_exr,
    check_frame,
    frame_stats,
    grid_boxes,
)

W, H = 121, 87  # odd, non-square; a 3×2 grid does not divide it
GRID = (3, 2)


def clean_frame(seed: int = 0, gain: float = 1.0) -> np.ndarray:
    """Smooth gradients, a soft bright disk, a dark bar and a little render-like noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    u, v = x / W, y / H
    rgb = np.stack([0.15 + 0.5 * u, 0.1 + 0.3 * v, 0.2 + 0.2 * u * v], axis=-1)
    disk = np.clip(1.0 - np.hypot(x - 70, y - 40) / 25.0, 0, 1)[..., None] ** 0.5
    rgb = rgb + 0.9 * disk * np.array([1.0, 0.8, 0.6])
    rgb[60:70, 10:110] *= 0.2
    rgb = rgb * (1 + rng.normal(0, 0.01, rgb.shape))
    return (rgb * gain).astype(np.float32)


def run(rgb: np.ndarray, **kwargs: object) -> QCResult:
    kwargs.setdefault("expected_size", (W, H))
    kwargs.setdefault("tile_grid", GRID)
    return check_frame(rgb, **kwargs)  # type: ignore[arg-type]


def checks(result: QCResult) -> set[str]:
    return {issue.check for issue in result.issues}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clean_frames_pass_every_check(seed: int) -> None:
    neighbours = [frame_stats(clean_frame(seed + 10 + i)) for i in range(4)]
    result = run(clean_frame(seed), neighbour_stats=neighbours)
    assert result.passed and result.issues == (), result.to_dict()


def test_result_serialises_to_json() -> None:
    rgb = clean_frame()
    rgb[1, 2, 0] = np.nan
    rgb[5, 5] = 100.0
    data = run(rgb, neighbour_stats=[frame_stats(clean_frame(1))]).to_dict()
    again = json.loads(json.dumps(data, allow_nan=False))
    assert again["passed"] is False
    assert {i["check"] for i in again["issues"]} >= {"nonfinite", "fireflies"}
    assert len(again["stats"]["histogram"]) == 16
    stats = FrameStats.from_dict(again["stats"])
    assert stats.mean_luminance == pytest.approx(data["stats"]["mean_luminance"])


def test_wrong_resolution() -> None:
    result = check_frame(clean_frame(), expected_size=(W + 1, H))
    assert not result.passed
    issue = result.by_check("resolution")[0]
    assert issue.details == {"width": W, "height": H, "expected": [W + 1, H]}
    assert "121x87, expected 122x87" in issue.message


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nonfinite_pixels(value: float) -> None:
    rgb = clean_frame()
    rgb[10, 20, 1] = value
    rgb[11, 21, :] = value
    result = run(rgb)
    assert not result.passed
    issue = result.by_check("nonfinite")[0]
    assert issue.details["count"] == 2
    assert issue.details["positions"][0] == [20, 10]  # [x, y]
    assert "x=20, y=10" in issue.message
    assert "fireflies" not in checks(result)  # Inf is not counted twice


def test_nonfinite_allowance() -> None:
    rgb = clean_frame()
    rgb[3, 3] = np.nan
    assert run(rgb, thresholds=QCThresholds(max_nonfinite_pixels=1)).passed


def test_black_frame() -> None:
    result = run(np.zeros((H, W, 3), dtype=np.float32))
    assert [i.check for i in result.issues] == ["black"]
    assert not result.passed


def test_blank_uniform_frame() -> None:
    result = run(np.full((H, W, 4), 0.3, dtype=np.float32))  # RGBA accepted, alpha ignored
    assert [i.check for i in result.issues] == ["blank"]
    assert result.issues[0].severity is Severity.ERROR


def test_fireflies_found_with_positions() -> None:
    rgb = clean_frame()
    planted = [(5, 7), (60, 30), (100, 80)]  # (x, y)
    for x, y in planted:
        rgb[y, x] = 40.0
    result = run(rgb)
    issue = result.by_check("fireflies")[0]
    assert issue.details["count"] == 3
    assert sorted(map(tuple, issue.details["positions"])) == sorted(planted)
    assert issue.severity is Severity.WARNING  # a few: warning; > firefly_error_count: error
    assert result.passed
    assert checks(result) == {"fireflies"}


def test_many_fireflies_fail_the_frame() -> None:
    rgb = clean_frame()
    rng = np.random.default_rng(3)
    ys, xs = rng.integers(2, H - 2, 300) // 3 * 3, rng.integers(2, W - 2, 300) // 3 * 3
    rgb[ys, xs] = 30.0
    result = run(rgb, thresholds=QCThresholds(firefly_error_count=50))
    issue = result.by_check("fireflies")[0]
    assert issue.details["count"] > 50 and issue.severity is Severity.ERROR
    assert not result.passed


def test_small_highlight_is_not_a_firefly() -> None:
    rgb = clean_frame()
    rgb[20:23, 30:33] = 40.0  # a 3×3 specular highlight
    assert "fireflies" not in checks(run(rgb))


def test_firefly_on_black_background() -> None:
    rgb = np.zeros((H, W, 3), dtype=np.float32)
    rgb[:, :10] = 0.5
    rgb[40, 60] = 5.0
    issue = run(rgb, tile_grid=None).by_check("fireflies")[0]
    assert issue.details["positions"] == [[60, 40]]


def test_missing_tile() -> None:
    rgb = clean_frame()
    boxes = grid_boxes(W, H, *GRID)
    x0, y0, x1, y1 = boxes[4]
    rgb[y0:y1, x0:x1] = 0.0
    result = run(rgb)
    assert not result.passed
    issue = result.by_check("tile")[0]
    assert issue.details["tile"] == 4 and issue.details["box"] == list(boxes[4])
    assert "missing" in issue.message
    assert "seam" not in checks(result)  # the missing tile is reported once, not as seams


def test_blank_tile_with_explicit_boxes() -> None:
    rgb = clean_frame()
    boxes = [(0, 0, 50, 87), (50, 0, 121, 87)]
    rgb[:, 50:] = 0.5
    result = run(rgb, tile_grid=None, tile_boxes=boxes)
    issue = result.by_check("tile")[0]
    assert issue.details["tile"] == 1 and issue.severity is Severity.WARNING


def test_seam_from_a_brighter_tile() -> None:
    rgb = clean_frame()
    x0, y0, x1, y1 = grid_boxes(W, H, *GRID)[1]  # top middle
    rgb[y0:y1, x0:x1] *= 1.15
    result = run(rgb)
    seams = result.by_check("seam")
    assert not result.passed
    found = {(i.details["axis"], i.details["position"]) for i in seams}
    assert found == {("x", x0), ("x", x1), ("y", y1)}
    assert all(i.severity is Severity.ERROR and i.details["tile"] == 1 for i in seams)


def test_single_seam_line_is_a_warning() -> None:
    """One border line with a step could be a real edge along the border: warn only."""
    rgb = clean_frame()
    rgb[:, 40:] *= 1.15  # x=40 is the border of a 3×1 grid (121 * 1 // 3)
    result = run(rgb, tile_grid=(3, 1))
    seams = result.by_check("seam")
    assert [(i.details["position"], i.severity) for i in seams] == [(40, Severity.WARNING)]
    assert result.passed


def test_seam_from_a_shifted_tile() -> None:
    """A tile cropped 6 rows off (a bad crop): the content jumps at its top border."""
    rgb = clean_frame()
    x0, y0, x1, y1 = grid_boxes(W, H, *GRID)[3]  # bottom left
    rgb[y0:y1, x0:x1] = np.roll(rgb[y0:y1, x0:x1], 6, axis=0)
    result = run(rgb)
    assert ("y", y0) in {(i.details["axis"], i.details["position"]) for i in result.issues}


def test_no_tile_checks_without_a_grid() -> None:
    rgb = clean_frame()
    x0, y0, x1, y1 = grid_boxes(W, H, *GRID)[1]
    rgb[y0:y1, x0:x1] *= 1.15
    assert run(rgb, tile_grid=None).passed


def test_brightness_jump_against_neighbours() -> None:
    neighbours = [frame_stats(clean_frame(s)) for s in range(4)]
    result = run(clean_frame(9, gain=0.6), neighbour_stats=neighbours)  # a light went out
    issue = result.by_check("flicker")[0]
    assert not result.passed
    assert issue.details["change"] == pytest.approx(-0.4, abs=0.02)


def test_histogram_jump_against_neighbours() -> None:
    neighbours = [frame_stats(clean_frame(s)) for s in range(4)]
    rgb = clean_frame(9)
    mean = rgb.mean(axis=(0, 1))
    flat = np.broadcast_to(mean, rgb.shape).copy()  # same mean, no contrast at all
    flat += np.random.default_rng(0).normal(0, 0.01, flat.shape).astype(np.float32)
    result = run(flat.astype(np.float32), neighbour_stats=neighbours, tile_grid=None)
    assert "histogram" in checks(result)
    assert "flicker" not in checks(result)


def test_frame_stats() -> None:
    stats = frame_stats(np.full((4, 4, 3), 0.18, dtype=np.float32))
    assert stats.mean_luminance == pytest.approx(0.18)
    assert sum(stats.histogram) == pytest.approx(1.0)
    assert stats.histogram[7] == 1.0  # sRGB(0.18) = 0.46 -> bin 7 of 16


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("firefly_ratio", 0.5, r"firefly_ratio = 0.5 is out of range: must be in \(1, 1e\+06\]"),
        ("firefly_window", 4, r"firefly_window = 4 .* \[3, 15\] and odd"),
        ("firefly_window", 5.0, "firefly_window must be an integer"),
        ("black_level", -1.0, r"black_level .* \[0, 1\]"),
        ("flicker_ratio", 0.0, r"flicker_ratio .* \(0, 10\]"),
        ("max_fireflies", -1, r"max_fireflies .* \[0, inf\)"),
        ("seam_min_step", float("nan"), "seam_min_step must be a number"),
    ],
)
def test_thresholds_are_validated(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        QCThresholds(**{field: value})  # type: ignore[arg-type]


def test_denoised_blender_render_passes(noisy_render: Path, tmp_path: Path) -> None:
    out = tmp_path / "denoised.exr"
    denoise_frame(noisy_render, out, quality="fast")
    result = check_exr(out, expected_size=(96, 72), tile_grid=(3, 2))
    assert result.passed, result.to_dict()
    assert not result.by_check("seam")
    frame = read_layers(out)
    assert check_frame(frame.rgb(), expected_size=(96, 72)).stats is not None


def test_real_edge_on_a_tile_border_is_only_a_warning(reference_render: Path) -> None:
    """The scene's flat-shaded sphere has a meridian edge at x=48, a 4×4 tile border."""
    result = check_exr(reference_render, tile_grid=(4, 4))
    assert result.passed, result.to_dict()
    assert all(i.severity is Severity.WARNING for i in result.issues)
