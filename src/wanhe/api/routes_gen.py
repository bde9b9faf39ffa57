"""`/api/models`, `/api/gen/{job}`, picks, more candidates, `/api/gen-report`.

Models are registered with an admin token (they are studio assets on the farm's storage;
the farm reads the path on its own machines): farm-wide, or for one project (`project`).
Every token lists the farm-wide models and its own project's. A generation job's results,
picks and files are visible to its project's tokens (and admins).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from wanhe.ai import catalog
from wanhe.ai.models import ModelError, check_name, inspect_model
from wanhe.api.auth import Principal, admin, principal
from wanhe.api.deps import get_service
from wanhe.api.errors import unprocessable
from wanhe.api.service import Service
from wanhe.storage import UnsafePath, confined
from wanhe.store.store import StoreError

router = APIRouter(tags=["generation"])


class ModelCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    path: str = Field(min_length=1, max_length=4096)
    pipeline_class: str | None = Field(default=None, max_length=100)
    gpu_memory: int | None = Field(default=None, ge=1)
    replace: bool = False
    project: str | None = None


class PickIn(BaseModel):
    shot: int = Field(ge=0)
    candidate: int = Field(ge=0)
    verdict: str = Field(pattern=r"^(picked|rejected|clear)$")


class MoreIn(BaseModel):
    shot: int = Field(ge=0)
    count: int = Field(default=4, ge=1, le=1000)
    around: int | None = Field(default=None, ge=0, description="vary this candidate's seed")


@router.get("/api/models")
def list_models(who: Principal = Depends(principal),
                service: Service = Depends(get_service)) -> list[dict[str, Any]]:
    return catalog.list_models(service.store, who.project_id, every=who.admin)


@router.post("/api/models", status_code=201)
def add_model(body: ModelCreate, who: Principal = Depends(admin),
              service: Service = Depends(get_service)) -> dict[str, Any]:
    try:
        check_name(body.name)
        facts = inspect_model(Path(body.path), pipeline_class=body.pipeline_class,
                              gpu_memory=body.gpu_memory)
    except ModelError as exc:
        raise unprocessable("path", str(exc)) from None
    project_id = None
    if body.project:
        found = service.store.project_by_name(body.project)
        if found is None:
            raise unprocessable("project", f"no project {body.project!r}")
        project_id = found.id
    try:
        return catalog.add_model(service.store, body.name, facts, project_id=project_id,
                                 replace=body.replace)
    except StoreError as exc:
        raise HTTPException(409, str(exc)) from None


@router.delete("/api/models/{name}")
def remove_model(name: str, who: Principal = Depends(admin),
                 service: Service = Depends(get_service)) -> dict[str, Any]:
    if not catalog.remove_model(service.store, name):
        raise HTTPException(404, f"no farm-wide model {name!r}")
    return {"removed": name}


def _results(service: Service, who: Principal, job_id: int) -> dict[str, Any]:
    from wanhe.ai.results import job_results
    from wanhe.api.routes_jobs import visible_job

    job = visible_job(service, who, job_id)
    if job.kind != "gen":
        raise HTTPException(404, f"job {job_id} is not a generation job")
    results = job_results(service.store, job_id)
    base = Path(job.spec.get("output", ""))
    for shot in results["shots"]:
        for cand in shot["candidates"]:
            try:
                cand["file"] = Path(cand["output"]).relative_to(base).as_posix()
            except ValueError:
                cand["file"] = None
    return results


@router.get("/api/gen/{job_id}")
def gen_results(job_id: int, who: Principal = Depends(principal),
                service: Service = Depends(get_service)) -> dict[str, Any]:
    return _results(service, who, job_id)


@router.post("/api/gen/{job_id}/picks")
def gen_pick(job_id: int, body: PickIn, who: Principal = Depends(principal),
             service: Service = Depends(get_service)) -> dict[str, Any]:
    from wanhe.ai.results import check_candidate

    results = _results(service, who, job_id)
    try:
        check_candidate(results, body.shot, body.candidate)
    except LookupError as exc:
        raise unprocessable("candidate", str(exc)) from None
    catalog.set_pick(service.store, job_id, body.shot, body.candidate, body.verdict,
                     by=who.name or f"token {who.token_id}")
    publication = service.store.publication(job_id)
    if body.verdict == "picked" and publication is not None and publication.state == "waiting":
        # a job sent with a Kitsu shot publishes its pick: now, not at the next slow look
        service.store.update_publication(job_id, next_at=0.0)
        service.kitsu.wake()
    return {"job": job_id, "shot": body.shot, "candidate": body.candidate,
            "verdict": body.verdict}


def _candidate(service: Service, who: Principal, job_id: int, shot: int,
               candidate: int) -> dict[str, Any]:
    """One candidate of a job the caller may see, or 404 naming what is missing."""
    from wanhe.ai.results import check_candidate

    results = _results(service, who, job_id)
    try:
        check_candidate(results, shot, candidate)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    cand: dict[str, Any] = next(c for c in results["shots"][shot]["candidates"]
                                if c["index"] == candidate)
    return cand


@router.get("/api/gen/{job_id}/file/{shot}/{candidate}")
def gen_file(job_id: int, shot: int, candidate: int, who: Principal = Depends(principal),
             service: Service = Depends(get_service)) -> Any:
    from wanhe.api.routes_jobs import job_file

    cand = _candidate(service, who, job_id, shot, candidate)
    if not cand.get("file") or cand.get("state") != "done":
        raise HTTPException(404, f"candidate {candidate} of shot {shot} is not made yet")
    return job_file(job_id, cand["file"], who, service)


@router.get("/api/gen/{job_id}/preview/{shot}/{candidate}")
def gen_preview(job_id: int, shot: int, candidate: int, who: Principal = Depends(principal),
                service: Service = Depends(get_service)) -> Any:
    """The latest latent preview of a candidate being made (404 when there is none)."""
    from fastapi.responses import FileResponse

    from wanhe.ai.pipelines import preview_path

    cand = _candidate(service, who, job_id, shot, candidate)
    none_now = HTTPException(404, f"no preview of candidate {candidate} now")
    output_dir = service.work.output_dir(job_id)
    try:  # served only from this job's own output folder, links resolved
        relative = preview_path(cand["output"]).relative_to(output_dir).as_posix()
        path = confined(output_dir, relative)
    except (ValueError, UnsafePath):
        raise none_now from None
    if cand.get("state") != "running" or not path.is_file():
        raise none_now
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-cache"})


@router.post("/api/gen/{job_id}/more", status_code=201)
def gen_more(job_id: int, body: MoreIn, who: Principal = Depends(principal),
             service: Service = Depends(get_service)) -> dict[str, Any]:
    """COUNT more candidates of a shot as a new job: new seeds after the shot's last, same
    settings; or (`around`) seeds next to a liked candidate's."""
    from wanhe.api.intake import create_job
    from wanhe.api.schemas import JobCreate

    results = _results(service, who, job_id)
    job = service.store.job(job_id)
    assert job is not None
    if body.shot >= len(results["shots"]):
        raise unprocessable("shot", f"job {job_id} has no shot {body.shot}")
    gen = job.spec["gen"]
    shot = dict(gen["shots"][body.shot])
    cands = results["shots"][body.shot]["candidates"]
    taken = {c["seed"] for c in cands}
    if body.around is not None:
        liked = next((c for c in cands if c["index"] == body.around), None)
        if liked is None:
            raise unprocessable("around", f"shot {body.shot} has no candidate {body.around}")
        seeds: list[int] = []
        step = 1
        while len(seeds) < body.count:  # nearest free seeds on both sides
            for s in (liked["seed"] + step, liked["seed"] - step):
                if s >= 0 and s not in taken and len(seeds) < body.count:
                    seeds.append(s)
            step += 1
        shot["seeds"] = seeds
    else:  # new seeds after the shot's last
        start = max(taken) + 1 if taken else 0
        shot["seeds"] = list(range(start, start + body.count))
    shot["seed"] = None
    shot["first_index"] = max(c["index"] for c in cands) + 1 if cands else 0
    shot["candidates"] = body.count
    files: dict[str, str] = {}
    if shot.get("image"):  # the same upload as the first job's (this project's blob)
        from wanhe.storage import sha256_file

        source = Path(shot["image"])
        rel = source.relative_to(service.work.job_dir(job_id) / "input").as_posix()
        files[rel] = sha256_file(source)
        shot["image"] = rel
    options = {**gen, "shots": [shot]}
    create = JobCreate(kind="gen", name=f"{job.name} more", options=options, files=files,
                       priority=job.priority)
    new_id, warnings = create_job(service, who, create)
    return {"id": new_id, "of": job_id, "shot": body.shot, "count": body.count,
            "warnings": warnings}


@router.get("/api/gen-report")
def gen_report(project: str | None = None, who: Principal = Depends(principal),
               service: Service = Depends(get_service)) -> list[dict[str, Any]]:
    from wanhe.ai.report import by_model

    if not who.admin:
        return by_model(service.store, project_id=who.project_id)
    return by_model(service.store, project)
