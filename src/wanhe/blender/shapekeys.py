"""Shape keys for lip sync, in a short-lived Blender (the bpy module in a subprocess): what a
scene holds (objects, shape keys, cameras), writing mouth keyframes into a copy of a scene,
reading a shape key's value back frame by frame."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("story_script.py")


class ShapeKeyError(RuntimeError):
    pass


def _run(op: str, args: dict[str, Any], timeout_s: float = 300.0) -> tuple[dict[str, Any], float]:
    """Run `op`; its answer and the CPU seconds the Blender process used."""
    import resource

    with tempfile.TemporaryDirectory(prefix="wanhe-bpy-") as tmp:
        src, dst = Path(tmp) / "args.json", Path(tmp) / "out.json"
        src.write_text(json.dumps(args))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run([sys.executable, "-P", str(SCRIPT), op, str(src), str(dst)],
                              capture_output=True, text=True, timeout=timeout_s, check=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if done.returncode != 0 or not dst.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise ShapeKeyError(f"Blender could not {op} {args.get('scene')}: "
                                + " | ".join(tail))
        result: dict[str, Any] = json.loads(dst.read_text())
        return result, cpu


_inspected: dict[tuple[str, int, int], dict[str, Any]] = {}


def inspect_story_scene(scene: Path) -> dict[str, Any]:
    """What the scene holds; remembered per file (path, size, modification time)."""
    stat = scene.stat()
    key = (str(scene), stat.st_size, stat.st_mtime_ns)
    if key not in _inspected:
        _inspected[key] = _run("inspect", {"scene": str(scene)}, 120.0)[0]
    return dict(_inspected[key])


def write_mouth_keys(scene: Path, output: Path, frame_start: int,
                     keys: dict[str, dict[str, list[float]]]) -> tuple[int, float]:
    """Keyframe `keys[object][shape key]` (one value per frame from `frame_start`) in a copy
    of `scene` saved at `output`; (keyframes written, Blender's CPU seconds)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.stem}.tmp.blend")
    try:
        result, cpu = _run("mouth", {"scene": str(scene), "output": str(tmp),
                                     "frame_start": frame_start, "keys": keys})
        tmp.replace(output)
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + "1").unlink(missing_ok=True)
    return int(result["keyframes"]), cpu


def read_shape_key(scene: Path, obj: str, key: str, frames: list[int]) -> list[float]:
    result = _run("curve", {"scene": str(scene), "object": obj, "key": key,
                            "frames": frames})[0]
    return [float(v) for v in result["values"]]
