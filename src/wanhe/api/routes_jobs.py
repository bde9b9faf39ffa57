"""`/api/jobs`: submit, list, inspect, control, logs and output files of jobs.

A job of another project answers 404, exactly like a job that does not exist. Output files are
read from storage: straight from disk for a plain-path storage, through a temporary local copy
for a URL storage.
"""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi.responses import FileResponse, PlainTextResponse, StreamingResponse
from starlette.background import BackgroundTask

from wanhe.api.auth import Principal, principal
from wanhe.api.deps import get_service
from wanhe.api.intake import create_job
from wanhe.api.schemas import JobAction, JobCreate, JobDetail, JobSummary, PriorityPatch, TaskOut
from wanhe.api.service import Service
from wanhe.api.views import job_detail, job_summaries, task_list
from wanhe.engine.outputs import stale_done_tasks
from wanhe.lifecycle import (
    Ruling,
    may_cancel,
    may_pause,
    may_reprioritize,
    may_resume,
    may_retry,
    retry_plan,
)
from wanhe.model import JobState
from wanhe.storage import StoredFile, UnsafePath
from wanhe.store.store import JobRow

router = APIRouter(tags=["jobs"])

MAX_LOG_BYTES = 2 << 20
_TYPES = {
    ".exr": "image/x-exr", ".png": "image/png", ".mp4": "video/mp4", ".json": "application/json",
}
JOB_ID = 2**62
TASK_PAGE = 1000  # GET …/tasks: a 100,000-task job answered 25.8 MB in 17.8 s unpaged
MAX_TASK_PAGE = 5000


def visible_job(service: Service, who: Principal, job_id: int) -> JobRow:
    job = service.store.job(job_id) if 0 < job_id < JOB_ID else None
    if job is None or not who.may_see(job.project_id):
        raise HTTPException(404, f"no job {job_id}")
    return job


@router.post("/api/jobs", response_model=JobDetail, status_code=201)
def submit(
    body: JobCreate, who: Principal = Depends(principal), service: Service = Depends(get_service)
) -> JobDetail:
    # A plain `def` on purpose: FastAPI runs it on its thread pool, so storing a 100,000-task
    # job never blocks the event loop (tests/api/test_large_jobs.py measures other requests
    # answering meanwhile). Never make it `async def` without moving the work to a thread.
    job_id, warnings = create_job(service, who, body)
    job = visible_job(service, who, job_id)
    detail = job_detail(service, job)
    detail.warnings = [*warnings, *detail.warnings]
    return detail


@router.get("/api/jobs", response_model=list[JobSummary])
def list_jobs(
    state: JobState | None = Query(default=None),
    project: str | None = Query(default=None, max_length=100),
    limit: int = Query(default=500, ge=1, le=5000),
    who: Principal = Depends(principal),
    service: Service = Depends(get_service),
) -> list[JobSummary]:
    project_id = who.project_id
    if project is not None:
        found = service.store.project_by_name(project)
        if found is None or not who.may_see(found.id):
            raise HTTPException(404, f"no project named {project!r}")
        project_id = found.id
    jobs = service.store.jobs(
        project_id=project_id, states=[state] if state is not None else None, limit=limit
    )
    return job_summaries(service, jobs)


@router.get("/api/jobs/{job_id}", response_model=JobDetail)
def get_job(
    job_id: int, who: Principal = Depends(principal), service: Service = Depends(get_service)
) -> JobDetail:
    return job_detail(service, visible_job(service, who, job_id))


def _action(service: Service, job: JobRow) -> JobAction:
    service.poke(job.id)
    fresh = service.store.job(job.id)
    assert fresh is not None
    return JobAction(id=fresh.id, state=fresh.state.value, message=fresh.message)


def _allowed(job: JobRow, ruling: Ruling) -> JobState:
    """The state the action leads to, or 409 with the state machine's reason."""
    if not ruling.allowed or ruling.target is None:
        raise HTTPException(409, f"job {job.id} {ruling.reason}")
    return ruling.target


@router.post("/api/jobs/{job_id}/cancel", response_model=JobAction)
def cancel(
    job_id: int, who: Principal = Depends(principal), service: Service = Depends(get_service)
) -> JobAction:
    job = visible_job(service, who, job_id)
    _allowed(job, may_cancel(job.state))
    service.store.cancel_job(job.id, message=f"cancelled by {who.name or 'a user'}")
    return _action(service, job)  # pokes the dispatcher, which stops the running tasks


@router.post("/api/jobs/{job_id}/pause", response_model=JobAction)
def pause(
    job_id: int, who: Principal = Depends(principal), service: Service = Depends(get_service)
) -> JobAction:
    job = visible_job(service, who, job_id)
    state = _allowed(job, may_pause(job.state))
    service.store.set_job_state(job.id, state, "paused: running tasks finish, no new ones start")
    return _action(service, job)


@router.post("/api/jobs/{job_id}/resume", response_model=JobAction)
def resume(
    job_id: int, who: Principal = Depends(principal), service: Service = Depends(get_service)
) -> JobAction:
    job = visible_job(service, who, job_id)
    state = _allowed(job, may_resume(job.state, started=job.started_at is not None))
    service.store.set_job_state(job.id, state, "")
    return _action(service, job)


@router.post("/api/jobs/{job_id}/retry", response_model=JobAction)
def retry(
    job_id: int, who: Principal = Depends(principal), service: Service = Depends(get_service)
) -> JobAction:
    job = visible_job(service, who, job_id)
    # a done task whose files are gone is not done: it runs again (a done job too)
    stale = stale_done_tasks(service.store.tasks(job.id))
    dead = [(dep, JobState(state)) for dep, state in
            service.store.dead_dependencies(job.depends_on)]
    _allowed(job, may_retry(job.state, files_missing=bool(stale), dead_dependencies=dead))
    service.store.restart_job(job.id, retry_plan(job.state, stale))
    return _action(service, job)


@router.patch("/api/jobs/{job_id}", response_model=JobAction)
def set_priority(
    job_id: int, body: PriorityPatch, who: Principal = Depends(principal),
    service: Service = Depends(get_service),
) -> JobAction:
    job = visible_job(service, who, job_id)
    _allowed(job, may_reprioritize(job.state))
    service.store.set_priority(job.id, body.priority)
    return _action(service, job)


@router.get("/api/jobs/{job_id}/tasks", response_model=list[TaskOut])
def tasks(
    job_id: int,
    response: Response,
    limit: int = Query(default=TASK_PAGE, ge=1, le=MAX_TASK_PAGE,
                       description="tasks per page (a job may have 100,000)"),
    after: int = Query(default=-1, ge=-1, le=2**62, description="the cursor of the previous "
                       "page: its `X-Next-After` header; -1 for the first page"),
    who: Principal = Depends(principal),
    service: Service = Depends(get_service),
) -> list[TaskOut]:
    """One page of the job's tasks in order. When more follow, the `X-Next-After` header
    holds the cursor to pass as `after`, and `X-Total-Count` says how many tasks there are."""
    job = visible_job(service, who, job_id)
    page, next_after = task_list(service, job, after=after, limit=limit)
    if next_after is not None:
        response.headers["X-Next-After"] = str(next_after)
    response.headers["X-Total-Count"] = str(sum(service.store.task_counts(job.id).values()))
    return page


def _log_paths(service: Service, job: JobRow, task: str | None) -> list[tuple[str, Path]]:
    root = service.work.logs.resolve()
    found: list[tuple[str, Path]] = []
    for a in service.store.attempts(job.id):
        if task is not None and a["key"] != task:
            continue
        path = Path(a["log_path"]).resolve() if a["log_path"] else None
        if path is not None and path.is_relative_to(root):
            found.append((f"{a['key']} attempt {a['number']} on {a['node']}", path))
    return found


def _tail(path: Path, limit: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


@router.get("/api/jobs/{job_id}/logs", response_class=PlainTextResponse, response_model=None)
def logs(
    job_id: int,
    task: str | None = Query(
        default=None, max_length=200, description="a task key, e.g. 1/render/t000"
    ),
    follow: bool = Query(default=False, description="stream until the task is finished"),
    who: Principal = Depends(principal),
    service: Service = Depends(get_service),
) -> PlainTextResponse | StreamingResponse:
    job = visible_job(service, who, job_id)
    if task is not None and task not in {t.key for t in service.store.tasks(job.id)}:
        raise HTTPException(404, f"job {job_id} has no task {task!r}")
    paths = _log_paths(service, job, task)
    if not follow:
        per_file = max(4096, MAX_LOG_BYTES // max(1, len(paths)))
        text = "".join(f"==> {label} <==\n{_tail(p, per_file)}\n" for label, p in paths)
        return PlainTextResponse(text or "(no log yet)\n")
    return StreamingResponse(_follow(service, job.id, task), media_type="text/plain")


async def _follow(service: Service, job_id: int, task: str | None) -> AsyncIterator[str]:
    offsets: dict[Path, int] = {}
    idle_rounds = 0
    while True:
        job = service.store.job(job_id)
        assert job is not None
        paths = await asyncio.to_thread(_log_paths, service, job, task)
        wrote = False
        for label, path in paths:
            if path not in offsets:
                offsets[path] = 0
                yield f"==> {label} <==\n"
            try:
                with path.open("rb") as f:
                    f.seek(offsets[path])
                    data = f.read(MAX_LOG_BYTES)
            except FileNotFoundError:
                continue
            if data:
                offsets[path] += len(data)
                wrote = True
                yield data.decode("utf-8", "replace")
        finished = job.state.is_final or (
            task is not None and all(
                t.state.is_final for t in service.store.tasks(job_id) if t.key == task
            )
        )
        idle_rounds = 0 if wrote else idle_rounds + 1
        if finished and idle_rounds >= 2:
            return
        await asyncio.sleep(0.5)


def _output_response(
    service: Service, job_id: int, relative: str, media: str | None, headers: dict[str, str]
) -> FileResponse:
    """A stored output as a response (FileNotFoundError, UnsafePath)."""
    local = service.storage.local_output(job_id, relative)
    if local is not None:
        return FileResponse(local, media_type=media, headers=headers)
    copy = service.storage.fetch_output(job_id, relative, service.work.tmp)
    return FileResponse(copy, media_type=media, headers=headers,
                        background=BackgroundTask(copy.unlink, missing_ok=True))


def _media_type(relative: str) -> str:
    suffix = Path(relative).suffix.lower()
    return _TYPES.get(suffix) or mimetypes.guess_type(relative)[0] or "application/octet-stream"


@router.get("/api/jobs/{job_id}/files/{path:path}", response_class=FileResponse)
def job_file(
    job_id: int, path: str, who: Principal = Depends(principal),
    service: Service = Depends(get_service),
) -> FileResponse:
    job = visible_job(service, who, job_id)
    service.settle_outputs(job.id)
    try:
        return _output_response(service, job.id, path, _media_type(path), {})
    except (UnsafePath, OSError, ValueError):
        raise HTTPException(404, f"job {job_id} has no output file {path[:200]!r}") from None


def _is_frame_preview(file: StoredFile) -> bool:
    return file.path.endswith(".png") and not file.path.endswith("_contact.png")


@router.get("/api/jobs/{job_id}/latest.png", response_class=FileResponse)
def latest_preview(
    job_id: int, who: Principal = Depends(principal), service: Service = Depends(get_service)
) -> FileResponse:
    job = visible_job(service, who, job_id)
    service.settle_outputs(job.id)
    pngs = [f for f in service.storage.outputs(job.id) if _is_frame_preview(f)]
    if not pngs:
        raise HTTPException(404, f"job {job_id} has no finished frame yet")
    latest = max(pngs, key=lambda f: (f.modified, f.path))
    try:
        return _output_response(service, job.id, latest.path, "image/png",
                                {"Cache-Control": "no-cache"})
    except FileNotFoundError:  # replaced between listing and reading (a progressive preview)
        raise HTTPException(404, f"job {job_id} has no finished frame yet") from None
