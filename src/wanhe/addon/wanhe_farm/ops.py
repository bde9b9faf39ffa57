"""The add-on's operators: test the connection, submit, refresh, control jobs, show the last
frame, download outputs. Each reads Blender's data on the main thread, hands plain values to
a thread (`background.Runner`), and reports the outcome in one line when the timer applies it.

No `from __future__ import annotations` here: Blender reads operator annotations as objects.
"""

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty

from . import checks
from .background import ProgressFn
from .download import download_outputs
from .farm import Farm, FarmError
from .plan import PlanError, make_plan, options_body
from .props import PACKAGE
from .state import STATE
from .submit import (
    SubmitRequest,
    Submitted,
    connection_lines,
    estimate,
    estimate_lines,
    submit,
)

JOB_ACTIONS = [
    ("cancel", "Cancel", "stop the job: running tasks are stopped, nothing new starts"),
    ("pause", "Pause", "running tasks finish, no new ones start"),
    ("resume", "Resume", "let a paused job go on"),
    ("retry", "Retry failed", "run the failed and cancelled tasks again"),
]


# ---------------------------------------------------------------------- helpers


def preferences(context: Any = None) -> Any:
    context = context or bpy.context
    addon = context.preferences.addons.get(PACKAGE)
    return None if addon is None else addon.preferences


def farm_from_preferences(context: Any = None) -> Farm:
    """The farm the preferences name (WANHE_SERVER / WANHE_TOKEN fill what they leave empty)."""
    prefs = preferences(context)
    server = (prefs.server_url if prefs else "") or os.environ.get("WANHE_SERVER", "")
    token = (prefs.token if prefs else "") or os.environ.get("WANHE_TOKEN", "")
    return Farm(server, token)


def report(level: str, text: str) -> None:
    """A one-line Blender report from outside an operator (the timer applying a result)."""
    STATE.report(level, text)
    try:
        bpy.ops.wanhe.report(level=level, message=text)
    except Exception:  # no context to report in (shutting down): the line is kept above
        print(f"wanhe: {level}: {text}")


def _fail(op: Any, text: str) -> set[str]:
    STATE.report("ERROR", text)
    op.report({"ERROR"}, text)
    return {"CANCELLED"}


def redraw(status_bar: bool = False) -> None:
    """Redraw the add-on's panels; with `status_bar`, the status bar too (a global area, not
    in screen.areas: clearing the workspace's status text is what redraws it)."""
    wm = getattr(bpy.context, "window_manager", None)
    for window in getattr(wm, "windows", []) if wm else []:
        for area in window.screen.areas:
            if area.type in ("PROPERTIES", "IMAGE_EDITOR", "PREFERENCES"):
                area.tag_redraw()
        if status_bar and hasattr(bpy.context, "temp_override"):
            try:
                with bpy.context.temp_override(window=window):
                    window.workspace.status_text_set_internal(None)
            except Exception:  # no status bar to redraw (background mode)
                pass


def output_folder(scene: Any) -> Path:
    """The folder the scene's output path names (Output Properties › Output)."""
    raw = bpy.path.abspath(scene.render.filepath or "//render/")
    return Path(raw) if raw.endswith(("/", "\\")) else Path(raw).parent


# ---------------------------------------------------------------------- operators


class WANHE_OT_report(bpy.types.Operator):
    """Show a line from the add-on's background work as a Blender report"""

    bl_idname = "wanhe.report"
    bl_label = "wanhe report"
    bl_options = {"INTERNAL"}  # noqa: RUF012 (Blender reads it as is)

    level: EnumProperty(items=[(k, k.title(), "") for k in ("INFO", "WARNING", "ERROR")])
    message: StringProperty()

    def execute(self, context: Any) -> set[str]:
        self.report({self.level}, self.message)
        return {"FINISHED"}


class WANHE_OT_test_connection(bpy.types.Operator):
    """Ask the farm which project the token belongs to and how many cores and GPUs are free"""

    bl_idname = "wanhe.test_connection"
    bl_label = "Test connection"

    def execute(self, context: Any) -> set[str]:
        try:
            farm = farm_from_preferences(context)
        except FarmError as exc:
            return _fail(self, str(exc))
        STATE.connection = ["asking the farm…"]

        def done(lines: list[str]) -> None:
            STATE.connection, STATE.connection_ok = lines, True
            report("INFO", "; ".join(lines[1:]) or lines[0])

        def failed(text: str) -> None:
            STATE.connection, STATE.connection_ok = [text], False
            report("ERROR", text)

        STATE.runner.start("connection", lambda progress: connection_lines(farm),
                           text="testing the connection", on_done=done, on_error=failed)
        return {"FINISHED"}


def _plan_settings(context: Any) -> Any:
    from .plan import Settings

    scene = context.scene
    props = scene.wanhe
    render = scene.render
    scale = render.resolution_percentage / 100.0
    scene_samples = None
    if render.engine == "CYCLES" and hasattr(scene, "cycles"):
        scene_samples = int(scene.cycles.samples)
    return Settings(
        scene_start=scene.frame_start, scene_end=scene.frame_end, scene_step=scene.frame_step,
        frames=props.frames if props.use_frames else "", tiles=props.tiles,
        sample_chunks=props.sample_chunks, split=props.split, quality_mode=props.quality_mode,
        samples=props.samples, quality=props.quality, scene_samples=scene_samples,
        denoise=props.denoise, qc=props.qc, video=props.video,
        width=max(1, int(render.resolution_x * scale)),
        height=max(1, int(render.resolution_y * scale)), engine=render.engine,
    )


def _checked_plan(context: Any, *, allow_missing: bool) -> Any:
    """(settings, plan) of the scene as the panel would send it, or the first problem (one
    line): what Submit and Estimate both check before they pack anything."""
    problems = checks.scene_problems(context.scene, allow_missing=allow_missing)
    if problems:
        return str(problems[0])
    try:
        settings = _plan_settings(context)
        plan = make_plan(settings)
    except PlanError as exc:
        return str(exc)
    if plan.problems:
        return str(plan.problems[0])
    return settings, plan


class WANHE_OT_submit(bpy.types.Operator):
    """Check the scene, pack it with its files, upload what the farm lacks and queue the job"""

    bl_idname = "wanhe.submit"
    bl_label = "Submit to farm"

    save_first: BoolProperty(name="Save the changes first", default=True,
                             description="the farm renders the file as saved on disk")
    allow_missing: BoolProperty(name="Submit with the missing files", default=False,
                                description="they render pink or empty")

    @classmethod
    def poll(cls, context: Any) -> bool:
        return not STATE.runner.busy("submit")

    def invoke(self, context: Any, event: Any) -> set[str]:
        if bpy.data.is_dirty or checks.missing_files():
            shown: set[str] = context.window_manager.invoke_props_dialog(self, width=520)
            return shown
        return self.execute(context)

    def draw(self, context: Any) -> None:
        layout = self.layout
        if bpy.data.is_dirty:
            layout.label(text="The scene has unsaved changes.", icon="ERROR")
            layout.prop(self, "save_first")
        missing = checks.missing_files()
        if missing:
            layout.label(text=f"{len(missing)} file(s) the scene uses are missing:", icon="ERROR")
            for name, path in missing[:8]:
                layout.label(text=f"{name}: {path}")
            layout.prop(self, "allow_missing")

    def execute(self, context: Any) -> set[str]:
        scene = context.scene
        checked = _checked_plan(context, allow_missing=self.allow_missing)
        if isinstance(checked, str):
            return _fail(self, checked)
        settings, plan = checked
        if bpy.data.is_dirty:
            if not self.save_first:
                return _fail(self, "the scene has unsaved changes — save it (Ctrl S) or "
                             "let Submit save it first")
            bpy.ops.wm.save_mainfile()
        try:
            farm = farm_from_preferences(context)
        except FarmError as exc:
            return _fail(self, str(exc))
        props = scene.wanhe
        name = props.job_name.strip() or bpy.path.basename(bpy.data.filepath)
        request = SubmitRequest(
            blend=bpy.data.filepath, name=name, options=options_body(settings),
            priority=props.priority, paused=props.submit_paused,
            after=[props.after_job] if props.after_job else [],
        )

        def work(progress: ProgressFn) -> Submitted:
            return submit(farm, request, progress)

        def done(result: Submitted) -> None:
            STATE.last_job = {"id": result.job_id, "url": result.url, "name": name}
            STATE.jobs_at = 0.0  # list it now
            for path in result.missing[:3]:
                report("WARNING", f"missing on this machine, renders pink or empty: {path}")
            for ref in result.absolute[:3]:
                report("WARNING", f"{ref} is named by an absolute path; the farm resolves only "
                       "relative (//) paths — File › External Data › Make Paths Relative")
            for warning in result.job.get("warnings", [])[:3]:
                report("WARNING", f"farm: {warning}")
            report("INFO", f"job {result.job_id} {result.job.get('state')}: "
                   f"{len(result.job.get('frames', []))} frame(s), {result.files} file(s), "
                   f"{result.sent_files} uploaded ({result.sent_bytes / 1e6:.1f} MB) — "
                   f"{result.url}")

        def failed(text: str) -> None:
            report("ERROR", f"submit failed: {text}")

        STATE.runner.start("submit", work, text="submitting", on_done=done, on_error=failed)
        self.report({"INFO"}, f"packing {name} for the farm ({plan.total_tasks} tasks)…")
        return {"FINISHED"}


class WANHE_OT_estimate(bpy.types.Operator):
    """Ask the farm what this render will cost and how long it takes: it probes a few frames
    of the saved file, as it would be submitted (nothing is queued)"""

    bl_idname = "wanhe.estimate"
    bl_label = "Estimate"

    @classmethod
    def poll(cls, context: Any) -> bool:
        return not STATE.runner.busy("farm_estimate") and not STATE.runner.busy("submit")

    def execute(self, context: Any) -> set[str]:
        checked = _checked_plan(context, allow_missing=True)
        if isinstance(checked, str):
            return _fail(self, checked)
        settings, plan = checked
        if bpy.data.is_dirty:
            return _fail(self, "the scene has unsaved changes — save it (Ctrl S) first: the "
                         "farm estimates the file as saved")
        try:
            farm = farm_from_preferences(context)
        except FarmError as exc:
            return _fail(self, str(exc))
        request = SubmitRequest(blend=bpy.data.filepath, name="", options=options_body(settings))
        STATE.farm_estimate = []

        def work(progress: ProgressFn) -> dict[str, Any]:
            return estimate(farm, request, progress)

        def done(answer: dict[str, Any]) -> None:
            STATE.farm_estimate = estimate_lines(answer)
            report("INFO", "farm estimate: " + "; ".join(STATE.farm_estimate))

        def failed(text: str) -> None:
            report("ERROR", f"estimate failed: {text}")

        STATE.runner.start("farm_estimate", work, text="estimating", on_done=done,
                           on_error=failed)
        self.report({"INFO"}, f"the farm probes {plan.total_tasks} tasks' worth of scene…")
        return {"FINISHED"}


def _learn_estimate(farm: Farm, jobs: list[dict[str, Any]]) -> None:
    """Keep the newest finished render job of each file name, for the panel's estimate."""
    for job in jobs:  # newest first
        name = job.get("name", "")
        if job.get("state") != "done" or job.get("kind") != "blender_render":
            continue
        known = STATE.estimates.get(name)
        if known is not None and int(known["id"]) >= int(job["id"]):
            continue
        job_id = int(job["id"])

        def keep(detail: dict[str, Any]) -> None:
            spec = detail.get("spec") or {}
            STATE.estimates[detail.get("name", "")] = {
                "id": detail["id"], "core_hours": detail.get("core_hours", 0.0),
                "spec": {k: spec.get(k) for k in ("frames", "width", "height", "samples")},
            }

        def fetch(progress: ProgressFn, job_id: int = job_id) -> dict[str, Any]:
            return farm.job(job_id)

        STATE.runner.start("estimate", fetch, on_done=keep, on_error=lambda text: None)
        return  # one at a time; the next refresh learns the next


def _refresh(farm: Farm) -> None:
    def done(jobs: list[dict[str, Any]]) -> None:
        STATE.jobs, STATE.jobs_error, STATE.jobs_at = jobs, "", time.monotonic()
        if not STATE.runner.busy("estimate"):
            _learn_estimate(farm, jobs)

    def failed(text: str) -> None:
        first = not STATE.jobs_error
        STATE.jobs_error, STATE.jobs_at = text, time.monotonic()
        if first:  # one report per outage, not one per refresh
            report("ERROR", text)

    STATE.runner.start("jobs", lambda progress: farm.jobs(limit=10), on_done=done,
                       on_error=failed)


class WANHE_OT_refresh_jobs(bpy.types.Operator):
    """List the project's recent jobs again"""

    bl_idname = "wanhe.refresh_jobs"
    bl_label = "Refresh"

    def execute(self, context: Any) -> set[str]:
        try:
            _refresh(farm_from_preferences(context))
        except FarmError as exc:
            return _fail(self, str(exc))
        return {"FINISHED"}


class WANHE_OT_job_control(bpy.types.Operator):
    """Cancel, pause, resume or retry a job on the farm"""

    bl_idname = "wanhe.job_control"
    bl_label = "Job action"

    job_id: IntProperty(min=1)
    action: EnumProperty(items=JOB_ACTIONS)

    @classmethod
    def description(cls, context: Any, properties: Any) -> str:
        return next(d for k, _n, d in JOB_ACTIONS if k == properties.action)

    def execute(self, context: Any) -> set[str]:
        try:
            farm = farm_from_preferences(context)
        except FarmError as exc:
            return _fail(self, str(exc))
        job_id, action = self.job_id, self.action

        def done(answer: dict[str, Any]) -> None:
            STATE.jobs_at = 0.0
            report("INFO", f"job {job_id}: {action} — now {answer.get('state')}")

        STATE.runner.start(f"control-{job_id}", lambda progress: farm.control(job_id, action),
                           text=f"{action} job {job_id}", on_done=done,
                           on_error=lambda text: report("ERROR", f"job {job_id}: {text}"))
        return {"FINISHED"}


def _show_image(path: Path, job_id: int) -> Any:
    name = f"wanhe job {job_id}"
    image = bpy.data.images.get(name)
    if image is None:
        image = bpy.data.images.load(str(path), check_existing=False)
        image.name = name
    else:
        image.filepath = str(path)
        image.reload()
    wm = getattr(bpy.context, "window_manager", None)
    shown = False
    for window in getattr(wm, "windows", []) if wm else []:
        for area in window.screen.areas:
            if area.type == "IMAGE_EDITOR":
                area.spaces.active.image = image
                area.tag_redraw()
                shown = True
    return image, shown


class WANHE_OT_show_last_frame(bpy.types.Operator):
    """Load the job's latest finished frame into an Image Editor"""

    bl_idname = "wanhe.show_last_frame"
    bl_label = "Show last frame"

    job_id: IntProperty(min=1)

    def execute(self, context: Any) -> set[str]:
        try:
            farm = farm_from_preferences(context)
        except FarmError as exc:
            return _fail(self, str(exc))
        job_id = self.job_id
        target = Path(tempfile.gettempdir()) / f"wanhe_job{job_id}_latest.png"

        def work(progress: ProgressFn) -> Path:
            part = target.with_name(target.name + ".part")
            with part.open("wb") as out:
                for chunk in farm.stream(f"/api/jobs/{job_id}/latest.png"):
                    out.write(chunk)
            os.replace(part, target)
            return target

        def done(path: Path) -> None:
            _image, shown = _show_image(path, job_id)
            where = "in the Image Editor" if shown else "as an image (open an Image Editor)"
            report("INFO", f"job {job_id}: latest frame loaded {where}")

        STATE.runner.start(f"frame-{job_id}", work, text=f"fetching job {job_id}'s last frame",
                           on_done=done,
                           on_error=lambda text: report("ERROR", f"job {job_id}: {text}"))
        return {"FINISHED"}


class WANHE_OT_download_outputs(bpy.types.Operator):
    """Bring the job's frames (EXR, PNG) and preview video into the scene's output folder,
    resuming what was cut off and checking every file's checksum"""

    bl_idname = "wanhe.download_outputs"
    bl_label = "Download outputs"

    job_id: IntProperty(min=1)

    def execute(self, context: Any) -> set[str]:
        try:
            farm = farm_from_preferences(context)
        except FarmError as exc:
            return _fail(self, str(exc))
        job_id = self.job_id
        folder = output_folder(context.scene)

        def work(progress: ProgressFn) -> Any:
            def bytes_done(done: int, total: int) -> None:
                progress(f"job {job_id}: {done / 1e6:.1f} of {total / 1e6:.1f} MB",
                         done / total if total else 1.0)
            return download_outputs(farm, job_id, folder, bytes_done)

        def done(result: Any) -> None:
            count = len(result.fetched) + len(result.resumed)
            text = (f"job {job_id}: {count} file(s) downloaded ({result.bytes / 1e6:.1f} MB) "
                    f"into {folder}")
            if result.resumed:
                text += f", {len(result.resumed)} resumed"
            if result.skipped:
                text += f", {len(result.skipped)} already there"
            report("INFO", text)

        STATE.runner.start(f"download-{job_id}", work, text=f"downloading job {job_id}",
                           on_done=done,
                           on_error=lambda text: report("ERROR", f"job {job_id}: {text}"))
        return {"FINISHED"}


class WANHE_OT_open_dashboard(bpy.types.Operator):
    """Open the job's page on the farm's dashboard in a web browser"""

    bl_idname = "wanhe.open_dashboard"
    bl_label = "Open in dashboard"

    job_id: IntProperty(min=1)

    def execute(self, context: Any) -> set[str]:
        try:
            farm = farm_from_preferences(context)
        except FarmError as exc:
            return _fail(self, str(exc))
        bpy.ops.wm.url_open(url=farm.dashboard_url(self.job_id))
        return {"FINISHED"}


CLASSES = (
    WANHE_OT_report, WANHE_OT_test_connection, WANHE_OT_submit, WANHE_OT_refresh_jobs,
    WANHE_OT_job_control, WANHE_OT_show_last_frame, WANHE_OT_download_outputs,
    WANHE_OT_open_dashboard,
    WANHE_OT_estimate,
)


# ---------------------------------------------------------------------- the timer


def tick() -> float:
    """What the timer does: apply finished work, refresh the job list when due, redraw."""
    was_busy = STATE.runner.busy()
    applied = STATE.runner.pump()
    if STATE.refresh_due() and not STATE.runner.busy("jobs"):
        try:
            _refresh(farm_from_preferences())
        except FarmError:
            STATE.jobs_at = time.monotonic()  # not set up yet: ask again later
        except Exception:  # no preferences (being disabled)
            STATE.jobs_at = time.monotonic()
    # the panels every tick (progress, new results, "listed N s ago"); the status bar while
    # the add-on works there, and once more when it is done
    redraw(status_bar=bool(was_busy or applied or STATE.runner.busy()))
    return 0.2 if STATE.runner.busy() else 1.0


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=0.5, persistent=True)


def unregister() -> None:
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
