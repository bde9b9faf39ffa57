"""Apply parsed Blender arguments with the `bpy` wheel, left to right, as Blender does.

Runs in the `blender` command's own process (it imports `bpy`). Files load with auto-run
scripts off and `use_scripts=False`, exactly as wanhe's warm worker loads them
(`wanhe/blender/worker_script.py`): drivers and registered text blocks in a .blend never run.
Every frame is written to a temporary name and renamed into place, so a killed render never
leaves half a file under the frame's name.
"""

from __future__ import annotations

import builtins
import os
import re
import sys
import time
import traceback
from typing import Any

import bpy

from wanhe.blender_cli.args import (
    FORMATS,
    Action,
    CliError,
    Parsed,
    parse_frame_list,
    parse_relative,
)

ENGINES = ("CYCLES", "BLENDER_EEVEE", "BLENDER_WORKBENCH")
_SAMPLE = re.compile(r"\bSample (\d+)/(\d+)")


class ScriptExit(Exception):
    """A script asked to stop Blender (sys.exit, or an error with --python-exit-code)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _State:
    def __init__(self, parsed: Parsed) -> None:
        self.parsed = parsed
        self.scene_name: str | None = None
        self.threads: int | None = None
        self.frame: int | str = "?"
        self.frames_total = 0  # of the -f / -a in progress
        self.frames_done = 0
        self.progress = -1
        # OpenJD's stdout messages (openjd_progress, openjd_fail) for the session that runs
        # us; never on a terminal, where they would only be noise.
        self.openjd = not sys.stdout.isatty()

    def report(self, fraction_of_frame: float) -> None:
        if not self.openjd or self.frames_total <= 0:
            return
        pct = int(100 * (self.frames_done + fraction_of_frame) / self.frames_total)
        if pct != self.progress:
            self.progress = pct
            _say(f"openjd_progress: {min(100, pct)}")

    def scene(self) -> Any:
        if self.scene_name is not None:
            return bpy.data.scenes[self.scene_name]
        return bpy.context.scene


def _secure_prefs() -> None:
    bpy.context.preferences.filepaths.use_scripts_auto_execute = False


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60.0)
    return f"{int(minutes):02d}:{rest:05.2f}"


def execute(parsed: Parsed, argv: list[str]) -> int:
    """Run every action in order; 0 when all succeeded, else Blender's failure code 1."""
    state = _State(parsed)
    _secure_prefs()
    sys.argv = ["blender", *argv]  # what scripts see, as in Blender
    stats = _stats_printer(state)
    bpy.app.handlers.render_stats.append(stats)
    try:
        for action in parsed.actions:
            _apply(state, action)
    except ScriptExit as e:
        return e.code
    except (CliError, RuntimeError, OSError, KeyError, ValueError) as e:
        msg = str(e).strip().removeprefix("Error: ").strip() or type(e).__name__
        if state.openjd:
            _say(f"openjd_fail: {' '.join(msg.split())}")
        sys.stdout.flush()
        sys.stderr.write(f"Error: {msg}\n")
        return 1
    finally:
        if stats in bpy.app.handlers.render_stats:
            bpy.app.handlers.render_stats.remove(stats)
    _say("\nBlender quit")
    return 0


def _apply(state: _State, action: Action) -> None:
    op, value = action.op, action.value
    if op == "load":
        _load(state, value)
        return
    if op in ("python", "python_expr", "python_text"):
        _run_python(state, action)
        return
    if op == "threads":
        state.threads = int(value)
        return
    if op == "scene":
        if value not in bpy.data.scenes:
            names = ", ".join(s.name for s in bpy.data.scenes)
            raise CliError(f"scene {value!r} not found (scenes: {names})")
        state.scene_name = value
        return
    scene = state.scene()
    r = scene.render
    if op == "output":
        r.filepath = value
    elif op == "format":
        _set_format(r.image_settings, FORMATS[value.upper()])
    elif op == "extension":
        r.use_file_extension = value == "1"
    elif op == "start":
        scene.frame_start = parse_relative(value, scene.frame_start, scene.frame_end, action.flag)
    elif op == "end":
        scene.frame_end = parse_relative(value, scene.frame_start, scene.frame_end, action.flag)
    elif op == "step":
        scene.frame_step = int(value)
    elif op == "engine":
        _set_engine(r, value)
    elif op == "frames":
        frames = parse_frame_list(value, scene.frame_start, scene.frame_end, action.flag)
        _render(state, scene, frames)
    elif op == "anim":
        frames = list(range(scene.frame_start, scene.frame_end + 1, max(1, scene.frame_step)))
        _render(state, scene, frames)
    else:  # pragma: no cover - the parser only makes the ops above
        raise CliError(f"unhandled argument {action.flag}")


def _load(state: _State, path: str) -> None:
    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(full):
        raise CliError(f"Cannot read file {full!r}: No such file or directory")
    _secure_prefs()
    try:
        bpy.ops.wm.open_mainfile(filepath=full, load_ui=False, use_scripts=False)
    except RuntimeError as e:
        msg = str(e).strip().removeprefix("Error: ").strip()
        raise CliError(
            f"Cannot read file {full!r}: {msg} (the file may be truncated or corrupt)"
        ) from None
    _secure_prefs()
    state.scene_name = None  # bpy itself logs 'Read blend: "…"'


def _set_format(im: Any, file_format: str) -> None:
    # Blender 5.0 split the format into media_type + file_format.
    if hasattr(im, "media_type"):
        media = {"OPEN_EXR_MULTILAYER": "MULTI_LAYER_IMAGE", "FFMPEG": "VIDEO"}
        im.media_type = media.get(file_format, "IMAGE")
    im.file_format = file_format


def _set_engine(r: Any, engine: str) -> None:
    if engine == "help":
        _say("Blender Engine Listing:\n" + "\n".join(f"\t{e}" for e in ENGINES))
        return
    try:
        r.engine = engine
    except TypeError:
        raise CliError(
            f"engine not found {engine!r}; use one of: {', '.join(ENGINES)}"
        ) from None


def _apply_threads(state: _State, r: Any) -> None:
    if state.threads is None:
        return
    if state.threads == 0:
        r.threads_mode = "AUTO"
    else:
        r.threads_mode = "FIXED"
        r.threads = state.threads


def _apply_cycles_device(state: _State, scene: Any) -> None:
    """`-- --cycles-device CPU|CUDA|OPTIX|HIP|ONEAPI|METAL`, as Cycles reads it in Blender."""
    args = state.parsed.script_args
    if "--cycles-device" not in args or scene.render.engine != "CYCLES":
        return
    at = args.index("--cycles-device")
    if at + 1 >= len(args):
        raise CliError("--cycles-device needs a device type (CPU, CUDA, OPTIX, HIP, ONEAPI)")
    device = args[at + 1].upper().split("+")[0]
    if device == "CPU":
        scene.cycles.device = "CPU"
        return
    prefs = bpy.context.preferences.addons["cycles"].preferences
    try:
        prefs.compute_device_type = device
    except TypeError:
        raise CliError(f"--cycles-device {device}: not a Cycles device type") from None
    prefs.refresh_devices()
    if not any(d.type == device for d in prefs.devices):
        raise CliError(f"--cycles-device {device}: no such device on this machine")
    for d in prefs.devices:
        d.use = d.type == device
    scene.cycles.device = "GPU"


def _render(state: _State, scene: Any, frames: list[int]) -> None:
    r = scene.render
    _apply_threads(state, r)
    _apply_cycles_device(state, scene)
    if scene.camera is None and not any(o.type == "CAMERA" for o in scene.objects):
        raise CliError(f'No camera found in scene "{scene.name}" — set an active camera')
    state.frames_total, state.frames_done, state.progress = len(frames), 0, -1
    if r.image_settings.file_format == "FFMPEG":
        _render_movie(state, scene, frames)
        return
    for frame in frames:
        _render_frame(state, scene, frame)
        state.frames_done += 1
        state.report(0.0)


def _render_frame(state: _State, scene: Any, frame: int) -> None:
    r = scene.render
    state.frame = frame
    scene.frame_set(frame)
    path = bpy.path.abspath(r.frame_path(frame=frame))
    if not r.use_overwrite and os.path.exists(path):
        _say(f'skipping existing frame "{path}"')
        return
    t0 = time.monotonic()
    bpy.ops.render.render(write_still=False, scene=scene.name)
    t1 = time.monotonic()
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.wanhe-{os.getpid()}.tmp")
    try:
        bpy.data.images["Render Result"].save_render(filepath=tmp, scene=scene)
        if not os.path.isfile(tmp):
            raise RuntimeError(f"Blender rendered frame {frame} but wrote no file at {path}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    t2 = time.monotonic()
    _say(f"Saved: '{path}'")
    _say(f" Time: {_clock(t2 - t0)} (Saving: {_clock(t2 - t1)})\n")


def _render_movie(state: _State, scene: Any, frames: list[int]) -> None:
    """A movie format renders its frames as one animation, as Blender's -a / -f do."""
    start, end, step = scene.frame_start, scene.frame_end, scene.frame_step
    try:
        scene.frame_start, scene.frame_end = min(frames), max(frames)
        if len(frames) > 1:
            scene.frame_step = frames[1] - frames[0]
        state.frame = frames[0]
        bpy.ops.render.render(animation=True, scene=scene.name)
    finally:
        scene.frame_start, scene.frame_end, scene.frame_step = start, end, step


def _stats_printer(state: _State) -> Any:
    last = [""]

    @bpy.app.handlers.persistent
    def stats(*args: Any) -> None:
        # bpy prints no render progress of its own; Blender's "Fra:N ... | Sample i/n" lines.
        text = next((a for a in args if isinstance(a, str)), "")
        if text and text != last[0]:
            last[0] = text
            _say(f"Fra:{state.frame} {text}")
            m = _SAMPLE.search(text)
            if m and int(m.group(2)) > 0:
                state.report(min(1.0, int(m.group(1)) / int(m.group(2))))

    return stats


def _run_python(state: _State, action: Action) -> None:
    if action.op == "python":
        path = os.path.abspath(action.value)
        try:
            with open(path, encoding="utf-8") as f:
                code, name = f.read(), path
        except OSError as e:
            raise CliError(f"cannot read the script {path}: {e.strerror or e}") from None
    elif action.op == "python_expr":
        code, name = action.value, "<string>"
    else:
        text = bpy.data.texts.get(action.value)
        if text is None:
            raise CliError(f"--python-text: no text block named {action.value!r} in the file")
        code, name = text.as_string(), action.value
    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": name,
                                 "__builtins__": builtins}
    try:
        exec(compile(code, name, "exec"), namespace)
    except SystemExit as e:
        code_ = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        raise ScriptExit(code_) from None
    except Exception:
        traceback.print_exc()
        if state.parsed.python_exit_code:
            raise ScriptExit(state.parsed.python_exit_code) from None
