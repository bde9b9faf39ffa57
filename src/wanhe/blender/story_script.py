"""Run inside Blender's Python (the bpy module) by `wanhe.blender.shapekeys`: never imported
by wanhe itself. One operation per process, arguments and answer as JSON:

    python -P story_script.py inspect|mouth|curve ARGS.json OUT.json

- inspect: objects (with their shape keys), cameras, the scene camera, frame range, fps;
- mouth:   write keyframes on shape keys and save a copy of the scene;
- curve:   read shape key values back, frame by frame (as the render will see them).

Files open with scripts disabled: a .blend's own Python never runs.
"""

import json
import sys
from typing import Any


def _open(path: str) -> Any:
    import bpy

    bpy.ops.wm.open_mainfile(filepath=path, load_ui=False, use_scripts=False)
    return bpy


def _key_blocks(obj: Any) -> Any:
    data = getattr(obj, "data", None)
    keys = getattr(data, "shape_keys", None) if data is not None else None
    return keys.key_blocks if keys is not None else None


def inspect(args: dict[str, Any]) -> dict[str, Any]:
    bpy = _open(args["scene"])
    scene = bpy.context.scene
    objects = {}
    for obj in bpy.data.objects:
        blocks = _key_blocks(obj)
        objects[obj.name] = {"type": obj.type,
                             "shape_keys": [b.name for b in blocks] if blocks else []}
    return {
        "objects": objects,
        "cameras": [o.name for o in bpy.data.objects if o.type == "CAMERA"],
        "camera": scene.camera.name if scene.camera else None,
        "frame_start": scene.frame_start, "frame_end": scene.frame_end,
        "fps": scene.render.fps / scene.render.fps_base,
    }


def mouth(args: dict[str, Any]) -> dict[str, Any]:
    bpy = _open(args["scene"])
    first = int(args["frame_start"])
    written = 0
    for obj_name, keys in args["keys"].items():
        blocks = _key_blocks(bpy.data.objects[obj_name])
        for key_name, values in keys.items():
            block = blocks[key_name]
            for n, value in enumerate(values):
                block.value = float(value)
                block.keyframe_insert("value", frame=first + n)
                written += 1
            action = block.id_data.animation_data.action
            for fcurve in _fcurves(action):
                for point in fcurve.keyframe_points:
                    point.interpolation = "LINEAR"
    if args.get("absolute_paths"):  # the copy is moved to another folder: its files stay found
        bpy.ops.file.make_paths_absolute()
    bpy.ops.wm.save_as_mainfile(filepath=args["output"], compress=False, copy=True)
    return {"keyframes": written}


def _fcurves(action: Any) -> list[Any]:
    curves = getattr(action, "fcurves", None)
    if curves is not None:
        return list(curves)
    found: list[Any] = []  # Blender 5 layered actions: layers > strips > channelbags > fcurves
    for layer in action.layers:
        for strip in layer.strips:
            for bag in strip.channelbags:
                found.extend(bag.fcurves)
    return found


def curve(args: dict[str, Any]) -> dict[str, Any]:
    bpy = _open(args["scene"])
    scene = bpy.context.scene
    blocks = _key_blocks(bpy.data.objects[args["object"]])
    values: list[float] = []
    for frame in args["frames"]:
        scene.frame_set(int(frame))
        values.append(blocks[args["key"]].value)
    return {"values": values}


def main() -> None:
    op, src, dst = sys.argv[-3:]
    with open(src, encoding="utf-8") as f:
        args = json.load(f)
    ops: dict[str, Any] = {"inspect": inspect, "mouth": mouth, "curve": curve}
    result = ops[op](args)
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
