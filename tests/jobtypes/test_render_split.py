"""Tiles, chunks and overscan as the job type resolves them: --split, the border probe's
answer, the exact-overscan default, and the scene notes. Pure: no Blender."""

from __future__ import annotations

from pathlib import Path

import pytest

from wanhe.jobtypes.blender_render import (
    FarmRenderOptions,
    RenderOptions,
    SceneFacts,
    SceneSetupError,
    compile_render_job,
    missing_messages,
    refit_split,
    resolve_spec,
    scene_notes,
)


def facts(**over: object) -> SceneFacts:
    base: dict[str, object] = dict(
        path="/scenes/shot.blend", frame_start=1, frame_end=4, resolution_x=200,
        resolution_y=100, engine="CYCLES", camera="Cam", cameras=["Cam"], samples=128,
        output_path="//render/shot_####",
    )
    base.update(over)
    return SceneFacts(**base)  # type: ignore[arg-type]


INEXACT = {"border_exact": False, "border_why_not": "the scene has volumes"}


def test_overscan_defaults_to_zero_without_adaptive_sampling() -> None:
    spec = resolve_spec(RenderOptions(tiles="2x2"), facts())
    assert spec.overscan == 0


def test_overscan_defaults_to_the_adaptive_rule() -> None:
    spec = resolve_spec(RenderOptions(tiles="2x2"),
                        facts(adaptive_sampling=True, adaptive_threshold=0.01))
    assert spec.overscan == 3
    assert resolve_spec(RenderOptions(tiles="2x2", overscan=9), facts()).overscan == 9


def test_split_tiles_an_exact_scene() -> None:
    spec = resolve_spec(RenderOptions(split=4), facts(border_exact=True))
    assert (spec.tiles_x * spec.tiles_y, spec.sample_chunks) == (4, 1)
    assert spec.split_note is not None and "--split 4: 2x2 tiles" in spec.split_note
    assert "waste" in spec.split_note


def test_split_uses_sample_chunks_on_an_inexact_scene() -> None:
    spec = resolve_spec(RenderOptions(split=4), facts(**INEXACT))
    assert (spec.tiles_x, spec.tiles_y, spec.sample_chunks) == (1, 1, 4)
    assert spec.split_note is not None and "not be exact" in spec.split_note
    assert "volumes" in spec.split_note
    assert len([t for t in compile_render_job(spec, "/w") if t.kind.value == "render"]) == 16


def test_explicit_tiles_on_an_inexact_scene_warn_and_flag() -> None:
    spec = resolve_spec(RenderOptions(tiles="2x2", qc=True), facts(**INEXACT))
    assert spec.tiles_x == 2 and spec.tile_note is not None and "NOT exact" in spec.tile_note
    qc = next(t for t in compile_render_job(spec, "/w") if t.kind.value == "qc")
    assert spec.tile_note in qc.payload["notes"]  # the frames are flagged
    assert qc.payload["seams"]["strips"]  # and QC compares the seams with a whole render


def test_split_with_tiles_is_refused() -> None:
    with pytest.raises(SceneSetupError, match="not both"):
        resolve_spec(RenderOptions(split=4, tiles="2x2"), facts())


def test_refit_after_new_samples() -> None:
    options = RenderOptions(split=4)
    scene = facts(adaptive_sampling=True, adaptive_threshold=0.01, **INEXACT)
    spec = resolve_spec(options, scene).model_copy(update={"samples": 2})
    with pytest.raises(SceneSetupError, match="at most 2 sample chunks"):
        refit_split(spec, options, scene)


def test_the_farm_options_carry_split() -> None:
    assert FarmRenderOptions(split=8).split == 8
    with pytest.raises(ValueError):
        FarmRenderOptions(split=0)


def test_scene_notes() -> None:
    notes = scene_notes(RenderOptions(samples=8), facts(engine="BLENDER_WORKBENCH"))
    assert any("does not apply to BLENDER_WORKBENCH" in n for n in notes)
    eevee = resolve_spec(RenderOptions(samples=8), facts(engine="BLENDER_EEVEE_NEXT"))
    assert eevee.samples == 8  # applied to EEVEE's own sample count
    drivers = scene_notes(RenderOptions(), facts(python_drivers=["Cube: location[2] = 'f()'"]))
    assert drivers and "will not run" in drivers[0] and "Cube" in drivers[0]


def test_missing_point_cache_is_resimulated_not_pink() -> None:
    out = missing_messages(["/s/tex.png", "/s/blendcache_x/y_*.bphys"],
                           ["/s/blendcache_x/y_*.bphys"])
    assert "pink" in out[0]
    assert "re-run" in out[1] and "pink" not in out[1]


def test_submit_prints_each_missing_file_once() -> None:
    from wanhe.cli.service import server_warnings

    farm = ["missing external file (renders pink or empty): tex/wood.png",
            "missing point cache //blendcache_x/y_*.bphys: the simulation is re-run …",
            "--split 4: 4 sample chunks …"]
    assert server_warnings(farm) == ["--split 4: 4 sample chunks …"]


def test_a_render_time_limit_is_never_tiled() -> None:
    from wanhe.jobtypes.blender_render import probe_facts

    update = probe_facts(Path("/nowhere.blend"), facts(time_limit=30.0), RenderOptions(split=4))
    assert update["border_exact"] is False and "time limit" in update["border_why_not"]


def test_a_probe_that_cannot_render_counts_as_inexact(tmp_path: Path) -> None:
    from wanhe.jobtypes.blender_render import probe_facts

    class Broken:
        def render(self, request: object) -> object:
            raise RuntimeError("Blender is gone")

    scene = tmp_path / "s.blend"
    scene.write_bytes(b"BLENDER")
    update = probe_facts(scene, facts(), RenderOptions(split=4), process=Broken())
    assert update["border_exact"] is False and "could not check" in update["border_why_not"]
