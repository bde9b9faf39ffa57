"""`/api/projects/{name}/kitsu`: link a project to its Kitsu production, and see the link.

The credentials are checked against Kitsu when the link is made (a wrong password is a 422
naming it, not a surprise at the first publish), then sealed with the service's key
(`wanhe.publish.secrets`) and never returned, logged or shown again. Managing and admin
tokens only: whoever links decides whose Kitsu account the farm publishes as.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException

from wanhe.api.auth import Principal, manager, principal
from wanhe.api.deps import get_service
from wanhe.api.schemas import KitsuLinkIn, KitsuLinkOut
from wanhe.api.service import Service
from wanhe.publish import kitsu
from wanhe.publish.secrets import SecretUnreadable, seal, unseal
from wanhe.store.kitsu import KitsuLinkRow
from wanhe.store.store import ProjectRow

router = APIRouter(tags=["kitsu"])


def _project(service: Service, who: Principal, name: str) -> ProjectRow:
    project = service.store.project_by_name(name)
    if project is None or not who.may_see(project.id):
        raise HTTPException(404, f"no project named {name!r}")
    return project


def _out(project: ProjectRow, link: KitsuLinkRow) -> KitsuLinkOut:
    return KitsuLinkOut(project=project.name, url=link.url, production=link.production,
                        login=link.login, linked_by=link.linked_by, linked_at=link.linked_at)


@router.put("/api/projects/{name}/kitsu", response_model=KitsuLinkOut)
def link(
    name: str, body: KitsuLinkIn, who: Principal = Depends(manager),
    service: Service = Depends(get_service),
) -> KitsuLinkOut:
    """Link the project to a Kitsu production (again: the new link replaces the old)."""
    project = _project(service, who, name)
    credentials = ({"token": body.token} if body.token else
                   {"email": body.email or "", "password": body.password or ""})
    try:
        client = kitsu.connect(body.url, credentials)
        production = kitsu.find_production(client, body.production)
    except kitsu.KitsuError as exc:
        raise HTTPException(422, [{"loc": ["body"], "msg": str(exc),
                                   "type": "value_error"}]) from None
    service.store.set_kitsu_link(
        project.id, url=kitsu.api_url(body.url), production=str(production["name"]),
        production_id=str(production["id"]), login=body.email or "(token)",
        secret=seal(service.settings.home, credentials), linked_by=who.name or "admin")
    found = service.store.kitsu_link(project.id)
    assert found is not None
    return _out(project, found)


@router.get("/api/projects/{name}/kitsu", response_model=KitsuLinkOut)
def status(
    name: str, who: Principal = Depends(principal), service: Service = Depends(get_service),
) -> KitsuLinkOut:
    """The project's Kitsu link (never its credentials) and how its publications stand."""
    project = _project(service, who, name)
    found = service.store.kitsu_link(project.id)
    if found is None:
        raise HTTPException(404, f"project {name!r} is not linked to Kitsu — link it: wanhe "
                                 "kitsu link PROJECT --url URL --production NAME")
    out = _out(project, found)
    out.publications = service.store.publication_counts(project.id)
    return out


@router.get("/api/projects/{name}/kitsu/sequences/{sequence}")
def sequence(
    name: str, sequence: str, who: Principal = Depends(principal),
    service: Service = Depends(get_service),
) -> dict[str, Any]:
    """A sequence of the linked production as Kitsu knows it (fps, shots in order with their
    description and frame count): what `wanhe story from-kitsu` turns into a storyboard."""
    project = _project(service, who, name)
    found = service.store.kitsu_link(project.id)
    if found is None:
        raise HTTPException(404, f"project {name!r} is not linked to Kitsu — link it: wanhe "
                                 "kitsu link PROJECT --url URL --production NAME")
    try:
        client = kitsu.connect(found.url, unseal(service.settings.home, found.secret))
        production = kitsu.find_production(client, found.production)
        shots = kitsu.sequence_shots(client, production, sequence)
    except SecretUnreadable as exc:
        raise HTTPException(409, str(exc)) from None
    except kitsu.KitsuError as exc:
        raise HTTPException(502 if exc.retry else 404, str(exc)) from None
    return {"production": found.production, "fps": kitsu.production_fps(production),
            "sequence": sequence, "shots": shots}
