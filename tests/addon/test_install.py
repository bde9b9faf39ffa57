"""The built zip installs into a clean Blender user folder with Blender's own extension
operator (the bpy wheel's `bpy.ops.extensions.package_install_files`), enables, and imports
nothing from wanhe's environment; its panels draw (into a recording layout: see the script).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.addon._blender import SITE, run_blender_script
from wanhe.addon.build import build

SCRIPTS = Path(__file__).parent / "scripts"
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def addon_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("dist"))


def _labels(log: list[list[object]]) -> list[str]:
    return [str(entry[2]) for entry in log if entry[1] == "label"]


def test_installs_enables_and_draws_without_wanhe(addon_zip: Path, tmp_path: Path) -> None:
    user = tmp_path / "user"
    out = run_blender_script(SCRIPTS / "install_and_draw.py", str(addon_zip), str(tmp_path),
                             tmp=tmp_path, user=user)
    # an artist's Blender: none of wanhe's environment is there
    assert out["before"] == {"wanhe": "missing", "blender_asset_tracer": "missing",
                             "httpx": "missing", "pydantic": "missing"}
    assert out["install"] == ["FINISHED"] and out["enabled"]
    assert out["bundle"] == ["scene.blend"]
    assert out["packer"] == "bl_ext.user_default.wanhe_farm._transfer.pack"
    # BAT comes from the wheel Blender installed into the clean user folder
    assert out["bat"].startswith(str(user / "extensions" / ".local")), out["bat"]
    # Blender's own: the standard library, bpy and what Blender ships (the links folder)
    allowed = (out["stdlib"], str(tmp_path / "blender-python"), str(user))
    strays = {name: path for name, path in out["loaded"].items()
              if not path.startswith(allowed)}
    assert not strays, strays
    assert not any(str(SITE / "blender_asset_tracer") in p for p in out["loaded"].values())
    assert any(n.startswith("bl_ext.user_default.wanhe_farm.") for n in out["loaded"])
    # the panels: settings, what the farm will do, Submit; jobs with their controls
    assert out["panels"] == ["WANHE_PT_farm", "WANHE_PT_jobs"]
    farm = out["draw"]["farm"]
    props = [entry[2] for entry in farm if entry[1] == "prop"]
    assert props == ["job_name", "use_frames", "frames", "split", "tiles", "sample_chunks",
                     "quality_mode", "samples", "denoise", "qc", "video", "priority",
                     "submit_paused", "after_job"]
    labels = _labels(farm)
    assert "12 frames × 2x2 tiles × 2 sample chunks = 96 render tasks" in labels, labels
    # + per frame assemble, denoise, preview (36) + the video
    assert "133 tasks in all (frames 1,3,5,7,9,11,13,15,17,19,21,23)" in labels, labels
    assert ["operator", "wanhe.submit"] in [entry[1:3] for entry in farm]
    assert ["operator", "wanhe.estimate"] in [entry[1:3] for entry in farm]  # beside Submit
    jobs = out["draw"]["jobs"]
    assert "#7 shot.blend" in _labels(jobs) and "frame 3 tile 1 failed 3 time(s)" in \
        _labels(jobs)
    ops = [entry[2] for entry in jobs if entry[1] == "operator"]
    assert ops.count("wanhe.job_control") == 8 and ops.count("wanhe.download_outputs") == 2
    assert ops.count("wanhe.show_last_frame") == 2
    assert [e[2] for e in jobs if e[1] == "progress"] == ["2/8 tasks", "4/8 tasks"]
    prefs = out["draw"]["preferences"]
    assert [e[2] for e in prefs if e[1] == "prop"] == ["server_url", "token"]
    assert out["disable"] == ["FINISHED"] and out["unregistered"]
    checks = out["checks"]
    assert checks["missing"][0] == ["CANCELLED"]
    level, text = checks["missing"][1]
    assert level == "ERROR" and text.startswith("missing file(s): wood (")
    assert f"wood ({tmp_path / 'tex' / 'wood.png'})" in text
    assert checks["camera"][1][1].startswith("scene 'Scene' has no active camera")
    assert checks["output"][1][1].startswith("the output path is empty")
    # the wrong engine (EEVEE tiles) is caught by the plan; here no token is set at all
    assert checks["no_token"] == [["CANCELLED"], [
        "ERROR", "no API token — paste the project's token in the add-on's preferences "
        "(`wanhe project create` prints one)"]]
    assert not out["scene_has_token"]  # the token is never a scene (.blend) property
