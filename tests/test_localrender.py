"""When a local `wanhe render` starts an embedded Ray: only when Ray has a worker to place."""

from __future__ import annotations

import pytest

from wanhe.localrender import ray_needed


@pytest.mark.parametrize(
    ("cores", "threads", "workers", "needed"),
    [
        (2, 2, None, False),  # the default: one worker with every core, nothing to place
        (64, 64, None, False),
        (2, 2, 1, False),
        (2, 1, None, True),  # cores enough for a second worker
        (16, 4, None, True),
        (2, 2, 2, True),  # --workers 2 asks for a second worker even on two cores
        (16, 4, 1, False),  # --workers 1 keeps it to the command's own worker
        (2, 3, None, False),  # more threads than cores: still one worker
    ],
)
def test_ray_starts_only_for_a_second_worker(
    cores: int, threads: int, workers: int | None, needed: bool
) -> None:
    assert ray_needed(threads, workers, cores) is needed
