"""`wanhe render` as a user runs it: bad input gets a clear error and leaves nothing behind;
kill -9 mid-job and the same command resumes, rendering only what is missing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import build_scene, done_render_tasks

WANHE = [sys.executable, "-m", "wanhe.cli"]


def wanhe(*args: str, home: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WANHE_HOME": str(home)}
    try:
        return subprocess.run([*WANHE, *args], capture_output=True, text=True, timeout=timeout,
                              env=env)
    except subprocess.TimeoutExpired:
        log = home / "logs" / "wanhe.log"
        tail = log.read_text()[-3000:] if log.exists() else "(no log)"
        pytest.fail(f"wanhe {' '.join(args)} hung for {timeout} s; its log ends:\n{tail}")


@pytest.fixture(scope="module")
def tiny(scene_dir: Path) -> Path:
    return build_scene(scene_dir / "tiny.blend", "tiny")


def assert_clear_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    text = result.stderr + result.stdout
    assert "Traceback" not in text, text
    for needle in needles:
        assert needle in text, text


# ---------------------------------------------------------------- errors before Blender or Ray


def test_missing_file(tmp_path: Path) -> None:
    result = wanhe("render", str(tmp_path / "nope.blend"), home=tmp_path)
    assert_clear_error(result, "not found", "nope.blend")


def test_not_a_blend(tmp_path: Path) -> None:
    fake = tmp_path / "notes.blend"
    fake.write_text("just some text\n")
    assert_clear_error(wanhe("render", str(fake), home=tmp_path), "not a .blend file")


def test_truncated_blend(tiny: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.blend"
    data = tiny.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    assert_clear_error(wanhe("render", str(cut), home=tmp_path), "truncated or corrupt")


@pytest.mark.parametrize(("flags", "needle"), [
    (["--frames", "5-1"], "backwards"),
    (["--frames", "a-b"], "malformed frame range"),
    (["--tiles", "0x0"], "no tiles"),
    (["--tiles", "axb"], "malformed tile grid"),
    (["--sample-chunks", "0"], "sample_chunks"),
    (["--workers", "0"], "--workers"),
])
def test_malformed_flags(tiny: Path, tmp_path: Path, flags: list[str], needle: str) -> None:
    result = wanhe("render", str(tiny), *flags, home=tmp_path)
    assert_clear_error(result, needle)


def test_unwritable_output_folder(tiny: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "file").write_text("x")  # a file where a folder is expected can't be written into
    result = wanhe("render", str(tiny), "--output", str(locked / "file" / "f_####"),
                   home=tmp_path)
    assert_clear_error(result, "cannot write to the output folder")


# ---------------------------------------------------------------- errors found by inspection


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "flags", "needle"), [
    ("tiny", ["--frames", "1-50"], "outside the scene's range 1-3"),
    ("tiny", ["--tiles", "1000x1000"], "does not fit a 96x64 frame"),
    ("no-camera", [], "no active camera"),
    ("tiny", ["--camera", "Nope"], "is not in the scene"),
])
def test_scene_mismatch(
    scene_dir: Path, tmp_path: Path, kind: str, flags: list[str], needle: str
) -> None:
    scene = build_scene(scene_dir / f"{kind}.blend", kind)
    out = tmp_path / "out"
    result = wanhe("render", str(scene), "--output", str(out / "f_####"), *flags, home=tmp_path)
    assert_clear_error(result, needle)
    assert not any(out.glob("*.exr")), "no output may be written for a refused job"


# ---------------------------------------------------------------- the happy path and resume


@pytest.mark.slow
def test_render_writes_master_preview_and_report(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = tmp_path / "report.json"
    result = wanhe("render", str(tiny), "--frames", "1-2", "--tiles", "2x1", "--quiet",
                   "--output", str(out / "f_####"), "--report-json", str(report), home=tmp_path)
    assert result.returncode == 0, result.stderr
    for frame in (1, 2):
        assert (out / f"f_{frame:04d}.exr").stat().st_size > 0
        assert (out / f"f_{frame:04d}.png").stat().st_size > 0
    assert not list(out.glob(".*tmp*")), "temporary files left behind"
    body = json.loads(report.read_text())
    renders = [a for a in body["attempts"] if a["kind"] == "render"]
    assert len(renders) == 4 and all(a["outcome"] == "ok" for a in renders)
    cores = os.cpu_count()  # default: one warm worker using every core
    assert all(a["cpu_s"] > 0 and a["peak_rss_bytes"] > 0 and a["cores"] == cores for a in renders)
    assert body["totals"]["core_hours"] > 0
    # one worker takes every core: the command renders in its own process and starts no Ray
    assert all(str(a["node"]).endswith(":local") for a in body["attempts"])
    # the same command again: nothing to do, nothing rendered twice
    again = wanhe("render", str(tiny), "--frames", "1-2", "--tiles", "2x1", "--quiet",
                  "--output", str(out / "f_####"), "--report-json", str(report), home=tmp_path)
    assert again.returncode == 0, again.stderr
    body = json.loads(report.read_text())
    assert len([a for a in body["attempts"] if a["kind"] == "render"]) == 4


@pytest.mark.slow
def test_a_second_worker_runs_on_the_embedded_ray(scene_dir: Path, tmp_path: Path) -> None:
    """`--workers 2`: the command's own worker renders from the first second while the
    embedded Ray starts; Ray then places the second render worker and runs the image work.
    Frames of ≈ 3 s each (512 samples on one thread) give Ray time to join the job."""
    scene = build_scene(scene_dir / "six.blend", "tiny", "--frames", "1-6", "--samples", "64")
    out = tmp_path / "out"
    report = tmp_path / "report.json"
    result = wanhe("render", str(scene), "--samples", "512", "--workers", "2",
                   "--threads-per-task", "1", "--no-denoise", "--quiet",
                   "--output", str(out / "f_####"), "--report-json", str(report), home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "starting Ray (1 CPU) beside the local worker" in (tmp_path / "logs" / "wanhe.log"
                                                              ).read_text()
    for frame in range(1, 7):
        assert (out / f"f_{frame:04d}.exr").stat().st_size > 0
    body = json.loads(report.read_text())
    renders = [a for a in body["attempts"] if a["kind"] == "render"]
    assert sorted(a["task"] for a in renders) == sorted({a["task"] for a in renders})
    assert len(renders) == 6 and all(a["outcome"] == "ok" and a["cores"] == 1 for a in renders)
    nodes = {str(a["node"]) for a in body["attempts"]}
    assert any(n.endswith(":local") for n in nodes), "the command's own worker rendered"
    assert any(not n.endswith(":local") for n in nodes), "Ray's workers took part"


@pytest.mark.slow
def test_kill_9_then_resume_renders_only_what_is_missing(scene_dir: Path, tmp_path: Path) -> None:
    scene = build_scene(scene_dir / "six.blend", "tiny", "--frames", "1-6", "--samples", "64")
    db = tmp_path / "home" / "wanhe.db"
    out = tmp_path / "out"
    args = ["render", str(scene), "--tiles", "2x1", "--no-denoise", "--quiet",
            "--output", str(out / "f_####")]
    env = {**os.environ, "WANHE_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([*WANHE, *args], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        while len(done_render_tasks(db)) < 3:
            assert proc.poll() is None, "render finished before it could be interrupted"
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the render, its Ray and its Blender workers
        proc.wait(timeout=30)
    before = done_render_tasks(db)
    assert 3 <= len(before) < 12
    result = wanhe("render", *args[1:], "--report-json", str(tmp_path / "r.json"),
                   home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    body = json.loads((tmp_path / "r.json").read_text())
    assert body["resumed"] is True
    ok = [a for a in body["attempts"] if a["kind"] == "render" and a["outcome"] == "ok"]
    keys = [a["task"] for a in ok]
    assert len(keys) == len(set(keys)) == 12, "every tile rendered exactly once"
    for frame in range(1, 7):
        assert (out / f"f_{frame:04d}.exr").exists()
    assert not list(out.glob(".*tmp*"))


@pytest.mark.slow
def test_scripts_embedded_in_the_blend_never_run(scene_dir: Path, tmp_path: Path) -> None:
    """A user's .blend is untrusted: its auto-run Text block must not execute in any worker."""
    marker = tmp_path / "pwned"
    scene = build_scene(tmp_path / "evil.blend", "embedded-script", "--marker", str(marker))
    result = wanhe("render", str(scene), "--frames", "1", "--tiles", "2x1", "--quiet",
                   "--output", str(tmp_path / "out" / "f_####"), home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "f_0001.exr").exists()
    assert not marker.exists(), "a script embedded in the .blend ran"


@pytest.mark.slow
def test_missing_texture_is_a_warning_listing_the_path(scene_dir: Path, tmp_path: Path) -> None:
    scene = build_scene(scene_dir / "missing.blend", "missing-texture")
    result = wanhe("render", str(scene), "--frames", "1",
                   "--output", str(tmp_path / "out" / "f_####"), home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    assert "missing" in result.stderr and "missing_wood.png" in result.stderr


def test_report_folder_is_created(tiny: Path, tmp_path: Path) -> None:
    """`--report-json out/new/report.json` works when out/new does not exist yet."""
    blocked = tmp_path / "file"
    blocked.write_text("x")
    result = wanhe("render", str(tiny), "--report-json", str(blocked / "r.json"),
                   "--frames", "a-b", home=tmp_path)
    assert_clear_error(result, "cannot write the report")
    result = wanhe("render", str(tiny), "--report-json", str(tmp_path / "new" / "r.json"),
                   "--frames", "a-b", home=tmp_path)
    assert_clear_error(result, "malformed frame range")  # got past the report check
    assert (tmp_path / "new").is_dir()


@pytest.mark.slow
def test_a_task_that_always_times_out_fails_the_command_with_the_reason(
    tiny: Path, tmp_path: Path
) -> None:
    """Each attempt passes `--task-timeout`; after three the task is out of attempts and the
    command ends at once, non-zero, saying which frame, how, how often, where and why —
    it used to wait forever for a blocklisted node."""
    started = time.monotonic()
    result = wanhe("render", str(tiny), "--frames", "1", "--samples", "200000",
                   "--task-timeout", "2", "--quiet", "--output", str(tmp_path / "o" / "f_####"),
                   "--report-json", str(tmp_path / "r.json"), home=tmp_path, timeout=120)
    took = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert took < 30, f"took {took:.1f} s"
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert "failed: frame 1 tile 0 timed out 3 time(s), last on " in lines[0]
    assert "timeout_s=2" in lines[0] and "Traceback" not in result.stderr
    assert not list((tmp_path / "o").glob("*.exr"))  # nothing half-written
