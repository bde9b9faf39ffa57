"""In an artist's Blender (see tests/addon/_blender.py), against a real `wanhe serve`: build the
demo scene (tiny size and samples) with an external texture, install the add-on zip into a
clean user folder, and drive it as an artist would — wrong token, a server that is not
running, a project out of budget, then Test connection, Submit (paused), Resume, watch the job
to done, Download outputs (and again after cutting a file short), Show last frame.

A bpy module has no event loop, so bpy.app.timers never fire here: the script calls the
function the add-on's timer calls (the runner's pump) while it waits.

argv: ZIP WORK EXAMPLES SERVER TOKEN BAD_TOKEN BROKE_TOKEN DEAD_URL
"""

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import bpy

zip_path, work, examples = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
server, token, bad_token, broke_token, dead_url = sys.argv[4:9]
sys.path.insert(0, examples)
from make_scenes import build_scene  # noqa: E402

shot = work / "shot"
blend = shot / "demo.blend"
build_scene("demo", blend, resolution=(48, 32), samples=4, frames=(1, 3), adaptive=False)

# the extension, into the clean user folder (before opening the scene: building it reset
# the preferences, which would disable an extension installed earlier)
assert bpy.ops.extensions.package_install_files(
    filepath=str(zip_path), repo="user_default", enable_on_install=True) == {"FINISHED"}
module = "bl_ext.user_default.wanhe_farm"
state = sys.modules[module + ".state"].STATE
prefs = bpy.context.preferences.addons[module].preferences

bpy.ops.wm.open_mainfile(filepath=str(blend), load_ui=False, use_scripts=False)
# an external texture: every surface emits a red PNG saved beside the scene
(shot / "tex").mkdir(parents=True, exist_ok=True)
image = bpy.data.images.new("red", 4, 4)
image.pixels[:] = [1.0, 0.0, 0.0, 1.0] * 16
image.filepath_raw = str(shot / "tex" / "red.png")
image.file_format = "PNG"
image.save()
image.filepath = "//tex/red.png"
for material in bpy.data.materials:
    if not material.use_nodes:
        continue
    nodes, links = material.node_tree.nodes, material.node_tree.links
    for node in list(nodes):
        if node.type != "OUTPUT_MATERIAL":
            nodes.remove(node)
    tex = nodes.new("ShaderNodeTexImage")
    tex.image = image
    emit = nodes.new("ShaderNodeEmission")
    links.new(tex.outputs["Color"], emit.inputs["Color"])
    out_node = next(n for n in nodes if n.type == "OUTPUT_MATERIAL")
    links.new(emit.outputs["Emission"], out_node.inputs["Surface"])
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.render.filepath = "//render/shot_"
props = scene.wanhe
props.use_frames, props.frames, props.tiles = True, "1-2", "2x1"
props.quality_mode, props.samples = "SAMPLES", 4
props.denoise, props.video, props.submit_paused, props.priority = True, True, True, 60
# unsaved changes: Submit saves them first (save_first defaults to on)

out = {"reports": {}}


def wait(seconds=60.0):
    assert state.runner.wait(seconds), "the add-on's background work did not finish"


def last_report():
    return state.reports[-1] if state.reports else None


def submit_with(url, key):
    prefs.server_url, prefs.token = url, key
    state.reports.clear()
    result = bpy.ops.wanhe.submit()
    wait()
    return sorted(result), last_report()


out["reports"]["bad_token"] = submit_with(server, bad_token)
out["reports"]["dead_server"] = submit_with(dead_url, token)
prefs.server_url = dead_url
bpy.ops.wanhe.test_connection()
wait()
out["reports"]["dead_connection"] = last_report()
out["reports"]["broke"] = submit_with(server, broke_token)

prefs.server_url, prefs.token = server, token
bpy.ops.wanhe.test_connection()
wait()
out["connection"] = list(state.connection)
state.reports.clear()
t0 = time.monotonic()
out["submit"] = sorted(bpy.ops.wanhe.submit())
out["operator_s"] = time.monotonic() - t0  # the operator returns; the work goes on
out["busy_after_operator"] = state.runner.busy("submit")
wait(120)
out["submit_s"] = time.monotonic() - t0
out["submit_reports"] = list(state.reports)
job_id = int(state.last_job["id"])
out["job_id"], out["url"] = job_id, state.last_job["url"]
bpy.ops.wanhe.refresh_jobs()
wait()
out["state_after_submit"] = state.job(job_id)["state"]
time.sleep(2)  # a paused job starts nothing
bpy.ops.wanhe.refresh_jobs()
wait()
out["state_after_wait"] = state.job(job_id)["state"]
out["done_while_paused"] = state.job(job_id)["tasks"].get("done", 0)
bpy.ops.wanhe.job_control(job_id=job_id, action="resume")
wait()
out["resume_report"] = last_report()
deadline = time.monotonic() + 240
while time.monotonic() < deadline:
    bpy.ops.wanhe.refresh_jobs()
    wait()
    job = state.job(job_id)
    if job["state"] in ("done", "failed", "cancelled"):
        break
    time.sleep(1.0)
out["final"] = state.job(job_id)
# what the add-on's timer does: a listing that is due starts by itself, off the main thread
state.jobs_at = 0.0
ops = sys.modules[module + ".ops"]
out["tick"] = ops.tick()
out["tick_started_refresh"] = state.runner.busy("jobs")
wait()
out["tick_listed"] = state.jobs_at > 0 and state.job(job_id) is not None
bpy.ops.wanhe.refresh_jobs()  # a finished job of this file: the panel estimates from it
wait()
wait()
out["plan_lines"] = sys.modules[module + ".ui"]._plan_lines(bpy.context)[0]
state.reports.clear()
bpy.ops.wanhe.download_outputs(job_id=job_id)
wait(120)
out["download_report"] = last_report()
folder = shot / "render"


def hashes():
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


out["local"] = hashes()
# cut a frame short, as an interrupted download leaves it: the next one resumes it
exr = folder / "frame_0001.exr"
data = exr.read_bytes()
(folder / "frame_0001.exr.wanhe-part").write_bytes(data[: len(data) // 2])
exr.unlink()
bpy.ops.wanhe.download_outputs(job_id=job_id)
wait(120)
out["resume_download_report"] = last_report()
out["local_after_resume"] = hashes()
bpy.ops.wanhe.show_last_frame(job_id=job_id)
wait()
out["last_frame_report"] = last_report()
shown = bpy.data.images.get(f"wanhe job {job_id}")
out["last_frame_size"] = list(shown.size) if shown else None
out["blend_has_token"] = token.encode() in blend.read_bytes()
# the same scene again, after the first job: only what changed is sent; cancel it, retry
# it, cancel it again
state.reports.clear()
props.after_job = job_id
bpy.ops.wanhe.submit()
wait(120)
out["again_report"] = last_report()
again = int(state.last_job["id"])
bpy.ops.wanhe.refresh_jobs()
wait()
out["again_depends_on"] = state.job(again)["depends_on"]
actions = []
for action in ("cancel", "retry", "cancel"):
    bpy.ops.wanhe.job_control(job_id=again, action=action)
    wait()
    actions.append(last_report())
bpy.ops.wanhe.job_control(job_id=again, action="resume")  # not paused: the farm says no
wait()
actions.append(last_report())
out["actions"] = actions
Path(os.environ["WANHE_TEST_RESULT"]).write_text(json.dumps(out))
