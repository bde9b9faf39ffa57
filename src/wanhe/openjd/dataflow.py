"""PATH parameters' data flow on the farm: the job's output folders (`dataFlow: OUT` and
`INOUT`, asset references' output directories) made on the worker before a session starts.

Each output folder of a submitted job is `output/out<N>` of the job (the submitter's folder
maps there, `wanhe.jobtypes.openjd.path_rules`), which the farm lists and serves, and
`wanhe download JOB` brings back to the submitter's folders. An `INOUT` folder starts as a
writable copy of what was uploaded (the job's inputs are read-only). A folder is made once,
under a temporary name renamed into place, so sessions opening together never see half of
it; it is built in the job's folder, which sessions may not write, and takes the group and
the group permissions of the job's `output/` (the project's group on a root farm).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path
from typing import Any


def prepare(outputs: list[dict[str, Any]]) -> list[str]:
    """Make the job's output folders that do not exist yet; the lines to log."""
    made: list[str] = []
    for item in outputs:
        folder = Path(item["dir"])
        seed = Path(item["seed"]) if item.get("seed") else None
        if os.path.lexists(folder):
            continue
        _make(folder, seed)
        made.append(f"[wanhe] output folder {folder.name} made"
                    + (f" from the uploaded {seed.name} (INOUT)" if seed else ""))
    return made


def _make(folder: Path, seed: Path | None) -> None:
    parent = folder.parent
    info = os.stat(parent, follow_symlinks=False)
    if not stat.S_ISDIR(info.st_mode):
        raise OSError(f"{parent} is not a folder")
    # Built beside output/, in the job's own folder, which sessions cannot write: nothing a
    # session plants (a link) is under the copy while it is made and its modes are set.
    tmp = parent.parent / f".{parent.name}-{folder.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    if seed is not None and seed.is_dir():
        shutil.copytree(seed, tmp, symlinks=True)
    else:
        os.mkdir(tmp)
        if seed is not None and seed.is_file():
            shutil.copy2(seed, tmp / seed.name)
    group_bits = info.st_mode & 0o070
    for root, dirs, files in os.walk(tmp):
        for name in [*dirs, *files, ""]:
            path = os.path.join(root, name) if name else root
            if os.path.islink(path):
                continue
            with contextlib.suppress(PermissionError):  # not root: the group is ours already
                os.chown(path, -1, info.st_gid, follow_symlinks=False)
            mode = os.stat(path, follow_symlinks=False).st_mode
            extra = group_bits if stat.S_ISDIR(mode) else group_bits & 0o060
            os.chmod(path, (stat.S_IMODE(mode) | 0o600 | extra
                            | (0o100 if stat.S_ISDIR(mode) else 0)))
    try:
        os.rename(tmp, folder)
    except OSError:  # another session made it first
        shutil.rmtree(tmp, ignore_errors=True)
        if not folder.is_dir():
            raise
