"""The simulator runs a film on a mixed CPU/GPU pool with the real policy's device rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wanhe.cli import app
from wanhe.sim.mixed import MixedConfig, simulate_mixed


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mixed_pool_never_mixes_a_frame_and_keeps_both_kinds_busy(seed: int) -> None:
    r = simulate_mixed(MixedConfig(cpu_machines=40, gpus=10, frames=300, tiles=8, seed=seed))
    assert r.mixed_frames == 0
    assert r.frames_on_cpu + r.frames_on_gpu == 300
    assert r.tiles_on_cpu + r.tiles_on_gpu == r.tiles == 2400
    assert r.frames_on_cpu > 0 and r.frames_on_gpu > 0
    assert r.cpu_utilisation > 0.9 and r.gpu_utilisation > 0.9
    assert r.ratio < 1.1  # the rule costs little against the pool's combined speed


def test_one_kind_of_pool_takes_everything() -> None:
    cpu = simulate_mixed(MixedConfig(cpu_machines=10, gpus=0, frames=20, tiles=4))
    gpu = simulate_mixed(MixedConfig(cpu_machines=0, gpus=10, frames=20, tiles=4))
    assert cpu.frames_on_cpu == 20 and gpu.frames_on_gpu == 20
    assert gpu.makespan_s < cpu.makespan_s  # GPUs are 4× faster per tile here


def test_wanhe_simulate_gpus(tmp_path: Path) -> None:
    out = tmp_path / "mixed.json"
    got = CliRunner().invoke(app, ["simulate", "--machines", "30", "--gpus", "10", "--frames",
                                   "100", "--tiles", "4", "--json", str(out)])
    assert got.exit_code == 0, got.output
    assert "0 mixed" in got.output
    assert json.loads(out.read_text())["mixed"]["mixed_frames"] == 0
    bad = CliRunner().invoke(app, ["simulate", "--gpus", "3", "--gpu-speedup", "0"])
    assert bad.exit_code == 2 and "gpu_speedup" in bad.output
