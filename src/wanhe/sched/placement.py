"""Which slots may ever run a task: the device rules and the blocklist, as pure functions.

A farm never strands a task silently. When no slot of the pool could run a ready task — it
asks for a GPU the farm lacks, more cores or memory than any worker has, or every node that
could run it is blocklisted for its job — the dispatcher fails the job with
`why_unplaceable`'s reason on a fixed pool, and says why it waits on one that can grow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from wanhe.model import Resources, human_bytes


@dataclass(frozen=True, slots=True)
class SlotShape:
    """What a slot is, for placement: where it runs and what it holds."""

    node: str
    cpus: float
    gpus: float = 0.0
    light: bool = False
    memory: int = 1 << 62  # bytes its node offers tasks in all


def slot_takes(slot: SlotShape, need: Resources) -> bool:
    """Whether a slot of this shape, idle, may run a task that needs `need`.

    A GPU task needs a GPU slot with enough GPUs; a CPU task never holds a GPU slot; a light
    slot takes only tasks that reserve no cores; a render slot takes what fits its cores.
    Any slot takes only a task whose memory its node can hold.
    """
    if need.memory > slot.memory:
        return False
    if need.gpus > 0:
        return slot.gpus + 1e-9 >= need.gpus
    if slot.gpus > 0:
        return False
    if slot.light:
        return need.cpus <= 1e-9
    return need.cpus <= slot.cpus + 1e-9


def eligible_nodes(
    slots: Iterable[SlotShape], need: Resources, blocked: Iterable[str] = ()
) -> set[str]:
    """Nodes with a slot that may run the task and that its job has not blocklisted."""
    barred = set(blocked)
    return {s.node for s in slots if s.node not in barred and slot_takes(s, need)}


def why_unplaceable(
    slots: Iterable[SlotShape], need: Resources, blocked: Iterable[str] = ()
) -> str | None:
    """None when some slot may run the task; otherwise what keeps every slot from it."""
    shapes = list(slots)
    if eligible_nodes(shapes, need, blocked):
        return None
    fitting = {s.node for s in shapes if slot_takes(s, need)}
    if fitting:
        return "blocklisted"
    most_memory = max((s.memory for s in shapes), default=0)
    if need.memory > most_memory:
        return (f"it needs {human_bytes(need.memory)} of memory and the largest worker has "
                f"{human_bytes(most_memory)}")
    if need.gpus > 0:
        have = max((s.gpus for s in shapes), default=0.0)
        return (f"it needs {need.gpus:g} GPU(s) and no worker of this farm has "
                f"{'one' if have == 0 else f'{need.gpus:g}'}")
    most = max((s.cpus for s in shapes if s.gpus == 0 and not s.light), default=0.0)
    return f"it needs {need.cpus:g} core(s) and the largest worker has {most:g}"
