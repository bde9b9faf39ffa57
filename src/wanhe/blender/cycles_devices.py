"""Which Cycles device a render uses: the pure choice, and applying it to Blender.

Standard library only: the warm worker (`worker_script.py`, inside Blender's Python, where
`wanhe` may not be importable) loads this file by path. Blender lists the devices it found in
the Cycles add-on's preferences, per backend; `choose` picks the first backend in
`BACKENDS` order that has a GPU, and every GPU of that backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# OptiX first (NVIDIA's ray-tracing cores), then CUDA (NVIDIA without RTX), HIP (AMD),
# oneAPI (Intel), Metal (Apple).
BACKENDS = ("OPTIX", "CUDA", "HIP", "ONEAPI", "METAL")


@dataclass(frozen=True)
class FoundDevice:
    """A device as Cycles lists it: its backend type (`CPU`, `CUDA`, `OPTIX`…), name, id."""

    type: str
    name: str
    id: str


@dataclass(frozen=True)
class DeviceChoice:
    """What a render uses: `CPU`, or `GPU` with a backend and the ids of its devices."""

    device: str  # "CPU" or "GPU"
    backend: str = "NONE"
    ids: tuple[str, ...] = ()
    names: tuple[str, ...] = ()


class NoGpuFound(RuntimeError):
    """A GPU render was asked for and Blender found none."""


def choose(
    found: list[FoundDevice], want: str, backends: tuple[str, ...] = BACKENDS
) -> DeviceChoice:
    """The device for a render that asks for `want` (`CPU` or `GPU`), given what Blender
    found. A GPU asked for and none found raises `NoGpuFound`, never a silent CPU render."""
    if want == "CPU":
        return DeviceChoice("CPU")
    if want != "GPU":
        raise ValueError(f"device must be CPU or GPU, got {want!r}")
    for backend in backends:
        gpus = [d for d in found if d.type == backend]
        if gpus:
            return DeviceChoice("GPU", backend, tuple(d.id for d in gpus),
                                tuple(d.name for d in gpus))
    kinds = sorted({d.type for d in found if d.type != "CPU"})
    raise NoGpuFound(
        "a GPU render was asked for (--device gpu) and Blender found no GPU "
        f"(tried {', '.join(backends)}; found {', '.join(kinds) or 'only the CPU'}) — "
        "check the GPU driver, or submit with --device cpu or any"
    )


def found_devices(prefs: Any, backends: tuple[str, ...] = BACKENDS) -> list[FoundDevice]:
    """Every device Blender's Cycles preferences (`addons['cycles'].preferences`) list, for
    each backend this Blender knows."""
    out: list[FoundDevice] = []
    seen: set[tuple[str, str]] = set()
    for backend in backends:
        try:
            devices = prefs.get_devices_for_type(backend)
        except Exception:  # a backend this build of Blender does not know
            continue
        for d in devices:
            key = (str(d.type), str(d.id))
            if key not in seen:
                seen.add(key)
                out.append(FoundDevice(str(d.type), str(d.name), str(d.id)))
    return out


def apply(choice: DeviceChoice, prefs: Any, scene: Any) -> None:
    """Make Cycles render `scene` on `choice`: the backend and only its devices enabled."""
    if choice.device == "CPU":
        scene.cycles.device = "CPU"
        return
    prefs.compute_device_type = choice.backend
    prefs.get_devices_for_type(choice.backend)  # refreshes prefs.devices for the backend
    wanted = set(choice.ids)
    for d in prefs.devices:
        d.use = d.type == choice.backend and d.id in wanted
    scene.cycles.device = "GPU"
