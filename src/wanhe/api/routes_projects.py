"""`/api/me`, `/api/projects`, `/api/tokens`: who is calling, projects, budgets, tokens."""

from __future__ import annotations

import json
import time

from fastapi import APIRouter, Depends, HTTPException

from wanhe.api.auth import Principal, admin, manager, principal
from wanhe.api.deps import get_service
from wanhe.api.schemas import (
    Me,
    ProjectCreate,
    ProjectCreated,
    ProjectOut,
    ProjectPatch,
    QueueEnvironmentIn,
    QueueEnvironmentOut,
    TokenCreate,
    TokenCreated,
    TokenOut,
)
from wanhe.api.service import Service
from wanhe.store.rows import SCOPE_MANAGE, ProjectNameTaken
from wanhe.store.store import ProjectRow, StoreError

router = APIRouter(tags=["projects"])


def _out(project: ProjectRow, used_seconds: float, used_gpu_seconds: float) -> ProjectOut:
    used = used_seconds / 3600
    used_gpu = used_gpu_seconds / 3600
    core_spent = project.budget_core_hours is not None and used >= project.budget_core_hours
    gpu_spent = project.budget_gpu_hours is not None and used_gpu >= project.budget_gpu_hours
    return ProjectOut(
        name=project.name, weight=project.weight, budget_core_hours=project.budget_core_hours,
        used_core_hours=used, budget_gpu_hours=project.budget_gpu_hours,
        used_gpu_hours=used_gpu, over_budget=core_spent or gpu_spent,
    )


@router.get("/api/me", response_model=Me)
def me(who: Principal = Depends(principal)) -> Me:
    return Me(project=who.project, admin=who.admin, token_id=who.token_id,
              scope="admin" if who.admin else who.scope, expires_at=who.expires_at)


@router.post("/api/projects", response_model=ProjectCreated, status_code=201)
def create_project(
    body: ProjectCreate, who: Principal = Depends(admin),
    service: Service = Depends(get_service),
) -> ProjectCreated:
    try:
        project = service.store.create_project(
            body.name, weight=body.weight, budget_core_hours=body.budget_core_hours,
            budget_gpu_hours=body.budget_gpu_hours,
        )
    except ProjectNameTaken as exc:  # a bad name for a new project, not a clash of requests
        raise HTTPException(422, [{"loc": ["body", "name"], "msg": str(exc),
                                   "type": "value_error"}]) from None
    except StoreError as exc:
        raise HTTPException(409, str(exc)) from None
    token = service.store.create_token(  # the project's first token manages it
        project.id, f"{body.name} (created by {who.name or 'admin'})", scope=SCOPE_MANAGE
    )
    service.poke()
    return ProjectCreated(project=_out(project, 0.0, 0.0), token=token)


@router.get("/api/projects", response_model=list[ProjectOut])
def list_projects(
    who: Principal = Depends(principal), service: Service = Depends(get_service)
) -> list[ProjectOut]:
    used = service.store.used_core_seconds()
    used_gpu = service.store.used_gpu_seconds()
    return [
        _out(p, used.get(p.id, 0.0), used_gpu.get(p.id, 0.0))
        for p in service.store.projects()
        if who.may_see(p.id)
    ]


@router.patch("/api/projects/{name}", response_model=ProjectOut)
def patch_project(
    name: str, body: ProjectPatch, _: Principal = Depends(admin),
    service: Service = Depends(get_service),
) -> ProjectOut:
    project = service.store.project_by_name(name)
    if project is None:
        raise HTTPException(404, f"no project named {name!r}")
    fields = body.model_fields_set
    service.store.update_project(
        project.id, weight=body.weight, budget_core_hours=body.budget_core_hours,
        clear_budget="budget_core_hours" in fields and body.budget_core_hours is None,
        budget_gpu_hours=body.budget_gpu_hours,
        clear_gpu_budget="budget_gpu_hours" in fields and body.budget_gpu_hours is None,
    )
    service.poke()
    fresh = service.store.project(project.id)
    assert fresh is not None
    return _out(
        fresh, service.store.used_core_seconds(project.id).get(project.id, 0.0),
        service.store.used_gpu_seconds(project.id).get(project.id, 0.0),
    )


MAX_ENVIRONMENT_BYTES = 64 * 1024  # a queue environment is a short script, not a payload


def _project_for(name: str, who: Principal, service: Service) -> ProjectRow:
    """The named project, if the caller may see it (404 alike for one it may not: a project's
    existence is not told to another project)."""
    project = service.store.project_by_name(name)
    if project is None or not who.may_see(project.id):
        raise HTTPException(404, f"no project named {name!r}")
    return project


@router.get("/api/projects/{name}/environments", response_model=list[QueueEnvironmentOut])
def list_environments(
    name: str, who: Principal = Depends(principal), service: Service = Depends(get_service),
) -> list[QueueEnvironmentOut]:
    """The project's OpenJD queue environments, in the order its jobs enter them."""
    project = _project_for(name, who, service)
    return [QueueEnvironmentOut(name=env, template=doc)
            for env, doc in service.store.project_environments(project.id)]


@router.post("/api/projects/{name}/environments", response_model=QueueEnvironmentOut,
             status_code=201)
def add_environment(
    name: str, body: QueueEnvironmentIn, who: Principal = Depends(manager),
    service: Service = Depends(get_service),
) -> QueueEnvironmentOut:
    """Add a queue environment every later OpenJD job of the project enters (after the
    farm's, before the job's own); jobs already submitted keep the ones they had."""
    from wanhe.openjd.template import TemplateError, decode_environment

    project = _project_for(name, who, service)
    if len(json.dumps(body.template)) > MAX_ENVIRONMENT_BYTES:
        raise HTTPException(422, [{"loc": ["body", "template"], "type": "value_error",
                                   "msg": "the environment template is over 64 KiB — keep "
                                          "the scripts it runs in files the job carries"}])
    try:
        decoded = decode_environment(body.template, "the queue environment")
    except TemplateError as exc:
        raise HTTPException(422, [{"loc": ["body", "template"], "msg": exc.message,
                                   "type": "value_error"}]) from None
    env_name = str(decoded.environment.name)
    try:
        service.store.add_project_environment(project.id, env_name, body.template,
                                              replace=body.replace)
    except StoreError as exc:
        raise HTTPException(409, str(exc)) from None
    return QueueEnvironmentOut(name=env_name, template=body.template)


@router.delete("/api/projects/{name}/environments/{env_name}",
               response_model=list[QueueEnvironmentOut])
def remove_environment(
    name: str, env_name: str, who: Principal = Depends(manager),
    service: Service = Depends(get_service),
) -> list[QueueEnvironmentOut]:
    """Remove one; the answer is the project's queue environments left."""
    project = _project_for(name, who, service)
    if not service.store.remove_project_environment(project.id, env_name):
        raise HTTPException(404, f"project {project.name} has no queue environment named "
                                 f"{env_name!r} (wanhe project env list {project.name})")
    return [QueueEnvironmentOut(name=env, template=doc)
            for env, doc in service.store.project_environments(project.id)]


@router.get("/api/tokens", response_model=list[TokenOut])
def list_tokens(
    who: Principal = Depends(principal), service: Service = Depends(get_service)
) -> list[TokenOut]:
    rows = service.store.tokens(who.project_id)
    return [TokenOut(**row) for row in rows]


@router.post("/api/tokens", response_model=TokenCreated, status_code=201)
def create_token(
    body: TokenCreate, who: Principal = Depends(manager),
    service: Service = Depends(get_service),
) -> TokenCreated:
    """A new token for the caller's project (admins: any project, or an admin token). Needs a
    managing or an admin token; the new one expires no later than the caller's."""
    if body.admin:
        if not who.admin:
            raise HTTPException(403, "only an admin token can create admin tokens")
        if body.project is not None:
            raise HTTPException(422, "an admin token belongs to no project: leave project out")
        project_id, project_name = None, None
    elif body.project is None:
        if who.admin:
            raise HTTPException(422, "name the project the token is for (or admin: true)")
        project_id, project_name = who.project_id, who.project
    else:
        found = service.store.project_by_name(body.project)
        if found is None or not who.may_see(found.id):
            raise HTTPException(404, f"no project named {body.project!r}")
        project_id, project_name = found.id, found.name
    expires = None if body.expires_in_s is None else time.time() + body.expires_in_s
    if who.expires_at is not None:  # a leaked short-lived token cannot mint a lasting one
        expires = who.expires_at if expires is None else min(expires, who.expires_at)
    token = service.store.create_token(project_id, body.name, scope=body.scope,
                                       expires_at=expires)
    row = service.store.verify_token(token)
    assert row is not None
    return TokenCreated(id=row.id, project=project_name, name=body.name, token=token,
                        scope="admin" if project_id is None else row.scope,
                        expires_at=row.expires_at)


@router.delete("/api/tokens/{token_id}", response_model=TokenOut)
def revoke_token(
    token_id: int, who: Principal = Depends(principal), service: Service = Depends(get_service)
) -> TokenOut:
    """Revoke a token: a managing or admin token may revoke any of its project's (an admin:
    any); a submit token only itself."""
    rows = {r["id"]: r for r in service.store.tokens(who.project_id)}
    if token_id not in rows:
        raise HTTPException(404, f"no token {token_id}")
    if token_id != who.token_id and not who.manages:
        raise HTTPException(
            403, "only a token that manages the project (scope manage) or an admin token "
                 "may revoke other tokens"
        )
    service.store.revoke_token(token_id, who.project_id)
    return TokenOut(**{**rows[token_id], "revoked": True})
