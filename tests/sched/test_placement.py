"""Which slots may run a task (wanhe.sched.placement): devices and blocklists."""

from __future__ import annotations

from wanhe.model import Resources
from wanhe.sched.placement import SlotShape, eligible_nodes, slot_takes, why_unplaceable

RENDER = SlotShape("a", cpus=2.0)
LIGHT = SlotShape("a", cpus=0.0, light=True)
GPU = SlotShape("b", cpus=0.0, gpus=1.0)


def test_cpu_tasks_never_take_a_gpu_slot_and_gpu_tasks_need_one() -> None:
    assert not slot_takes(GPU, Resources(cpus=1))
    assert not slot_takes(GPU, Resources(cpus=0))
    assert slot_takes(GPU, Resources(cpus=1, gpus=1))
    assert not slot_takes(RENDER, Resources(cpus=1, gpus=1))
    assert not slot_takes(GPU, Resources(gpus=2))


def test_light_slots_take_only_work_that_reserves_no_cores() -> None:
    assert slot_takes(LIGHT, Resources(cpus=0))
    assert not slot_takes(LIGHT, Resources(cpus=1))
    assert slot_takes(RENDER, Resources(cpus=0))  # a render slot may do image work too
    assert not slot_takes(RENDER, Resources(cpus=3))


def test_blocklisted_nodes_are_not_eligible() -> None:
    slots = [RENDER, SlotShape("c", cpus=2.0)]
    assert eligible_nodes(slots, Resources(cpus=2)) == {"a", "c"}
    assert eligible_nodes(slots, Resources(cpus=2), blocked=["a"]) == {"c"}
    assert why_unplaceable(slots, Resources(cpus=2), blocked=["a"]) is None
    assert why_unplaceable(slots, Resources(cpus=2), blocked=["a", "c"]) == "blocklisted"


def test_what_keeps_a_task_from_every_slot_is_said() -> None:
    assert why_unplaceable([RENDER, LIGHT], Resources(gpus=1)) == (
        "it needs 1 GPU(s) and no worker of this farm has one")
    assert why_unplaceable([RENDER, LIGHT], Resources(cpus=8)) == (
        "it needs 8 core(s) and the largest worker has 2")


def test_a_task_bigger_than_every_nodes_memory_is_unplaceable_with_the_numbers() -> None:
    gib = 1 << 30
    slots = [SlotShape("a", 4.0, memory=8 * gib), SlotShape("b", 4.0, memory=16 * gib)]
    assert why_unplaceable(slots, Resources(cpus=1, memory=12 * gib)) is None
    assert eligible_nodes(slots, Resources(cpus=1, memory=12 * gib)) == {"b"}
    why = why_unplaceable(slots, Resources(cpus=1, memory=int(19.7 * gib)))
    assert why == "it needs 19.7 GiB of memory and the largest worker has 16.0 GiB"
