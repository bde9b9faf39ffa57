"""The device rule: a task of an `any` job runs on a CPU or a GPU slot, but the tasks of one
frame never mix the two (CPU and GPU Cycles give different pixels)."""

from __future__ import annotations

import random

import pytest

from wanhe.model import Resources
from wanhe.sched.devices import Device, SlotKind, may_take, render_resources
from wanhe.sched.policy import QueuedTask, SchedulingPolicy

CPU_FREE = Resources(cpus=4, memory=1 << 40)
GPU_FREE = Resources(cpus=1e9, memory=1 << 40, gpus=1)  # what a GPU slot offers (pool.Slot)
TILE = Resources(cpus=4)


def _job(policy: SchedulingPolicy, job: str, frames: int, tiles: int, *,
         any_device: bool = True, res: Resources = TILE, start: int = 0) -> list[QueuedTask]:
    tasks = []
    for f in range(frames):
        for t in range(tiles):
            i = start + f * tiles + t
            q = QueuedTask(i, job, "p", 50, int(job[-1]), i, res, any_device=any_device,
                           group=f + 1 if any_device else None)
            policy.push(q)
            tasks.append(q)
    return tasks


def _pick(policy: SchedulingPolicy, kind: SlotKind) -> QueuedTask | None:
    gpu = kind is SlotKind.GPU
    return policy.pick(GPU_FREE if gpu else CPU_FREE, node=f"{kind}-node", gpu_only=gpu)


def test_may_take_table() -> None:
    assert may_take(True, None, SlotKind.GPU, False) and may_take(True, None, SlotKind.CPU, False)
    assert not may_take(True, SlotKind.CPU, SlotKind.GPU, False)
    assert not may_take(True, SlotKind.GPU, SlotKind.CPU, False)
    assert not may_take(False, None, SlotKind.GPU, False)  # a CPU task never holds a GPU
    assert not may_take(False, None, SlotKind.CPU, True)
    assert render_resources(Device.GPU, 8) == Resources(cpus=1, gpus=1)
    assert render_resources(Device.ANY, 8) == render_resources(Device.CPU, 8) == Resources(8)


def test_a_frame_binds_to_the_first_device_and_the_next_frame_goes_elsewhere() -> None:
    policy = SchedulingPolicy()
    _job(policy, "j1", frames=3, tiles=4)
    first = _pick(policy, SlotKind.GPU)
    assert first is not None and first.group == 1
    cpu = _pick(policy, SlotKind.CPU)
    assert cpu is not None and cpu.group == 2  # frame 1 is the GPU's now: the CPU skips it
    gpu_groups = [q.group for q in (_pick(policy, SlotKind.GPU) for _ in range(3)) if q]
    assert gpu_groups == [1, 1, 1]
    cpu_groups = [q.group for q in (_pick(policy, SlotKind.CPU) for _ in range(3)) if q]
    assert cpu_groups == [2, 2, 2]
    assert policy.stats().skipped_device > 0


def test_a_retried_tile_goes_back_to_its_frames_device() -> None:
    policy = SchedulingPolicy()
    _job(policy, "j1", frames=2, tiles=2)
    lost = _pick(policy, SlotKind.GPU)
    assert lost is not None and lost.group == 1
    policy.finished(lost, 10.0)  # its node left: lost, pushed again
    policy.push(lost)
    for _ in range(3):  # CPU slots may take only frame 2
        got = _pick(policy, SlotKind.CPU)
        assert got is None or got.group == 2
    again = _pick(policy, SlotKind.GPU)
    assert again is not None and again.group == 1


def test_cpu_and_gpu_jobs_keep_to_their_slots() -> None:
    policy = SchedulingPolicy()
    _job(policy, "j1", frames=1, tiles=2, any_device=False)
    _job(policy, "j2", frames=1, tiles=2, any_device=False, res=Resources(cpus=1, gpus=1),
         start=100)
    got_gpu = [_pick(policy, SlotKind.GPU) for _ in range(3)]
    assert [q.job_id for q in got_gpu if q] == ["j2", "j2"]
    got_cpu = [_pick(policy, SlotKind.CPU) for _ in range(3)]
    assert [q.job_id for q in got_cpu if q] == ["j1", "j1"]


@pytest.mark.parametrize("seed", range(20))
def test_random_mixed_pool_never_mixes_devices_in_a_frame(seed: int) -> None:
    rng = random.Random(seed)
    policy = SchedulingPolicy(starvation_limit=3)
    tasks = _job(policy, "j1", frames=6, tiles=rng.randint(1, 6))
    kind_of: dict[int, set[SlotKind]] = {}
    running: list[tuple[QueuedTask, SlotKind]] = []
    done = 0
    for _ in range(2000):
        if done == len(tasks):
            break
        if running and rng.random() < 0.45:
            q, _kind = running.pop(rng.randrange(len(running)))
            policy.finished(q, 1.0)
            if rng.random() < 0.2:
                policy.push(q)  # lost: ready again
            else:
                done += 1
            continue
        kind = rng.choice([SlotKind.CPU, SlotKind.GPU])
        gpu = kind is SlotKind.GPU
        free = GPU_FREE if gpu else Resources(cpus=rng.choice([2, 4]), memory=1 << 40)
        q = policy.pick(free, node=f"{kind}{rng.randrange(3)}", gpu_only=gpu,
                        capacity=None if gpu else CPU_FREE)
        if q is not None:
            assert q.group is not None
            kind_of.setdefault(q.group, set()).add(kind)
            running.append((q, kind))
    assert done == len(tasks)
    assert all(len(kinds) == 1 for kinds in kind_of.values()), kind_of
