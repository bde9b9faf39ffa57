"""Bearer tokens: every call but /health names a token; a project token sees only its project.

Tokens come only in `Authorization: Bearer <token>`, never in a URL (URLs land in proxy and
access logs); the dashboard reads its event stream and images with fetch for that reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from wanhe.api.deps import get_service
from wanhe.api.service import Service

bearer = HTTPBearer(auto_error=False, description="a wanhe API token (wanhe project create)")


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: int
    project_id: int | None  # None: an admin token
    project: str | None
    name: str

    @property
    def admin(self) -> bool:
        return self.project_id is None

    def may_see(self, project_id: int) -> bool:
        return self.project_id is None or self.project_id == project_id


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def principal(
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    service: Service = Depends(get_service),
) -> Principal:
    token = credentials.credentials if credentials is not None else None
    if not token:
        raise _unauthorized("a token is needed — send Authorization: Bearer <token>")
    if len(token) > 200:
        raise _unauthorized("token rejected")
    row = service.store.verify_token(token)
    if row is None:
        raise _unauthorized("token rejected (unknown or revoked)")
    name = None
    if row.project_id is not None:
        project = service.project_name(row.project_id)
        if project is None:
            raise _unauthorized("token rejected (its project is gone)")
        name = project
    return Principal(row.id, row.project_id, name, row.name)


def admin(who: Principal = Depends(principal)) -> Principal:
    if not who.admin:
        raise HTTPException(403, "this needs an admin token (wanhe token create --admin)")
    return who
