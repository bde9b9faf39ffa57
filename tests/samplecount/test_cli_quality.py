"""`wanhe render` with --quality, --qc, --qc-threshold, --sample-chunks, --video."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import build_scene

WANHE = [sys.executable, "-m", "wanhe.cli"]


def wanhe(*args: str, home: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WANHE_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([*WANHE, *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


@pytest.fixture(scope="module")
def tiny(scene_dir: Path) -> Path:
    return build_scene(scene_dir / "tiny.blend", "tiny")


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--quality", "0"], "out of range"),
        (["--quality", "ultra"], "neither a PSNR"),
        (["--qc-threshold", "firefly_window=4"], "firefly_window"),
        (["--qc-threshold", "sharpness=3"], "unknown QC threshold"),
        (["--sample-chunks", "0"], "--sample-chunks must be at least 1"),
    ],
)
def test_bad_input_is_refused_before_anything_starts(
    tiny: Path, tmp_path: Path, flags: list[str], needle: str
) -> None:
    result = wanhe("render", str(tiny), "--output", str(tmp_path / "o" / "f_####"), *flags,
                   home=tmp_path / "home", timeout=60)
    text = result.stdout + result.stderr
    assert result.returncode == 2, text
    assert needle in text and "Traceback" not in text, text
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


@pytest.mark.slow
def test_more_chunks_than_samples_is_a_clear_error(tiny: Path, tmp_path: Path) -> None:
    result = wanhe("render", str(tiny), "--samples", "4", "--sample-chunks", "5", "--output",
                   str(tmp_path / "o" / "f_####"), home=tmp_path / "home")
    text = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in text, text
    assert "chunk" in text and "4" in text, text


@pytest.mark.slow
def test_quality_qc_video_end_to_end(tiny: Path, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    out = tmp_path / "o"
    result = wanhe("render", str(tiny), "--quality", "20", "--qc", "--video", "--report-json",
                   str(report), "--output", str(out / "f_####"), home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    assert "--quality 20 dB:" in result.stderr and "samples + OIDN reach" in result.stderr
    body = json.loads(report.read_text())
    quality = body["quality"]
    assert quality["reached"] and quality["frame"] == 2 and quality["samples"] >= 1
    assert quality["points"][-1]["denoised"]["psnr_db"] >= 20
    assert [q["frame"] for q in body["qc"]] == [1, 2, 3]
    assert all(q["passed"] and not q["flagged"] for q in body["qc"]), body["qc"]
    assert body["flagged_frames"] == []
    assert Path(body["video"]).is_file() and Path(body["contact_sheet"]).is_file()
    assert body["video"].endswith(".mp4") and body["contact_sheet"].endswith("_contact.png")


@pytest.mark.slow
def test_unreachable_quality_renders_at_the_most_and_flags_frames(
    tiny: Path, tmp_path: Path
) -> None:
    report = tmp_path / "r.json"
    result = wanhe("render", str(tiny), "--frames", "1", "--quality", "99", "--qc",
                   "--report-json", str(report), "--output", str(tmp_path / "o" / "f_####"),
                   home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    assert "NOT REACHED" in result.stderr and "flagged" in result.stderr
    body = json.loads(report.read_text())
    assert not body["quality"]["reached"] and body["quality"]["samples"] == 256
    assert body["flagged_frames"] == [1]
    assert body["qc"][0]["flagged"] and "NOT REACHED" in body["qc"][0]["reasons"][0]
