"""The add-on's Blender properties: preferences (server, token) and the job settings a scene
keeps. The token lives only in the add-on's preferences (Blender's userpref.blend), never in a
scene's .blend.

No `from __future__ import annotations` here: Blender reads these annotations as objects.
"""

from typing import Any

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, PointerProperty, StringProperty

PACKAGE = __package__ or "wanhe_farm"

QUALITY_MODES = [
    ("SCENE", "Scene samples", "render with the scene's own sample count"),
    ("SAMPLES", "Samples", "render with this many samples"),
    ("PRESET", "Quality preset", "let the farm pick samples for a quality level"),
]
QUALITY_PRESETS = [
    ("draft", "Draft", "30 dB: layout, light and motion read clearly"),
    ("preview", "Preview", "34 dB: clean at a glance, for review"),
    ("final", "Final", "38 dB: clean for delivery"),
]


class WanhePreferences(bpy.types.AddonPreferences):
    bl_idname = PACKAGE

    server_url: StringProperty(
        name="Server URL", default="http://127.0.0.1:8640",
        description="the wanhe farm's address (wanhe serve)",
    )
    token: StringProperty(
        name="API token", subtype="PASSWORD", default="",
        description="the project's token (wanhe project create / wanhe token create); kept in "
        "Blender's preferences, never in a .blend",
    )

    def draw(self, context: Any) -> None:
        from . import ui

        ui.draw_preferences(self, self.layout, context)


class WanheJobSettings(bpy.types.PropertyGroup):
    job_name: StringProperty(name="Job name", default="",
                             description="the job's name on the farm; empty: the file's name")
    use_frames: BoolProperty(name="Override frames", default=False,
                             description="render other frames than the scene's range")
    frames: StringProperty(name="Frames", default="",
                           description="e.g. 1-240, 1,5,10-20 or 1-240x2 (every 2nd frame)")
    tiles: StringProperty(name="Tiles", default="1x1",
                          description="tiles per frame, COLUMNSxROWS (1x1: whole frames)")
    sample_chunks: IntProperty(name="Sample chunks", default=1, min=1, max=4096,
                               description="split each frame's samples over this many tasks")
    split: IntProperty(name="Split", default=0, min=0, max=4096,
                       description="spread each frame over N workers: the farm picks tiles, "
                       "sample chunks or both (0: use Tiles and Sample chunks as set)")
    quality_mode: EnumProperty(name="Quality", items=QUALITY_MODES, default="SCENE")
    samples: IntProperty(name="Samples", default=64, min=1, max=1_000_000)
    quality: EnumProperty(name="Preset", items=QUALITY_PRESETS, default="preview")
    denoise: BoolProperty(name="Denoise", default=True,
                          description="denoise each assembled frame (OIDN with albedo, normal)")
    qc: BoolProperty(name="Quality check", default=False,
                     description="check every frame (fireflies, black or NaN pixels, seams) and "
                     "re-render it once if it fails")
    video: BoolProperty(name="Preview video", default=False,
                        description="an MP4 of the frames and a contact sheet")
    priority: IntProperty(name="Priority", default=50, min=0, max=100,
                          description="0-100, higher runs first")
    submit_paused: BoolProperty(name="Submit paused", default=False,
                                description="queue the job paused; resume it from the Jobs panel")
    after_job: IntProperty(name="After job", default=0, min=0,
                           description="wait for this job id to finish first (0: start at once)")


CLASSES = (WanhePreferences, WanheJobSettings)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.wanhe = PointerProperty(type=WanheJobSettings)


def unregister() -> None:
    del bpy.types.Scene.wanhe
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
