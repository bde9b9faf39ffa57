"""The deadline search, on the simulator with the real scheduling policy: more machines never
finish later, the answer is the fewest that meet the deadline, and an impossible deadline is
said with the earliest possible finish."""

from __future__ import annotations

import itertools

import pytest

from wanhe.estimate.deadline import farm_wall_s, machines_for_deadline

# 40 frames of one render task each; 16-core machines: a frame of 1600 core-s takes 100 s
FRAMES = {f: (1600.0 * (1 + (f % 5) / 4),) for f in range(1, 41)}


def test_one_machine_renders_frames_back_to_back() -> None:
    total = sum(c for tasks in FRAMES.values() for c in tasks)
    assert farm_wall_s(FRAMES, machines=1, cores=16) == pytest.approx(total / 16)


def test_wall_time_is_monotone_in_machines() -> None:
    walls = [farm_wall_s(FRAMES, machines=m, cores=16) for m in range(1, 42)]
    assert all(b <= a + 1e-9 for a, b in itertools.pairwise(walls))
    assert walls[-1] == pytest.approx(max(c for (c,) in FRAMES.values()) / 16)


def test_fewest_machines_that_meet_the_deadline() -> None:
    deadline = 1000.0
    answer = machines_for_deadline(FRAMES, cores=16, seconds=deadline)
    assert answer.possible and answer.machines is not None
    assert farm_wall_s(FRAMES, machines=answer.machines, cores=16) <= deadline
    assert farm_wall_s(FRAMES, machines=answer.machines - 1, cores=16) > deadline
    # a later deadline never needs more machines
    later = machines_for_deadline(FRAMES, cores=16, seconds=2 * deadline)
    assert later.machines is not None and later.machines <= answer.machines


def test_impossible_deadline_gives_the_earliest_finish() -> None:
    answer = machines_for_deadline(FRAMES, cores=16, seconds=150.0, load_s=5.0)
    assert not answer.possible and answer.machines is None
    assert answer.earliest_s == pytest.approx(5.0 + 3200.0 / 16)  # the heaviest frame
    assert answer.most_useful_machines == 40
    assert "impossible" in answer.explain(150.0) and "3.4 min" in answer.explain(150.0)


def test_a_farm_needs_machines() -> None:
    with pytest.raises(ValueError, match="at least one machine"):
        farm_wall_s(FRAMES, machines=0, cores=16)
