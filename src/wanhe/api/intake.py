"""Turning a `POST /api/jobs` body into a stored job, for any job type.

Check everything cheap first (the job type's options and main file, dependencies visible,
blobs present), then materialise the files from storage into a staging checkout in the work
area, let the job type inspect them (a scene, a template; user scripts never run), and in one
short transaction give the job its id, move the checkout to the work area's
`jobs/<id>/input/`, let the job type compile its task graph with outputs in
`jobs/<id>/output/` (published to storage as they finish) and store it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path, PurePosixPath
from typing import Any

from fastapi import HTTPException

from wanhe.api.auth import Principal
from wanhe.api.errors import checked_options, unprocessable
from wanhe.api.memory_check import check_task_memory, largest_worker_memory
from wanhe.api.schemas import JobCreate
from wanhe.api.service import Service
from wanhe.api.staging import inspect_staged, staged_files, strip_paths
from wanhe.jobtypes.base import InputError, JobFolder
from wanhe.jobtypes.registry import UnknownJobKind, job_type
from wanhe.model import TaskSpec
from wanhe.store.kitsu import PublishTo


def _files_digest(body: JobCreate) -> str:
    """The submission's inputs, for the fingerprint: same files, same options, same job."""
    return hashlib.sha256(json.dumps(sorted(body.files.items())).encode()).hexdigest()


def create_job(service: Service, who: Principal, body: JobCreate) -> tuple[int, list[str]]:
    """Store the job; return (job id, warnings). Raises HTTPException with a clear 4xx."""
    if who.project_id is None:
        raise HTTPException(
            403, "an admin token belongs to no project: submit with a project's token"
        )
    try:
        kind = job_type(body.kind)
    except UnknownJobKind as exc:
        raise unprocessable("kind", str(exc)) from None
    options = checked_options(kind, body.main, body.options)
    if body.main is not None and body.main not in body.files:
        raise unprocessable("main", f"main file {body.main!r} is not among the files sent")
    if body.kitsu is not None and (body.kitsu.sequence is not None) != (kind.kind == "story"):
        raise unprocessable("kitsu", "a story reel publishes to a sequence (kitsu.sequence, "
                                      "--sequence SQ01), any other job to a shot (kitsu.shot, "
                                      "--shot SQ01/SH010)")
    if body.kitsu is not None and service.store.kitsu_link(who.project_id) is None:
        raise unprocessable("kitsu", f"project {who.project!r} is not linked to Kitsu — link "
                                      "it first: wanhe kitsu link PROJECT --url URL "
                                      "--production NAME")
    for dep in body.depends_on:
        if service.job_project(dep) != who.project_id:
            raise unprocessable("depends_on", f"no job {dep} in this project to wait for")
    for dep, state in service.store.dead_dependencies(body.depends_on):
        raise unprocessable(
            "depends_on", f"job {dep} is {state}: it will never finish, so this job would wait "
                          f"forever — retry job {dep} first, or leave it out")
    missing = service.store.blobs_missing(who.project_id, body.files.values())
    if missing:  # another project's upload of the same bytes does not count: it is theirs
        raise unprocessable(
            "files",
            f"{len(missing)} file(s) were never uploaded by this project (e.g. {missing[0]}) — "
            "PUT them to /api/blobs/{sha256} first (POST /api/blobs/missing lists them)",
        )
    adopted: Path | None = None
    with staged_files(service, body.files) as staging:
        inspected = inspect_staged(service, who, kind, staging, body.main, options)
        kept = _kept_estimate(service, who, body, kind.kind, staging, options)
        digest = _files_digest(body)
        largest = largest_worker_memory(service)

        def build(job_id: int) -> tuple[dict[str, Any], str, list[TaskSpec], str]:
            nonlocal adopted
            root = service.work.job_dir(job_id)
            folder = JobFolder(input=root / "input", output=root / "output", work=root / "work")
            main = None if body.main is None else folder.input / body.main
            compiled = kind.compile(options, inspected, main, folder)
            check_task_memory(kind.kind, compiled.tasks, largest)
            adopted = service.work.adopt(staging, job_id)
            for made in (folder.output, folder.work):  # tasks write there from the start
                made.mkdir(parents=True, exist_ok=True)
            fingerprint = hashlib.sha256(f"{compiled.fingerprint}:{digest}".encode()).hexdigest()
            spec = compiled.spec if kept is None else keep_estimate(compiled.spec, kept)
            return spec, fingerprint, compiled.tasks, str(folder.work)

        name = body.name or (PurePosixPath(body.main).name if body.main else kind.title)
        try:
            try:
                job_id = service.store.create_job_with(
                    project_id=who.project_id, name=name, kind=kind.kind, build=build,
                    priority=body.priority, submitter=who.name or f"token {who.token_id}",
                    depends_on=body.depends_on, paused=body.paused, publish_to=_publish_to(body),
                )
            except InputError as exc:
                raise unprocessable(exc.field, strip_paths(exc.message, service)) from None
            except ValueError as exc:
                raise unprocessable("options", strip_paths(str(exc), service)) from None
        except BaseException:
            if adopted is not None:  # the job's folder, made before its transaction failed
                service.work.discard(adopted)
            raise
    warnings = [strip_paths(w, service) for w in inspected.warnings]
    service.poke(job_id)
    return job_id, warnings


def _publish_to(body: JobCreate) -> PublishTo | None:
    """Where the job publishes when it ends (the service's Kitsu publisher), if anywhere."""
    if body.kitsu is None:
        return None
    return PublishTo(body.kitsu.target, body.kitsu.task.strip(),
                     body.kitsu.reel_task.strip() if body.kitsu.reel_task else None,
                     create_shots=body.kitsu.create_shots)


def _kept_estimate(service: Service, who: Principal, body: JobCreate, kind: str,
                   staging: Path, options: Any) -> dict[str, Any] | None:
    """The estimate the job keeps: the one sent with it, or (`estimate_on_farm`) one probed
    now on its files (`wanhe.api.routes_estimate`); None when neither was asked for."""
    if body.estimate is None and not body.estimate_on_farm:
        return None
    field = "estimate" if body.estimate is not None else "estimate_on_farm"
    if kind != "blender_render":
        raise unprocessable(field, f"an estimate is kept for blender_render jobs (Cycles "
                                    f"renders), not {kind} jobs — leave {field} out")
    if body.estimate is not None and body.estimate_on_farm:
        raise unprocessable(field, "send an estimate or ask the farm for one, not both")
    if body.estimate is not None:
        return body.estimate.model_dump(mode="json")
    from wanhe.api.routes_estimate import estimate_inputs
    from wanhe.runs.estimate import Farm, Prices, kept_estimate

    assert body.main is not None  # a blender_render job has its main file
    cores = os.cpu_count() or 1
    data = estimate_inputs(service, who, staging / "input", body.main, options,
                           Farm(machines=1, cores=cores), Prices())
    return kept_estimate(data, "the farm at submit")


def keep_estimate(spec: dict[str, Any], kept: dict[str, Any]) -> dict[str, Any]:
    """The job's spec with the estimate it keeps (`spec["estimate"]`), checked against the
    frames the job renders."""
    frames = {int(f) for f in spec.get("frames") or []}
    named = {int(f) for f in kept.get("frame_core_s") or {}}
    if named and frames and named != frames:
        extra = sorted(named - frames)[:3] or sorted(frames - named)[:3]
        raise InputError("estimate", f"the estimate's frames are not the job's (e.g. frame "
                                     f"{extra[0]}) — estimate the frames the job renders")
    return {**spec, "estimate": kept}

