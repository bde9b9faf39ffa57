"""Screenshots of the Blender add-on's panels for docs/addon.md, from a real Blender UI.

Run in a Blender with a display (Xvfb will do) with the add-on installed (an extension, or
unzipped into BLENDER_USER_SCRIPTS/addons as a legacy add-on) and a farm to talk to::

    SHOTS=docs/images WANHE_SERVER=http://127.0.0.1:8640 WANHE_TOKEN=... \\
    BLENDER_USER_SCRIPTS=/tmp/scripts xvfb-run -a -s "-screen 0 1600x1000x24" \\
        blender --factory-startup --window-geometry 0 0 1600 1000 \\
        --python examples/addon_screenshots.py

It sets up the startup scene (Cycles, 10 %, frames 1-48x2 in 2x2 tiles), saves it as
$SHOTS/../sc030_shot.blend, tests the connection, shows the farm's latest frame of job
$LAST_JOB in an Image Editor, submits the scene paused, and saves addon-submitting.png (the
status bar while it uploads), addon-window.png, addon-jobs.png and addon-preferences.png,
then quits.
"""

import os
import sys
import tempfile
import time
from typing import Any

import addon_utils  # type: ignore[import-not-found]
import bpy  # type: ignore[import-not-found]

OUT = os.environ.get("SHOTS", "docs/images")
NAME = next((n for n in sys.modules if n.endswith("wanhe_farm")), "wanhe_farm")
if NAME not in bpy.context.preferences.addons:
    addon_utils.enable(NAME, default_set=True)
state = sys.modules[NAME + ".state"].STATE
tick = sys.modules[NAME + ".ops"].tick
prefs = bpy.context.preferences.addons[NAME].preferences
prefs.server_url = os.environ["WANHE_SERVER"]
prefs.token = os.environ["WANHE_TOKEN"]

scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.samples = 16
scene.render.resolution_percentage = 10
scene.render.filepath = "//render/sc030_"
scene.frame_end = 48
job = scene.wanhe
job.use_frames, job.frames, job.tiles = True, "1-48x2", "2x2"
job.video, job.qc, job.priority, job.submit_paused = True, True, 70, True
bpy.ops.wm.save_as_mainfile(filepath=os.path.join(tempfile.mkdtemp(), "sc030_shot.blend"))

window = bpy.context.window_manager.windows[0]
big = max(window.screen.areas, key=lambda a: a.width * a.height)
big.type = "PROPERTIES"
side = next(a for a in window.screen.areas if a.type == "OUTLINER")
side.type = "IMAGE_EDITOR"
steps: list[float] = []


def over(area: Any, win: Any = window) -> Any:
    region = next(r for r in area.regions if r.type == "WINDOW")
    return bpy.context.temp_override(window=win, area=area, region=region)


def shot(name: str, area: Any = None, win: Any = window) -> None:
    with over(area or big, win):
        if area is None:
            bpy.ops.screen.screenshot(filepath=os.path.join(OUT, name))
        else:
            bpy.ops.screen.screenshot_area(filepath=os.path.join(OUT, name))


def scroll(times: int) -> None:
    with over(big):
        for _ in range(times):
            bpy.ops.view2d.scroll_down()


def step() -> float | None:
    n = len(steps)
    steps.append(time.time())
    tick()
    if n == 0:
        big.spaces.active.context = "OUTPUT"
        bpy.ops.wanhe.test_connection()
        bpy.ops.wanhe.refresh_jobs()
        return 2.0
    if n == 1:
        bpy.ops.wanhe.show_last_frame(job_id=int(os.environ.get("LAST_JOB", "1")))
        with over(big):
            bpy.ops.wanhe.submit()
        return 1.0
    if n == 2 and state.runner.busy("submit"):
        shot("addon-submitting.png")  # the last one taken while it uploads stays
        steps.pop()
        return 0.5
    if n == 2:
        bpy.ops.wanhe.refresh_jobs()
        return 2.0
    if n == 3:
        scroll(12)
        return 1.0
    if n == 4:
        shot("addon-window.png")
        scroll(20)
        return 1.0
    if n == 5:
        shot("addon-jobs.png", big)
        bpy.context.preferences.active_section = "ADDONS"
        bpy.context.window_manager.addon_search = "wanhe"
        bpy.ops.screen.userpref_show()
        return 1.0
    if n == 6:
        for mod in addon_utils.modules(refresh=False):  # the preferences' own records
            if mod.__name__ == NAME:
                addon_utils.module_bl_info(mod)["show_expanded"] = True
        for win in bpy.context.window_manager.windows:
            for area in win.screen.areas:
                area.tag_redraw()
        return 1.5
    if n == 7:
        prefs_window = bpy.context.window_manager.windows[-1]
        shot("addon-preferences.png", prefs_window.screen.areas[0], prefs_window)
        return 0.5
    print("wanhe reports:", state.reports)
    bpy.ops.wm.quit_blender()
    return None


bpy.app.timers.register(step, first_interval=2.0)
