"""The device rules of rendering, as pure functions: which kind of device a task may run on.

A render task asks for the CPU (`cpu`), a GPU (`gpu`) or whatever the farm has (`any`). CPU
and GPU Cycles do not give identical pixels, so all tiles and sample chunks of one frame must
render on the same *kind* of device: a frame of an `any` job is bound to the kind of the first
slot that takes one of its tasks, and its other tasks (retries included) run only on that kind.
`SchedulingPolicy` applies the binding (one lane per frame of an `any` job); the simulator
drives it on a mixed CPU/GPU pool.
"""

from __future__ import annotations

from enum import StrEnum

from wanhe.model import Resources

__all__ = ["DEVICE_HELP", "Device", "SlotKind", "kind_of_slot", "may_take", "render_resources"]


class Device(StrEnum):
    """What a job asks its render tasks to run on (`wanhe render/submit --device`)."""

    CPU = "cpu"
    GPU = "gpu"
    ANY = "any"


DEVICE_HELP = ("what renders run on: cpu, gpu (Cycles on OptiX/CUDA/HIP/oneAPI/Metal as Blender "
               "finds them) or any (either; a frame never mixes them)")


class SlotKind(StrEnum):
    """The kind of device a slot renders on."""

    CPU = "cpu"
    GPU = "gpu"


def kind_of_slot(gpu_slot: bool) -> SlotKind:
    return SlotKind.GPU if gpu_slot else SlotKind.CPU


def may_take(any_device: bool, bound: SlotKind | None, slot: SlotKind, gpu_task: bool) -> bool:
    """Whether a slot of kind `slot` may run a task, by device alone (fit is checked apart).

    A task that asks for a GPU runs on a GPU slot; a CPU task never holds a GPU slot; an
    `any` task runs on either, unless its frame is already bound to the other kind.
    """
    if any_device:
        return bound is None or bound is slot
    if gpu_task:
        return slot is SlotKind.GPU
    return slot is SlotKind.CPU


def render_resources(device: Device, threads: int) -> Resources:
    """What one render task of a job reserves: `threads` cores on a CPU slot (`cpu`, and `any`,
    whose task fits a CPU slot and may also take a GPU slot), one GPU and the core feeding it
    (`gpu`)."""
    if device is Device.GPU:
        return Resources(cpus=1.0, gpus=1.0)
    return Resources(cpus=float(threads))
