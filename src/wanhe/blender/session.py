"""Which `blender` an OpenJD session gets: the worker's own binary, or wanhe's bpy command.

A Blender binary configured for the worker is used as it is (behind a `blender` link on PATH,
whatever its file name). Otherwise a `blender` on PATH is used when it is at least as new as
the `bpy` wheel the farm renders with — an older one (Debian's 3.4, say) cannot open files
saved by Blender 5.0 and would not render what `wanhe render` renders — and wanhe's bpy-backed
command (`shim_dir()`) is put first on PATH instead.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from wanhe.blender.shim import shim_dir, write_script

_VERSION = re.compile(r"Blender (\d+)\.(\d+)")


@dataclass(frozen=True, slots=True)
class SessionBlender:
    path_prefix: Path | None  # put first on the session's PATH; None: leave PATH as it is
    binary: str | None  # the real Blender the session runs, if any
    reason: str  # one line for the worker's log


@functools.cache  # the installed wheel's version; reading its metadata costs ~10 ms a call
def bpy_version() -> tuple[int, int]:
    try:
        major, minor = version("bpy").split(".")[:2]
        return int(major), int(minor)
    except (PackageNotFoundError, ValueError):  # pragma: no cover - bpy is a dependency
        return (0, 0)


@functools.lru_cache(maxsize=32)
def binary_version(binary: str, timeout_s: float = 30.0) -> tuple[int, int] | None:
    """`blender --version`'s major.minor, or None when it does not answer like Blender."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             timeout=timeout_s, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = _VERSION.search(out)
    return (int(m.group(1)), int(m.group(2))) if m else None


def session_blender(
    configured: str | None = None, env_path: str | None = None, *, root: Path | None = None
) -> SessionBlender:
    """What to put on a session's PATH so that `blender` is the right one.

    `configured`: the worker's Blender setting (`Settings.blender`); `env_path`: the session's
    PATH (default this process's); `root`: where the shim folders live (default ~/.wanhe/bin).
    """
    if configured:
        binary = shutil.which(configured) or configured
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            raise FileNotFoundError(
                f"the worker's Blender {configured!r} is not an executable file — fix the "
                "blender setting or leave it empty to use the bpy wheel"
            )
        text = f'#!/bin/sh\nexec {shlex.quote(os.path.abspath(binary))} "$@"\n'
        return SessionBlender(write_script(text, root), binary,
                              f"blender: the worker's own {binary}")
    found = shutil.which("blender", path=env_path)
    want = bpy_version()
    if found is not None:
        have = binary_version(found)
        if have is not None and have >= want:
            return SessionBlender(None, found, f"blender: {found} (Blender {have[0]}.{have[1]})")
        what = "does not answer --version" if have is None else f"is Blender {have[0]}.{have[1]}"
        reason = (f"blender: {found} {what}, older than the bpy wheel (Blender "
                  f"{want[0]}.{want[1]}) the farm renders with; using wanhe's bpy command")
    else:
        reason = "blender: none on PATH; using wanhe's bpy command (the bpy wheel)"
    return SessionBlender(shim_dir(root), None, reason)
