"""Turning a `POST /api/jobs` body into a stored job.

Check everything cheap first (paths, frames, grid, blobs present, dependencies visible), then
materialise the files from storage into a staging checkout in the work area, inspect the scene
there with Blender (scripts never auto-run), and in one short transaction give the job its id,
move the checkout to the work area's `jobs/<id>/input/`, force outputs into
`jobs/<id>/output/frame_####` (published to storage as they finish) and store the task graph.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath
from typing import Any

from fastapi import HTTPException

from wanhe.api.auth import Principal
from wanhe.api.schemas import JobCreate
from wanhe.api.service import Service
from wanhe.jobtypes.blender_render import (
    KIND,
    RenderOptions,
    RenderSpec,
    SceneFacts,
    compile_render_job,
    resolve_spec,
)
from wanhe.model import TaskSpec
from wanhe.storage import StorageError, UnsafePath

MAX_JOB_TASKS = 200_000


def _unprocessable(field: str, message: str) -> HTTPException:
    return HTTPException(
        422, [{"loc": ["body", *field.split(".")], "msg": message, "type": "value_error"}]
    )


def _cheap_checks(body: JobCreate) -> None:
    from wanhe.plan.frames import FrameSpecError, parse_frames
    from wanhe.plan.tiles import TileSpecError, parse_grid

    if body.main not in body.files:
        raise _unprocessable("main", f"main file {body.main!r} is not among the files sent")
    try:
        if body.options.frames:
            parse_frames(body.options.frames)
    except (FrameSpecError, ValueError) as exc:
        raise _unprocessable("options.frames", str(exc)) from None
    try:
        parse_grid(body.options.tiles)
    except (TileSpecError, ValueError) as exc:
        raise _unprocessable("options.tiles", str(exc)) from None


def _options(body: JobCreate, output: str) -> RenderOptions:
    return RenderOptions(**{**body.options.model_dump(), "output": output})


def _resolve(body: JobCreate, facts: SceneFacts, scene: Path, output: str) -> RenderSpec:
    spec = resolve_spec(
        _options(body, output), facts.model_copy(update={"path": str(scene), "output_path": ""})
    )
    per_frame = spec.tiles_x * spec.tiles_y * spec.sample_chunks + 4
    if len(spec.frames) * per_frame > MAX_JOB_TASKS:
        raise ValueError(
            f"{len(spec.frames)} frame(s) × {spec.tiles_x}x{spec.tiles_y} tiles × "
            f"{spec.sample_chunks} sample chunk(s) make more than {MAX_JOB_TASKS:,} tasks — "
            "submit fewer frames per job or fewer tiles"
        )
    return spec


def create_job(service: Service, who: Principal, body: JobCreate) -> tuple[int, list[str]]:
    """Store the job; return (job id, warnings). Raises HTTPException with a clear 4xx."""
    from wanhe.blender.errors import SceneError

    if who.project_id is None:
        raise HTTPException(
            403, "an admin token belongs to no project: submit with a project's token"
        )
    _cheap_checks(body)
    for dep in body.depends_on:
        if service.job_project(dep) != who.project_id:
            raise _unprocessable("depends_on", f"no job {dep} in this project to wait for")
    missing = service.store.blobs_missing(who.project_id, body.files.values())
    if missing:  # another project's upload of the same bytes does not count: it is theirs
        raise _unprocessable(
            "files",
            f"{len(missing)} file(s) were never uploaded by this project (e.g. {missing[0]}) — "
            "PUT them to /api/blobs/{sha256} first (POST /api/blobs/missing lists them)",
        )
    staging = service.work.new_staging()
    adopted: Path | None = None
    try:
        try:
            service.work.materialise_inputs(staging, body.files, service.storage)
        except UnsafePath as exc:
            raise _unprocessable("files", str(exc)) from None
        except StorageError as exc:
            raise _unprocessable("files", str(exc)) from None
        try:
            facts, missing_deps = service.inspect(staging / "input" / body.main)
        except SceneError as exc:
            raise _unprocessable("main", _strip(str(exc), service)) from None
        try:  # the same checks the transaction will make, before it opens
            _resolve(body, facts, staging / "input" / body.main, str(staging / "o" / "f_####"))
        except ValueError as exc:
            raise _unprocessable("options", str(exc)) from None
        digest = hashlib.sha256(body.files[body.main].encode()).hexdigest()

        def build(job_id: int) -> tuple[dict[str, Any], str, list[TaskSpec], str]:
            nonlocal adopted
            folder = service.work.job_dir(job_id)
            spec = _resolve(
                body, facts, folder / "input" / body.main, str(folder / "output" / "frame_####")
            )
            tasks = compile_render_job(spec, str(folder / "work"))
            adopted = service.work.adopt(staging, job_id)
            fingerprint = hashlib.sha256(f"{spec.fingerprint()}:{digest}".encode()).hexdigest()
            return spec.model_dump(mode="json"), fingerprint, tasks, str(folder / "work")

        try:
            job_id = service.store.create_job_with(
                project_id=who.project_id, name=body.name or PurePosixPath(body.main).name,
                kind=KIND, build=build, priority=body.priority,
                submitter=who.name or f"token {who.token_id}", depends_on=body.depends_on,
            )
        except ValueError as exc:
            raise _unprocessable("options", str(exc)) from None
    except BaseException:
        if adopted is not None:
            service.work.discard(adopted)
        service.work.discard(staging)
        raise
    warnings = [
        f"missing external file (renders pink or empty): {_strip(p, service)}"
        for p in missing_deps
    ]
    service.poke(job_id)
    return job_id, warnings


def _strip(text: str, service: Service) -> str:
    """Server paths in messages become paths relative to the upload."""
    root = str(service.work.root)
    import re

    return re.sub(re.escape(root) + r"/(staging|jobs)/[^/]+/input/", "", text)
