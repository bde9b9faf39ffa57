"""The panel's plan says what the farm will do: the add-on's frame and tile syntax is the
farm's, its task count is the farm's compiled graph, its options are the job type's."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wanhe.addon.wanhe_farm import plan
from wanhe.jobtypes.blender_render import FarmRenderOptions, RenderSpec, compile_render_job
from wanhe.plan.frames import FrameSpecError, parse_frames
from wanhe.plan.tiles import TileSpecError, parse_grid

_part = st.one_of(
    st.integers(-5, 300).map(str),
    st.tuples(st.integers(-5, 300), st.integers(-5, 300)).map(lambda t: f"{t[0]}-{t[1]}"),
    st.tuples(st.integers(0, 300), st.integers(0, 300), st.integers(0, 9)).map(
        lambda t: f"{t[0]}-{t[1]}x{t[2]}"),
    st.sampled_from(["", " ", "a", "1-", "x2", "1--2", "3 - 7 x 2"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_part, min_size=1, max_size=4).map(",".join))
def test_frames_parse_as_the_farm_parses(spec: str) -> None:
    try:
        farm = parse_frames(spec)
    except FrameSpecError:
        with pytest.raises(plan.PlanError):
            plan.parse_frames(spec)
        return
    assert plan.parse_frames(spec) == farm


@pytest.mark.parametrize("spec", ["4x2", "1x1", " 3 X 5 ", "2×2", "0x3", "4", "ax2", "", "9x999"])
def test_tiles_parse_as_the_farm_parses(spec: str) -> None:
    try:
        grid = parse_grid(spec)
        if grid.count > 4096:
            raise TileSpecError("too many")
    except TileSpecError:
        with pytest.raises(plan.PlanError):
            plan.parse_tiles(spec)
        return
    assert plan.parse_tiles(spec) == (grid.columns, grid.rows)


@pytest.mark.parametrize(("tiles", "chunks", "denoise", "qc", "video"), [
    ("1x1", 1, True, False, False), ("2x2", 1, False, True, True), ("3x1", 4, True, True, True),
])
def test_task_count_is_the_compiled_graph(
    tiles: str, chunks: int, denoise: bool, qc: bool, video: bool
) -> None:
    s = plan.Settings(scene_start=1, scene_end=10, frames="2-9x3", tiles=tiles,
                      sample_chunks=chunks, quality_mode="SAMPLES", samples=16,
                      denoise=denoise, qc=qc, video=video, width=64, height=48)
    p = plan.make_plan(s)
    columns, rows = p.columns, p.rows
    spec = RenderSpec(scene="/x.blend", frames=p.frames, width=64, height=48,
                      tiles_x=columns, tiles_y=rows, output="/o/f_####", samples=16,
                      sample_chunks=chunks, denoise=denoise, qc=qc, video=video)
    graph = compile_render_job(spec, "/w")
    assert p.total_tasks == len(graph)
    assert p.render_tasks == sum(1 for t in graph if t.kind.value == "render")
    assert plan.describe(p)[0].endswith(f"= {p.render_tasks} render tasks")


def test_options_are_the_job_types() -> None:
    s = plan.Settings(scene_start=1, scene_end=4, frames="1-3", tiles="2x1", sample_chunks=2,
                      quality_mode="PRESET", quality="final", qc=True, video=True)
    body = plan.options_body(s)
    assert set(body) <= set(FarmRenderOptions.model_json_schema()["properties"])
    FarmRenderOptions.model_validate(body)  # the farm takes them as they are
    kept, dropped = plan.known_options({**body, "future": 1},
                                       FarmRenderOptions.model_json_schema())
    assert kept == body and dropped == ["future"]


def test_frames_outside_the_scene_and_eevee_tiles_are_refused() -> None:
    with pytest.raises(plan.PlanError, match="outside the scene's range 1-4"):
        plan.make_plan(plan.Settings(scene_start=1, scene_end=4, frames="3-6"))
    p = plan.make_plan(plan.Settings(scene_start=1, scene_end=4, tiles="2x2",
                                     engine="BLENDER_EEVEE_NEXT"))
    assert p.problems and "need Cycles" in p.problems[0]


def test_estimate_scales_a_past_job() -> None:
    s = plan.Settings(scene_start=1, scene_end=8, quality_mode="SAMPLES", samples=32,
                      width=200, height=100)
    p = plan.make_plan(s)
    past = {"core_hours": 1.0, "spec": {"frames": [1, 2], "width": 100, "height": 100,
                                        "samples": 16}}
    # 4x the frames, 2x the pixels, 2x the samples
    assert plan.estimate_core_hours(p, s, past) == pytest.approx(16.0)
    assert plan.estimate_core_hours(p, s, {"core_hours": 0.0, "spec": {}}) is None


def test_split_goes_to_the_farm_in_place_of_tiles_and_chunks() -> None:
    """--split N: the farm picks tiles × chunks = N parts per frame; the panel counts N per
    frame and sends `split` alone (the farm refuses it beside explicit tiles or chunks)."""
    s = plan.Settings(scene_start=1, scene_end=4, tiles="2x2", sample_chunks=3, split=8,
                      quality_mode="SAMPLES", samples=64)
    p = plan.make_plan(s)
    assert p.render_tasks == 4 * 8 and not p.problems
    assert "split 8" in plan.describe(p)[0]
    body = plan.options_body(s)
    assert body["split"] == 8 and "tiles" not in body and "sample_chunks" not in body
    FarmRenderOptions.model_validate(body)
    eevee = plan.make_plan(plan.Settings(scene_start=1, scene_end=1, split=4,
                                         engine="BLENDER_EEVEE_NEXT"))
    assert eevee.problems and "split needs Cycles" in eevee.problems[0]
