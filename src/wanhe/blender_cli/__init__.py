"""`blender` for OpenJD sessions on workers without a Blender binary: Blender's background
rendering command line, backed by the `bpy` wheel.

`main()` is the command (`wanhe-blender`, `python -m wanhe.blender_cli`); `shim_dir()` gives a
folder holding an executable `blender` that runs it, to put first on a session's PATH;
`session_blender()` decides whether a session needs it (docs/openjd.md).
"""

from __future__ import annotations

from wanhe.blender.session import SessionBlender, session_blender
from wanhe.blender.shim import shim_dir
from wanhe.blender_cli.main import main, python_allowed

__all__ = ["SessionBlender", "main", "python_allowed", "session_blender", "shim_dir"]
