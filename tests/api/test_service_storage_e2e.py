"""End to end with durable storage behind a URL: `wanhe serve --storage file://… --work …`
renders a tiny job; its inputs are checked out into the work area, its finished frame is
published to the storage URL and downloaded through the API from there."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api._service import ServiceProc, make_project, submit_job, wait_for
from tests.conftest import build_scene
from wanhe.storage import sha256_file

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]


def test_render_onto_a_storage_url(tmp_path: Path, scene_dir: Path) -> None:
    home = tmp_path / "serve"
    remote, work = tmp_path / "remote", tmp_path / "work"
    service = ServiceProc(home, f"sqlite:///{home / 'wanhe.db'}", 0, workers=1,
                          num_cpus=2, extra_args=["--storage", f"file://{remote}",
                                                  "--work", str(work)])
    scene = build_scene(scene_dir / "tiny.blend", "tiny")
    service.start()
    try:
        token = make_project(service.db_url, "remote")
        job_id = submit_job(service, token, scene, "--frames", "1", "--no-denoise")
        with service.client(token) as http:
            job = wait_for(
                lambda: (j := http.get(f"/api/jobs/{job_id}").json())["state"]
                in ("done", "failed") and j, 300, "the job to finish")
            assert job["state"] == "done", job
            assert {o["path"] for o in job["outputs"]} == {"frame_0001.exr", "frame_0001.png"}
            png = http.get(f"/api/jobs/{job_id}/files/frame_0001.png")
            assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
            latest = http.get(f"/api/jobs/{job_id}/latest.png")
            assert latest.content == png.content
            exr = http.get(f"/api/jobs/{job_id}/files/frame_0001.exr").content
    finally:
        service.kill()
    published = remote / "jobs" / str(job_id) / "output"
    assert (published / "frame_0001.png").read_bytes() == png.content
    assert (published / "frame_0001.exr").read_bytes() == exr
    digest = sha256_file(scene)
    assert (remote / "blobs" / digest[:2] / digest[2:]).read_bytes() == scene.read_bytes()
    assert sorted(p.name for p in (remote / "jobs" / str(job_id)).iterdir()) == ["output"]
    assert list((remote / "tmp").iterdir()) == []  # no upload or probe left behind
    checkout = work / "jobs" / str(job_id) / "input" / scene.name
    assert checkout.read_bytes() == scene.read_bytes()  # inputs and tiles stay in the work area
    assert (work / "logs").is_dir() and not (home / "storage").exists()
