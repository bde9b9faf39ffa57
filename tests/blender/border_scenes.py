"""Scenes for the tiling and inspection tests (run with the venv's Python, which has bpy).

    python border_scenes.py OUT.blend KIND [--size 64x48] [--samples 16] [--adaptive]
        [--threshold 0.01] [--min-samples 0]

KIND:
  instanced  a floor, a sphere and 400 particles instancing an emissive ico-sphere (light tree
             on): border renders are exact
  volume     the same plus a cube of volume scatter: border renders are NOT exact
  drivers    the instanced scene with a Python driver on the sphere's height
  cache      the instanced scene whose particle system uses a disk cache that was never baked

Factory settings, no user scripts; everything is built here (no fetched file).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import bpy


def _emissive(name: str, strength: float) -> bpy.types.Material:
    mat = bpy.data.materials.new(name)
    nodes = mat.node_tree.nodes
    nodes.clear()
    emit = nodes.new("ShaderNodeEmission")
    emit.inputs["Strength"].default_value = strength
    out = nodes.new("ShaderNodeOutputMaterial")
    mat.node_tree.links.new(emit.outputs[0], out.inputs["Surface"])
    return mat


def _volume(name: str, density: float) -> bpy.types.Material:
    mat = bpy.data.materials.new(name)
    nodes = mat.node_tree.nodes
    nodes.clear()
    vol = nodes.new("ShaderNodeVolumePrincipled")
    vol.inputs["Density"].default_value = density
    out = nodes.new("ShaderNodeOutputMaterial")
    mat.node_tree.links.new(vol.outputs[0], out.inputs["Volume"])
    return mat


def build(args: argparse.Namespace) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    c = scene.cycles
    c.device = "CPU"
    c.samples = args.samples
    c.use_adaptive_sampling = args.adaptive
    c.adaptive_threshold = args.threshold
    c.adaptive_min_samples = args.min_samples
    c.use_denoising = False
    c.use_light_tree = True
    width, height = (int(v) for v in args.size.split("x"))
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    scene.frame_start, scene.frame_end = 1, 2

    bpy.ops.mesh.primitive_plane_add(size=20)
    bpy.ops.mesh.primitive_uv_sphere_add(radius=1, location=(0, 0, 1))
    sphere = bpy.context.object
    bpy.ops.object.light_add(type="AREA", location=(3, -3, 5))
    bpy.context.object.data.energy = 500
    bpy.ops.object.camera_add(location=(0, -9, 4), rotation=(1.15, 0, 0))
    scene.camera = bpy.context.object
    scene.world = bpy.data.worlds.new("world")

    bpy.ops.mesh.primitive_ico_sphere_add(radius=0.08, subdivisions=1, location=(0, 0, -50))
    bead = bpy.context.object
    bead.data.materials.append(_emissive("glow", 5.0))
    bpy.ops.mesh.primitive_plane_add(size=8, location=(0, 0, 0.2))
    emitter = bpy.context.object
    system = emitter.modifiers.new("beads", "PARTICLE_SYSTEM").particle_system
    ps = system.settings
    ps.count = 400
    ps.frame_start = ps.frame_end = 1
    ps.physics_type = "NO"
    ps.render_type = "OBJECT"
    ps.instance_object = bead
    ps.particle_size = 1.0
    emitter.show_instancer_for_render = False

    if args.kind == "volume":
        bpy.ops.mesh.primitive_cube_add(size=4, location=(0, 0, 1))
        bpy.context.object.data.materials.append(_volume("fog", 0.3))
    if args.kind == "drivers":
        fcurve = sphere.driver_add("location", 2)
        fcurve.driver.type = "SCRIPTED"
        fcurve.driver.expression = "len('ab') * 0.5 + frame * 0"  # len() needs Python
    out = Path(args.out).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.kind == "cache":
        ps.physics_type = "NEWTON"
        bpy.ops.wm.save_as_mainfile(filepath=str(out))  # a disk cache needs a saved file
        system.point_cache.use_disk_cache = True
    bpy.ops.wm.save_as_mainfile(filepath=str(out))
    if args.kind == "cache":  # whatever Blender wrote while building is not the baked cache
        import shutil

        shutil.rmtree(out.parent / f"blendcache_{out.stem}", ignore_errors=True)


def main() -> None:
    import sys

    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("kind", choices=["instanced", "volume", "drivers", "cache"])
    parser.add_argument("--size", default="64x48")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--adaptive", action="store_true")
    parser.add_argument("--threshold", type=float, default=0.01)
    parser.add_argument("--min-samples", type=int, default=0)
    build(parser.parse_args(argv))


if __name__ == "__main__":
    main()
