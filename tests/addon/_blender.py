"""Run a script in "an artist's Blender": the bpy wheel with only what Blender itself ships
(its Python's standard library, numpy, zstandard), no wanhe and none of wanhe's dependencies.

The script runs in `python -I -S` (no site-packages, no PYTHONPATH, no user site) with
sys.path cut to the standard library plus a folder of links to the bpy wheel and the
packages Blender bundles. The add-on must bring everything else (blender-asset-tracer as a
wheel). BLENDER_USER_RESOURCES points Blender at a fresh user folder, so extensions install
into a clean place.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

SITE = Path(sysconfig.get_paths()["purelib"])
BLENDER_SHIPS = ("bpy", "numpy", "numpy.libs", "zstandard")

_BOOT = """
import runpy, sys
sys.path[:] = [p for p in sys.path if 'site-packages' not in p] + [sys.argv[1]]
script = sys.argv[2]
sys.argv = [script] + sys.argv[3:]
runpy.run_path(script, run_name='__main__')
"""


def blender_python(folder: Path) -> Path:
    """A folder of links to bpy and what Blender's own Python ships beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in BLENDER_SHIPS:
        link = folder / name
        if not link.exists() and (SITE / name).exists():
            link.symlink_to(SITE / name)
    return folder


def run_blender_script(script: Path, *args: str, tmp: Path, user: Path,
                       env: dict[str, str] | None = None, timeout: float = 120) -> Any:
    """Run `script` there; it writes its result as JSON to the path in WANHE_TEST_RESULT."""
    result = tmp / f"{script.stem}-result.json"
    result.unlink(missing_ok=True)
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("PYTHON", "WANHE_", "BLENDER_"))}
    clean.update(BLENDER_USER_RESOURCES=str(user), WANHE_TEST_RESULT=str(result), **(env or {}))
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _BOOT, str(blender_python(tmp / "blender-python")),
         str(script), *args],
        capture_output=True, text=True, timeout=timeout, env=clean, cwd=tmp,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-4000:]}\n" \
        f"{proc.stderr[-4000:]}"
    assert result.is_file(), proc.stdout[-4000:] + proc.stderr[-4000:]
    return json.loads(result.read_text())
