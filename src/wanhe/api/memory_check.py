"""At submit: a job whose task needs more memory than any worker of the farm can give is
refused with the number, instead of waiting forever or growing until a worker is killed.

The farm's largest worker: what the dispatcher's workers report (their Ray node's `memory`
resource), else the largest live Ray node, else this machine's RAM. A farm on an external
cluster (`--ray-address`, which an autoscaler may grow) refuses nothing here: the dispatcher
says on the job why it waits.
"""

from __future__ import annotations

import sys
from typing import Any

from wanhe.jobtypes.base import InputError, TaskView
from wanhe.jobtypes.registry import task_label
from wanhe.model import TaskSpec, human_bytes


def largest_worker_memory(service: Any) -> int | None:
    """Bytes the farm's largest worker offers tasks; None when the farm may grow."""
    if getattr(service.settings, "ray_address", None):
        return None
    dispatcher = getattr(service, "dispatcher", None)
    if dispatcher is not None:
        known = [slot.memory for slot in dispatcher.pool.slots if slot.memory]
        if known:
            return int(max(known))
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        nodes = [int(n.get("Resources", {}).get("memory", 0)) for n in ray.nodes()
                 if n.get("Alive")]
        if any(nodes):
            return max(nodes)
    import psutil

    return int(psutil.virtual_memory().total)


def check_task_memory(kind: str, tasks: list[TaskSpec], largest: int | None) -> None:
    """Raise InputError naming the first task that needs more memory than `largest`."""
    if largest is None or not tasks:
        return
    biggest = max(tasks, key=lambda t: t.resources.memory)
    if biggest.resources.memory <= largest:
        return
    label = task_label(kind, TaskView(biggest.key, biggest.kind, biggest.frame, biggest.tile,
                                      biggest.chunk))
    raise InputError("options", f"{label} needs {human_bytes(biggest.resources.memory)} of "
                                f"memory; the largest worker has {human_bytes(largest)} — "
                                "lower the size or add a bigger machine")
