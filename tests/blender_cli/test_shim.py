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



def _write_at_once(root: Path, threads: int) -> tuple[list[Path], list[OSError]]:
    """`threads` threads of this process write the same script into `root` at once."""
    import threading

    from wanhe.blender.shim import write_script

    barrier = threading.Barrier(threads)
    folders: list[Path] = []
    errors: list[OSError] = []

    def write() -> None:
        barrier.wait()
        try:
            folders.append(write_script("#!/bin/sh\necho hi\n", root))
        except OSError as exc:
            errors.append(exc)

    running = [threading.Thread(target=write) for _ in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    return folders, errors


def test_sessions_of_one_process_writing_the_script_at_once_all_get_it(tmp_path: Path) -> None:
    """`wanhe run`'s workers are threads of one process: each session writes the shim as it
    starts; none may fail on another's temporary file (it did: `[Errno 2] … .blender.PID.tmp`
    failed an OpenJD task now and then)."""
    for attempt in range(10):
        folders, errors = _write_at_once(tmp_path / str(attempt), 8)
        assert errors == []
        assert len(set(folders)) == 1 and (folders[0] / "blender").read_text().endswith("hi\n")
