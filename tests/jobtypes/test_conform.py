"""The conform job type on this machine, end to end through `wanhe run --kind conform
--options FILE` (the one run layer, real ffmpeg from Debian): tiny generated frames and clips
become the deliverable movie the options ask for, checked with ffprobe; running it again
resumes the finished job; bad options are one line and exit 2; and the job type's own two
modules are the only place in src/ that names the kind (a new kind is one module)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from wanhe.cli import app

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]
OWN_MODULES = {REPO / "src/wanhe/jobtypes/conform.py",
               REPO / "src/wanhe/engine/executors/conform.py"}


def _frames(folder: Path, first: int, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(first, first + count):
        pixels = np.zeros((48, 64, 3), np.uint8)
        pixels[:, :, 0] = (n * 17) % 256
        Image.fromarray(pixels).save(folder / f"frame_{n:04d}.png")


def _probe(movie: Path) -> dict[str, Any]:
    """ffprobe's streams of `movie`, frames counted by decoding."""
    run = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_entries",
         "stream=codec_type,codec_name,profile,width,height,r_frame_rate,nb_read_frames,"
         "duration", "-of", "json", str(movie)],
        capture_output=True, text=True, check=True, timeout=60)
    streams: list[dict[str, Any]] = json.loads(run.stdout)["streams"]
    return {s["codec_type"]: s for s in streams}


def _run(home: Path, options: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["run", "--kind", "conform", "--options", str(options),
                                    "-q", *args], env={"WANHE_HOME": str(home)})


def test_frames_become_a_prores_hq_movie_of_the_range_and_a_rerun_resumes(
        tmp_path: Path) -> None:
    _frames(tmp_path / "render", 1001, 12)
    options = tmp_path / "conform.yaml"
    options.write_text("frames: render/frame_####.png\ncodec: prores_hq\nfps: 12\n"
                       "frame_range: 1002-1011\nburn_in: true\nname: shot010\n")
    result = _run(tmp_path / "home", options)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    movie = tmp_path / "output" / "shot010.mov"
    assert answer["state"] == "done" and answer["deliverables"] == [str(movie)]
    video = _probe(movie)["video"]
    assert (video["codec_name"], video["profile"]) == ("prores", "HQ")
    assert video["r_frame_rate"] == "12/1"
    assert int(video["nb_read_frames"]) == 10  # 1002-1011, not the frames around it
    assert (video["width"], video["height"]) == (64, 48)
    assert not list((tmp_path / "output" / ".work").glob("*partial*"))

    again = _run(tmp_path / "home", options)  # the same job, found and left done
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["job"] == answer["job"]


def test_clips_join_into_a_scaled_h264_movie_with_sound(tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    for name, colour in (("a.mp4", "red"), ("b.mp4", "blue")):
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                        f"color=c={colour}:s=64x48:d=0.5:r=24", "-pix_fmt", "yuv420p",
                        str(clips / name)], check=True, timeout=60)
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=f=440:d=3",
                    str(tmp_path / "tone.wav")], check=True, timeout=60)
    options = tmp_path / "reel.json"
    options.write_text(json.dumps({"clips": ["clips/a.mp4", "clips/b.mp4"], "codec": "h264",
                                   "fps": 24, "scale": 2, "audio": "tone.wav",
                                   "name": "reel"}))
    result = _run(tmp_path / "home", options, "-o", str(tmp_path / "deliver"))
    assert result.exit_code == 0, result.output
    streams = _probe(tmp_path / "deliver" / "reel.mp4")
    video, audio = streams["video"], streams["audio"]
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 128, 96)
    assert video["r_frame_rate"] == "24/1" and int(video["nb_read_frames"]) == 24
    assert audio["codec_name"] == "aac"
    assert float(audio["duration"]) == pytest.approx(1.0, abs=0.1)  # cut to the picture


@pytest.mark.parametrize(("text", "expected"), [
    ("frames: render/frame_####.png\ncodec: dnxhd\n", "options.codec"),
    ("frames: render/frame_####.png\nclips: [a.mov]\n", "either frames"),
    ("frames: render/frame.png\n", "has no frame number"),
    ("frames: render/frame_####.png\nframe_range: 990-1002\n", "990-1000"),
    ("frames: render/frame_####.png\nfps: 0\n", "options.fps"),
    ("frames: [1, 2\n", "not valid YAML"),
])
def test_bad_options_are_one_line_and_exit_2(tmp_path: Path, text: str, expected: str) -> None:
    _frames(tmp_path / "render", 1001, 3)
    options = tmp_path / "bad.yaml"
    options.write_text(text)
    result = _run(tmp_path / "home", options)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert expected in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not (tmp_path / "output" / "conform.mp4").exists()


def test_a_gap_in_the_sequence_is_named(tmp_path: Path) -> None:
    _frames(tmp_path / "render", 1, 5)
    (tmp_path / "render" / "frame_0003.png").unlink()
    options = tmp_path / "conform.yaml"
    options.write_text("frames: render/frame_####.png\n")
    result = _run(tmp_path / "home", options)
    assert result.exit_code == 2
    assert "frame(s) 3 are missing" in " ".join(result.output.split())


def test_the_conform_kind_is_named_only_in_its_own_modules() -> None:
    """Adding the kind touched no engine, API, CLI or dashboard file: nothing else in src/
    mentions it."""
    named = [str(p.relative_to(REPO)) for p in (REPO / "src").rglob("*")
             if p.is_file() and p.suffix in (".py", ".js", ".html", ".css")
             and p not in OWN_MODULES and "conform" in p.read_text(encoding="utf-8").lower()]
    assert named == []
