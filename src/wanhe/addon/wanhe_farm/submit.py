"""Submitting a saved scene, off the main thread: check the token's project and its budget,
pack with BAT, upload what the farm lacks, create the job. Pure Python (no bpy): the operator
reads Blender's data on the main thread and passes plain values here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .background import ProgressFn
from .farm import Farm, FarmError
from .plan import known_options
from .shared import pack


@dataclass
class SubmitRequest:
    blend: str
    name: str
    options: dict[str, Any]
    priority: int = 50
    paused: bool = False
    after: list[int] = field(default_factory=list)


@dataclass
class Submitted:
    job: dict[str, Any]
    url: str
    files: int
    sent_files: int
    sent_bytes: int
    missing: list[str]
    absolute: list[str]
    dropped: list[str]

    @property
    def job_id(self) -> int:
        return int(self.job["id"])


def check_project(farm: Farm) -> dict[str, Any]:
    """The token's project; FarmError when it has none or its budget is used up."""
    me = farm.me()
    name = me.get("project")
    if not name:
        raise FarmError("this is an admin token, which belongs to no project — use a "
                        "project's token to submit")
    project = farm.project(name) or {"name": name}
    if project.get("over_budget"):
        budget = project.get("budget_core_hours")
        used = float(project.get("used_core_hours") or 0.0)
        gpu = project.get("budget_gpu_hours")
        gpu_used = float(project.get("used_gpu_hours") or 0.0)
        if budget is not None and used >= budget:
            spent = f"{used:.2f} of {float(budget):.2f} core-hours"
        else:
            spent = f"{gpu_used:.2f} of {float(gpu or 0):.2f} GPU-hours"
        raise FarmError(f"budget exhausted: project {name} has used {spent} — ask the farm's "
                        "admin to raise it (wanhe project budget)")
    return project


@dataclass
class Uploaded:
    """A scene packed and on the farm: what a job or an estimate names."""

    bundle: pack.Bundle
    options: dict[str, Any]
    dropped: list[str]  # options this farm's schema does not know (an older farm)
    sent_files: int
    sent_bytes: int


def upload_scene(farm: Farm, request: SubmitRequest, progress: ProgressFn) -> Uploaded:
    """Check the project, pack the scene and upload what the farm lacks (progress 0–0.95)."""
    progress("checking the project", 0.0)
    check_project(farm)
    job_type = farm.job_type("blender_render")
    if job_type is None:
        raise FarmError("this farm does not run blender_render jobs")
    options, dropped = known_options(request.options, job_type.get("options_schema"))
    progress("packing the scene", 0.02)
    bundle = pack.collect(Path(request.blend))
    # one file, one request at a time: the artist's Blender keeps its cores and stays responsive
    pack.hash_all(bundle, threads=1)

    def uploading(done: int, size: int) -> None:
        if size:
            progress(f"uploading {done / 1e6:.1f} of {size / 1e6:.1f} MB", 0.05 + 0.9 * done / size)
        else:
            progress(f"the farm has all {len(bundle.files)} file(s)", 0.95)

    sent, sent_bytes = pack.upload(farm, bundle, threads=1, on_progress=uploading)
    return Uploaded(bundle, options, dropped, sent, sent_bytes)


def submit(farm: Farm, request: SubmitRequest, progress: ProgressFn) -> Submitted:
    up = upload_scene(farm, request, progress)
    progress("creating the job", 0.97)
    job = farm.post("/api/jobs", {
        "kind": "blender_render", "name": request.name or None, "main": up.bundle.main,
        "files": up.bundle.hashes, "options": up.options, "priority": request.priority,
        "depends_on": request.after, "paused": request.paused,
    })
    return Submitted(job, farm.dashboard_url(int(job["id"])), len(up.bundle.files),
                     up.sent_files, up.sent_bytes, up.bundle.missing_local,
                     up.bundle.absolute_refs, up.dropped)


def estimate(farm: Farm, request: SubmitRequest, progress: ProgressFn,
             machines: int = 1) -> dict[str, Any]:
    """The farm's estimate of rendering the scene as the panel would submit it (`POST
    /api/estimate`: the farm probes a few frames in the project's sandbox): the same answer
    as `wanhe estimate --json`, with the project's budget verdict."""
    up = upload_scene(farm, request, progress)
    progress("the farm probes the scene", 0.96)
    answer: dict[str, Any] = farm.post("/api/estimate", {
        "main": up.bundle.main, "files": up.bundle.hashes, "options": up.options,
        "machines": max(1, machines),
    })
    return answer


def estimate_lines(answer: dict[str, Any]) -> list[str]:
    """The panel's lines for an estimate: core-hours with the range, wall time on the farm,
    the budget's verdict."""
    low, high = answer.get("core_hours_range") or [None, None]
    lines = [f"{float(answer.get('core_hours') or 0.0):.3g} core-hours"
             + (f" ({float(low):.3g}–{float(high):.3g})" if low is not None else "")
             + f" for {answer.get('frames')} frame(s)"]
    wall = answer.get("wall_s")
    farm = answer.get("farm") or {}
    if wall is not None:
        lines.append(f"about {_duration(float(wall))} on {farm.get('machines', 1)} machine(s) "
                     f"of {farm.get('cores', '?')} cores")
    budget = answer.get("budget") or {}
    if budget.get("message"):
        lines.append(str(budget["message"]))
    if (answer.get("probe") or {}).get("cached"):
        lines.append("from the farm's earlier probe of this scene")
    return lines


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def connection_lines(farm: Farm) -> list[str]:
    """What Test connection says: project, budget, free cores and GPUs."""
    me = farm.me()
    name = me.get("project")
    lines = [f"connected to {farm.server}"]
    if name:
        project = farm.project(name) or {}
        budget = project.get("budget_core_hours")
        used = float(project.get("used_core_hours") or 0.0)
        text = f"project {name}: {used:.2f} core-hours used"
        if budget is not None:
            text += f" of {float(budget):.2f}"
        if project.get("over_budget"):
            text += " — budget exhausted"
        lines.append(text)
    else:
        lines.append("admin token (belongs to no project: cannot submit)")
    cores, gpus, slots = farm.free_capacity()
    lines.append(f"farm: {cores:g} free core(s), {gpus:g} free GPU(s) on {slots} worker slot(s)")
    return lines
