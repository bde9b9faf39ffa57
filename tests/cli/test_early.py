"""What `wanhe` starts before parsing its arguments (`wanhe.cli.early`): the session hosts'
spawner for `wanhe run` of a template, a render's Blender, and nothing for anything it cannot
be sure of."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from wanhe import localrender
from wanhe.cli.early import start_early
from wanhe.openjd import hostpool


@pytest.fixture(autouse=True)
def _nothing_left() -> Iterator[None]:
    yield
    hostpool.close()
    localrender._drop_early()


@pytest.mark.parametrize("argv", [
    [], ["simulate"], ["run", "--help"], ["run", "-h"],
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


@pytest.mark.parametrize("argv", [
    ["render", "--help"], ["render", "s.blend", "--export-openjd", "bundle"],
    ["render", "s.blend", "--ray-address=auto"], ["render", "s.blend", "--blender"],
])
def test_no_blender_starts_for_a_render_that_will_not_run_here(argv: list[str]) -> None:
    assert not start_early(argv)
    assert not localrender._early


def test_a_render_starts_its_blender_which_only_a_render_with_the_same_tools_adopts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WANHE_HOME", str(tmp_path))
    assert start_early(["render", "scene.blend", "--frames", "1"])
    [(tools, local)] = localrender._early
    blender = local.worker.blender_process()
    assert blender.alive  # spawned: bpy loads while the command parses and checks
    assert localrender._take_early({**tools, "blender": "/another/blender"}) is None
    assert not blender.alive and not localrender._early  # not this render's: stopped
    assert start_early(["render", "scene.blend"])
    [(tools, local)] = localrender._early
    assert localrender._take_early(tools) is local and not localrender._early
    local.kill()
