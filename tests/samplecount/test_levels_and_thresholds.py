"""`--quality TARGET` and `--qc-threshold NAME=VALUE` parsing: good input, and clear refusals."""

from __future__ import annotations

import pytest

from wanhe.imaging.qc_thresholds import parse_threshold_args, thresholds_from
from wanhe.jobtypes.blender_render import RenderOptions
from wanhe.samplecount.levels import LEVELS, parse_quality_target


@pytest.mark.parametrize("name", sorted(LEVELS))
def test_named_levels(name: str) -> None:
    target = parse_quality_target(name.upper())
    assert (target.db, target.name) == (LEVELS[name], name)
    assert name in target.label


def test_levels_rise() -> None:
    assert LEVELS["draft"] < LEVELS["preview"] < LEVELS["final"]


@pytest.mark.parametrize(("text", "db"), [("35", 35.0), ("38.5dB", 38.5), (" 100 ", 100.0)])
def test_numbers(text: str, db: float) -> None:
    assert parse_quality_target(text).db == db


@pytest.mark.parametrize(
    ("text", "needle"),
    [("0", "out of range"), ("-3", "out of range"), ("100.5", "out of range"),
     ("nan", "out of range"), ("inf", "out of range"), ("ultra", "neither a PSNR"),
     ("", "neither a PSNR")],
)
def test_bad_targets(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle) as info:
        parse_quality_target(text)
    assert "draft" in str(info.value)  # the message lists the levels


def test_render_options_check_quality_and_thresholds() -> None:
    assert RenderOptions(quality="final").quality == "final"
    with pytest.raises(ValueError, match="out of range"):
        RenderOptions(quality="0")
    with pytest.raises(ValueError, match="firefly_window"):
        RenderOptions(qc_thresholds={"firefly_window": 4})


def test_threshold_args() -> None:
    values = parse_threshold_args(["firefly_ratio=12", "flicker-ratio = 0.4", "max_fireflies=3"])
    assert values == {"firefly_ratio": 12.0, "flicker_ratio": 0.4, "max_fireflies": 3.0}
    limits = thresholds_from(values)
    assert limits.max_fireflies == 3 and isinstance(limits.max_fireflies, int)
    assert limits.firefly_ratio == 12.0


@pytest.mark.parametrize(
    ("arg", "needle"),
    [("firefly_ratio", "NAME=VALUE"), ("=3", "NAME=VALUE"), ("firefly_ratio=lots", "not a number"),
     ("sharpness=2", "unknown QC threshold"), ("firefly_window=4", "out of range"),
     ("flicker_ratio=-1", "out of range"), ("black_level=2", "out of range"),
     ("max_fireflies=2.5", "must be an integer")],
)
def test_bad_threshold_args(arg: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        parse_threshold_args([arg])
