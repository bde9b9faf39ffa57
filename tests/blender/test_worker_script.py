"""worker_script.py driven directly over its pipes, as any Blender would run it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from wanhe.blender.protocol import MARKER, RenderReply, RenderRequest
from wanhe.blender.runner import WORKER_SCRIPT, BlenderProcess

from ._util import Scenes


def _converse(lines: list[str], timeout: float = 120) -> tuple[list[dict[str, object]], str]:
    proc = subprocess.run(
        [sys.executable, "-u", "-P", str(WORKER_SCRIPT)],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr
    replies = [
        json.loads(line[line.index(MARKER) + len(MARKER) :])
        for line in proc.stdout.splitlines()
        if MARKER in line
    ]
    return replies, proc.stdout + proc.stderr


def test_ready_bad_lines_and_quit(scenes: Scenes, tmp_path: Path) -> None:
    ok = RenderRequest(scene=str(scenes.tiny), frame=1, output=str(tmp_path / "o.exr"), samples=1)
    replies, _ = _converse(
        [
            "this is not json",
            "[1, 2]",
            json.dumps({"op": "dance", "id": 1}),
            json.dumps({"op": "render", "id": 2}),  # fields missing
            json.dumps({"op": "render", "id": 3, **ok.model_dump(mode="json"), "frame": "x"}),
            json.dumps({"id": 4, **ok.model_dump(mode="json")}),
            json.dumps({"op": "quit", "id": 5}),
            json.dumps({"op": "render", "id": 6}),  # after quit: never answered
        ]
    )
    assert replies[0]["op"] == "ready" and replies[0]["blender_version"] == "5.0.1"
    body = replies[1:]
    assert [r["ok"] for r in body] == [False, False, False, False, False, True, True]
    assert "bad request" in str(body[0]["error"])
    assert "unknown op 'dance'" in str(body[2]["error"])
    assert "missing" in str(body[3]["error"]) and "scene" in str(body[3]["error"])
    assert "frame" in str(body[4]["error"])
    assert body[5]["id"] == 4
    # A render reply carries exactly the fields RenderReply knows (plus op and id).
    fields = {k: v for k, v in body[5].items() if k not in ("op", "id")}
    assert RenderReply(**fields).ok  # type: ignore[arg-type]
    assert body[6] == {"op": "quit", "id": 5, "ok": True}


def test_embedded_script_never_runs(scenes: Scenes, tmp_path: Path) -> None:
    assert not scenes.marker.exists()
    with BlenderProcess() as bp:
        info = bp.inspect(scenes.embedded_script)
        assert info.camera is not None
        reply = bp.render(
            RenderRequest(
                scene=str(scenes.embedded_script),
                frame=1,
                output=str(tmp_path / "o.exr"),
                samples=1,
            ),
            timeout_s=120,
        )
        assert reply.ok, reply.error
    assert not scenes.marker.exists()


def test_embedded_script_fixture_is_armed(scenes: Scenes, tmp_path: Path) -> None:
    # Control: with auto-exec allowed the same file does run its script, so the test above
    # would notice if the worker ever allowed it.
    snippet = (
        "import sys, bpy; bpy.context.preferences.filepaths.use_scripts_auto_execute = True; "
        "bpy.ops.wm.open_mainfile(filepath=sys.argv[-1], use_scripts=True)"
    )
    subprocess.run(
        [sys.executable, "-c", snippet, str(scenes.armed_script)], timeout=120, check=True
    )
    assert scenes.armed_marker.exists()


PARENT = """
import json, subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-u", "-P", sys.argv[1]], stdin=subprocess.PIPE,
                          stdout=subprocess.DEVNULL, start_new_session=True)
worker.stdin.write((sys.argv[2] + "\\n").encode())
worker.stdin.flush()
print(worker.pid, flush=True)
time.sleep(600)
"""


def test_a_worker_whose_parent_dies_stops_mid_render(scenes: Scenes, tmp_path: Path) -> None:
    """kill -9 of a worker (or of `wanhe render`) must not leave its Blender rendering on."""
    import psutil

    endless = RenderRequest(scene=str(scenes.tiny), frame=1, output=str(tmp_path / "o.exr"),
                            samples=1_000_000)
    request = json.dumps({"op": "render", "id": 1, **endless.model_dump(mode="json")})
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(WORKER_SCRIPT), request],
                              stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    worker = psutil.Process(int(parent.stdout.readline()))
    try:
        deadline = time.monotonic() + 60
        while worker.cpu_times().user < 3.0:  # bpy imported, the scene loaded, rendering
            assert time.monotonic() < deadline, "the worker never started rendering"
            time.sleep(0.2)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the orphaned worker kept rendering"
            time.sleep(0.1)
    finally:
        parent.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
