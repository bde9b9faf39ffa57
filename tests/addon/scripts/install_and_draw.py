"""In an artist's Blender (see tests/addon/_blender.py): install the built zip into a clean user
folder with Blender's extension operator, enable it, and record where every module it loaded
came from; then draw its panels into a recording layout (a bpy module has no UI, so no real
UILayout can exist here: the stand-in records each call and holds it to the real UILayout's
RNA: its keywords, icon names and attributes; every property it names must exist on its data,
every operator property set must be the operator's).

argv: ZIP WORKDIR
"""

import json
import os
import sys
from pathlib import Path

import bpy

zip_path, work = Path(sys.argv[1]), Path(sys.argv[2])
out: dict = {"before": {}}
for name in ("wanhe", "blender_asset_tracer", "httpx", "pydantic"):
    try:
        __import__(name)
        out["before"][name] = "importable"
    except ImportError:
        out["before"][name] = "missing"

before = set(sys.modules)
result = bpy.ops.extensions.package_install_files(
    filepath=str(zip_path), repo="user_default", enable_on_install=True)
out["install"] = sorted(result)
module = "bl_ext.user_default.wanhe_farm"
out["enabled"] = module in bpy.context.preferences.addons
addon = sys.modules[module]
# what Submit needs at its first use: BAT, from the wheel Blender installed
# (the packer is wanhe.transfer's copy in the zip, as shared.py imports it)
packing = __import__(module + ".shared", fromlist=["pack"]).pack
out["packer"] = packing.__name__
# (no read_factory_settings here: it resets the preferences, disabling the extension, and
# Blender then removes the wheels no enabled extension needs)
blend = work / "scene.blend"
bpy.ops.wm.save_as_mainfile(filepath=str(blend))
bundle = packing.collect(blend)
out["bundle"] = sorted(bundle.files)
out["loaded"] = {
    name: getattr(mod, "__file__", None) for name, mod in sys.modules.items()
    if name not in before and getattr(mod, "__file__", None)
}
import blender_asset_tracer  # noqa: E402

out["bat"] = blender_asset_tracer.__file__
out["stdlib"] = os.path.dirname(os.__file__)
out["bpy"] = os.path.realpath(os.path.dirname(bpy.__file__))


LAYOUT = bpy.types.UILayout.bl_rna
ICONS = {i.identifier for i in LAYOUT.functions["label"].parameters["icon"].enum_items}


def _check_call(function, kw):
    """Every keyword is a parameter of the real UILayout function; every icon exists."""
    params = {p.identifier for p in LAYOUT.functions[function].parameters}
    unknown = set(kw) - params
    assert not unknown, f"UILayout.{function} takes no {sorted(unknown)}"
    assert kw.get("icon", "NONE") in ICONS, f"no icon {kw['icon']!r}"


class OperatorProps:
    """What `layout.operator()` returns: only the operator's own properties may be set."""

    def __init__(self, idname):
        group, _, name = idname.partition(".")
        op = getattr(getattr(bpy.ops, group), name)
        self.__dict__["_names"] = {p.identifier for p in op.get_rna_type().properties}
        self.__dict__["_idname"] = idname

    def __setattr__(self, name, value):
        assert name in self._names, f"{self._idname} has no property {name!r}"


class Recorder:
    """A stand-in for bpy.types.UILayout that records what a draw function asks for, and
    holds each call to the real UILayout's signature (its RNA)."""

    def __init__(self, log: list, depth: int = 0) -> None:
        self.__dict__["_log"], self.__dict__["_depth"] = log, depth

    def __setattr__(self, name, value):  # layout.enabled, scale_y, use_property_split ...
        assert name in LAYOUT.properties, f"UILayout has no attribute {name!r}"
        self._log.append((self._depth, "set", name, repr(value)))

    def _child(self):
        return Recorder(self._log, self._depth + 1)

    def prop(self, data, name, **kw):
        _check_call("prop", kw)
        assert hasattr(data, name), f"{type(data).__name__} has no property {name!r}"
        self._log.append((self._depth, "prop", name, kw.get("text")))

    def label(self, **kw):
        _check_call("label", kw)
        self._log.append((self._depth, "label", kw.get("text", ""), kw.get("icon")))

    def operator(self, idname, **kw):
        _check_call("operator", kw)
        group, _, name = idname.partition(".")
        assert hasattr(getattr(bpy.ops, group), name), f"no operator {idname}"
        self._log.append((self._depth, "operator", idname, kw.get("text")))
        return OperatorProps(idname)

    def progress(self, **kw):
        _check_call("progress", kw)
        self._log.append((self._depth, "progress", kw.get("text"), kw.get("factor")))

    def row(self, **kw):
        _check_call("row", kw)
        return self._child()

    def column(self, **kw):
        _check_call("column", kw)
        return self._child()

    def box(self, **kw):
        _check_call("box", kw)
        return self._child()


scene = bpy.context.scene
scene.render.filepath = "//render/shot_"
scene.render.engine = "CYCLES"
scene.frame_start, scene.frame_end = 1, 24
props = scene.wanhe
props.tiles, props.sample_chunks, props.use_frames, props.frames = "2x2", 2, True, "1-24x2"
props.quality_mode, props.video = "SAMPLES", True
state = sys.modules[module + ".state"].STATE
state.jobs = [
    {"id": 7, "name": "shot.blend", "state": "running", "progress": 0.25,
     "tasks": {"done": 2, "running": 2, "ready": 4}, "message": ""},
    {"id": 6, "name": "shot.blend", "state": "failed", "progress": 0.5,
     "tasks": {"done": 4, "failed": 4}, "message": "frame 3 tile 1 failed 3 time(s)"},
]
ui = sys.modules[module + ".ui"]
logs = {}
for name, draw in (("farm", ui.draw_farm_panel), ("jobs", ui.draw_jobs_panel)):
    log = []
    draw(Recorder(log), bpy.context)
    logs[name] = log
prefs = bpy.context.preferences.addons[module].preferences
log = []
ui.draw_preferences(prefs, Recorder(log), bpy.context)
logs["preferences"] = log
# the real panel classes draw the same functions through their layout
out["panels"] = [cls.__name__ for cls in ui.CLASSES
                 if cls.bl_context == "output" and cls.bl_space_type == "PROPERTIES"]
out["draw"] = logs
# Submit's checks, before anything leaves the machine (no farm is set: they come first)
checks = {}


def submit_now():
    """bpy.ops raises where an operator reports an error in background mode; in the UI the
    same line is a report in the status bar"""
    try:
        return sorted(bpy.ops.wanhe.submit())
    except RuntimeError:
        return ["CANCELLED"]


image = bpy.data.images.new("wood", 4, 4)
image.source = "FILE"
image.filepath = "//tex/wood.png"
checks["missing"] = (submit_now(), state.last_report)
bpy.data.images.remove(image)
camera = scene.camera
scene.camera = None
checks["camera"] = (submit_now(), state.last_report)
scene.camera = camera
scene.render.filepath = ""
checks["output"] = (submit_now(), state.last_report)
scene.render.filepath = "//render/shot_"
checks["no_token"] = (submit_now(), state.last_report)
out["checks"] = checks
out["scene_has_token"] = "token" in {p.identifier for p in scene.wanhe.bl_rna.properties}
out["disable"] = sorted(bpy.ops.preferences.addon_disable(module=module))
out["unregistered"] = not hasattr(bpy.types.Scene, "wanhe")
Path(os.environ["WANHE_TEST_RESULT"]).write_text(json.dumps(out))
