"""The whole loop in an artist's Blender against a real `wanhe serve` on loopback: the add-on,
installed from its zip, submits the demo scene (tiny size, 4 samples) with an external
texture, the farm renders it, the add-on downloads the frames and the preview video, and the
files match the farm's by SHA-256. Wrong token, a server that is not running (a loopback port
nothing listens on) and a project out of budget give one-line reports.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.addon._blender import run_blender_script
from tests.api._service import ServiceProc, free_port, make_project
from tests.conftest import MAKE_SCENES
from wanhe.addon.build import build

SCRIPTS = Path(__file__).parent / "scripts"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(480)]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProc]:
    home = tmp_path_factory.mktemp("serve")
    svc = ServiceProc(home, f"sqlite:///{home / 'wanhe.db'}", 0)
    svc.start()
    try:
        yield svc
    finally:
        svc.kill()


def test_submit_watch_download_in_blender(service: ServiceProc, tmp_path: Path) -> None:
    token = make_project(service.db_url, "addon")
    broke = make_project(service.db_url, "broke", budget_core_hours=0.0)
    addon_zip = build(tmp_path / "dist")
    out = run_blender_script(
        SCRIPTS / "submit_roundtrip.py", str(addon_zip), str(tmp_path), str(MAKE_SCENES.parent),
        service.url, token, "not-a-token", broke, f"http://127.0.0.1:{free_port()}",
        tmp=tmp_path, user=tmp_path / "user", timeout=420,
    )
    reports = out["reports"]
    # the one-line reports
    assert reports["bad_token"] == [["FINISHED"], [
        "ERROR", "submit failed: the farm refused the token — paste a valid one in the "
        "add-on's preferences"]]
    level, text = reports["dead_server"][1]
    assert level == "ERROR" and text.startswith("submit failed: cannot reach the farm at "
                                                "http://127.0.0.1:") and "\n" not in text
    assert reports["dead_connection"][0] == "ERROR"
    assert "cannot reach the farm" in reports["dead_connection"][1]
    level, text = reports["broke"][1]
    assert level == "ERROR" and text.startswith(
        "submit failed: budget exhausted: project broke has used 0.00 of 0.00 core-hours")
    # the texture was added after the scene was opened: that the farm renders it red (below)
    # shows Submit saved the unsaved changes first
    # Test connection: the token's project and the free cores
    assert out["connection"][1].startswith("project addon: 0.00 core-hours used")
    assert "free core(s)" in out["connection"][2]
    # submitted paused: nothing runs until Resume
    assert out["submit"] == ["FINISHED"]
    # the interface is not held: the operator returned while packing and uploading went on
    assert out["busy_after_operator"] and out["operator_s"] < out["submit_s"]
    assert out["tick_started_refresh"] and out["tick_listed"] and out["tick"] == 0.2
    assert out["url"] == f"{service.url}/#/jobs/{out['job_id']}"
    info = [t for lvl, t in out["submit_reports"] if lvl == "INFO"]
    assert info and info[-1].startswith(f"job {out['job_id']} paused: 2 frame(s), 2 file(s)")
    assert out["state_after_submit"] == "paused" == out["state_after_wait"]
    assert out["done_while_paused"] == 0
    assert out["resume_report"][1].startswith(f"job {out['job_id']}: resume — now ")
    final = out["final"]
    assert final["state"] == "done", final
    assert final["name"] == "demo.blend" and final["priority"] == 60
    assert out["plan_lines"][0] == "2 frames × 2x1 tiles = 4 render tasks"
    assert out["plan_lines"][2].endswith(f"core-hours (scaled from job {out['job_id']})")
    # the downloads are the farm's files, byte for byte
    farm_dir = service.home / "storage" / "jobs" / str(out["job_id"]) / "output"
    farm = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in farm_dir.iterdir() if p.is_file()}
    assert {"frame_0001.exr", "frame_0002.exr", "frame_0001.png", "frame_0002.png",
            "frame.mp4"} <= set(farm)
    assert out["local"] == farm
    assert out["download_report"][1].startswith(f"job {out['job_id']}: {len(farm)} file(s) "
                                                "downloaded")
    assert out["local_after_resume"] == farm
    assert ", 1 resumed" in out["resume_download_report"][1]
    assert f", {len(farm) - 1} already there" in out["resume_download_report"][1]
    # the external texture was packed and rendered: the frame is red
    import numpy as np
    from PIL import Image

    pixels = Image.open(tmp_path / "shot" / "render" / "frame_0001.png").convert("RGB")
    r, g, b = np.asarray(pixels, dtype=np.float64).mean(axis=(0, 1))
    assert r > 2 * max(g, b) and r > 60, (r, g, b)
    assert out["last_frame_size"] == [48, 32]
    assert "latest frame loaded" in out["last_frame_report"][1]
    assert not out["blend_has_token"]  # the token never goes into the .blend
    # a second submit sends only what changed: Show last frame added an image to the scene,
    # so Submit saved it again (new .blend bytes); the texture the farm has is not re-sent
    assert "2 frame(s), 2 file(s), 1 uploaded" in out["again_report"][1]
    again = out["job_id"] + 1
    assert out["again_depends_on"] == [out["job_id"]]  # After job
    assert [a[1] for a in out["actions"][:3]] == [
        f"job {again}: cancel — now cancelled", f"job {again}: retry — now queued",
        f"job {again}: cancel — now cancelled"]
    assert out["actions"][3] == [
        "ERROR", f"job {again}: job {again} is cancelled; it cannot be resumed (only paused "
        "jobs can)"]
