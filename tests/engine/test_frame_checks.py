"""The QC and VIDEO task kinds, and the progressive preview of sample chunks.

Real Blender renders of the tiny scene, run task by task through `run_task` with one warm
Blender (the worker's code path, without Ray); the video test encodes real PNGs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from tests.conftest import build_scene
from wanhe.blender.runner import BlenderProcess
from wanhe.engine.frame_checks import run_qc, run_video
from wanhe.engine.worker import FarmWorker
from wanhe.imaging.exr import Frame, read_layers, write_layers
from wanhe.imaging.partial_preview import write_partial_preview
from wanhe.jobtypes.blender_render import RenderOptions, compile_render_job
from wanhe.lifecycle import ERROR_FOR_OUTCOME, TaskFailed
from wanhe.localrender import prepare
from wanhe.model import AttemptOutcome, TaskKind, TaskSpec


def _quiet(_: object) -> None:
    return None


@dataclass
class Ran:
    output: dict[str, Any]
    cpu_s: float


@pytest.fixture(scope="module")
def worker() -> Iterator[FarmWorker]:
    farm_worker = FarmWorker("qc-test", node="test")
    yield farm_worker
    farm_worker.shutdown()


@pytest.fixture(scope="module")
def blender(worker: FarmWorker) -> BlenderProcess:
    process: BlenderProcess = worker.blender_process()
    return process


def run_task(worker: FarmWorker, kind: str, payload: dict[str, Any]) -> Ran:
    """Run one task the way the farm does (the worker picks the executor for its kind)."""
    result = worker.run({"kind": kind, "key": "test", "payload": payload})
    if not result["ok"]:
        raise ERROR_FOR_OUTCOME[AttemptOutcome(result["outcome"])](result["error"])
    return Ran(result["output"], result["cpu_s"])


@pytest.fixture(scope="module")
def job(scene_dir: Path, tmp_path_factory: pytest.TempPathFactory,
        worker: FarmWorker) -> dict[str, Any]:
    """Three frames of the tiny scene, 2x1 tiles x 2 sample chunks, denoised, QC on: every
    task run in graph order. Partial previews are recorded after each chunk render."""
    scene = build_scene(scene_dir / "tiny.blend", "tiny")
    root = tmp_path_factory.mktemp("qcjob")
    options = RenderOptions(frames="1-3", tiles="2x1", sample_chunks=2, samples=8, qc=True,
                            video=True, output=str(root / "out" / "f_####"))
    spec = prepare(scene, options).spec
    # JSON round trip: the payloads the worker gets come out of the database
    tasks = [TaskSpec(t.key, t.kind, json.loads(json.dumps(t.payload)), t.deps, t.frame,
                      t.tile, t.chunk) for t in compile_render_job(spec, str(root / "work"))]
    outputs: dict[str, dict[str, Any]] = {}
    partials: dict[str, bool] = {}
    for task in tasks:
        result = run_task(worker, task.kind, task.payload)
        outputs[task.key] = result.output
        if task.kind is TaskKind.RENDER:
            partials[task.key] = Path(spec.partial_path(task.frame or 0)).exists()
    return {"spec": spec, "tasks": {t.key: t for t in tasks}, "outputs": outputs,
            "partials": partials}


def test_every_frame_passes_qc_against_its_neighbours(job: dict[str, Any]) -> None:
    for frame in (1, 2, 3):
        qc = job["outputs"][f"{frame}/qc"]["qc"]
        assert qc["passed"] and not qc["flagged"] and qc["kept"] == "original", qc
        assert len(qc["attempts"]) == 1 and qc["rerender"] is None
        assert qc["stats"]["mean_luminance"] > 0
    # frames run in order: frame 2 and 3 find finished neighbours to compare with
    assert job["outputs"]["2/qc"]["qc"]["neighbours_compared"] == 1
    assert job["outputs"]["3/qc"]["qc"]["neighbours_compared"] == 2


def test_partial_preview_while_chunks_render_then_removed(job: dict[str, Any]) -> None:
    spec = job["spec"]
    first, last = job["outputs"]["1/render/t000_c00"], job["outputs"]["1/render/t001_c01"]
    assert first["partial"]["samples_done"] == 0  # tile 1 has no chunk yet: it stays black
    assert last["partial"]["samples_done"] == last["partial"]["samples_total"] == 8
    assert all(job["partials"].values())
    assert not Path(spec.partial_path(1)).exists()  # the final preview replaced it
    assert Path(spec.preview_path(1)).exists()


def test_video_and_contact_sheet(job: dict[str, Any]) -> None:
    out = job["outputs"]["video"]
    with av.open(out["video"]) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert sum(1 for _ in container.decode(stream)) == 3
        assert float(stream.average_rate) == pytest.approx(job["spec"].fps)
    with Image.open(out["contact_sheet"]) as sheet:
        assert sheet.size == tuple(out["contact_sheet_size"])
    assert out["video"] == job["spec"].video_path()
    assert out["contact_sheet"] == job["spec"].contact_sheet_path()


def _plant_missing_tile(master: Path) -> None:
    frame = read_layers(master)
    for name, array in frame.channels.items():
        if ".Combined." in name:
            array[:, array.shape[1] // 2 :] = 0.0  # tile 1 (right half) came back empty
    write_layers(frame, master)


def test_failed_frame_is_rerendered_once_and_kept_when_it_passes(
    job: dict[str, Any], worker: FarmWorker
) -> None:
    spec = job["spec"]
    master, preview = Path(spec.master_path(2)), Path(spec.preview_path(2))
    good = read_layers(master).rgb()
    _plant_missing_tile(master)
    payload = job["tasks"]["2/qc"].payload
    result = run_task(worker, TaskKind.QC, payload)  # the worker's path
    qc = result.output["qc"]
    assert 0 < qc["rerender_cpu_s"] <= result.cpu_s  # the re-render is metered with QC
    first, second = qc["attempts"]
    assert not first["passed"] and {i["check"] for i in first["issues"]} >= {"tile"}
    assert second["passed"] and second["seed"] != first["seed"] and second["kept"]
    assert qc["kept"] == "rerender" and qc["passed"] and not qc["flagged"]
    assert "kept" in qc["rerender"]
    fixed = read_layers(master).rgb()
    assert fixed.shape == good.shape and not np.array_equal(fixed, good)  # a fresh seed
    assert np.abs(fixed - good).mean() < 0.05  # ... of the same picture
    assert preview.exists()
    leftovers = [p for p in master.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_frame_still_failing_keeps_the_original_and_says_why(
    job: dict[str, Any], blender: BlenderProcess
) -> None:
    spec = job["spec"]
    master = Path(spec.master_path(3))
    before = master.read_bytes()
    payload = {**job["tasks"]["3/qc"].payload, "width": spec.width + 1}  # a wrong size
    qc = run_qc(payload, blender)["qc"]
    assert [a["passed"] for a in qc["attempts"]] == [False, False]
    assert qc["kept"] == "original" and qc["flagged"] and not qc["passed"]
    assert "still fails" in qc["rerender"]
    assert any("expected" in reason for reason in qc["reasons"])
    assert master.read_bytes() == before
    assert not [p for p in master.parent.iterdir() if p.name.startswith(".")]


def test_without_blender_the_frame_is_flagged_not_lost(job: dict[str, Any]) -> None:
    payload = {**job["tasks"]["1/qc"].payload, "height": 1}
    qc = run_qc(payload, None)["qc"]
    assert qc["flagged"] and "not possible" in qc["rerender"] and len(qc["attempts"]) == 1


def test_quality_note_flags_a_passing_frame(job: dict[str, Any]) -> None:
    note = "--quality 99 dB: NOT REACHED"
    qc = run_qc({**job["tasks"]["1/qc"].payload, "notes": [note]}, None)["qc"]
    assert qc["passed"] and qc["flagged"] and qc["reasons"] == [note]


def test_out_of_range_threshold_in_a_payload_is_refused(job: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="flicker_ratio"):
        run_qc({**job["tasks"]["1/qc"].payload, "thresholds": {"flicker_ratio": 0}}, None)


def test_thresholds_reach_the_checks(job: dict[str, Any]) -> None:
    strict = {**job["tasks"]["2/qc"].payload, "thresholds": {"flicker_ratio": 1e-9}}
    qc = run_qc(strict, None)["qc"]
    assert qc["thresholds"]["flicker_ratio"] == 1e-9
    assert any(i["check"] == "flicker" for i in qc["issues"]) and qc["flagged"]


def test_video_refuses_missing_previews(tmp_path: Path) -> None:
    png = tmp_path / "a.png"
    Image.new("RGB", (32, 18), (200, 100, 50)).save(png)
    with pytest.raises(TaskFailed, match="missing"):
        run_video({"previews": [str(png), str(tmp_path / "b.png")], "fps": 24, "frames": [1, 2],
                   "output": str(tmp_path / "v.mp4"), "contact_sheet": str(tmp_path / "c.png")})


def _chunk(path: Path, value: float, size: tuple[int, int] = (6, 4)) -> str:
    w, h = size
    plane = np.full((h, w), value, np.float32)
    channels = {f"ViewLayer.Combined.{c}": plane for c in "RGB"}
    channels["ViewLayer.Combined.A"] = np.ones((h, w), np.float32)
    write_layers(Frame(w, h, channels), path)
    return str(path)


def test_partial_preview_merges_finished_chunks_by_samples(tmp_path: Path) -> None:
    a = _chunk(tmp_path / "t0_c00.exr", 0.2)
    b = _chunk(tmp_path / "t0_c01.exr", 0.8)
    plan = {"output": str(tmp_path / "p.partial.png"), "width": 12, "height": 4,
            "placements": [
                {"paths": [a, b, str(tmp_path / "t0_c02.exr")], "samples": [1, 3, 4],
                 "src": [0, 0, 6, 4], "dst": [0, 0]},
                {"paths": [str(tmp_path / "t1_c00.exr")], "samples": [8],
                 "src": [0, 0, 6, 4], "dst": [6, 0]},
            ]}
    info = write_partial_preview(plan)
    assert info["samples_done"] == 0 and info["samples_total"] == 8
    pixels = np.asarray(Image.open(plan["output"]))
    from wanhe.imaging.preview import srgb_encode

    expected = round(float(srgb_encode(np.float32((0.2 * 1 + 0.8 * 3) / 4))) * 255)
    assert pixels.shape == (4, 12, 3)
    assert (pixels[:, :6] == expected).all() and (pixels[:, 6:] == 0).all()
