"""worker_script.py driven directly over its pipes, as any Blender would run it."""

from __future__ import annotations

import json
import subprocess
import sys
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
