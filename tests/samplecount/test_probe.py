"""The --quality probe on real Blender renders of the tiny scene (a few seconds)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import build_scene
from wanhe.blender.runner import BlenderProcess
from wanhe.jobtypes.blender_render import RenderOptions
from wanhe.localrender import prepare
from wanhe.samplecount.autoquality import choose_samples, probe_percentage
from wanhe.samplecount.levels import LEVELS
from wanhe.samplecount.probe import ProbePoint, probe_samples


@pytest.fixture(scope="module")
def tiny(scene_dir: Path) -> Path:
    return build_scene(scene_dir / "tiny.blend", "tiny")


@pytest.fixture(scope="module")
def blender() -> Iterator[BlenderProcess]:
    with BlenderProcess() as process:
        yield process


def probe(blender: BlenderProcess, scene: Path, target: float, **kw: object) -> object:
    return probe_samples(blender, scene=str(scene), frame=1, target_db=target,
                         resolution_percentage=100, ladder=(1, 2, 4, 8), reference_samples=64,
                         threads=2, scene_samples=8, **kw)  # type: ignore[arg-type]


def test_picks_the_smallest_count_that_reaches_the_target(
    tiny: Path, blender: BlenderProcess
) -> None:
    everything = probe(blender, tiny, 99.0)  # unreachable: every count is measured
    points: list[ProbePoint] = list(everything.points)  # type: ignore[attr-defined]
    assert [p.samples for p in points] == [1, 2, 4, 8]
    assert all(p.denoised is not None for p in points)
    assert points[0].raw.psnr_db < points[-1].raw.psnr_db  # more samples, less noise
    # aim between two measured points: the probe must stop at the first one above
    target = (points[1].best_db + points[2].best_db) / 2
    above = [p.samples for p in points if p.best_db >= target]
    picked = probe(blender, tiny, target)
    assert picked.reached and picked.chosen_samples == above[0]  # type: ignore[attr-defined]
    assert len(picked.points) == [p.samples for p in points].index(above[0]) + 1  # type: ignore[attr-defined]
    again = probe(blender, tiny, target)  # a resumed render must pick the same (fingerprint)
    assert [p.best_db for p in again.points] == [p.best_db for p in picked.points]  # type: ignore[attr-defined]
    text = picked.explain()  # type: ignore[attr-defined]
    assert f"{above[0]} samples + OIDN reach" in text and "probe of frame 1" in text


def test_unreachable_target_renders_at_the_most_and_says_so(
    tiny: Path, blender: BlenderProcess
) -> None:
    result = probe(blender, tiny, 99.0, denoise=False)
    assert not result.reached and result.chosen_samples == 8  # type: ignore[attr-defined]
    assert "NOT REACHED" in result.explain()  # type: ignore[attr-defined]
    assert result.to_dict()["points"][0]["denoised"] is None  # type: ignore[attr-defined]


def test_reference_must_outnumber_the_ladder(tiny: Path, blender: BlenderProcess) -> None:
    with pytest.raises(ValueError, match="reference"):
        probe_samples(blender, scene=str(tiny), frame=1, target_db=30, resolution_percentage=100,
                      ladder=(8, 64), reference_samples=64)


def test_choose_samples_updates_the_spec(tiny: Path) -> None:
    options = RenderOptions(frames="1-3", sample_chunks=3, output="/tmp/wanhe-probe-test/f_####")
    prepared = prepare(tiny, options)
    assert probe_percentage(prepared.spec, prepared.facts) == 67  # 64 px of 96 at least
    data, spec = choose_samples(prepared.spec, prepared.facts, "1", ladder=(1, 2),
                                reference_samples=16)
    assert data["reached"] and data["frame"] == 2  # the middle frame
    assert spec.samples == 3  # 1 sample reaches 1 dB, raised so each of 3 chunks has one
    assert "raised to 3 samples" in data["explanation"] and spec.quality_note is None
    data, spec = choose_samples(prepared.spec, prepared.facts, "final", ladder=(1, 2),
                                reference_samples=16)
    assert not data["reached"] and spec.samples == 3 and spec.quality_note
    assert f"final ({LEVELS['final']:g} dB)" in spec.quality_note


def test_a_rerun_reuses_the_probe_instead_of_probing_again(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resuming a --quality render must not pay for the probe twice; a new target must."""
    import wanhe.samplecount.autoquality as autoquality
    from wanhe.localrender import apply_quality

    real = autoquality.choose_samples
    calls: list[str] = []

    def counted(spec: Any, facts: Any, quality: str, blender: str | None = None) -> Any:
        calls.append(quality)  # the real probe, on a short ladder to keep the test quick
        return real(spec, facts, quality, blender, ladder=(1, 2), reference_samples=16)

    monkeypatch.setattr(autoquality, "choose_samples", counted)
    cache = tmp_path / "probes"

    def run(quality: str) -> Any:
        options = RenderOptions(frames="1-3", quality=quality, output=str(tmp_path / "f_####"))
        return apply_quality(prepare(tiny, options), options, None, cache_dir=cache)

    first = run("1")
    again = run("1")
    assert calls == ["1"]
    assert again.spec.samples == first.spec.samples
    assert again.quality is not None and again.quality["cached"]
    assert "reused" in again.quality["explanation"]
    run("final")
    assert calls == ["1", "final"]
