"""The render job compiler: the per-frame graph, and options meeting the scene."""

from __future__ import annotations

import pytest

from wanhe.jobtypes.blender_render import (
    RenderOptions,
    RenderSpec,
    SceneFacts,
    SceneSetupError,
    compile_render_job,
    resolve_output_pattern,
    resolve_spec,
)
from wanhe.model import Resources, TaskKind
from wanhe.plan.frames import FrameSpecError
from wanhe.plan.tiles import TileSpecError


def facts(**over: object) -> SceneFacts:
    base: dict[str, object] = dict(
        path="/scenes/shot.blend", frame_start=1, frame_end=10, resolution_x=200,
        resolution_y=100, engine="CYCLES", camera="Cam", cameras=["Cam", "Alt"], samples=32,
        output_path="//render/shot_####",
    )
    base.update(over)
    return SceneFacts(**base)  # type: ignore[arg-type]


def test_graph_per_frame_tiles_then_assemble_denoise_preview() -> None:
    spec = resolve_spec(RenderOptions(frames="1-2", tiles="2x2"), facts())
    graph = compile_render_job(spec, "/work")
    by_key = {t.key: t for t in graph}
    assert [t.key for t in graph if t.frame == 1] == [
        "1/render/t000", "1/render/t001", "1/render/t002", "1/render/t003",
        "1/assemble", "1/denoise", "1/preview",
    ]
    assert by_key["1/assemble"].deps == [f"1/render/t00{i}" for i in range(4)]
    assert by_key["1/denoise"].deps == ["1/assemble"]
    assert by_key["1/preview"].deps == ["1/denoise"]
    # frame 2 does not wait for frame 1: frame N assembles while N+1 renders
    assert all(not d.startswith("1/") for t in graph if t.frame == 2 for d in t.deps)
    assert by_key["1/denoise"].payload["output"] == "/scenes/render/shot_0001.exr"
    assert by_key["1/preview"].payload["output"] == "/scenes/render/shot_0001.png"
    assert by_key["1/render/t000"].payload["denoise_passes"] is True


def test_no_denoise_assembles_straight_into_the_master() -> None:
    spec = resolve_spec(RenderOptions(frames="3", denoise=False, output="/o/f_##"), facts())
    graph = compile_render_job(spec, "/work")
    assert [t.kind for t in graph] == [TaskKind.RENDER, TaskKind.ASSEMBLE, TaskKind.PREVIEW]
    assert graph[1].payload["output"] == "/o/f_03.exr"
    assert graph[0].payload["border"] is None  # a whole frame renders without a border


def test_sample_chunks_times_tiles() -> None:
    spec = resolve_spec(
        RenderOptions(frames="1", tiles="2x1", samples=16, sample_chunks=4), facts()
    )
    renders = [t for t in compile_render_job(spec, "/w") if t.kind is TaskKind.RENDER]
    assert len(renders) == 8
    assert sorted({(t.payload["sample_offset"], t.payload["sample_subset_length"])
                   for t in renders}) == [(0, 4), (4, 4), (8, 4), (12, 4)]


def test_video_task_waits_for_every_frame() -> None:
    spec = resolve_spec(RenderOptions(frames="1-3", video=True), facts())
    graph = compile_render_job(spec, "/w")
    assert graph[-1].kind is TaskKind.VIDEO
    assert graph[-1].deps == ["1/preview", "2/preview", "3/preview"]


def test_defaults_come_from_the_scene() -> None:
    spec = resolve_spec(RenderOptions(), facts(resolution_percentage=50))
    assert spec.frames == list(range(1, 11))
    assert (spec.width, spec.height, spec.samples, spec.camera) == (100, 50, 32, "Cam")
    assert spec.output == "/scenes/render/shot_####"


@pytest.mark.parametrize(("options", "scene", "error", "match"), [
    (RenderOptions(frames="5-20"), facts(), FrameSpecError, "outside the scene"),
    (RenderOptions(frames="a-b"), facts(), FrameSpecError, "malformed"),
    (RenderOptions(tiles="1000x1000"), facts(), TileSpecError, "does not fit"),
    (RenderOptions(), facts(camera=None, cameras=[]), SceneSetupError, "no active camera"),
    (RenderOptions(camera="Nope"), facts(), SceneSetupError, "Cam, Alt"),
    (RenderOptions(tiles="2x2"), facts(engine="BLENDER_EEVEE"), SceneSetupError, "Cycles"),
    (RenderOptions(samples=4, sample_chunks=8), facts(), SceneSetupError, "at most 4"),
])
def test_options_that_do_not_fit_the_scene(
    options: RenderOptions, scene: SceneFacts, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        resolve_spec(options, scene)


def test_eevee_renders_whole_frames_without_denoise() -> None:
    spec = resolve_spec(RenderOptions(), facts(engine="BLENDER_EEVEE"))
    assert not spec.denoise and spec.samples is None


def test_fingerprint_follows_the_spec() -> None:
    a = resolve_spec(RenderOptions(frames="1-2"), facts())
    b = resolve_spec(RenderOptions(frames="1-2"), facts())
    c = resolve_spec(RenderOptions(frames="1-3"), facts())
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert isinstance(RenderSpec.model_validate(a.model_dump()), RenderSpec)


@pytest.mark.parametrize(("pattern", "resolved"), [
    ("//render/x_####", "/s/render/x_####"),
    ("/abs/out_", "/abs/out_####"),
    ("/abs/dir/", "/abs/dir/frame_####"),
    ("", "/s/render/a_####"),
])
def test_output_patterns(pattern: str, resolved: str) -> None:
    assert resolve_output_pattern(pattern, "/s/a.blend") == resolved


def test_qc_reserves_a_render_slot_because_it_may_re_render() -> None:
    spec = resolve_spec(RenderOptions(frames="1", qc=True, threads=2), facts())
    graph = {t.key: t for t in compile_render_job(spec, "/w")}
    assert graph["1/qc"].resources.cpus == 2.0 == graph["1/render/t000"].resources.cpus
    assert graph["1/preview"].resources.cpus == 0.0  # image work stays light


def test_the_job_type_labels_tasks_for_people() -> None:
    from wanhe.jobtypes.base import TaskView
    from wanhe.jobtypes.registry import job_type

    render = job_type("blender_render")
    assert render.task_label(TaskView("3/render/t001_c02", "render", 3, 1, 2)) == (
        "frame 3 tile 1 sample chunk 2")
    assert render.task_label(TaskView("3/denoise", "denoise", 3)) == "frame 3 denoise"
    assert render.task_label(TaskView("video", "video")) == "the preview video"
    spec = resolve_spec(RenderOptions(frames="1-2", video=True, output="/o/f_####"), facts())
    assert render.deliverables(spec.model_dump(mode="json")) == [
        "/o/f_0001.exr", "/o/f_0001.png", "/o/f_0002.exr", "/o/f_0002.png", "/o/f.mp4",
        "/o/f_contact.png"]


@pytest.mark.parametrize(
    ("device", "render", "any_device"),
    [("cpu", Resources(cpus=4), False), ("gpu", Resources(cpus=1, gpus=1), False),
     ("any", Resources(cpus=4), True)],
)
def test_the_device_sets_what_render_tasks_reserve(
    device: str, render: Resources, any_device: bool
) -> None:
    from wanhe.jobtypes.registry import any_device as job_any_device

    spec = resolve_spec(RenderOptions(frames="1", tiles="2x1", threads=4, qc=True,
                                      device=device), facts())  # type: ignore[arg-type]
    graph = compile_render_job(spec, "/work")
    heavy = [t for t in graph if t.kind in (TaskKind.RENDER, TaskKind.QC)]
    assert heavy and all(t.resources == render for t in heavy)
    assert all(t.payload["device"] == device for t in graph if t.kind == TaskKind.RENDER)
    assert all(t.resources.cpus == 0 for t in graph if t not in heavy)  # image work: light
    assert job_any_device("blender_render", spec.model_dump(mode="json")) is any_device
    assert RenderOptions().device == "any"
    with pytest.raises(ValueError, match="device"):
        RenderOptions(device="tpu")  # type: ignore[arg-type]
