"""Build wanhe's demo and test Blender scenes procedurally with ``bpy``.

Run with a Python that has the ``bpy`` module (the project venv does)::

    .venv/bin/python examples/make_scenes.py KIND OUT.blend \\
        [--resolution WxH] [--samples N] [--frames A-B] [--percentage P] \\
        [--adaptive | --no-adaptive] [--marker PATH]

KIND is one of: demo, tiny, no-camera, eevee, missing-texture, interior, embedded-script,
story-rig (a talking head for story reels: object ``Mouth`` with shape keys ``MouthOpen`` and
``MouthWide``), growing (the table-top with glass balls that appear one by one over the
animation, so a frame costs more the later it is: for `bench/estimate.py`).

Every scene starts from an empty factory scene, is built entirely in code (no textures or other
external files; ``missing-texture`` only *references* a file that does not exist) and is saved
uncompressed and atomically. The same arguments always give the same scene. Cycles scenes render
on the CPU with Cycles' own denoiser off, because the farm denoises itself.

``build_scene()`` does the same from Python; since bpy state is global, call it in a fresh
process (for example ``python examples/make_scenes.py ...`` in a subprocess).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KINDS: tuple[str, ...] = (
    "demo",
    "tiny",
    "no-camera",
    "eevee",
    "missing-texture",
    "interior",
    "embedded-script",
    "story-rig",
    "growing",
)
DEFAULT_MARKER = Path("/tmp/wanhe_autoexec_marker")
MISSING_TEXTURE_PATH = "//textures/missing_wood.png"
EMBEDDED_TEXT_NAME = "evil.py"


@dataclass(frozen=True)
class Defaults:
    resolution: tuple[int, int]
    samples: int
    frames: tuple[int, int]
    adaptive: bool


_TINY = Defaults(resolution=(96, 64), samples=8, frames=(1, 3), adaptive=False)
DEFAULTS: dict[str, Defaults] = {
    "demo": Defaults(resolution=(640, 360), samples=64, frames=(1, 8), adaptive=True),
    "tiny": _TINY,
    "no-camera": _TINY,
    "eevee": _TINY,
    "missing-texture": _TINY,
    "interior": Defaults(resolution=(480, 270), samples=128, frames=(1, 2), adaptive=False),
    "embedded-script": _TINY,
    "story-rig": Defaults(resolution=(96, 64), samples=2, frames=(1, 48), adaptive=False),
    "growing": Defaults(resolution=(320, 180), samples=16, frames=(1, 24), adaptive=False),
}
GROWING_BALLS = 48

Vec3 = tuple[float, float, float]
RGB = tuple[float, float, float]


# --------------------------------------------------------------------------------------------
# Small bpy helpers (bpy is imported lazily so that argument errors never pay for it).
# --------------------------------------------------------------------------------------------


def _bpy() -> Any:
    import bpy

    return bpy


def _link(obj: Any) -> Any:
    _bpy().context.scene.collection.objects.link(obj)
    return obj


def _mesh_object(name: str, make: Any, *, smooth: bool = False) -> Any:
    """Create a mesh object whose geometry is filled by ``make(bm)`` (a bmesh callback)."""
    bpy = _bpy()
    import bmesh

    bm = bmesh.new()
    make(bm)
    mesh = bpy.data.meshes.new(name)
    bm.to_mesh(mesh)
    bm.free()
    if smooth:
        mesh.shade_smooth()
    else:
        mesh.shade_flat()
    return _link(bpy.data.objects.new(name, mesh))


def _cube(name: str, size: Vec3, location: Vec3) -> Any:
    import bmesh

    def make(bm: Any) -> None:
        bmesh.ops.create_cube(bm, size=1.0)
        for v in bm.verts:
            v.co.x *= size[0]
            v.co.y *= size[1]
            v.co.z *= size[2]

    obj = _mesh_object(name, make)
    obj.location = location
    return obj


def _plane(name: str, size: float, location: Vec3 = (0.0, 0.0, 0.0)) -> Any:
    import bmesh

    obj = _mesh_object(
        name, lambda bm: bmesh.ops.create_grid(bm, x_segments=1, y_segments=1, size=size / 2)
    )
    obj.location = location
    return obj


def _uv_sphere(name: str, radius: float, location: Vec3, segments: int = 32) -> Any:
    import bmesh

    obj = _mesh_object(
        name,
        lambda bm: bmesh.ops.create_uvsphere(
            bm, u_segments=segments, v_segments=segments // 2, radius=radius
        ),
        smooth=True,
    )
    obj.location = location
    return obj


def _ico_sphere(name: str, radius: float, location: Vec3, subdivisions: int = 1) -> Any:
    import bmesh

    obj = _mesh_object(
        name,
        lambda bm: bmesh.ops.create_icosphere(bm, subdivisions=subdivisions, radius=radius),
    )
    obj.location = location
    return obj


def _cylinder(name: str, radius: float, depth: float, location: Vec3, segments: int = 32) -> Any:
    import bmesh

    obj = _mesh_object(
        name,
        lambda bm: bmesh.ops.create_cone(
            bm,
            cap_ends=True,
            cap_tris=False,
            segments=segments,
            radius1=radius,
            radius2=radius,
            depth=depth,
        ),
        smooth=True,
    )
    obj.location = location
    return obj


def _monkey(name: str, location: Vec3, rotation_z: float, subsurf_levels: int) -> Any:
    import bmesh

    obj = _mesh_object(name, lambda bm: bmesh.ops.create_monkey(bm), smooth=True)
    obj.location = location
    obj.rotation_euler = (0.0, 0.0, rotation_z)
    if subsurf_levels > 0:
        mod = obj.modifiers.new("Subdivision", "SUBSURF")
        mod.levels = subsurf_levels
        mod.render_levels = subsurf_levels
    return obj


def _principled(
    name: str,
    color: RGB,
    *,
    roughness: float = 0.5,
    metallic: float = 0.0,
    transmission: float = 0.0,
    ior: float = 1.45,
    emission: RGB | None = None,
    emission_strength: float = 0.0,
) -> Any:
    bpy = _bpy()
    mat = bpy.data.materials.new(name)
    mat.diffuse_color = (*color, 1.0)  # viewport colour, also what workbench shows
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*color, 1.0)
    bsdf.inputs["Roughness"].default_value = roughness
    bsdf.inputs["Metallic"].default_value = metallic
    bsdf.inputs["Transmission Weight"].default_value = transmission
    bsdf.inputs["IOR"].default_value = ior
    if emission is not None:
        bsdf.inputs["Emission Color"].default_value = (*emission, 1.0)
        bsdf.inputs["Emission Strength"].default_value = emission_strength
    return mat


def _glass(name: str, color: RGB, *, roughness: float = 0.0, ior: float = 1.5) -> Any:
    """A material using a plain Glass BSDF (instead of the Principled BSDF)."""
    bpy = _bpy()
    mat = bpy.data.materials.new(name)
    mat.diffuse_color = (*color, 1.0)
    nodes = mat.node_tree.nodes
    nodes.remove(nodes["Principled BSDF"])
    glass = nodes.new("ShaderNodeBsdfGlass")
    glass.location = (-200.0, 300.0)
    glass.inputs["Color"].default_value = (*color, 1.0)
    glass.inputs["Roughness"].default_value = roughness
    glass.inputs["IOR"].default_value = ior
    mat.node_tree.links.new(glass.outputs["BSDF"], nodes["Material Output"].inputs["Surface"])
    return mat


def _assign(obj: Any, mat: Any) -> None:
    obj.data.materials.append(mat)


def _light(
    name: str,
    kind: str,
    location: Vec3,
    rotation: Vec3,
    energy: float,
    color: RGB = (1.0, 1.0, 1.0),
    **props: Any,
) -> Any:
    bpy = _bpy()
    data = bpy.data.lights.new(name, kind)
    data.energy = energy
    data.color = color
    for key, value in props.items():
        setattr(data, key, value)
    obj = _link(bpy.data.objects.new(name, data))
    obj.location = location
    obj.rotation_euler = rotation
    return obj


def _world(color: RGB, strength: float) -> None:
    bpy = _bpy()
    world = bpy.data.worlds.new("World")
    background = world.node_tree.nodes["Background"]
    background.inputs["Color"].default_value = (*color, 1.0)
    background.inputs["Strength"].default_value = strength
    world.color = color
    bpy.context.scene.world = world


def _look_at(location: Vec3, target: Vec3, previous: Any = None) -> Any:
    from mathutils import Vector

    direction = Vector(target) - Vector(location)
    euler = direction.to_track_quat("-Z", "Y").to_euler()
    if previous is not None:
        euler.make_compatible(previous)
    return euler


def _camera(
    frames: tuple[int, int],
    target: Vec3,
    *,
    radius: float,
    height: float,
    start_angle: float,
    sweep: float,
    lens: float,
) -> Any:
    """Add a camera that orbits ``target`` along an arc, keyframed over ``frames``."""
    bpy = _bpy()
    data = bpy.data.cameras.new("Camera")
    data.lens = lens
    data.clip_start = 0.05
    data.clip_end = 200.0
    cam = _link(bpy.data.objects.new("Camera", data))
    bpy.context.scene.camera = cam

    start, end = frames
    span = end - start
    n_keys = min(5, span + 1)
    previous = None
    for i in range(n_keys):
        t = i / (n_keys - 1) if n_keys > 1 else 0.0
        frame = start + round(t * span)
        angle = start_angle + t * sweep
        loc: Vec3 = (
            target[0] + radius * math.cos(angle),
            target[1] + radius * math.sin(angle),
            height + 0.3 * math.sin(math.pi * t),
        )
        rot = _look_at(loc, target, previous)
        previous = rot
        cam.location = loc
        cam.rotation_euler = rot
        cam.keyframe_insert(data_path="location", frame=frame)
        cam.keyframe_insert(data_path="rotation_euler", frame=frame)
    return cam


def _static_camera(location: Vec3, target: Vec3, lens: float) -> Any:
    bpy = _bpy()
    data = bpy.data.cameras.new("Camera")
    data.lens = lens
    cam = _link(bpy.data.objects.new("Camera", data))
    cam.location = location
    cam.rotation_euler = _look_at(location, target)
    bpy.context.scene.camera = cam
    return cam


# --------------------------------------------------------------------------------------------
# Scene contents
# --------------------------------------------------------------------------------------------


def _build_objects(*, cheap: bool) -> dict[str, Any]:
    """The shared 'table-top' scene of demo/tiny and friends. Returns the materials by name."""
    ground_mat = _principled("Ground", (0.55, 0.55, 0.52), roughness=0.8)
    red = _principled("RedPlastic", (0.8, 0.08, 0.05), roughness=0.35)
    blue = _principled("BlueMatte", (0.1, 0.25, 0.8), roughness=0.7)
    gold = _principled("Gold", (1.0, 0.76, 0.33), roughness=0.2, metallic=1.0)
    glass = _principled("Glass", (0.9, 0.97, 1.0), roughness=0.02, transmission=1.0, ior=1.45)
    glow = _principled(
        "Glow",
        (1.0, 0.55, 0.2),
        roughness=0.5,
        emission=(1.0, 0.55, 0.2),
        emission_strength=6.0,
    )

    ground = _plane("Ground", 20.0)
    _assign(ground, ground_mat)

    monkey = _monkey("Suzanne", (0.0, 0.0, 1.0), math.radians(-20), 1 if cheap else 2)
    monkey.rotation_euler = (math.radians(-10), 0.0, math.radians(-20))
    _assign(monkey, red)

    sphere = _uv_sphere("GoldSphere", 0.6, (1.8, 0.6, 0.6), segments=24 if cheap else 48)
    _assign(sphere, gold)

    cube = _cube("BlueCube", (0.9, 0.9, 0.9), (-1.7, 0.9, 0.45))
    cube.rotation_euler = (0.0, 0.0, math.radians(30))
    bevel = cube.modifiers.new("Bevel", "BEVEL")
    bevel.width = 0.06
    bevel.segments = 2 if cheap else 3
    _assign(cube, blue)

    glass_ball = _ico_sphere("GlassBall", 0.45, (0.9, -1.3, 0.45), subdivisions=2 if cheap else 3)
    glass_ball.data.shade_smooth()
    _assign(glass_ball, glass)

    lamp = _cylinder("GlowPillar", 0.15, 1.6, (-1.2, -1.0, 0.8), segments=16 if cheap else 32)
    _assign(lamp, glow)

    _light(
        "Sun",
        "SUN",
        (4.0, -4.0, 8.0),
        (math.radians(40), math.radians(10), math.radians(35)),
        3.0,
        (1.0, 0.95, 0.88),
        angle=math.radians(3.0),
    )
    _light(
        "KeyArea",
        "AREA",
        (-3.0, -3.0, 4.0),
        (math.radians(50), 0.0, math.radians(-45)),
        300.0,
        (0.85, 0.9, 1.0),
        size=2.0,
    )
    _light("RimPoint", "POINT", (1.5, 3.0, 2.5), (0.0, 0.0, 0.0), 150.0, (1.0, 0.8, 0.6))
    _world((0.05, 0.07, 0.12), 0.6)
    return {m.name: m for m in (ground_mat, red, blue, gold, glass, glow)}


def _build_interior(frames: tuple[int, int]) -> None:
    """A closed room with a window in the +X wall, lit from outside, with glass inside."""
    width, depth, height, wall = 6.0, 6.0, 3.0, 0.2
    hx, hy = width / 2, depth / 2
    plaster = _principled("Plaster", (0.8, 0.78, 0.74), roughness=0.9)
    floor_mat = _principled("Floor", (0.45, 0.3, 0.18), roughness=0.6)
    cloth = _principled("Cloth", (0.15, 0.35, 0.2), roughness=0.95)
    glass = _glass("WindowlessGlass", (0.95, 1.0, 0.97), roughness=0.0, ior=1.5)
    ground_mat = _principled("Outside", (0.3, 0.35, 0.25), roughness=0.9)

    def slab(name: str, size: Vec3, loc: Vec3, mat: Any) -> Any:
        obj = _cube(name, size, loc)
        _assign(obj, mat)
        return obj

    slab("Floor", (width + 2 * wall, depth + 2 * wall, wall), (0.0, 0.0, -wall / 2), floor_mat)
    slab(
        "Ceiling",
        (width + 2 * wall, depth + 2 * wall, wall),
        (0.0, 0.0, height + wall / 2),
        plaster,
    )
    slab("WallBack", (wall, depth, height), (-hx - wall / 2, 0.0, height / 2), plaster)
    slab("WallLeft", (width, wall, height), (0.0, hy + wall / 2, height / 2), plaster)
    slab("WallRight", (width, wall, height), (0.0, -hy - wall / 2, height / 2), plaster)
    # +X wall with a window opening 2.0 wide (y in [-1.5, 0.5]) and 1.4 high (z in [0.9, 2.3]).
    wx = hx + wall / 2
    y0, y1, z0, z1 = -1.5, 0.5, 0.9, 2.3
    slab("WallWindowLeft", (wall, hy - y1, height), (wx, (y1 + hy) / 2, height / 2), plaster)
    slab("WallWindowRight", (wall, y0 + hy, height), (wx, (y0 - hy) / 2, height / 2), plaster)
    slab("WallWindowSill", (wall, y1 - y0, z0), (wx, (y0 + y1) / 2, z0 / 2), plaster)
    slab(
        "WallWindowLintel",
        (wall, y1 - y0, height - z1),
        (wx, (y0 + y1) / 2, (z1 + height) / 2),
        plaster,
    )

    outside = _plane("OutsideGround", 60.0, (0.0, 0.0, -wall - 0.01))
    _assign(outside, ground_mat)

    table = slab("Table", (1.4, 1.0, 0.75), (-0.5, -0.3, 0.375), cloth)
    table.modifiers.new("Bevel", "BEVEL").width = 0.03
    monkey = _monkey("GlassSuzanne", (-0.5, -0.3, 1.15), math.radians(60), 2)
    monkey.scale = (0.6, 0.6, 0.6)
    _assign(monkey, glass)
    ball = _uv_sphere("GlassBall", 0.35, (0.6, 1.2, 0.35), segments=48)
    _assign(ball, glass)

    # Sun low through the window, onto the floor; an area light right outside fills the room.
    _light(
        "Sun",
        "SUN",
        (10.0, -2.0, 6.0),
        (0.0, math.radians(55), math.radians(10)),  # shines towards -X, in through the window
        5.0,
        (1.0, 0.93, 0.82),
        angle=math.radians(1.0),
    )
    _light(
        "WindowArea",
        "AREA",
        (hx + 1.0, (y0 + y1) / 2, (z0 + z1) / 2),
        (0.0, math.radians(90), 0.0),  # faces -X, into the room
        400.0,
        (0.8, 0.88, 1.0),
        shape="RECTANGLE",
        size=y1 - y0,
        size_y=z1 - z0,
    )
    _world((0.45, 0.6, 0.9), 1.0)

    # From the back corner opposite the window, looking at the window and the glass; the arc
    # stays inside the room (|x|, |y| < 2.6 for these angles).
    _camera(
        frames,
        (0.5, -0.5, 0.9),
        radius=3.5,
        height=1.6,
        start_angle=math.radians(135),
        sweep=math.radians(15),
        lens=20.0,
    )


def _add_growing_balls(glass: Any, frames: tuple[int, int]) -> None:
    """Glass balls on the table that appear one by one over ``frames`` (keyframed
    ``hide_render``): the first frame has none, the last all of them, so the cost per frame
    grows strongly over the animation."""
    start, end = frames
    for i in range(GROWING_BALLS):
        row, column = divmod(i, 8)
        ball = _ico_sphere(f"Ball{i:02d}", 0.3, (-2.8 + 0.7 * column, -3.2 + 0.6 * row, 0.3),
                           subdivisions=2)
        ball.data.shade_smooth()
        _assign(ball, glass)
        appear = start + 1 + (end - start) * i // GROWING_BALLS
        ball.hide_render = True
        ball.keyframe_insert("hide_render", frame=start)
        ball.hide_render = False
        ball.keyframe_insert("hide_render", frame=appear)


def _add_missing_texture(material: Any) -> None:
    """Drive ``material``'s base colour from an image file that does not exist."""
    bpy = _bpy()
    # images.load() refuses a missing file, so make a datablock and point it at the path.
    image = bpy.data.images.new("missing_wood.png", width=4, height=4)
    image.source = "FILE"
    image.filepath = MISSING_TEXTURE_PATH
    nodes = material.node_tree.nodes
    tex = nodes.new("ShaderNodeTexImage")
    tex.name = tex.label = "MissingWood"
    tex.location = (-400.0, 300.0)
    tex.image = image
    material.node_tree.links.new(
        tex.outputs["Color"], nodes["Principled BSDF"].inputs["Base Color"]
    )


def _add_embedded_script(marker: Path) -> None:
    bpy = _bpy()
    text = bpy.data.texts.new(EMBEDDED_TEXT_NAME)
    text.write(
        "# wanhe test fixture: this must NEVER run. If it does, it leaves a marker file.\n"
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('auto-executed\\n')\n"
    )
    text.use_module = True  # 'Register': runs on load when auto-exec of scripts is allowed


STORY_RIG_OBJECT = "Mouth"
STORY_RIG_KEYS = ("MouthOpen", "MouthWide")


def _build_story_rig() -> None:
    """A talking head for story reels, seen face-on by an orthographic camera: a pale face, two
    eyes, and a dark mouth (object ``Mouth``) whose shape keys ``MouthOpen`` (taller) and
    ``MouthWide`` (wider) a lip-sync task keyframes. Closed, the mouth is a thin line."""
    bpy = _bpy()
    _world((0.35, 0.4, 0.5), 1.0)
    face = _cube("Face", (2.4, 0.2, 2.4), (0.0, 0.0, 0.0))
    _assign(face, _principled("Skin", (0.85, 0.7, 0.55), emission=(0.85, 0.7, 0.55),
                              emission_strength=0.6))
    eye_mat = _principled("Eye", (0.02, 0.02, 0.05))
    for name, x in (("EyeL", -0.45), ("EyeR", 0.45)):
        eye = _cube(name, (0.25, 0.05, 0.25), (x, -0.13, 0.45))
        _assign(eye, eye_mat)
    mouth = _cube(STORY_RIG_OBJECT, (0.9, 0.05, 0.06), (0.0, -0.13, -0.55))
    _assign(mouth, _principled("Lips", (0.25, 0.0, 0.02), emission=(0.2, 0.0, 0.02),
                               emission_strength=0.3))
    mouth.shape_key_add(name="Basis", from_mix=False)
    opened = mouth.shape_key_add(name=STORY_RIG_KEYS[0], from_mix=False)
    for point in opened.data:
        point.co.z *= 10.0  # 0.06 -> 0.6 tall
    wide = mouth.shape_key_add(name=STORY_RIG_KEYS[1], from_mix=False)
    for point in wide.data:
        point.co.x *= 1.5
    _light("Key", "SUN", (0.0, -5.0, 5.0), (math.radians(45), 0.0, 0.0), 2.0)
    cam = _static_camera((0.0, -8.0, 0.0), (0.0, 0.0, 0.0), 50.0)
    cam.data.type = "ORTHO"
    cam.data.ortho_scale = 3.0
    bpy.context.view_layer.update()


def _render_settings(
    kind: str,
    *,
    resolution: tuple[int, int],
    samples: int,
    frames: tuple[int, int],
    percentage: int,
    adaptive: bool,
) -> None:
    scene = _bpy().context.scene
    render = scene.render
    render.engine = "BLENDER_EEVEE" if kind == "eevee" else "CYCLES"
    render.resolution_x, render.resolution_y = resolution
    render.resolution_percentage = percentage
    render.fps = 24
    render.fps_base = 1.0
    render.film_transparent = False
    render.use_persistent_data = False
    render.filepath = f"//render/{kind.replace('-', '_')}_####"
    render.image_settings.file_format = "PNG"
    render.image_settings.color_mode = "RGBA"
    scene.frame_start, scene.frame_end = frames
    scene.frame_current = frames[0]

    cycles = scene.cycles
    cycles.device = "CPU"
    cycles.samples = samples
    cycles.use_adaptive_sampling = adaptive
    cycles.adaptive_threshold = 0.05  # 0.01 (the default) saves little time at 64 samples
    cycles.use_denoising = False
    # Modest light paths keep frames cheap; caustics off removes most fireflies from the glass.
    cycles.max_bounces = 8
    cycles.diffuse_bounces = 3
    cycles.glossy_bounces = 3
    cycles.transmission_bounces = 6
    cycles.transparent_max_bounces = 4
    cycles.volume_bounces = 0
    cycles.caustics_reflective = False
    cycles.caustics_refractive = False
    cycles.preview_samples = min(samples, 32)
    cycles.seed = 0
    cycles.use_animated_seed = False
    if kind == "eevee":
        scene.eevee.taa_render_samples = samples


def build_scene(
    kind: str,
    out: Path,
    *,
    resolution: tuple[int, int] | None = None,
    samples: int | None = None,
    frames: tuple[int, int] | None = None,
    percentage: int | None = None,
    adaptive: bool | None = None,
    marker: Path | None = None,
) -> Path:
    """Build scene ``kind`` and save it to ``out`` (atomically). Returns the resolved path.

    ``None`` means the kind's default. Run it in a fresh process: bpy state is global and this
    resets it to an empty factory scene first.
    """
    if kind not in DEFAULTS:
        raise ValueError(f"unknown kind {kind!r}; choose one of: {', '.join(KINDS)}")
    d = DEFAULTS[kind]
    resolution = resolution or d.resolution
    samples = d.samples if samples is None else samples
    frames = frames or d.frames
    percentage = 100 if percentage is None else percentage
    adaptive = d.adaptive if adaptive is None else adaptive
    marker = marker or DEFAULT_MARKER
    if min(resolution) < 1 or samples < 1 or not 1 <= percentage <= 100:
        raise ValueError("resolution, samples and percentage must be positive (percentage <= 100)")
    if frames[1] < frames[0]:
        raise ValueError(f"frame range {frames[0]}-{frames[1]} ends before it starts")

    bpy = _bpy()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.name = f"wanhe_{kind.replace('-', '_')}"

    if kind == "interior":
        _build_interior(frames)
    elif kind == "story-rig":
        _build_story_rig()
    else:
        materials = _build_objects(cheap=kind != "demo")
        if kind != "no-camera":
            _camera(
                frames,
                (0.0, 0.0, 0.7),
                radius=7.5,
                height=3.0,
                start_angle=math.radians(-110),
                sweep=math.radians(40),
                lens=35.0,
            )
        if kind == "missing-texture":
            _add_missing_texture(materials["Ground"])
        if kind == "embedded-script":
            _add_embedded_script(Path(marker))
        if kind == "growing":
            _add_growing_balls(materials["Glass"], frames)

    _render_settings(
        kind,
        resolution=resolution,
        samples=samples,
        frames=frames,
        percentage=percentage,
        adaptive=adaptive,
    )

    out = Path(out).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp-{os.getpid()}.blend")
    try:
        result = bpy.ops.wm.save_as_mainfile(filepath=str(tmp), compress=False, copy=True)
        if "FINISHED" not in result:
            raise RuntimeError(f"saving {tmp} failed: {result}")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
        # Blender may leave a '.blend1' backup next to the temporary file.
        tmp.with_name(tmp.name + "1").unlink(missing_ok=True)
    return out


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _parse_resolution(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"expected WxH such as 640x360, got {text!r}")
    w, h = (int(p) for p in parts)
    if w < 1 or h < 1 or w > 65536 or h > 65536:
        raise argparse.ArgumentTypeError(f"resolution {text!r} out of range (1..65536)")
    return w, h


def _parse_frames(text: str) -> tuple[int, int]:
    parts = text.split("-")
    try:
        if len(parts) == 1:
            a = b = int(parts[0])
        elif len(parts) == 2:
            a, b = int(parts[0]), int(parts[1])
        else:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected frames A-B such as 1-8, got {text!r}") from None
    if a < 0 or b < a:
        raise argparse.ArgumentTypeError(f"frame range {text!r} must satisfy 0 <= A <= B")
    return a, b


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _percentage(text: str) -> int:
    value = _positive_int(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"percentage must be 1..100, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="make_scenes.py",
        description="Build one of wanhe's procedural Blender scenes and save it as a .blend.",
    )
    p.add_argument("kind", choices=KINDS, metavar="KIND", help="one of: " + ", ".join(KINDS))
    p.add_argument("out", type=Path, metavar="OUT.blend", help="where to save the scene")
    p.add_argument("--resolution", type=_parse_resolution, metavar="WxH")
    p.add_argument("--samples", type=_positive_int, metavar="N")
    p.add_argument("--frames", type=_parse_frames, metavar="A-B")
    p.add_argument("--percentage", type=_percentage, metavar="P")
    p.add_argument(
        "--adaptive",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Cycles adaptive sampling (default: on for demo, off otherwise)",
    )
    p.add_argument(
        "--marker",
        type=Path,
        default=None,
        help=f"embedded-script only: file the embedded script would write ({DEFAULT_MARKER})",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)  # exits 2 with a message on bad arguments
    if args.out.suffix.lower() != ".blend":
        parser.error(f"OUT must end in .blend, got {str(args.out)!r}")
    if args.out.exists() and args.out.is_dir():
        parser.error(f"OUT {str(args.out)!r} is a directory")
    try:
        import bpy  # noqa: F401
    except ImportError:
        print(
            "make_scenes.py: error: this script needs the 'bpy' module "
            "(run it with the project venv: .venv/bin/python)",
            file=sys.stderr,
        )
        return 2
    try:
        path = build_scene(
            args.kind,
            args.out,
            resolution=args.resolution,
            samples=args.samples,
            frames=args.frames,
            percentage=args.percentage,
            adaptive=args.adaptive,
            marker=args.marker,
        )
    except (ValueError, OSError) as exc:
        print(f"make_scenes.py: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
