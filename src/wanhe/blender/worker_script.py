"""The warm worker that runs INSIDE Blender's Python.

Run as `python -u worker_script.py` (the `bpy` wheel) or
`blender -b --factory-startup --disable-autoexec --python worker_script.py`.
Only the standard library and `bpy` may be imported here: in a user's own Blender the `wanhe`
package is not importable.

Protocol: one JSON request per stdin line (`{"op": "render" | "inspect" | "quit", "id": N,
...}`); each reply is one stdout line starting with MARKER. Everything else on stdout/stderr is
the task's log. The loaded .blend is kept between requests (and render.use_persistent_data
keeps Cycles' synced scene and BVH) until a request names another file or the file changes.
"""

from __future__ import annotations

import os
import sys

# Defensive twin of the runner's `python -P`: this folder holds wanhe's inspect.py, which must
# not shadow the standard library's inspect module for anything imported below.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import json  # noqa: E402
import resource  # noqa: E402
import struct  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from typing import Any, ClassVar  # noqa: E402

import bpy  # noqa: E402

MARKER = "@@WANHE@@ "  # must equal wanhe.blender.protocol.MARKER

# use_persistent_data is deliberately absent: it is always on, and switching it off, even for a
# moment between tasks, may free Cycles' persistent scene.
# Render settings a request may change. They are snapshot when a file is loaded and restored
# before every request, so one task's overrides never leak into the next task on a warm worker.
_RENDER_ATTRS = (
    "resolution_x",
    "resolution_y",
    "resolution_percentage",
    "use_border",
    "use_crop_to_border",
    "border_min_x",
    "border_max_x",
    "border_min_y",
    "border_max_y",
    "threads_mode",
    "threads",
    "use_file_extension",
    "filepath",
)
_CYCLES_ATTRS = (
    "samples",
    "seed",
    "use_animated_seed",
    "use_denoising",
    "use_adaptive_sampling",
    "use_sample_subset",
    "sample_offset",
    "sample_subset_length",
    "device",
)


def _load_sibling(name: str) -> Any:
    """A standard-library module of this folder, loaded by path (wanhe may not be importable
    here, and this folder is kept off sys.path)."""
    import importlib.util

    path = os.path.join(_HERE, name + ".py")
    spec = importlib.util.spec_from_file_location(f"_wanhe_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


_devices = _load_sibling("cycles_devices")


def _use_device(scene: bpy.types.Scene, want: str) -> dict[str, Any]:
    """Render on the CPU, or on the GPUs Blender finds (the first backend that has one)."""
    if want == "CPU":
        _set(scene.cycles, "device", "CPU")
        return {"device": "CPU", "backend": "NONE"}
    prefs = bpy.context.preferences.addons["cycles"].preferences
    choice = _devices.choose(_devices.found_devices(prefs), want)
    _devices.apply(choice, prefs, scene)
    return {"device": "GPU", "backend": choice.backend, "gpus": list(choice.names)}


class _State:
    path: ClassVar[str | None] = None
    stamp: ClassVar[tuple[int, int] | None] = None  # (mtime_ns, size) of the loaded file
    saved: ClassVar[dict[str, Any]] = {}


def _emit(msg: dict[str, Any]) -> None:
    # A leading newline keeps the reply on a line of its own even if Blender's C code left a
    # partial line in the pipe; the reader also looks for MARKER anywhere in a line.
    sys.stdout.write("\n" + MARKER + json.dumps(msg) + "\n")
    sys.stdout.flush()


def _stamp(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size)


def _secure_prefs() -> None:
    # Never let a .blend run its own Python (drivers, registered text blocks).
    bpy.context.preferences.filepaths.use_scripts_auto_execute = False


def _load(path: str) -> bpy.types.Scene:
    if not os.path.isabs(path):
        raise ValueError(f"scene path must be absolute, got {path!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"scene file not found: {path}")
    stamp = _stamp(path)
    if _State.path != path or _State.stamp != stamp:
        _State.path = None  # a failed load leaves nothing we can trust
        _secure_prefs()
        try:
            bpy.ops.wm.open_mainfile(filepath=path, load_ui=False, use_scripts=False)
        except RuntimeError as e:
            msg = str(e).strip().removeprefix("Error: ").strip()
            raise RuntimeError(
                f"Blender cannot open {path}: {msg} (the file may be truncated or corrupt)"
            ) from None
        _secure_prefs()
        scene = bpy.context.scene
        _State.saved = _snapshot(scene)
        _State.path, _State.stamp = path, stamp
    return bpy.context.scene


def _snapshot(scene: bpy.types.Scene) -> dict[str, Any]:
    r = scene.render
    saved: dict[str, Any] = {
        "render": {a: getattr(r, a) for a in _RENDER_ATTRS},
        "camera": scene.camera,
        "frame": scene.frame_current,
        "layers": {
            vl.name: vl.cycles.denoising_store_passes
            for vl in scene.view_layers
            if hasattr(vl, "cycles")
        },
    }
    if scene.render.engine == "CYCLES":
        saved["cycles"] = {a: getattr(scene.cycles, a) for a in _CYCLES_ATTRS}
    if hasattr(scene, "eevee"):
        saved["eevee"] = {"taa_render_samples": scene.eevee.taa_render_samples}
    return saved


def _set(obj: Any, attr: str, value: Any) -> None:
    # Only write changed values: every RNA write runs update callbacks that may tag the
    # scene for re-sync.
    if getattr(obj, attr) != value:
        setattr(obj, attr, value)


def _restore(scene: bpy.types.Scene) -> None:
    s = _State.saved
    for a, v in s["render"].items():
        _set(scene.render, a, v)
    for a, v in s.get("cycles", {}).items():
        _set(scene.cycles, a, v)
    for a, v in s.get("eevee", {}).items():
        _set(scene.eevee, a, v)
    _set(scene, "camera", s["camera"])
    for vl in scene.view_layers:
        if vl.name in s["layers"]:
            _set(vl.cycles, "denoising_store_passes", s["layers"][vl.name])


def _set_exr_output(scene: bpy.types.Scene) -> None:
    im = scene.render.image_settings
    # Blender 5.0 split the format into media_type + file_format; older versions have only
    # file_format (where 'OPEN_EXR_MULTILAYER' is settable directly).
    if hasattr(im, "media_type"):
        _set(im, "media_type", "MULTI_LAYER_IMAGE")
    _set(im, "file_format", "OPEN_EXR_MULTILAYER")
    _set(im, "color_depth", "32")
    _set(im, "exr_codec", "ZIP")  # lossless
    _set(scene.render, "use_file_extension", False)


def _exr_size(path: str) -> tuple[int, int]:
    """Width and height from the first header's dataWindow (no image library needed)."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if head[:4] != b"\x76\x2f\x31\x01":
        raise ValueError(f"{path} is not an OpenEXR file")
    pos = 8
    while pos < len(head):
        end = head.index(b"\0", pos)
        name = head[pos:end]
        if not name:
            break
        tend = head.index(b"\0", end + 1)
        (size,) = struct.unpack_from("<i", head, tend + 1)
        vstart = tend + 5
        if name == b"dataWindow":
            x0, y0, x1, y1 = struct.unpack_from("<4i", head, vstart)
            return (x1 - x0 + 1, y1 - y0 + 1)
        pos = vstart + size
    raise ValueError(f"{path} has no dataWindow in its header")


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _peak_rss(reset_ok: bool) -> int:
    if reset_ok:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
    # ru_maxrss is the lifetime peak: kilobytes on Linux, bytes on macOS.
    m = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return m if sys.platform == "darwin" else m * 1024


def _render(req: dict[str, Any]) -> dict[str, Any]:
    t0, c0 = time.monotonic(), _cpu_s()
    reset_ok = _reset_peak_rss()
    reply: dict[str, Any] = {"ok": False, "output": None, "width": 0, "height": 0}
    output = req["output"]
    try:
        scene = _load(req["scene"])
        _restore(scene)
        r = scene.render
        engine = r.engine
        reply["engine"] = engine
        cycles = engine == "CYCLES"
        if req.get("border") is not None and not cycles:
            raise ValueError(
                f"border (tile) renders need Cycles; this scene uses {engine}. "
                "Render whole frames (no tiles) or switch the scene to Cycles"
            )
        if req.get("sample_subset_length") is not None and not cycles:
            raise ValueError(
                f"sample chunks need Cycles; this scene uses {engine}. Render without chunks"
            )
        # Before choosing the camera: camera markers switch scene.camera on frame change.
        # Only on a real change: frame_set re-evaluates animation, which Cycles re-syncs.
        if scene.frame_current != req["frame"] or scene.frame_subframe != 0.0:
            scene.frame_set(req["frame"])
        if req.get("camera") is not None:
            cam = bpy.data.objects.get(req["camera"])
            if cam is None or cam.type != "CAMERA":
                names = sorted(o.name for o in scene.objects if o.type == "CAMERA")
                raise ValueError(f"no camera object named {req['camera']!r}; cameras: {names}")
            _set(scene, "camera", cam)
        if scene.camera is None:
            raise ValueError("the scene has no active camera; set one in Blender or pass camera")

        _set(r, "use_persistent_data", True)  # keep synced scene + BVH between tasks
        if req.get("resolution") is not None:
            _set(r, "resolution_x", req["resolution"][0])
            _set(r, "resolution_y", req["resolution"][1])
        if req.get("resolution_percentage") is not None:
            _set(r, "resolution_percentage", req["resolution_percentage"])
        if req.get("threads") is not None:
            _set(r, "threads_mode", "FIXED")
            _set(r, "threads", req["threads"])
        if req.get("border") is not None:
            _set(r, "use_border", True)
            _set(r, "use_crop_to_border", True)
            # Blender maps a fraction f to pixel int(float32(f) * size); the RNA stores
            # float32 and does not clamp min <= max, so the order of writes does not matter.
            for attr, v in zip(
                ("border_min_x", "border_max_x", "border_min_y", "border_max_y"),
                req["border"],
                strict=True,
            ):
                _set(r, attr, v)
        else:
            _set(r, "use_border", False)
        if cycles:
            c = scene.cycles
            _set(c, "use_denoising", False)  # the farm denoises once, on the assembled frame
            if req.get("samples") is not None:
                _set(c, "samples", req["samples"])
            if req.get("seed") is not None:
                _set(c, "seed", req["seed"])
                _set(c, "use_animated_seed", False)
            if req.get("adaptive_sampling") is not None:
                _set(c, "use_adaptive_sampling", req["adaptive_sampling"])
            if req.get("sample_subset_length") is not None:
                # Disjoint sample ranges: offset alone would only shift the random sequence.
                _set(c, "use_sample_subset", True)
                _set(c, "sample_offset", req["sample_offset"] or 0)
                _set(c, "sample_subset_length", req["sample_subset_length"])
            else:
                _set(c, "use_sample_subset", False)
            for vl in scene.view_layers:
                _set(vl.cycles, "denoising_store_passes", bool(req.get("denoise_passes")))
            reply["samples"] = c.samples
            reply.update(_use_device(scene, req.get("device") or "CPU"))
        elif (req.get("device") or "CPU") != "CPU":
            raise ValueError(f"GPU renders need Cycles; this scene uses {engine}")
        elif engine.startswith("BLENDER_EEVEE") and req.get("samples") is not None:
            _set(scene.eevee, "taa_render_samples", req["samples"])  # EEVEE's own setting
            reply["samples"] = scene.eevee.taa_render_samples
        _set_exr_output(scene)

        os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
        if os.path.exists(output):
            os.remove(output)  # so a stale file can never pass for this render
        bpy.ops.render.render(write_still=False)
        # save_render writes exactly this path; write_still would expand Blender 5.0 path
        # templates ('{...}') in the output name. Byte-identical to write_still's file.
        bpy.data.images["Render Result"].save_render(filepath=output, scene=scene)
        if not os.path.isfile(output):
            raise RuntimeError(f"Blender rendered but wrote no file at {output}")
        w, h = _exr_size(output)
        reply["width"], reply["height"] = w, h
        exp = req.get("expected_size")
        if exp is not None and (w, h) != (exp[0], exp[1]):
            os.remove(output)
            raise RuntimeError(f"rendered image is {w}x{h}, expected {exp[0]}x{exp[1]}")
        reply["ok"] = True
        reply["output"] = output
    except Exception as e:  # a bad request must never end the loop
        reply["error"] = _describe(e)
    reply["wall_s"] = time.monotonic() - t0
    reply["cpu_s"] = _cpu_s() - c0
    reply["peak_rss_bytes"] = _peak_rss(reset_ok)
    return reply


def _describe(e: BaseException) -> str:
    msg = str(e).strip() or type(e).__name__
    if isinstance(e, (KeyError, TypeError, AttributeError)):
        # Programming or protocol errors: keep the traceback for whoever reads the log.
        traceback.print_exc()
        msg = f"{type(e).__name__}: {msg}"
    return msg.removeprefix("Error: ")


def _inspect(req: dict[str, Any]) -> dict[str, Any]:
    try:
        scene = _load(req["scene"])
        _restore(scene)
        r = scene.render
        engine = r.engine
        samples: int | None = None
        adaptive: bool | None = None
        cycles: dict[str, Any] = {}
        if engine == "CYCLES":
            samples = scene.cycles.samples
            adaptive = scene.cycles.use_adaptive_sampling
            c = scene.cycles
            cycles = {
                "adaptive_threshold": float(c.adaptive_threshold),
                "adaptive_min_samples": int(c.adaptive_min_samples),
                "time_limit": float(getattr(c, "time_limit", 0.0)),
                "path_guiding": bool(getattr(c, "use_guiding", False))
                and bool(getattr(c, "use_surface_guiding", True)
                         or getattr(c, "use_volume_guiding", True)),
            }
        elif engine.startswith("BLENDER_EEVEE"):
            samples = scene.eevee.taa_render_samples
        info = {
            "frame_start": scene.frame_start,
            "frame_end": scene.frame_end,
            "frame_step": scene.frame_step,
            "fps": r.fps / r.fps_base,
            "resolution_x": r.resolution_x,
            "resolution_y": r.resolution_y,
            "resolution_percentage": r.resolution_percentage,
            "engine": engine,
            "camera": scene.camera.name if scene.camera else None,
            "cameras": sorted(o.name for o in scene.objects if o.type == "CAMERA"),
            "samples": samples,
            "adaptive_sampling": adaptive,
            "output_path": r.filepath,
            "blender_version": bpy.app.version_string,
            "volumes": _volume_users(scene),
            "python_drivers": _python_drivers(),
            # meshes as stored (before modifiers): what the farm's memory estimate weighs
            "polygons": sum(len(o.data.polygons) for o in scene.objects
                            if o.type == "MESH" and o.data is not None),
            **cycles,
        }
        return {"ok": True, "info": info}
    except Exception as e:
        return {"ok": False, "error": _describe(e)}


def _has_volume(tree: Any) -> bool:
    """Whether a material or world node tree feeds its output's Volume socket."""
    if tree is None:
        return False
    for node in tree.nodes:
        if node.bl_idname in ("ShaderNodeOutputMaterial", "ShaderNodeOutputWorld"):
            socket = node.inputs.get("Volume")
            if socket is not None and socket.is_linked:
                return True
    return False


def _volume_users(scene: bpy.types.Scene) -> list[str]:
    """Names of what renders a volume: the world, volume objects, materials with a volume."""
    found: list[str] = []
    if scene.world is not None and _has_volume(getattr(scene.world, "node_tree", None)):
        found.append(f"world {scene.world.name!r}")
    for ob in scene.objects:
        if ob.type == "VOLUME":
            found.append(f"volume object {ob.name!r}")
    for mat in bpy.data.materials:
        if mat.users and _has_volume(getattr(mat, "node_tree", None)):
            found.append(f"material {mat.name!r}")
    return found[:20]


def _python_drivers() -> list[str]:
    """Drivers that need Python (auto-run is off, so they keep their saved values)."""
    found: list[str] = []
    for collection in (bpy.data.objects, bpy.data.meshes, bpy.data.materials, bpy.data.scenes,
                       bpy.data.cameras, bpy.data.lights, bpy.data.shape_keys,
                       bpy.data.node_groups, bpy.data.worlds):
        for idb in collection:
            anim = getattr(idb, "animation_data", None)
            if anim is None:
                continue
            for fc in anim.drivers:
                drv = fc.driver
                if drv.type == "SCRIPTED" and not getattr(drv, "is_simple_expression", False):
                    found.append(f"{idb.name}: {fc.data_path}[{fc.array_index}] = "
                                 f"{drv.expression!r}")
    return found[:50]


_REQUIRED: dict[str, dict[str, type]] = {
    "render": {"scene": str, "frame": int, "output": str},
    "inspect": {"scene": str},
}


def _check_fields(op: str, req: dict[str, Any]) -> None:
    need = _REQUIRED[op]
    missing = [k for k in need if req.get(k) is None]
    if missing:
        raise ValueError(f"{op} request is missing {', '.join(missing)}")
    for k, t in need.items():
        v = req[k]
        if not isinstance(v, t) or isinstance(v, bool):
            raise ValueError(f"{op} request field {k!r} must be {t.__name__}, got {v!r}")


_last_stats: list[str] = [""]


@bpy.app.handlers.persistent
def _print_stats(*args: Any) -> None:
    # As a module, bpy prints no render progress; these lines feed the runner's progress
    # parsing ("Sample 12/64") and its log-silence watchdog. Cycles in background mode only
    # reports samples about every 30 s on long renders, so silence limits must exceed that.
    text = next((a for a in args if isinstance(a, str)), "")  # called as (stats, None)
    if text != _last_stats[0]:
        _last_stats[0] = text
        frame = bpy.context.scene.frame_current if bpy.context.scene else "?"
        sys.stdout.write(f"Fra:{frame} | {text}\n")
        sys.stdout.flush()


def _exit_with_parent(interval_s: float = 1.0) -> None:
    """Quit when the worker that started us is gone (killed -9, its machine's Ray stopped).

    A render in progress reads no stdin until it ends, so without this an orphaned Blender
    would keep a frame's worth of cores busy for nobody.
    """
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main() -> None:
    _exit_with_parent()
    _secure_prefs()
    if not bpy.app.binary_path:  # the bpy module; a real `blender` prints its own stats
        bpy.app.handlers.render_stats.append(_print_stats)
    _emit(
        {"op": "ready", "ok": True, "pid": os.getpid(), "blender_version": bpy.app.version_string}
    )
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        rid: Any = None
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise ValueError("request must be a JSON object")
            rid = req.get("id")
            op = req.get("op")
            if op == "quit":
                _emit({"op": "quit", "id": rid, "ok": True})
                return
            if op in _REQUIRED:
                _check_fields(op, req)
            if op == "render":
                reply = _render(req)
            elif op == "inspect":
                reply = _inspect(req)
            else:
                reply = {"ok": False, "error": f"unknown op {op!r}"}
        except Exception as e:
            reply = {"ok": False, "error": f"bad request: {e}"}
            op = None
        reply["op"] = op
        reply["id"] = rid
        _emit(reply)


if __name__ == "__main__":
    main()
