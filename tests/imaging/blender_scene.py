"""Render a tiny Cycles scene to a multilayer EXR (run with the venv's Python, which has bpy).

    python blender_scene.py OUT.exr --samples 4 --size 96x72 [--border x0,x1,y0,y1]
        [--no-passes] [--sample-offset N --sample-subset N] [--seed N]

Used by the imaging test fixtures so that no binary EXR is committed. Factory settings, no
user scripts. Border coordinates are Blender's (fractions, y counted from the bottom).
"""

from __future__ import annotations

import argparse

import bpy


def build_scene(args: argparse.Namespace) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = args.samples
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = False
    scene.cycles.seed = args.seed
    if args.sample_subset:
        scene.cycles.use_sample_subset = True
        scene.cycles.sample_offset = args.sample_offset
        scene.cycles.sample_subset_length = args.sample_subset
    width, height = (int(v) for v in args.size.split("x"))
    scene.render.resolution_x = width
    scene.render.resolution_y = height
    scene.render.resolution_percentage = 100
    scene.render.threads_mode = "FIXED"
    scene.render.threads = 2
    scene.view_layers[0].cycles.denoising_store_passes = not args.no_passes

    bpy.ops.mesh.primitive_plane_add(size=20)
    floor = bpy.data.materials.new("floor")
    grey = (0.6, 0.6, 0.55, 1.0)
    floor.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = grey
    bpy.context.object.data.materials.append(floor)
    bpy.ops.mesh.primitive_uv_sphere_add(radius=1, location=(0, 0, 1))
    red = bpy.data.materials.new("red")
    red.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (0.8, 0.1, 0.1, 1.0)
    bpy.context.object.data.materials.append(red)
    bpy.ops.mesh.primitive_cube_add(size=1, location=(2, 1, 0.5))
    bpy.ops.object.light_add(type="AREA", location=(3, -3, 5))
    bpy.context.object.data.energy = 1500
    bpy.context.object.data.size = 0.5
    bpy.ops.object.camera_add(location=(0, -7, 3), rotation=(1.2, 0, 0))
    scene.camera = bpy.context.object
    world = bpy.data.worlds.new("world")
    scene.world = world

    settings = scene.render.image_settings
    settings.media_type = "MULTI_LAYER_IMAGE"  # Blender 5.0: set before file_format
    settings.file_format = "OPEN_EXR_MULTILAYER"
    settings.color_depth = "32"
    settings.exr_codec = "ZIP"
    if args.border:
        x0, x1, y0, y1 = (float(v) for v in args.border.split(","))
        scene.render.use_border = True
        scene.render.use_crop_to_border = True
        scene.render.border_min_x, scene.render.border_max_x = x0, x1
        scene.render.border_min_y, scene.render.border_max_y = y0, y1
    scene.render.filepath = args.out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--size", default="96x72")
    parser.add_argument("--border", default="")
    parser.add_argument("--no-passes", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sample-offset", type=int, default=0)
    parser.add_argument("--sample-subset", type=int, default=0)
    args = parser.parse_args()
    build_scene(args)
    bpy.ops.render.render(write_still=True)


if __name__ == "__main__":
    main()
