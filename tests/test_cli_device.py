"""`wanhe render --device`: a GPU asked for on a machine that shows none is refused at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from wanhe.cli import app
from wanhe.localrender import gpu_devices_present


@pytest.mark.skipif(gpu_devices_present(), reason="this machine has a GPU")
def test_render_device_gpu_without_a_gpu_is_a_one_line_error(tmp_path: Path) -> None:
    got = CliRunner().invoke(app, ["render", str(tmp_path / "s.blend"), "--device", "gpu"])
    assert got.exit_code == 2
    assert "shows no GPU" in got.output and "--device cpu or any" in got.output


def test_render_device_must_be_known(tmp_path: Path) -> None:
    got = CliRunner().invoke(app, ["render", str(tmp_path / "s.blend"), "--device", "tpu"])
    assert got.exit_code == 2 and "device" in got.output


def test_gpu_devices_present_reads_the_driver_files(tmp_path: Path) -> None:
    (tmp_path / "nvidia0").touch()
    assert gpu_devices_present((str(tmp_path / "nvidia0"),))
    assert not gpu_devices_present((str(tmp_path / "kfd"),))
