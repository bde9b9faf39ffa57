"""A project's link to its Kitsu production, and each job's publication to a shot's task.

The store only keeps these rows: the credentials arrive here already encrypted
(`wanhe.publish.secrets`), and what to publish and how is `wanhe.publish`'s business. A
publication is one row per job, so a job publishes at most once; its state moves
waiting → published (partial: a reel whose shots Kitsu partly lacks), or failed / skipped with
the reason in `message`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import Connection

from wanhe.model import JobState
from wanhe.store import tables as t
from wanhe.store.base import _StoreBase

# partial: a story reel landed, but some of its shots are not in Kitsu (`message` names them)
PUBLICATION_STATES = ("waiting", "published", "partial", "failed", "skipped")


@dataclass(frozen=True, slots=True)
class KitsuLinkRow:
    project_id: int
    url: str
    production: str
    production_id: str
    login: str
    secret: str  # ciphertext: never leaves the service
    linked_by: str
    linked_at: float


@dataclass(frozen=True, slots=True)
class PublicationRow:
    job_id: int
    project_id: int
    shot: str
    task: str
    reel_task: str | None
    state: str
    tries: int
    next_at: float
    message: str
    comment_id: str | None
    preview_id: str | None
    revision: int | None
    file: str | None
    created_at: float
    published_at: float | None
    task_id: str | None  # the Kitsu task the revision (preview_id) went to
    create_shots: bool  # a story reel: create the shots Kitsu lacks

    def public(self) -> dict[str, Any]:
        """What the API shows of it (everything: no secret is in a publication)."""
        return {f: getattr(self, f) for f in self.__slots__}


@dataclass(frozen=True, slots=True)
class PublishTo:
    """Where a job publishes when it ends: `shot`'s `task` (a story reel: its clips to the
    sequence `shot`'s shots' `task`, itself to the sequence's `reel_task`)."""

    shot: str
    task: str
    reel_task: str | None = None
    create_shots: bool = False  # a story reel: create its shots Kitsu lacks (with their task)


def insert_publication(conn: Connection, job_id: int, project_id: int, to: PublishTo) -> None:
    """The job's publication row, inside the caller's transaction (the job's own, at submit:
    a job is never stored without the publication it was sent with)."""
    conn.execute(t.kitsu_publications.insert().values(
        job_id=job_id, project_id=project_id, shot=to.shot, task=to.task,
        reel_task=to.reel_task, create_shots=to.create_shots, state="waiting", tries=0,
        next_at=0.0, message="waits for the job to finish", created_at=time.time()))


def _link(row: Any) -> KitsuLinkRow:
    return KitsuLinkRow(**{c: row._mapping[c] for c in KitsuLinkRow.__slots__})


def _publication(row: Any) -> PublicationRow:
    return PublicationRow(**{c: row._mapping[c] for c in PublicationRow.__slots__})


class KitsuMixin(_StoreBase):
    def set_kitsu_link(self, project_id: int, *, url: str, production: str,
                       production_id: str, login: str, secret: str, linked_by: str) -> None:
        """Link (or re-link) a project to a production: one link per project."""
        values = {"url": url, "production": production, "production_id": production_id,
                  "login": login, "secret": secret, "linked_by": linked_by,
                  "linked_at": time.time()}
        statement = self._upsert(t.kitsu_links).values(project_id=project_id, **values)
        with self.engine.begin() as conn:
            conn.execute(statement.on_conflict_do_update(index_elements=["project_id"],
                                                         set_=values))

    def kitsu_link(self, project_id: int) -> KitsuLinkRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.kitsu_links).where(
                t.kitsu_links.c.project_id == project_id)).first()
        return _link(row) if row else None

    def add_publication(self, job_id: int, project_id: int, to: PublishTo) -> None:
        """The job publishes to `to` once it ends (for a job stored already; a submit stores
        the row with its job: `create_job_with(publish_to=…)`)."""
        with self.engine.begin() as conn:
            insert_publication(conn, job_id, project_id, to)

    def publication(self, job_id: int) -> PublicationRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.kitsu_publications).where(
                t.kitsu_publications.c.job_id == job_id)).first()
        return _publication(row) if row else None

    def due_publications(self, now: float, limit: int = 20
                         ) -> list[tuple[PublicationRow, JobState]]:
        """Waiting publications whose job has ended and whose next try is due, oldest first,
        each with its job's final state; and skipped ones whose job, retried, is done now."""
        p, j = t.kitsu_publications, t.jobs
        finals = [s.value for s in JobState if s.is_final]
        query = (select(p, j.c.state.label("job_state")).join(j, j.c.id == p.c.job_id)
                 .where(p.c.next_at <= now,
                        or_(and_(p.c.state == "waiting", j.c.state.in_(finals)),
                            and_(p.c.state == "skipped", j.c.state == JobState.DONE.value)))
                 .order_by(p.c.next_at, p.c.job_id).limit(limit))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [(_publication(r), JobState(r.job_state)) for r in rows]

    def next_publication_at(self) -> float | None:
        """When the earliest waiting publication is next due (None: none waits)."""
        p = t.kitsu_publications
        with self.engine.connect() as conn:
            found = conn.execute(select(p.c.next_at).where(p.c.state == "waiting")
                                 .order_by(p.c.next_at).limit(1)).scalar()
        return None if found is None else float(found)

    def publication_counts(self, project_id: int) -> dict[str, int]:
        """The project's publications by state."""
        p = t.kitsu_publications
        with self.engine.connect() as conn:
            rows = conn.execute(select(p.c.state, func.count()).where(
                p.c.project_id == project_id).group_by(p.c.state)).all()
        return {str(state): int(n) for state, n in rows}

    def update_publication(self, job_id: int, **fields: Any) -> None:
        """Record progress: the state, a try, the Kitsu comment and preview once made."""
        unknown = set(fields) - set(PublicationRow.__slots__)
        assert not unknown, f"no publication field(s) {sorted(unknown)}"
        assert fields.get("state", "waiting") in PUBLICATION_STATES
        with self.engine.begin() as conn:
            conn.execute(update(t.kitsu_publications)
                         .where(t.kitsu_publications.c.job_id == job_id).values(**fields))
