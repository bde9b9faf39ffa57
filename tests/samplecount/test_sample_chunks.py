"""Sample chunks through the real pipeline: merged chunks equal one render with all the samples
(to float rounding), the merge is deterministic, a kill -9 mid-frame resumes with only the
missing chunks, and a preview of the samples done so far exists while the frame renders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import build_scene, done_render_tasks
from wanhe.blender.protocol import RenderRequest
from wanhe.blender.runner import BlenderProcess
from wanhe.config import Settings
from wanhe.imaging.assemble import merge_sample_chunks
from wanhe.imaging.exr import read_layers
from wanhe.jobtypes.blender_render import RenderOptions
from wanhe.localrender import open_or_resume_job, prepare, run_jobs
from wanhe.store.store import Store

pytestmark = pytest.mark.slow
WANHE = [sys.executable, "-m", "wanhe.cli"]


def test_chunks_merge_to_the_single_render_deterministically(
    scene_dir: Path, tmp_path: Path, ray_local: None
) -> None:
    scene = build_scene(scene_dir / "tiny.blend", "tiny")
    with BlenderProcess() as blender:
        reply = blender.render(RenderRequest(scene=str(scene), frame=2, samples=32, threads=1,
                                             output=str(tmp_path / "ref.exr")))
    assert reply.ok, reply.error
    ref = read_layers(tmp_path / "ref.exr").channels
    conf = Settings(home=tmp_path / "home")
    store = Store(conf.db_url)
    jobs = {}
    for name, tiles in (("whole", "1x1"), ("tiled", "2x1")):  # chunks alone, tiles x chunks
        options = RenderOptions(frames="2", samples=32, sample_chunks=2, tiles=tiles,
                                denoise=False, output=str(tmp_path / name / "f_####"))
        job, _, _ = open_or_resume_job(store, prepare(scene, options), tmp_path / "work")
        jobs[name] = job
    run_jobs(store, [j.id for j in jobs.values()], settings=conf, threads=1, workers=2)
    for name, job in jobs.items():
        assert store.job(job.id).state.value == "done"  # type: ignore[union-attr]
        got = read_layers(tmp_path / name / "f_0002.exr").channels
        assert set(got) == set(ref)
        worst = max(float(np.abs(got[n] - ref[n]).max()) for n in ref)
        assert worst <= 1e-4, f"{name}: merged chunks differ from one 32-sample render by {worst}"
        assert not (tmp_path / name / "f_0002.partial.png").exists()  # replaced by the preview
    store.dispose()
    frame_dirs = [d for d in (tmp_path / "work").glob("*/f000002")
                  if not (d / "tile001_c00.exr").exists()]  # the untiled job's
    assert len(frame_dirs) == 1
    whole = sorted(frame_dirs[0].glob("tile000_c0?.exr"))
    assert len(whole) == 2
    merge_sample_chunks(whole, [16, 16], tmp_path / "m1.exr")
    merge_sample_chunks(whole, [16, 16], tmp_path / "m2.exr")
    one, two = read_layers(tmp_path / "m1.exr"), read_layers(tmp_path / "m2.exr")
    master = read_layers(tmp_path / "whole" / "f_0002.exr")
    for n, pixels in one.channels.items():
        assert np.array_equal(pixels, two.channels[n]), f"merge is not deterministic ({n})"
        assert np.array_equal(pixels, master.channels[n]), f"master is not the merge ({n})"


def test_kill_9_mid_frame_resumes_with_only_the_missing_chunks(
    scene_dir: Path, tmp_path: Path
) -> None:
    scene = build_scene(scene_dir / "tiny.blend", "tiny")
    db = tmp_path / "farm.db"
    out = tmp_path / "out"
    args = ["render", str(scene), "--frames", "1", "--samples", "800", "--sample-chunks", "4",
            "--workers", "1", "--quiet", "--db", f"sqlite:///{db}", "--output",
            str(out / "f_####")]
    env = {**os.environ, "WANHE_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([*WANHE, *args], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        while not done_render_tasks(db):
            assert proc.poll() is None, "render finished before it could be interrupted"
            assert time.monotonic() < deadline, "no chunk finished in time"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the render, its Ray and its Blender workers
        proc.wait(timeout=30)
    before = done_render_tasks(db)
    assert 1 <= len(before) < 4
    partial = out / "f_0001.partial.png"
    assert partial.exists(), "no preview of the samples done so far"
    work = tmp_path / "home" / "storage" / "work"
    chunk_files = {p: p.stat().st_mtime_ns for p in work.glob("*/*/*_c*.exr")}
    assert len(chunk_files) == len(before)
    report = tmp_path / "r.json"
    again = subprocess.run([*WANHE, *args, "--report-json", str(report)], env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    body = json.loads(report.read_text())
    assert body["resumed"] is True
    renders = [a for a in body["attempts"] if a["kind"] == "render"]
    ok = [a["task"] for a in renders if a["outcome"] == "ok"]
    assert sorted(ok) == sorted(set(ok)) and len(ok) == 4, "each chunk rendered once"
    for key in before:  # finished before the kill: never rendered again
        assert [a["outcome"] for a in renders if a["task"] == key] == ["ok"]
    for path, mtime in chunk_files.items():
        assert path.stat().st_mtime_ns == mtime, f"{path.name} was rendered again"
    assert (out / "f_0001.exr").exists() and (out / "f_0001.png").exists()
    assert not partial.exists()
