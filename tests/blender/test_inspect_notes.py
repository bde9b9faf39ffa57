"""Scene checks that tell the truth: Python drivers that will not run are listed, a missing
point cache is said to be re-simulated (not pink), and the header's external-file count
includes the missing ones. Real Blender; scenes from tests/blender/border_scenes.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from wanhe.blender.inspect import inspect_scene
from wanhe.blender.runner import BlenderProcess
from wanhe.jobtypes.blender_render import RenderOptions, missing_messages
from wanhe.localrender import prepare

pytestmark = pytest.mark.slow

BUILDER = Path(__file__).with_name("border_scenes.py")


def build(out: Path, kind: str) -> Path:
    subprocess.run([sys.executable, str(BUILDER), str(out), kind, "--size", "32x24",
                    "--samples", "2"], check=True, capture_output=True, timeout=120)
    return out


def test_python_drivers_are_listed(tmp_path: Path, warm_blender: BlenderProcess) -> None:
    scene = build(tmp_path / "drivers.blend", "drivers")
    prepared = prepare(scene, RenderOptions(output=str(tmp_path / "o" / "f_####")),
                       process=warm_blender)
    assert len(prepared.facts.python_drivers) == 1
    assert "Sphere: location[2]" in prepared.facts.python_drivers[0]
    assert any("1 Python driver(s) will not run" in n and "Sphere" in n for n in prepared.notes)


def test_missing_point_cache_is_resimulated_and_counted(
    tmp_path: Path, warm_blender: BlenderProcess
) -> None:
    scene = build(tmp_path / "cache.blend", "cache")
    report = inspect_scene(scene, process=warm_blender)
    assert len(report.missing_caches) == 1 and report.missing == report.missing_caches
    assert report.external_files == 1  # the header no longer says "0 external file(s)"
    messages = missing_messages([str(p) for p in report.missing],
                                [str(p) for p in report.missing_caches])
    assert "re-run" in messages[0] and "pink" not in messages[0]
