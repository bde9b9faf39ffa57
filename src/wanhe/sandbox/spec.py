"""What one task may see and use: a pure description, turned into a command line by
`wanhe.sandbox.mounts` and into a cgroup by `wanhe.sandbox.cgroup`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PIDS_MAX = 4096  # processes and threads of one task: Blender's threads fit many times
HIDDEN_ALWAYS = ("/tmp/ray", "/root/.ray")  # Ray's session folder and its token


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    """One task's boundary.

    `inputs` are shown read-only and `writable` read-write, each at its own path (so the
    paths in a payload stay valid); `software` (beyond the farm's own, see
    `mounts.farm_software`) read-only. `hidden` must never be visible: a folder to show that
    holds one of them is refused (`mounts.MountError`)."""

    inputs: tuple[Path, ...] = ()
    writable: tuple[Path, ...] = ()
    software: tuple[Path, ...] = ()
    hidden: tuple[Path, ...] = ()
    memory_bytes: int | None = None
    pids_max: int | None = DEFAULT_PIDS_MAX
    devices: tuple[Path, ...] = field(default_factory=tuple)
    """Device nodes beyond the minimal /dev (a GPU's /dev/nvidia*, /dev/dri)."""


def pids_limit() -> int:
    """The process limit of one task: WANHE_TASK_PIDS_MAX, else DEFAULT_PIDS_MAX."""
    text = os.environ.get("WANHE_TASK_PIDS_MAX", "")
    return int(text) if text.isdigit() and int(text) > 0 else DEFAULT_PIDS_MAX


def farm_hidden(*extra: str | Path | None) -> tuple[Path, ...]:
    """The farm's own files a task must never see: the service's home (~/.wanhe: database,
    storage, tokens), Ray's session folder, and `extra` (the storage root, the database file)."""
    found = [Path(p) for p in HIDDEN_ALWAYS]
    home = os.environ.get("WANHE_HOME")
    found.append(Path(home) if home else Path.home() / ".wanhe")
    found.extend(Path(p) for p in extra if p)
    return tuple(dict.fromkeys(p.absolute() for p in found))


def gpu_devices() -> tuple[Path, ...]:
    """The GPU device nodes of this machine (NVIDIA's and DRM's), for tasks that use a GPU."""
    dev = Path("/dev")
    found = sorted(dev.glob("nvidia*"))
    if (dev / "dri").is_dir():
        found.append(dev / "dri")
    return tuple(found)
