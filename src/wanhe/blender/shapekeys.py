"""Shape keys for lip sync, in a short-lived Blender (the bpy module in a subprocess): what a
scene holds (objects, shape keys, cameras), writing mouth keyframes into a copy of a scene,
reading a shape key's value back frame by frame.

On the farm the Blender runs in the job's sandbox (`Boxed`: the submitting project's at
submit, the job's when keying), as the project's OS user, seeing only the job's files: its
request, answer and keyed copy pass through a scratch folder the sandbox shows, and what it
leaves there is taken only as a regular file (never a link to elsewhere)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wanhe import metering

SCRIPT = Path(__file__).with_name("story_script.py")
MAX_ANSWER = 16 * 2**20  # an answer larger than this is not one the script writes


class ShapeKeyError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Ran:
    """How a Blender program ended: exit status, its output's tail, CPU seconds (None when
    not counted)."""

    returncode: int
    output: str
    cpu_s: float | None


@dataclass(frozen=True, slots=True)
class Boxed:
    """A sandbox to run the Blender program in: `run(argv, timeout_s)` runs it there and waits;
    `scratch` is a folder the sandbox shows read-write (its user's), the same path inside and
    out."""

    run: Callable[[list[str], float], Ran]
    scratch: Path


def _unboxed(argv: list[str], timeout_s: float) -> Ran:
    # exact (wait4), and claimed for the running task: another worker of a local run reaping
    # its own children meanwhile does not change it
    done = metering.run(argv, capture_output=True, text=True, timeout=timeout_s)
    return Ran(done.returncode, done.stderr or done.stdout, done.cpu_s)


def take_file(folder: Path, name: str, limit: int | None = None) -> bytes | None:
    """The bytes of `folder/name` when it is a regular file (not a link, FIFO or device) of at
    most `limit` bytes: what a sandboxed program left is read only so."""
    try:
        fd = os.open(folder / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as src:
        found = os.fstat(src.fileno())
        if not stat.S_ISREG(found.st_mode) or (limit is not None and found.st_size > limit):
            return None
        return src.read()


def _run(op: str, args: dict[str, Any], timeout_s: float = 300.0,
         boxed: Boxed | None = None) -> tuple[dict[str, Any], float]:
    """Run `op` (in `boxed`'s sandbox, else as this process's child); its answer and the CPU
    seconds the Blender process used."""
    with contextlib.ExitStack() as stack:
        folder = boxed.scratch if boxed is not None else Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="wanhe-bpy-")))
        src, dst = folder / "args.json", folder / "out.json"
        # made here, never through a link; readable by the sandbox's user
        fd = os.open(src, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as request:
            request.write(json.dumps(args))
        argv = [sys.executable, "-P", str(SCRIPT), op, str(src), str(dst)]
        done = _unboxed(argv, timeout_s) if boxed is None else boxed.run(argv, timeout_s)
        answer = take_file(folder, dst.name, MAX_ANSWER)
        if done.returncode != 0 or answer is None:
            tail = done.output.strip().splitlines()[-3:]
            raise ShapeKeyError(f"Blender could not {op} {Path(str(args.get('scene'))).name}: "
                                + (" | ".join(tail) or f"exit {done.returncode}, no answer"))
        try:
            result: dict[str, Any] = json.loads(answer)
        except ValueError:
            raise ShapeKeyError(f"Blender could not {op} {Path(str(args.get('scene'))).name}: "
                                "its answer is not JSON") from None
        return result, done.cpu_s or 0.0


_inspected: dict[tuple[str, int, int], dict[str, Any]] = {}


def inspect_story_scene(scene: Path, boxed: Boxed | None = None) -> dict[str, Any]:
    """What the scene holds; remembered per file (path, size, modification time). `boxed`:
    read in that sandbox (a farm's submission)."""
    found = scene.stat()
    key = (str(scene), found.st_size, found.st_mtime_ns)
    if key not in _inspected:
        _inspected[key] = _run("inspect", {"scene": str(scene)}, 120.0, boxed)[0]
    return dict(_inspected[key])


def write_mouth_keys(scene: Path, output: Path, frame_start: int,
                     keys: dict[str, dict[str, list[float]]],
                     boxed: Boxed | None = None) -> tuple[int, float]:
    """Keyframe `keys[object][shape key]` (one value per frame from `frame_start`) in a copy
    of `scene` saved at `output`; (keyframes written, Blender's CPU seconds). `boxed`: keyed
    in that sandbox, the copy saved in its scratch folder and then copied to `output` (only a
    regular file, and one that reads as a .blend)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.stem}.{os.getpid()}.tmp.blend")
    try:
        if boxed is None:
            result, cpu = _run("mouth", {"scene": str(scene), "output": str(tmp),
                                         "frame_start": frame_start, "keys": keys})
        else:
            keyed = boxed.scratch / "keyed.blend"
            result, cpu = _run("mouth", {"scene": str(scene), "output": str(keyed),
                                         "frame_start": frame_start, "keys": keys,
                                         "absolute_paths": True}, boxed=boxed)
            _copy_keyed(boxed.scratch, keyed.name, tmp)
        tmp.replace(output)
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + "1").unlink(missing_ok=True)
    return int(result["keyframes"]), cpu


BLEND_MAGIC = (b"BLENDER", b"\x28\xb5\x2f\xfd", b"\x1f\x8b")  # plain, zstd, gzip


def _copy_keyed(folder: Path, name: str, to: Path) -> None:
    """Copy the keyed .blend a sandboxed Blender saved in `folder` to `to` (the farm's story
    cache): a regular file only, never a link it left to elsewhere."""
    try:
        fd = os.open(folder / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        raise ShapeKeyError("Blender saved no keyed scene") from None
    with os.fdopen(fd, "rb") as src:
        if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
            raise ShapeKeyError("Blender saved no keyed scene")
        if not src.read(7).startswith(BLEND_MAGIC):
            raise ShapeKeyError("the keyed scene Blender saved is not a .blend")
        src.seek(0)
        with open(to, "wb") as dst:
            shutil.copyfileobj(src, dst)


def read_shape_key(scene: Path, obj: str, key: str, frames: list[int]) -> list[float]:
    result = _run("curve", {"scene": str(scene), "object": obj, "key": key,
                            "frames": frames})[0]
    return [float(v) for v in result["values"]]


def boxed_runner(run: Callable[[list[str], float], Any],
                 what: str | None = None) -> Callable[[list[str], float], Ran]:
    """`Boxed.run` from a sandbox runner answering `wanhe.sandbox.tool.Finished`. `what`: the
    runner's failures (TaskFailed: cannot run, ran past its time; TaskOutOfMemory) become a
    ShapeKeyError naming it (a check at submit); else they pass as they are (a task's)."""
    from wanhe.lifecycle import AttemptError

    def ran(argv: list[str], timeout_s: float) -> Ran:
        try:
            done = run(argv, timeout_s)
        except AttemptError as exc:
            if what is None:
                raise
            raise ShapeKeyError(f"{what}: {exc}") from None
        return Ran(done.returncode, done.stderr or done.stdout, done.cpu_s)

    return ran
