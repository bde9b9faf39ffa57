"""Projects, their API tokens, and which uploaded blobs each project owns."""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Insert, Table, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Row

from wanhe.store import tables as t
from wanhe.store.base import _StoreBase
from wanhe.store.rows import (
    SCOPE_SUBMIT,
    TOKEN_SCOPES,
    ProjectNameTaken,
    ProjectRow,
    StoreError,
    TokenRow,
    _now,
    _project,
    check_project_name,
    hash_token,
    normalise_project_name,
    project_slug,
)

_IN_CHUNK = 500  # values per SQL IN (…): well under SQLite's bound-parameter limit


def _token(row: Row[Any]) -> TokenRow:
    return TokenRow(row.id, row.project_id, row.name, row.scope, row.expires_at,
                    row.last_used_at)


def _check_distinct(given: str, name: str, existing: Iterable[str]) -> None:
    """ProjectNameTaken, naming the other project, when `name` is an existing project's name
    but for case or punctuation: one OS user per project, and one name a person can say."""
    for other in existing:
        if other == given:  # the same project asked for twice: "exists already"
            continue
        if normalise_project_name(other) == name:
            raise ProjectNameTaken(
                f"project name {given!r} is taken: it is project {other!r} in other letters "
                "(names are compared lowercase) — choose another name")
        if project_slug(other) == project_slug(name):
            raise ProjectNameTaken(
                f"project name {given!r} is too close to project {other!r}: both would run "
                f"as the OS user wanhe-p<id>-{project_slug(name)} — choose a name that "
                "differs in letters or digits, not only in '.', '_' or '-'")


class ProjectsMixin(_StoreBase):
    def create_project(
        self, name: str, *, weight: float = 1.0, budget_core_hours: float | None = None,
        budget_gpu_hours: float | None = None,
    ) -> ProjectRow:
        given = name
        name = normalise_project_name(name)
        check_project_name(name)
        if weight <= 0:
            raise StoreError(f"project weight must be positive, not {weight}")
        if budget_core_hours is not None and budget_core_hours < 0:
            raise StoreError(f"a budget cannot be negative ({budget_core_hours} core-hours)")
        if budget_gpu_hours is not None and budget_gpu_hours < 0:
            raise StoreError(f"a budget cannot be negative ({budget_gpu_hours} GPU-hours)")
        with self.engine.begin() as conn:
            _check_distinct(given, name, conn.execute(select(t.projects.c.name)).scalars())
            if conn.execute(select(t.projects.c.id).where(t.projects.c.name == name)).first():
                raise StoreError(f"project {name!r} exists already")
            pid = conn.execute(
                insert(t.projects).values(
                    name=name, weight=weight, budget_core_hours=budget_core_hours,
                    budget_gpu_hours=budget_gpu_hours, created_at=_now(),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            self._touch_project(conn, int(pid))
        return ProjectRow(int(pid), name, weight, budget_core_hours, budget_gpu_hours)

    def ensure_project(self, name: str) -> ProjectRow:
        found = self.project_by_name(name)
        return found if found is not None else self.create_project(name)

    def project_by_name(self, name: str) -> ProjectRow | None:
        """The project of this name: spelled as stored, or as the normalised name (a project
        made before names were normalised keeps its spelling)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(t.projects).where(t.projects.c.name == name)).first()
            if row is None and normalise_project_name(name) != name:
                row = conn.execute(select(t.projects).where(
                    t.projects.c.name == normalise_project_name(name))).first()
        return _project(row) if row else None

    def project(self, project_id: int) -> ProjectRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.projects).where(t.projects.c.id == project_id)).first()
        return _project(row) if row else None

    def projects(self) -> list[ProjectRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.projects).order_by(t.projects.c.id)).all()
        return [_project(r) for r in rows]

    def update_project(
        self, project_id: int, *, weight: float | None = None,
        budget_core_hours: float | None = None, clear_budget: bool = False,
        budget_gpu_hours: float | None = None, clear_gpu_budget: bool = False,
    ) -> None:
        """Change a project's weight or budgets; `clear_budget` / `clear_gpu_budget` remove
        the core-hour / GPU-hour budget. The row is stamped so a running dispatcher sees it."""
        values: dict[str, Any] = {}
        if weight is not None:
            if weight <= 0:
                raise StoreError(f"project weight must be positive, not {weight}")
            values["weight"] = weight
        if budget_core_hours is not None:
            if budget_core_hours < 0:
                raise StoreError(f"a budget cannot be negative ({budget_core_hours} core-hours)")
            values["budget_core_hours"] = budget_core_hours
        if clear_budget:
            values["budget_core_hours"] = None
        if budget_gpu_hours is not None:
            if budget_gpu_hours < 0:
                raise StoreError(f"a budget cannot be negative ({budget_gpu_hours} GPU-hours)")
            values["budget_gpu_hours"] = budget_gpu_hours
        if clear_gpu_budget:
            values["budget_gpu_hours"] = None
        if values:
            with self.engine.begin() as conn:
                conn.execute(
                    update(t.projects).where(t.projects.c.id == project_id).values(**values)
                )
                self._touch_project(conn, project_id)

    def add_project_environment(self, project_id: int, name: str,
                                document: dict[str, Any], *, replace: bool = False) -> None:
        """Keep an OpenJD queue environment for a project's jobs, entered after those added
        before it (the caller checks that `document` is an environment template). A name the
        project has already is refused, or with `replace` takes the old one's place."""
        text = json.dumps(document, sort_keys=True)
        envs = t.project_environments
        with self.engine.begin() as conn:
            mine = envs.c.project_id == project_id
            old = conn.execute(select(envs.c.id).where(mine, envs.c.name == name)).first()
            if old is not None and not replace:
                raise StoreError(f"the project has a queue environment named {name!r} already "
                                 "— remove it first, or replace it")
            if old is not None:
                conn.execute(update(envs).where(envs.c.id == old[0]).values(
                    document=text, created_at=_now()))
                return
            last = conn.execute(select(func.max(envs.c.position)).where(mine)).scalar()
            conn.execute(insert(envs).values(
                project_id=project_id, name=name, position=(last or 0) + 1, document=text,
                created_at=_now()))

    def project_environments(self, project_id: int) -> list[tuple[str, dict[str, Any]]]:
        """A project's queue environments as (name, template), in the order they are entered."""
        envs = t.project_environments
        with self.engine.connect() as conn:
            rows = conn.execute(select(envs.c.name, envs.c.document)
                                .where(envs.c.project_id == project_id)
                                .order_by(envs.c.position)).all()
        return [(str(r.name), json.loads(r.document)) for r in rows]

    def remove_project_environment(self, project_id: int, name: str) -> bool:
        """Forget one of a project's queue environments (jobs already submitted keep theirs)."""
        envs = t.project_environments
        with self.engine.begin() as conn:
            done = conn.execute(delete(envs).where(envs.c.project_id == project_id,
                                                   envs.c.name == name))
        return bool(done.rowcount)

    def create_token(
        self, project_id: int | None, name: str = "", *, scope: str = SCOPE_SUBMIT,
        expires_at: float | None = None,
    ) -> str:
        """A new API token (returned once, stored only as a hash); None makes an admin token.

        `scope`: `submit` (read and submit) or `manage` (also create and revoke the project's
        tokens); an admin token can do everything whatever its scope. `expires_at`: when it
        stops working (None: never)."""
        if scope not in TOKEN_SCOPES:
            raise StoreError(f"token scope {scope!r} is not one of {', '.join(TOKEN_SCOPES)}")
        if expires_at is not None and not math.isfinite(expires_at):
            raise StoreError(f"a token cannot expire at {expires_at}")
        token = "wh_" + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(
                insert(t.tokens).values(
                    project_id=project_id, name=name, token_hash=hash_token(token),
                    created_at=_now(), scope=scope, expires_at=expires_at,
                )
            )
        return token

    def verify_token(self, token: str) -> TokenRow | None:
        """The token's row unless it is unknown or revoked (an expired one is returned: the
        caller says it expired)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.tokens).where(
                    t.tokens.c.token_hash == hash_token(token), t.tokens.c.revoked_at.is_(None)
                )
            ).first()
        return _token(row) if row else None

    def token_active(self, token_id: int) -> bool:
        """Whether a token still works: not revoked, not expired (an open stream asks)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(t.tokens).where(t.tokens.c.id == token_id)).first()
        return row is not None and row.revoked_at is None and not _token(row).expired()

    def note_token_used(self, token_id: int, when: float | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(t.tokens).where(t.tokens.c.id == token_id)
                         .values(last_used_at=when or _now()))

    def tokens(self, project_id: int | None = None) -> list[dict[str, Any]]:
        query = select(t.tokens, t.projects.c.name.label("project")).outerjoin(
            t.projects, t.tokens.c.project_id == t.projects.c.id
        )
        if project_id is not None:
            query = query.where(t.tokens.c.project_id == project_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.tokens.c.id)).all()
        now = _now()
        return [
            {
                "id": r.id, "project": r.project, "name": r.name, "created_at": r.created_at,
                "revoked": r.revoked_at is not None,
                "scope": "admin" if r.project_id is None else r.scope,
                "expires_at": r.expires_at, "last_used_at": r.last_used_at,
                "expired": r.expires_at is not None and now >= r.expires_at,
            }
            for r in rows
        ]

    def revoke_token(self, token_id: int, project_id: int | None = None) -> bool:
        query = update(t.tokens).where(t.tokens.c.id == token_id, t.tokens.c.revoked_at.is_(None))
        if project_id is not None:
            query = query.where(t.tokens.c.project_id == project_id)
        with self.engine.begin() as conn:
            return bool(conn.execute(query.values(revoked_at=_now())).rowcount)

    def _owned_blobs(self, conn: Connection, project_id: int, hashes: Sequence[str]) -> set[str]:
        owned: set[str] = set()
        for i in range(0, len(hashes), _IN_CHUNK):
            owned.update(conn.execute(
                select(t.project_blobs.c.sha256).where(
                    t.project_blobs.c.project_id == project_id,
                    t.project_blobs.c.sha256.in_(hashes[i:i + _IN_CHUNK]),
                )
            ).scalars())
        return owned

    def blobs_missing(self, project_id: int, hashes: Iterable[str]) -> list[str]:
        """The hashes (de-duplicated, in order) this project never uploaded."""
        wanted = list(dict.fromkeys(hashes))
        with self.engine.connect() as conn:
            owned = self._owned_blobs(conn, project_id, wanted)
        return [sha for sha in wanted if sha not in owned]

    def record_blobs(self, project_id: int, blobs: Iterable[tuple[str, int]]) -> list[str]:
        """Record that a project uploaded these (sha256, size) blobs, whose bytes were verified;
        return the hashes it had not uploaded before. Recording one twice is harmless."""
        sizes = dict(blobs)
        if not sizes:
            return []
        now = _now()
        with self.engine.begin() as conn:
            owned = self._owned_blobs(conn, project_id, list(sizes))
            new = [sha for sha in sizes if sha not in owned]
            if new:
                conn.execute(self._insert_ignoring_duplicates(t.project_blobs), [
                    {"project_id": project_id, "sha256": sha, "size": sizes[sha],
                     "created_at": now} for sha in new
                ])
        return new

    def _insert_ignoring_duplicates(self, table: Table) -> Insert:
        """INSERT that skips rows whose key exists (two uploads of one file may race)."""
        return self._upsert(table).on_conflict_do_nothing()
