"""`--export-openjd`: the bundle is a valid OpenJD 2023-09 job that `openjd run` runs as it is,
with wanhe's `blender` shim on PATH, rendering frames equal to `wanhe render`'s bit for bit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import build_scene
from tests.openjd._reference import openjd_exe
from wanhe.blender_cli import shim_dir
from wanhe.imaging.exr import read_layers
from wanhe.jobtypes.blender_render import RenderSpec
from wanhe.openjd_export import (
    ExportError,
    check_exportable,
    openjd_range,
    plan_bundle,
    validate_template,
)

WANHE = [sys.executable, "-m", "wanhe.cli"]


def spec(**kw: object) -> RenderSpec:
    base: dict[str, object] = dict(scene="/s/shot.blend", frames=[1, 2, 3], width=64,
                                   height=36, resolution_percentage=100, samples=8,
                                   output="/out/f_####", denoise=False, camera="Camera")
    return RenderSpec.model_validate({**base, **kw})


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-50, 400), min_size=1, max_size=30))
def test_frame_ranges_expand_to_the_jobs_frames(frames: list[int]) -> None:
    s = spec(frames=frames)
    plan = plan_bundle(s, Path("/b"), threads=0, output_dir="/out")
    values = {p["name"]: p["value"] for p in plan.parameter_values["parameterValues"]}
    values.pop("SceneFile")
    values.pop("OutputDir")
    assert validate_template(plan.template, values, Path("/b")) == sorted(set(frames))


def test_range_text() -> None:
    assert openjd_range([1, 2, 3, 5, 10, 15, 20]) == "1-3,5-20:5"
    assert openjd_range([7]) == "7"
    assert openjd_range([1, 9]) == "1,9"


def test_plan_names_what_it_saves_and_declares_assets() -> None:
    plan = plan_bundle(spec(denoise=True, seed=4), Path("/b"), threads=2, output_dir="/out",
                       dependencies=["/tex/wood.png"])
    assert "8 samples" in plan.template["description"]
    assert "Cycles denoiser" in plan.template["description"] and plan.notes
    assert plan.bake["seed"] == 4 and plan.bake["samples"] == 8
    step = plan.template["steps"][0]
    assert step["hostRequirements"]["amounts"] == [{"name": "amount.worker.vcpu", "min": 2}]
    args = step["script"]["actions"]["onRun"]["args"]
    assert args[-2:] == ["-f", "{{Task.Param.Frame}}"]
    assert args.index("-o") < args.index("-f")  # Blender applies arguments in order
    refs = plan.asset_references["assetReferences"]
    assert refs["inputs"]["filenames"] == ["/b/scene.blend", "/tex/wood.png"]
    assert refs["outputs"]["directories"] == ["/out"]


@pytest.mark.parametrize(("kw", "needle"), [
    ({"tiles": "2x2"}, "cannot express tiles"),
    ({"sample_chunks": 2}, "sample chunks"),
    ({"qc": True}, "--qc"),
    ({"video": True}, "--video"),
    ({"quality": "draft"}, "--quality"),
])
def test_what_blender_cannot_express_is_refused(kw: dict[str, object], needle: str) -> None:
    from wanhe.jobtypes.blender_render import RenderOptions

    with pytest.raises(ExportError, match=needle):
        check_exportable(RenderOptions.model_validate(kw))


def test_braces_in_the_output_are_refused() -> None:
    with pytest.raises(ExportError, match="path template"):
        plan_bundle(spec(output="/out/{blend_name}_####"), Path("/b"), threads=0,
                    output_dir="/out")


def test_cli_refuses_tiles_before_writing_anything(tmp_path: Path) -> None:
    dest = tmp_path / "bundle"
    r = subprocess.run([*WANHE, "render", str(tmp_path / "x.blend"), "--tiles", "2x2",
                        "--export-openjd", str(dest)], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "WANHE_HOME": str(tmp_path / "h")})
    assert r.returncode == 2
    assert "cannot express tiles" in r.stderr and "Traceback" not in r.stderr
    assert not dest.exists()


# ------------------------------------------------------------------ round trip (real renders)


@pytest.fixture(scope="module")
def demo(scene_dir: Path) -> Path:
    return build_scene(scene_dir / "demo_export.blend", "demo", "--resolution", "48x27",
                       "--samples", "4", "--frames", "1-3")


def wanhe(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([*WANHE, *args], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "WANHE_HOME": str(home)})
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def openjd(*args: str, path_prefix: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("WANHE_ALLOW_BLENDER_PYTHON", None)
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}{os.pathsep}{env['PATH']}"
    r = subprocess.run([openjd_exe(), *args], capture_output=True, text=True, timeout=300,
                       env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


@pytest.mark.slow
def test_round_trip_openjd_run_equals_wanhe_render(demo: Path, tmp_path: Path) -> None:
    from openjd.model import decode_job_template

    home, bundle = tmp_path / "home", tmp_path / "bundle"
    flags = ["--frames", "1,3", "--samples", "3", "--no-denoise", "--resolution-percentage", "50",
             "-o", str(tmp_path / "wanhe" / "f_####")]
    wanhe("render", str(demo), *flags, "--export-openjd", str(bundle), home=home)
    assert sorted(p.name for p in bundle.iterdir()) == [
        "asset_references.yaml", "parameter_values.yaml", "scene.blend", "template.yaml"]
    assert not (tmp_path / "wanhe").exists()  # exported, not rendered
    template = yaml.safe_load((bundle / "template.yaml").read_text())
    assert decode_job_template(template=template).specificationVersion == "jobtemplate-2023-09"
    values = yaml.safe_load((bundle / "parameter_values.yaml").read_text())["parameterValues"]
    assert {"name": "Frames", "value": "1,3"} in values
    assert {"name": "OutputDir", "value": str(tmp_path / "wanhe")} in values
    assert "passes validation" in openjd("check", str(bundle / "template.yaml")).stdout

    out = tmp_path / "openjd"
    openjd("run", str(bundle / "template.yaml"), "-p", f"OutputDir={out}",
           path_prefix=shim_dir(home / "bin"))
    wanhe("render", str(demo), *flags, "-q", home=home)
    for frame in (1, 3):
        got = read_layers(out / f"f_{frame:04d}.exr")
        want = read_layers(tmp_path / "wanhe" / f"f_{frame:04d}.exr")
        assert (got.width, got.height) == (want.width, want.height) == (24, 13)
        assert set(got.channels) == set(want.channels)
        for name, pixels in want.channels.items():
            assert np.array_equal(got.channels[name], pixels), f"frame {frame} {name} differs"
    assert not (out / "f_0002.exr").exists()
    # and wanhe's own OpenJD runner (the embedded default: no Blender binary of 5.0 here, so
    # the session's `blender` is the bpy-backed command) renders the same bundle, bit for bit
    ours = tmp_path / "wanhe-run"
    wanhe("run", str(bundle), "-p", f"OutputDir={ours}", "-q", "--db",
          f"sqlite:///{tmp_path / 'run.db'}", home=home)
    for frame in (1, 3):
        got = read_layers(ours / f"f_{frame:04d}.exr")
        want = read_layers(tmp_path / "wanhe" / f"f_{frame:04d}.exr")
        for name, pixels in want.channels.items():
            assert np.array_equal(got.channels[name], pixels), f"wanhe run: frame {frame} {name}"


@pytest.mark.slow
def test_submit_export_writes_the_farms_naming(demo: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    r = wanhe("submit", str(demo), "--frames", "2", "--samples", "2", "--no-denoise",
              "--export-openjd", str(bundle), home=tmp_path / "home")
    assert "nothing rendered" in r.stderr
    openjd("check", str(bundle / "template.yaml"))
    values = yaml.safe_load((bundle / "parameter_values.yaml").read_text())["parameterValues"]
    assert {"name": "OutputDir", "value": str(bundle / "output")} in values
    assert {"name": "OutputPattern", "value": "frame_####"} in values  # as the farm names them
    assert {"name": "Threads", "value": 1} in values


def test_a_folder_in_use_is_refused_before_anything(tmp_path: Path) -> None:
    from wanhe.openjd_export import export_bundle

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="not an empty folder"):
        export_bundle(spec(), tmp_path / "b", threads=0)
    assert [p.name for p in tmp_path.iterdir()] == ["b"]
