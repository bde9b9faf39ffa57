"""The add-on's panels: "wanhe farm" in Output Properties (settings, what the farm will do,
Submit) with a Jobs sub-panel, the preferences, and progress in the status bar.

The draw functions take any `layout` with Blender's UILayout calls, so tests can draw them
into a recording stand-in where no real layout exists (a bpy module has no UI).
"""

import time
from typing import Any

import bpy

from .plan import PlanError, describe, estimate_core_hours, make_plan
from .state import FINAL_STATES, STATE

STATE_ICONS = {
    "queued": "SORTTIME", "running": "PLAY", "paused": "PAUSE", "done": "CHECKMARK",
    "failed": "ERROR", "cancelled": "CANCEL",
}


def _progress(layout: Any, fraction: float, text: str) -> None:
    if hasattr(layout, "progress"):  # Blender 4.0+
        layout.progress(factor=fraction, type="BAR", text=text)
    else:
        layout.label(text=f"{text} ({100 * fraction:.0f}%)")


def draw_preferences(prefs: Any, layout: Any, context: Any) -> None:
    layout.prop(prefs, "server_url")
    layout.prop(prefs, "token")
    row = layout.row()
    row.operator("wanhe.test_connection", icon="URL")
    box = layout.box()
    if not STATE.connection:
        box.label(text="Test the connection to see the token's project and the free cores.")
    for i, line in enumerate(STATE.connection):
        icon = "NONE" if i else ("CHECKMARK" if STATE.connection_ok else "ERROR")
        box.label(text=line, icon=icon)


def _plan_lines(context: Any) -> tuple[list[str], str | None]:
    from .ops import _plan_settings

    try:
        settings = _plan_settings(context)
        plan = make_plan(settings)
    except PlanError as exc:
        return [], str(exc)
    lines = describe(plan)
    name = bpy.path.basename(bpy.data.filepath)
    past = STATE.estimates.get(name)
    if past is not None:
        hours = estimate_core_hours(plan, settings, past)
        if hours is not None:
            lines.append(f"≈ {hours:.3g} core-hours (scaled from job {past.get('id')})")
    return lines, plan.problems[0] if plan.problems else None


def draw_settings(props: Any, layout: Any, context: Any) -> None:
    layout.use_property_split = True
    layout.use_property_decorate = False
    if bpy.app.version >= (4, 1, 0):  # placeholder text: what an empty name becomes
        layout.prop(props, "job_name", placeholder=bpy.path.basename(bpy.data.filepath))
    else:
        layout.prop(props, "job_name")
    row = layout.row(heading="Frames")
    row.prop(props, "use_frames", text="")
    sub = row.row()
    sub.active = props.use_frames
    scene = context.scene
    sub.prop(props, "frames", text="" if props.use_frames else
             f"{scene.frame_start}-{scene.frame_end}")
    layout.prop(props, "split")
    col = layout.column()
    col.active = props.split == 0  # the farm picks tiles and chunks for --split
    col.prop(props, "tiles")
    col.prop(props, "sample_chunks")
    layout.prop(props, "quality_mode")
    if props.quality_mode == "SAMPLES":
        layout.prop(props, "samples")
    elif props.quality_mode == "PRESET":
        layout.prop(props, "quality")
    col = layout.column(heading="Frames get")
    col.prop(props, "denoise")
    col.prop(props, "qc")
    col.prop(props, "video")
    layout.prop(props, "priority")
    layout.prop(props, "submit_paused")
    layout.prop(props, "after_job")


def draw_farm_panel(layout: Any, context: Any) -> None:
    props = context.scene.wanhe
    draw_settings(props, layout, context)
    box = layout.box()
    lines, problem = _plan_lines(context)
    for line in lines:
        box.label(text=line, icon="INFO" if line is lines[0] else "NONE")
    if problem:
        box.label(text=problem, icon="ERROR")
    submit = layout.row()
    submit.scale_y = 1.4
    submit.enabled = not STATE.runner.busy("submit")
    submit.operator("wanhe.submit", icon="EXPORT")
    submit.operator("wanhe.estimate", icon="TIME")  # beside Submit: cost before rendering
    for activity in STATE.runner.activities():
        if activity.name == "submit":
            _progress(layout, activity.fraction, activity.text or "submitting")
        elif activity.name == "farm_estimate":
            _progress(layout, activity.fraction, activity.text or "estimating")
    if STATE.farm_estimate:
        box = layout.box()
        for i, line in enumerate(STATE.farm_estimate):
            box.label(text=line, icon="TIME" if i == 0 else "NONE")
    if STATE.last_job:
        row = layout.row()
        row.label(text=f"job {STATE.last_job['id']} submitted", icon="CHECKMARK")
        op = row.operator("wanhe.open_dashboard", text="Dashboard", icon="URL")
        op.job_id = int(STATE.last_job["id"])
    last = STATE.last_report
    if last is not None and last[0] == "ERROR":
        layout.label(text=last[1], icon="ERROR")


def _job_row(layout: Any, job: dict[str, Any]) -> None:
    box = layout.box()
    state = str(job.get("state", "?"))
    job_id = int(job["id"])
    head = box.row()
    head.label(text=f"#{job_id} {job.get('name', '')}", icon=STATE_ICONS.get(state, "DOT"))
    head.label(text=state)
    counts = job.get("tasks") or {}
    done = counts.get("done", 0)
    total = sum(counts.values()) if counts else 0
    _progress(box, float(job.get("progress") or 0.0), f"{done}/{total} tasks")
    if job.get("message"):
        box.label(text=str(job["message"])[:120])
    row = box.row(align=True)
    for action, icon, allowed in (
        ("pause", "PAUSE", state in ("queued", "running")),
        ("resume", "PLAY", state == "paused"),
        ("cancel", "X", state not in FINAL_STATES),
        ("retry", "FILE_REFRESH", state in ("failed", "cancelled")),
    ):
        cell = row.row(align=True)
        cell.enabled = allowed
        op = cell.operator("wanhe.job_control", text="", icon=icon)
        op.job_id, op.action = job_id, action
    op = row.operator("wanhe.show_last_frame", text="", icon="IMAGE_DATA")
    op.job_id = job_id
    op = row.operator("wanhe.download_outputs", text="", icon="IMPORT")
    op.job_id = job_id
    op = row.operator("wanhe.open_dashboard", text="", icon="URL")
    op.job_id = job_id
    for activity in STATE.runner.activities():
        if activity.name.endswith(f"-{job_id}") and activity.fraction > 0:
            _progress(box, activity.fraction, activity.text)


def draw_jobs_panel(layout: Any, context: Any) -> None:
    row = layout.row()
    age = time.monotonic() - STATE.jobs_at if STATE.jobs_at else None
    if STATE.runner.busy("jobs"):
        row.label(text="asking the farm…")
    else:
        row.label(text="never listed" if age is None else f"listed {age:.0f} s ago")
    row.operator("wanhe.refresh_jobs", text="", icon="FILE_REFRESH")
    if STATE.jobs_error:
        layout.label(text=STATE.jobs_error, icon="ERROR")
    if not STATE.jobs and not STATE.jobs_error:
        layout.label(text="no jobs yet in this project")
    for job in STATE.jobs[:8]:
        _job_row(layout, job)


class WANHE_PT_farm(bpy.types.Panel):
    bl_label = "wanhe farm"
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "output"

    def draw(self, context: Any) -> None:
        draw_farm_panel(self.layout, context)


class WANHE_PT_jobs(bpy.types.Panel):
    bl_label = "Jobs"
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "output"
    bl_parent_id = "WANHE_PT_farm"

    def draw(self, context: Any) -> None:
        draw_jobs_panel(self.layout, context)


def draw_status(self: Any, context: Any) -> None:
    """In the status bar: what the add-on is doing, with its progress."""
    for activity in STATE.runner.activities():
        if activity.name == "jobs":
            continue
        _progress(self.layout, activity.fraction, f"wanhe: {activity.text}")


CLASSES = (WANHE_PT_farm, WANHE_PT_jobs)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.STATUSBAR_HT_header.append(draw_status)


def unregister() -> None:
    bpy.types.STATUSBAR_HT_header.remove(draw_status)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
