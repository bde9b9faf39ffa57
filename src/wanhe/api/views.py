"""Jobs as the API shows them: summaries with progress and ETA, details with frames and tiles."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wanhe.api.estimate_view import estimate_vs_actual
from wanhe.api.schemas import FrameOut, JobDetail, JobSummary, OutputFile, TaskOut, TileOut
from wanhe.jobtypes.base import TaskView
from wanhe.jobtypes.registry import find_job_type, task_label
from wanhe.model import JobState, TaskState
from wanhe.publish.kitsu import production_page, task_page
from wanhe.storage import StorageUnavailable
from wanhe.store.store import JobRow, TaskRow
from wanhe.store.usage import core_seconds

if TYPE_CHECKING:
    from wanhe.api.service import Service

_FRAME_STATE_ORDER = ("failed", "running", "cancelled", "ready", "waiting")


def _progress(counts: dict[str, int]) -> float:
    total = sum(counts.values())
    return counts.get(TaskState.DONE.value, 0) / total if total else 0.0


def _eta(job: JobRow, progress: float) -> float | None:
    if job.state is not JobState.RUNNING or job.started_at is None or not 0 < progress < 1:
        return None
    elapsed = max(0.0, time.time() - job.started_at)
    return elapsed * (1 - progress) / progress


def job_summaries(service: Service, jobs: list[JobRow]) -> list[JobSummary]:
    ids = [job.id for job in jobs]
    counts = service.store.task_counts_by_job(ids)
    core = service.store.core_seconds_by_job(ids)
    gpu = service.store.gpu_seconds_by_job(ids)
    out: list[JobSummary] = []
    for job in jobs:
        tasks = counts.get(job.id, {})
        progress = _progress(tasks)
        out.append(
            JobSummary(
                id=job.id, kind=job.kind, name=job.name,
                project=service.project_name(job.project_id) or "?",
                state=job.state.value, priority=job.priority, submitter=job.submitter,
                created_at=job.created_at, started_at=job.started_at,
                finished_at=job.finished_at, message=job.message, progress=progress,
                tasks=tasks, core_hours=core.get(job.id, 0.0) / 3600,
                gpu_hours=gpu.get(job.id, 0.0) / 3600, eta_s=_eta(job, progress),
                depends_on=job.depends_on,
            )
        )
    return out


def job_event(service: Service, job_id: int) -> tuple[int, dict[str, Any]] | None:
    """A job as its `job` event shows it: its project and its summary as JSON (the service's
    `describe_job`); None when the job is gone."""
    job = service.store.job(job_id)
    if job is None:
        return None
    summary = job_summaries(service, [job])[0]
    return job.project_id, summary.model_dump(mode="json")


def _task_core_seconds(attempts: list[dict[str, Any]]) -> dict[int, float]:
    spent: dict[int, float] = defaultdict(float)
    for a in attempts:
        spent[a["task_id"]] += core_seconds(a)
    return spent


def _frame_state(states: list[str]) -> str:
    if all(s == TaskState.DONE.value for s in states):
        return "done"
    for state in _FRAME_STATE_ORDER:
        if state in states:
            if state in ("ready", "waiting"):
                return "running" if TaskState.DONE.value in states else "queued"
            return state
    return "queued"


def output_url(job_id: int, relative: str) -> str:
    return f"/api/jobs/{job_id}/files/{relative}"


def _relative_output(service: Service, job_id: int, path: str | None) -> str | None:
    if not path:
        return None
    base = service.work.output_dir(job_id)  # where the task wrote it; published alike
    try:
        return Path(path).relative_to(base).as_posix()
    except ValueError:
        return None


def job_detail(service: Service, job: JobRow) -> JobDetail:
    service.settle_outputs(job.id)  # frames shown done have their files in storage
    summary = job_summaries(service, [job])[0]
    tasks = service.store.tasks(job.id)
    attempts = service.store.attempts(job.id)
    spent = _task_core_seconds(attempts)
    by_frame: dict[int, list[TaskRow]] = defaultdict(list)
    for task in tasks:
        if task.frame is not None:
            by_frame[task.frame].append(task)
    frames: list[FrameOut] = []
    for frame, frame_tasks in sorted(by_frame.items()):
        preview = next((t for t in frame_tasks if t.kind == "preview"), None)
        qc_task = next((t for t in frame_tasks if t.kind == "qc"), None)
        qc = qc_task.output.get("qc") if qc_task and qc_task.state is TaskState.DONE else None
        rel = None
        if preview is not None and preview.state is TaskState.DONE:
            rel = _relative_output(service, job.id, preview.payload.get("output"))
        frames.append(
            FrameOut(
                frame=frame,
                state=_frame_state([t.state.value for t in frame_tasks]),
                tiles=[
                    TileOut(tile=t.tile, chunk=t.chunk, key=t.key, state=t.state.value,
                            core_seconds=spent.get(t.id, 0.0))
                    for t in frame_tasks if t.kind == "render"
                ],
                core_seconds=sum(spent.get(t.id, 0.0) for t in frame_tasks),
                preview_url=output_url(job.id, rel) if rel else None,
                qc=qc,
            )
        )
    failures = [
        {"task": a["key"], "attempt": a["number"], "outcome": a["outcome"], "node": a["node"],
         "message": a["message"], "ended_at": a["ended_at"]}
        for a in attempts if a["outcome"] not in (None, "ok")
    ]
    usage: dict[str, float] = defaultdict(float)
    gpu_usage: dict[str, float] = defaultdict(float)
    for a in attempts:
        usage[f"{a['outcome'] or 'running'}_core_seconds"] += core_seconds(a)
        if a["gpu_s"]:
            gpu_usage[f"{a['outcome'] or 'running'}_gpu_seconds"] += float(a["gpu_s"])
    warnings: list[str] = []
    try:
        stored = service.storage.outputs(job.id)
    except StorageUnavailable as exc:  # the job's state is still worth showing
        stored, warnings = [], [f"output files not listed: {exc}"]
    outputs = [
        OutputFile(path=f.path, bytes=f.size, url=output_url(job.id, f.path)) for f in stored
    ]
    jt = find_job_type(job.kind)
    # the job page shows the panels its type declares; a kind this service does not know
    # gets the render panels only when it has frames to show
    panels = list(jt.panels) if jt is not None else \
        (["frames", "heatmap", "latest", "video"] if frames else [])
    story = None
    if "reel" in panels:
        from wanhe.api.story_view import story_view

        def url_of(path: str | None) -> str | None:
            rel = _relative_output(service, job.id, path)
            return output_url(job.id, rel) if rel else None

        story = story_view(job, tasks, url_of, attempts)
    published = {f.path: f for f in outputs}
    deliverables = []
    for path in jt.deliverables(job.spec) if jt is not None else []:
        rel = _relative_output(service, job.id, path)
        if rel is not None and rel in published:
            deliverables.append(published[rel])
    return JobDetail(
        **summary.model_dump(), frames=frames, spec=job.spec, failures=failures,
        usage=dict(usage), gpu_usage=dict(gpu_usage), outputs=outputs,
        unbilled_core_seconds=sum(
            float(a.get("unbilled_s") or 0.0) * float(a["cores"] or 0.0) for a in attempts),
        outputs_listed=not warnings, warnings=warnings, story=story, panels=panels,
        summary=jt.summary(job.spec) if jt is not None else "", deliverables=deliverables,
        estimate=estimate_vs_actual(job, frames),
        kitsu=_kitsu(service, job.id),
    )


def _kitsu(service: Service, job_id: int) -> dict[str, Any] | None:
    """Where the job publishes in Kitsu and how that stands (None: it does not), with the
    production's page in Kitsu's web app while the project is linked, and the published
    revision's (the task's page on its preview) once it landed."""
    found = service.store.publication(job_id)
    if found is None:
        return None
    link = service.store.kitsu_link(found.project_id)
    production_url = revision_url = None
    if link is not None:
        production_url = production_page(link.url, link.production_id)
        if found.task_id:  # a reel's (SEQUENCE alone) went to the sequence's own task
            revision_url = task_page(link.url, link.production_id, found.task_id,
                                     found.preview_id, sequence="/" not in found.shot)
    return {**found.public(), "production_url": production_url, "revision_url": revision_url}


def task_list(service: Service, job: JobRow, *, after: int = -1,
              limit: int | None = None) -> tuple[list[TaskOut], int | None]:
    """One page of a job's tasks (all of them without `limit`), and the cursor of the next
    page (the last task's position; None when this page is the last)."""
    if limit is None:
        rows = service.store.tasks(job.id)
        more = False
    else:
        rows = service.store.tasks_page(job.id, after=after, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
    ids = [t.id for t in rows]
    attempts = service.store.attempts(job.id, ids if limit is not None else None)
    spent = _task_core_seconds(attempts)
    times = service.store.task_times(job.id, ids if limit is not None else None)
    live: dict[str, dict[str, Any]] = {}  # running tasks' progress and status lines
    if service.dispatcher is not None:
        live = {str(w["task"]): w for w in service.dispatcher.workers()
                if w.get("job_id") == job.id and w.get("task")}
    page = [
        TaskOut(
            id=t.id, key=t.key, kind=t.kind, frame=t.frame, tile=t.tile, chunk=t.chunk,
            label=task_label(job.kind, TaskView(t.key, t.kind, t.frame, t.tile, t.chunk)),
            state=t.state.value, attempts=t.attempts,
            progress=float(live[t.key]["progress"]) if t.key in live else t.progress,
            error=t.error,
            core_seconds=spent.get(t.id, 0.0), started_at=times.get(t.id, (None, None))[0],
            finished_at=times.get(t.id, (None, None))[1],
            status=str(live[t.key].get("status") or "") if t.key in live
            else str(t.output.get("status") or ""),
        )
        for t in rows
    ]
    return page, (rows[-1].seq if more and rows else None)
