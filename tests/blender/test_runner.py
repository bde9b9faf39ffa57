"""BlenderProcess against real Blender subprocesses (the bpy module)."""

from __future__ import annotations

import os
import signal
import stat
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from wanhe.blender.errors import BlenderCrashed, BlenderError, BlenderTaskError, BlenderTimeout
from wanhe.blender.protocol import (
    RenderRequest,
    SceneInfo,
    border_from_pixels,
    border_to_pixels,
)
from wanhe.blender.runner import WORKER_SCRIPT, BlenderProcess, parse_progress

from ._util import TINY_SAMPLES, TINY_SIZE, Scenes, read_exr

COMBINED = "ViewLayer.Combined"


def _req(scene: Path, out: Path, **kw: object) -> RenderRequest:
    return RenderRequest(scene=str(scene), frame=1, output=str(out), **kw)  # type: ignore[arg-type]


def _long_req(scene: Path, out: Path) -> RenderRequest:
    # Far longer than any limit used below.
    return _req(scene, out, samples=1_000_000, resolution=(320, 240))


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_render_writes_multilayer_exr_of_scene_size(
    warm_blender: BlenderProcess, scenes: Scenes, tmp_path: Path
) -> None:
    out = tmp_path / "frame.exr"
    reply = warm_blender.render(_req(scenes.tiny, out), timeout_s=120)
    assert reply.ok, reply.error
    assert reply.output == str(out)
    assert (reply.width, reply.height) == TINY_SIZE
    assert reply.engine == "CYCLES"
    assert reply.samples == TINY_SAMPLES
    assert reply.cpu_s > 0
    assert reply.peak_rss_bytes > 50 * 2**20  # bpy alone holds far more than 50 MiB
    assert reply.wall_s > 0
    assert list(tmp_path.iterdir()) == [out]  # exactly that file, nothing else
    channels = read_exr(out)
    img = channels[COMBINED]
    assert img.shape == (TINY_SIZE[1], TINY_SIZE[0], 4)
    assert img.dtype == np.float32  # color_depth 32
    assert np.isfinite(img).all() and img[..., :3].max() > 0
    import OpenEXR

    with OpenEXR.File(str(out)) as f:
        assert f.parts[0].header["compression"] == OpenEXR.ZIP_COMPRESSION


def test_output_path_is_written_literally(
    warm_blender: BlenderProcess, scenes: Scenes, tmp_path: Path
) -> None:
    # Blender 5.0 expands '{...}' templates and '#' in render output paths; ours must not be.
    out = tmp_path / "odd {blend_name} ##.exr.tmp"
    reply = warm_blender.render(_req(scenes.tiny, out, samples=1), timeout_s=120)
    assert reply.ok, reply.error
    assert out.is_file()


def test_resolution_percentage_truncates(
    warm_blender: BlenderProcess, scenes: Scenes, tmp_path: Path
) -> None:
    out = tmp_path / "half.exr"
    reply = warm_blender.render(
        _req(scenes.tiny, out, samples=1, resolution=(63, 47), resolution_percentage=50),
        timeout_s=120,
    )
    assert reply.ok, reply.error
    info = SceneInfo(
        frame_start=1,
        frame_end=1,
        frame_step=1,
        fps=24.0,
        resolution_x=63,
        resolution_y=47,
        resolution_percentage=50,
        engine="CYCLES",
        camera=None,
        cameras=[],
        samples=1,
        adaptive_sampling=False,
        output_path="",
        blender_version="",
    )
    assert (reply.width, reply.height) == (info.width, info.height) == (31, 23)


def test_border_crop_equals_region_of_full_frame_bit_for_bit(
    warm_blender: BlenderProcess, scenes: Scenes, tmp_path: Path
) -> None:
    w, h = TINY_SIZE
    full_out = tmp_path / "full.exr"
    common = {"seed": 7, "adaptive_sampling": False, "threads": 2, "denoise_passes": True}
    assert warm_blender.render(_req(scenes.tiny, full_out, **common), timeout_s=120).ok
    full = read_exr(full_out)
    # Uneven boxes that touch every edge; y counted from the bottom as Blender does.
    boxes = [(0, 23, 0, 17), (23, 67, 0, 17), (0, 40, 17, 45), (40, 67, 17, 45), (13, 54, 5, 39)]
    for x0, x1, y0, y1 in boxes:
        border = border_from_pixels(x0, x1, y0, y1, w, h)
        assert border_to_pixels(border, w, h) == (x0, x1, y0, y1)
        out = tmp_path / f"tile_{x0}_{y0}.exr"
        reply = warm_blender.render(
            _req(scenes.tiny, out, border=border, expected_size=(x1 - x0, y1 - y0), **common),
            timeout_s=120,
        )
        assert reply.ok, reply.error
        tile = read_exr(out)
        assert tile.keys() == full.keys()
        for name, pixels in full.items():
            region = pixels[h - y1 : h - y0, x0:x1]  # EXR rows run top-down
            assert np.array_equal(tile[name], region), (name, (x0, x1, y0, y1))
    # A task without border on the same warm process renders the whole frame again.
    again = tmp_path / "again.exr"
    reply = warm_blender.render(_req(scenes.tiny, again, **common), timeout_s=120)
    assert (reply.width, reply.height) == TINY_SIZE
    assert np.array_equal(read_exr(again)[COMBINED], full[COMBINED])


def test_exact_fractions_can_lose_a_pixel_and_nudged_ones_do_not() -> None:
    # Blender multiplies in float32 and truncates: 63/1920 lands on pixel 62.
    assert border_to_pixels((63 / 1920, 1.0, 0.0, 1.0), 1920, 2)[0] == 62
    for size in (1, 2, 3, 67, 1920, 4096, 7680):
        for px in range(size + 1):
            frac = border_from_pixels(px, size, 0, 1, size, 1)[0] if px < size else 1.0
            assert border_to_pixels((frac, 1.0, 0.0, 1.0), size, 1)[0] == px


def test_expected_size_mismatch_fails_and_removes_file(
    warm_blender: BlenderProcess, scenes: Scenes, tmp_path: Path
) -> None:
    out = tmp_path / "wrong.exr"
    reply = warm_blender.render(_req(scenes.tiny, out, samples=1, expected_size=(5, 5)))
    assert not reply.ok
    assert "67x45" in (reply.error or "") and "5x5" in (reply.error or "")
    assert not out.exists()


def test_sample_subsets_are_disjoint_and_reproducible(
    warm_blender: BlenderProcess, scenes: Scenes, tmp_path: Path
) -> None:
    imgs = []
    for i, offset in enumerate((0, 4, 0)):
        out = tmp_path / f"chunk{i}.exr"
        reply = warm_blender.render(
            _req(scenes.tiny, out, sample_offset=offset, sample_subset_length=4, seed=1),
            timeout_s=120,
        )
        assert reply.ok, reply.error
        imgs.append(read_exr(out)[COMBINED])
    assert not np.array_equal(imgs[0], imgs[1])
    assert np.array_equal(imgs[0], imgs[2])  # a re-rendered chunk is bit-identical


def test_denoise_passes_only_when_asked(
    warm_blender: BlenderProcess, scenes: Scenes, tmp_path: Path
) -> None:
    with_p, without = tmp_path / "with.exr", tmp_path / "without.exr"
    assert warm_blender.render(_req(scenes.tiny, with_p, samples=1, denoise_passes=True)).ok
    assert warm_blender.render(_req(scenes.tiny, without, samples=1)).ok
    names = set(read_exr(with_p))
    assert any("Denoising Albedo" in n for n in names)
    assert any("Denoising Normal" in n for n in names)
    assert not any("Denoising" in n for n in read_exr(without))


def test_bad_requests_fail_without_killing_the_worker(
    warm_blender: BlenderProcess, scenes: Scenes, tmp_path: Path
) -> None:
    pid = warm_blender.render(_req(scenes.tiny, tmp_path / "a.exr", samples=1)).ok and (
        warm_blender.pid
    )
    cam = warm_blender.render(_req(scenes.tiny, tmp_path / "b.exr", camera="NoSuchCam"))
    assert not cam.ok and "NoSuchCam" in (cam.error or "")
    nocam = warm_blender.render(_req(scenes.no_camera, tmp_path / "c.exr"))
    assert not nocam.ok and "camera" in (nocam.error or "")
    eevee = warm_blender.render(_req(scenes.eevee, tmp_path / "d.exr", border=(0.0, 0.5, 0.0, 0.5)))
    assert not eevee.ok and "Cycles" in (eevee.error or "")
    missing = warm_blender.render(_req(tmp_path / "nope.blend", tmp_path / "e.exr"))
    assert not missing.ok and "not found" in (missing.error or "")
    assert warm_blender.pid == pid  # still the same warm process
    assert warm_blender.render(_req(scenes.tiny, tmp_path / "f.exr", samples=1)).ok
    with pytest.raises(BlenderTaskError, match="not found"):
        warm_blender.inspect(tmp_path / "nope.blend")


def test_inspect_and_progress(warm_blender: BlenderProcess, scenes: Scenes, tmp_path: Path) -> None:
    info = warm_blender.inspect(scenes.tiny)
    assert (info.width, info.height) == TINY_SIZE
    assert info.engine == "CYCLES" and info.camera is not None
    assert info.blender_version.startswith("5.0")
    progress: list[float] = []
    logs: list[str] = []
    reply = warm_blender.render(
        _req(scenes.tiny, tmp_path / "p.exr"), on_progress=progress.append, on_log=logs.append
    )
    assert reply.ok
    assert progress and progress[-1] == 1.0 and all(0 <= p <= 1 for p in progress)
    assert any("Sample" in line for line in logs)
    assert not any("@@WANHE@@" in line for line in logs)


def test_parse_progress() -> None:
    assert parse_progress("Fra:1 | Remaining: 00:02.36 | Mem: 7M | Sample 16/64") == 0.25
    assert parse_progress("Fra:1 Mem:12M | Scene, ViewLayer | Sample 64/64") == 1.0
    assert parse_progress("Updating Scene BVH") is None


def test_warm_process_reuses_loaded_scene(scenes: Scenes, tmp_path: Path) -> None:
    times = []
    with BlenderProcess() as bp:
        for i in range(3):
            t0 = time.monotonic()
            reply = bp.render(_req(scenes.tiny, tmp_path / f"{i}.exr"), timeout_s=120)
            times.append(time.monotonic() - t0)
            assert reply.ok, reply.error
        pid = bp.pid
    print(f"cold task {times[0]:.3f} s, warm tasks {times[1]:.3f} s, {times[2]:.3f} s")
    assert pid is not None
    assert max(times[1:]) < times[0]  # loose: cold pays for process start, import and load


def test_scene_changed_on_disk_is_reloaded(
    warm_blender: BlenderProcess, scenes: Scenes, tmp_path: Path
) -> None:
    import shutil
    import subprocess

    scene = tmp_path / "changing.blend"
    shutil.copy(scenes.tiny, scene)
    assert warm_blender.render(_req(scene, tmp_path / "a.exr", samples=1)).width == TINY_SIZE[0]
    snippet = (
        "import sys, bpy; p = sys.argv[-1]; "
        "bpy.ops.wm.open_mainfile(filepath=p, load_ui=False, use_scripts=False); "
        "bpy.context.scene.render.resolution_x = 33; bpy.ops.wm.save_mainfile(filepath=p)"
    )
    subprocess.run([sys.executable, "-c", snippet, str(scene)], check=True, capture_output=True)
    assert warm_blender.render(_req(scene, tmp_path / "b.exr", samples=1)).width == 33


def test_wall_clock_timeout_kills_tree_and_next_render_works(
    scenes: Scenes, tmp_path: Path
) -> None:
    with BlenderProcess() as bp:
        bp.start()
        pid = bp.pid
        assert pid is not None
        t0 = time.monotonic()
        with pytest.raises(BlenderTimeout, match=r"timeout_s=1\.5") as exc:
            bp.render(_long_req(scenes.tiny, tmp_path / "long.exr"), timeout_s=1.5)
        assert time.monotonic() - t0 < 10
        assert _wait_gone(pid)
        assert exc.value.cpu_s is not None and exc.value.cpu_s > 0
        assert bp.last_cpu_s_before_kill == exc.value.cpu_s
        assert bp.pid is None
        reply = bp.render(_req(scenes.tiny, tmp_path / "next.exr", samples=1), timeout_s=120)
        assert reply.ok and bp.pid not in (None, pid)


def test_log_silence_kills(scenes: Scenes, tmp_path: Path) -> None:
    with BlenderProcess() as bp:
        bp.start()
        pid = bp.pid
        assert pid is not None
        # A stopped process prints nothing: the silence watchdog must fire, not the wall clock.
        threading.Timer(1.0, os.kill, (pid, signal.SIGSTOP)).start()
        with pytest.raises(BlenderTimeout, match=r"silence_s=2") as exc:
            bp.render(_long_req(scenes.tiny, tmp_path / "x.exr"), timeout_s=60, silence_s=2)
        assert exc.value.wall_s < 30
        assert _wait_gone(pid)


def test_killed_process_raises_crashed_then_recovers(scenes: Scenes, tmp_path: Path) -> None:
    with BlenderProcess() as bp:
        bp.start()
        pid = bp.pid
        assert pid is not None
        threading.Timer(1.5, os.kill, (pid, signal.SIGKILL)).start()
        with pytest.raises(BlenderCrashed, match="SIGKILL") as exc:
            bp.render(_long_req(scenes.tiny, tmp_path / "x.exr"), timeout_s=60)
        assert exc.value.returncode == -signal.SIGKILL
        assert exc.value.cpu_s is not None and exc.value.cpu_s > 0
        assert exc.value.log_tail  # Blender's last words come with the error
        assert bp.render(_req(scenes.tiny, tmp_path / "y.exr", samples=1)).ok


def _fake_blender(tmp_path: Path, body: str) -> Path:
    exe = tmp_path / "blender"
    exe.write_text(f"#!/bin/sh\n{body}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def test_blender_binary_command_line(scenes: Scenes, tmp_path: Path) -> None:
    # Stands in for a user's `blender`: records its arguments, then runs the script it was
    # given with the bpy module, as `blender --python SCRIPT` would.
    args_file = tmp_path / "args.txt"
    exe = _fake_blender(
        tmp_path,
        f'echo "$@" > {args_file}\nfor a; do last="$a"; done\nexec {sys.executable} -u -P "$last"',
    )
    with BlenderProcess(str(exe)) as bp:
        reply = bp.render(_req(scenes.tiny, tmp_path / "o.exr", samples=1), timeout_s=120)
        assert reply.ok, reply.error
    args = args_file.read_text().split()
    assert args[:3] == ["-b", "--factory-startup", "--disable-autoexec"]
    assert args[-2:] == ["--python", str(WORKER_SCRIPT)]


def test_blender_that_dies_at_start(tmp_path: Path) -> None:
    exe = _fake_blender(tmp_path, "echo 'cannot open display' >&2; exit 3")
    bp = BlenderProcess(str(exe))
    with pytest.raises(BlenderCrashed, match="status 3") as exc:
        bp.start()
    assert "cannot open display" in "\n".join(exc.value.log_tail)
    bp.close()


def test_a_retired_process_is_killed_and_never_started_again(tmp_path: Path) -> None:
    """A caller past its time limit (the estimate's probe) retires its Blender: the one
    starting is killed, and whatever was about to start one fails at once instead of
    running to the end."""
    proc = BlenderProcess()
    proc.spawn()
    pid = proc.pid
    assert pid is not None
    proc.retire()
    assert not proc.alive and _wait_gone(pid)
    with pytest.raises(BlenderError, match="stopped for good"):
        proc.spawn()
    with pytest.raises(BlenderError):
        proc.start()
    assert proc.pid is None
