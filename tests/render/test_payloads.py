"""A render task's payload is typed: built by the job type's compiler, read back by the
executor, and a row stored by an older wanhe still reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.jobtypes.test_blender_render import facts
from wanhe.engine.executors.base import TaskContext
from wanhe.engine.frame_steps import run_render
from wanhe.jobtypes.blender_render import compile_render_job, resolve_spec
from wanhe.lifecycle import TaskFailed
from wanhe.model import TaskKind
from wanhe.payloads import PayloadError
from wanhe.render.payloads import RenderTask
from wanhe.render.spec import RenderOptions
from wanhe.sched.devices import Device

# a render payload as wanhe stored it before jobs chose a device or previewed chunks
OLD_ROW = {
    "scene": "/scenes/shot.blend", "frame": 3, "output": "/work/f000003/tile000.exr",
    "resolution_percentage": None, "border": None, "expected_size": [200, 100],
    "samples": 32, "seed": None, "camera": "Cam", "threads": 1, "denoise_passes": True,
    "sample_offset": None, "sample_subset_length": None, "timeout_s": None,
    "silence_s": None, "retired_key": "a key no longer written",
}


def test_every_compiled_render_payload_reads_back_as_what_was_built() -> None:
    spec = resolve_spec(RenderOptions(frames="1-2", tiles="2x1", sample_chunks=2,
                                      device=Device.GPU), facts())
    renders = [t for t in compile_render_job(spec, "/work") if t.kind == TaskKind.RENDER]
    assert len(renders) == 2 * 2 * 2
    for task in renders:
        typed = RenderTask.read(task.payload)
        assert typed.stored() == task.payload  # nothing lost or added on the way
        assert typed.device is Device.GPU and typed.border is not None
        assert typed.partial is not None and typed.partial.output.endswith(".partial.png")
        assert task.payload["output"] in typed.partial.placements[task.tile or 0].paths


def test_a_row_stored_by_an_older_wanhe_still_reads() -> None:
    task = RenderTask.read(OLD_ROW)
    assert (task.frame, task.device, task.partial) == (3, None, None)
    request = task.request("/tmp/out.exr", "CPU")
    assert request.expected_size == (200, 100) and request.samples == 32


@pytest.mark.parametrize(("change", "field"), [
    ({"frame": "three"}, "frame"),
    ({"threads": 0}, "threads"),
    ({"border": [0.0, 1.0]}, "border"),
    ({"device": "tpu"}, "device"),
])
def test_a_bad_payload_is_one_line_naming_its_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(PayloadError, match=rf"render task's payload is not valid: {field}") as e:
        RenderTask.read({**OLD_ROW, **change})
    assert "\n" not in str(e.value)


def test_the_executor_fails_a_bad_payload_before_starting_blender(tmp_path: Path) -> None:
    bad = {**OLD_ROW, "output": str(tmp_path / "t.exr")}
    del bad["scene"]
    with pytest.raises(TaskFailed, match="payload is not valid: scene: Field required"):
        run_render(bad, None, TaskContext())  # no Blender: it is never reached
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_storyboards_render_keeps_the_films_resolution_and_its_job_folder_is_ignored() -> None:
    # a story's render task overrides the scene's size; the farm adds the job's folder
    task = RenderTask.read({**OLD_ROW, "resolution": [640, 360], "expected_size": [640, 360],
                            "job_root": "/jobs/3"})
    request = task.request("/tmp/out.exr", "CPU")
    assert request.resolution == (640, 360) and request.expected_size == (640, 360)
