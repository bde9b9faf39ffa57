"""Bearer tokens: every call but /health names a token; a project token sees only its project.

Tokens come only in `Authorization: Bearer <token>`, never in a URL (URLs land in proxy and
access logs); the dashboard reads its event stream and images with fetch for that reason.

A project token has a scope: `submit` reads the project and submits and controls its jobs;
`manage` may also create and revoke the project's tokens (a project's first token manages it).
An admin token (no project) may do everything. A token past its `expires_at` gets 401, and
when it last authenticated a request is noted (`last_used_at`, to the minute).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from wanhe.api.deps import get_service
from wanhe.api.service import Service
from wanhe.store.rows import SCOPE_MANAGE, SCOPE_SUBMIT

bearer = HTTPBearer(auto_error=False, description="a wanhe API token (wanhe project create)")


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: int
    project_id: int | None  # None: an admin token
    project: str | None
    name: str
    scope: str = SCOPE_SUBMIT
    expires_at: float | None = None

    @property
    def admin(self) -> bool:
        return self.project_id is None

    @property
    def manages(self) -> bool:
        """May create and revoke tokens (of its own project, unless it is an admin)."""
        return self.admin or self.scope == SCOPE_MANAGE

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
    now = time.time()
    if row.expired(now):
        raise _unauthorized("token rejected (expired) — ask for a new one (wanhe token create)")
    service.note_token_used(row.id, row.last_used_at, now)
    name = None
    if row.project_id is not None:
        project = service.project_name(row.project_id)
        if project is None:
            raise _unauthorized("token rejected (its project is gone)")
        name = project
    return Principal(row.id, row.project_id, name, row.name, row.scope, row.expires_at)


def admin(who: Principal = Depends(principal)) -> Principal:
    if not who.admin:
        raise HTTPException(403, "this needs an admin token (wanhe token create --admin)")
    return who


def manager(who: Principal = Depends(principal)) -> Principal:
    if not who.manages:
        raise HTTPException(
            403, "this needs a token that may manage the project's tokens (scope manage, "
                 "e.g. the project's first token) or an admin token"
        )
    return who
