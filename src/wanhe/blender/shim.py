"""A folder with an executable `blender` that runs wanhe's bpy-backed command.

An OpenJD session on a worker without a Blender binary gets this folder first on its PATH, so
templates that call `blender -b scene.blend -f {{Task.Param.Frame}}` run as they are.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import sys
import threading
from pathlib import Path

import wanhe

_TEMPLATE = """#!/bin/sh
# wanhe: Blender's background command line backed by the bpy wheel (wanhe.blender_cli).
# It never hands over to another blender: when its Python cannot run, it fails saying why.
if [ ! -x {python} ]; then
  why="wanhe's bpy-backed blender cannot run as $(id -un 2>/dev/null || id -u): its Python \
{python} is not executable or not reachable for this user"
  echo "openjd_fail: $why"
  echo "blender: $why" >&2
  exit 1
fi
PYTHONPATH={src}${{PYTHONPATH:+:$PYTHONPATH}}
export PYTHONPATH
exec {python} -P -m wanhe.blender_cli "$@"
"""


def shim_script(python: str | None = None) -> str:
    """The text of the `blender` script: this Python, this wanhe package."""
    src = str(Path(wanhe.__file__).resolve().parents[1])
    return _TEMPLATE.format(python=shlex.quote(python or sys.executable), src=shlex.quote(src))


def shim_dir(root: Path | None = None, python: str | None = None) -> Path:
    """The folder (created when needed) holding the `blender` shim; prepend it to PATH.

    `root`: where to keep it; default `~/.wanhe/bin` (`WANHE_HOME` when set). The folder is
    named after the script's content, so different interpreters or checkouts never share one,
    and it is written atomically, so concurrent sessions never see half a script.
    """
    return write_script(shim_script(python), root)


def _open_to_all(folder: Path) -> None:
    """The shim's folder is read and entered by every project's user (a root farm's umask
    077 made it 0700: their sessions then passed over it to another `blender` on PATH)."""
    if folder.stat().st_mode & 0o777 != 0o755:
        folder.chmod(0o755)


def write_script(text: str, root: Path | None = None) -> Path:
    """A folder named after `text` holding it as an executable `blender`; its path."""
    if root is None:
        home = os.environ.get("WANHE_HOME")
        root = (Path(home) if home else Path.home() / ".wanhe") / "bin"
    folder = root.expanduser() / f"blender-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    script = folder / "blender"
    try:
        if script.is_file() and script.read_text() == text and os.access(script, os.X_OK):
            _open_to_all(folder)
            return folder
    except OSError:
        pass
    folder.mkdir(parents=True, exist_ok=True)
    _open_to_all(folder)
    # one temporary file per thread: a process's sessions (`wanhe run`'s workers) may all
    # write the same script at once
    tmp = folder / f".blender.{os.getpid()}.{threading.get_ident()}.tmp"
    tmp.write_text(text)
    tmp.chmod(0o755)
    os.replace(tmp, script)
    return folder
