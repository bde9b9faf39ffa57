"""Which device Cycles renders on.

The choice is tested with fake device lists: a STAND-IN for what Blender's Cycles preferences
list on GPU machines (this machine has no GPU). The last tests use real Blender here: the
devices it finds (only the CPU), a CPU render reporting its device, and a GPU render asked for
failing with the reason instead of silently rendering on the CPU.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from wanhe.blender.cycles_devices import (
    BACKENDS,
    DeviceChoice,
    FoundDevice,
    NoGpuFound,
    apply,
    choose,
    found_devices,
)
from wanhe.blender.protocol import RenderRequest
from wanhe.blender.runner import BlenderProcess
from wanhe.engine.frame_steps import render_device

from ._util import Scenes

CPU = FoundDevice("CPU", "AMD EPYC", "CPU")
# stand-ins for a workstation with two NVIDIA cards (listed under OptiX and CUDA) and an AMD one
RTX_OPTIX = [FoundDevice("OPTIX", "RTX 4090", "OPTIX_0"),
             FoundDevice("OPTIX", "RTX 4090", "OPTIX_1")]
RTX_CUDA = [FoundDevice("CUDA", "RTX 4090", "CUDA_0"), FoundDevice("CUDA", "RTX 4090", "CUDA_1")]
AMD = [FoundDevice("HIP", "Radeon W7900", "HIP_0")]


def test_cpu_is_chosen_when_asked_whatever_is_found() -> None:
    assert choose([CPU, *RTX_OPTIX], "CPU") == DeviceChoice("CPU")


def test_optix_before_cuda_before_hip_and_every_gpu_of_the_backend() -> None:
    got = choose([CPU, *AMD, *RTX_CUDA, *RTX_OPTIX], "GPU")
    assert got == DeviceChoice("GPU", "OPTIX", ("OPTIX_0", "OPTIX_1"), ("RTX 4090", "RTX 4090"))
    assert choose([CPU, *AMD, *RTX_CUDA], "GPU").backend == "CUDA"
    assert choose([CPU, *AMD], "GPU").backend == "HIP"
    assert choose([FoundDevice("ONEAPI", "Arc A770", "ONE_0")], "GPU").backend == "ONEAPI"
    assert choose([FoundDevice("METAL", "Apple M3", "M_0")], "GPU").backend == "METAL"
    assert BACKENDS[0] == "OPTIX"


def test_gpu_asked_and_none_found_is_an_error_naming_the_fix() -> None:
    with pytest.raises(NoGpuFound, match=r"found only the CPU.*--device cpu or any"):
        choose([CPU], "GPU")
    with pytest.raises(ValueError, match="CPU or GPU"):
        choose([CPU], "TPU")


def _prefs(devices: dict[str, list[FoundDevice]]) -> SimpleNamespace:
    """A stand-in for `bpy.context.preferences.addons['cycles'].preferences`."""
    listed = [SimpleNamespace(type=d.type, name=d.name, id=d.id, use=True)
              for ds in devices.values() for d in ds]

    def get_devices_for_type(backend: str) -> list[SimpleNamespace]:
        if backend not in devices:
            raise TypeError(f"enum {backend!r} not found")  # as RNA does for unknown backends
        return [d for d in listed if d.type in (backend, "CPU")]

    return SimpleNamespace(devices=listed, compute_device_type="NONE",
                           get_devices_for_type=get_devices_for_type)


def test_found_devices_and_apply_enable_only_the_chosen_backend() -> None:
    prefs = _prefs({"CUDA": [CPU, *RTX_CUDA], "OPTIX": RTX_OPTIX})
    found = found_devices(prefs)
    assert {d.type for d in found} == {"CPU", "CUDA", "OPTIX"}
    choice = choose(found, "GPU")
    scene = SimpleNamespace(cycles=SimpleNamespace(device="CPU"))
    apply(choice, prefs, scene)
    assert scene.cycles.device == "GPU" and prefs.compute_device_type == "OPTIX"
    assert [d.id for d in prefs.devices if d.use] == ["OPTIX_0", "OPTIX_1"]
    apply(choose(found, "CPU"), prefs, scene)
    assert scene.cycles.device == "CPU"


def test_the_attempt_device_follows_the_task_and_the_worker() -> None:
    assert render_device("cpu", ("0",)) == "CPU"
    assert render_device("gpu", ()) == "GPU"  # a GPU slot gave it; Blender checks there is one
    assert render_device("any", ("0",)) == "GPU"
    assert render_device("any", ()) == "CPU"
    assert render_device(None, ("0",)) == "CPU"  # a payload from before --device


def test_real_blender_here_finds_no_gpu_and_says_so(
    warm_blender: BlenderProcess, scenes: Scenes, tmp_path: Path
) -> None:
    out = tmp_path / "cpu.exr"
    reply = warm_blender.render(
        RenderRequest(scene=str(scenes.tiny), frame=1, output=str(out), device="CPU"),
        timeout_s=120,
    )
    assert reply.ok, reply.error
    assert (reply.device, reply.backend) == ("CPU", "NONE")
    gpu_out = tmp_path / "gpu.exr"
    reply = warm_blender.render(
        RenderRequest(scene=str(scenes.tiny), frame=1, output=str(gpu_out), device="GPU"),
        timeout_s=120,
    )
    assert not reply.ok and not gpu_out.exists()
    assert "Blender found no GPU" in (reply.error or ""), reply.error
