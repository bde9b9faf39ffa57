"""What `wanhe` starts before parsing its arguments (`wanhe.cli.early`): the session hosts'
spawner for `wanhe run` of a template, and nothing for anything it cannot be sure of."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wanhe.cli.early import start_early
from wanhe.openjd import hostpool


@pytest.fixture(autouse=True)
def _no_hosts_left() -> Iterator[None]:
    yield
    hostpool.close()


@pytest.mark.parametrize("argv", [
    [], ["render", "scene.blend"], ["run", "--help"], ["run", "-h"],
    ["run", "--kind", "story", "--options", "o.yaml"], ["run", "--kind=story"],
    ["run", "-t", "job.yaml", "--workers", "none"], ["run", "-t", "job.yaml", "--workers=0"],
    ["run", "-t", "job.yaml", "--workers"],
])
def test_nothing_starts_for_what_it_cannot_be_sure_of(argv: list[str]) -> None:
    assert not start_early(argv)
    assert hostpool.waiting() == 0 and not hostpool.planning()


def test_a_template_run_starts_its_hosts_spawner_once() -> None:
    assert start_early(["run", "-t", "job.yaml", "-p", "Out=o", "--workers=2"])
    assert hostpool.waiting() == 2 and hostpool.planning()  # `run_command` starts no other
