"""The `blender` shim folder a session puts first on PATH."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from wanhe.blender_cli import shim_dir


def test_shim_dir_holds_an_executable_blender(tmp_path: Path) -> None:
    folder = shim_dir(tmp_path)
    script = folder / "blender"
    assert script.stat().st_mode & stat.S_IXUSR
    assert shim_dir(tmp_path) == folder  # idempotent
    env = {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(["blender", "--version"], env=env, capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.startswith("Blender 5.0")
    assert shim_dir(tmp_path, python="/other/python") != folder
