"""A job sent with a Kitsu publication is stored with it in one transaction: a crash or an
error between the two cannot leave a job that finishes and never publishes."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from wanhe.model import TaskKind, TaskSpec
from wanhe.store.kitsu import PublishTo
from wanhe.store.store import Store


def _build(job_id: int) -> tuple[dict[str, object], str, list[TaskSpec], str]:
    return {}, f"fp{job_id}", [TaskSpec("n0", TaskKind.NOOP, {}, frame=1)], ""


def test_the_publication_is_stored_with_its_job(store: Store) -> None:
    project = store.create_project("lionboy")
    job_id = store.create_job_with(project_id=project.id, name="sh010", kind="noop",
                                   build=_build, publish_to=PublishTo("SQ01/SH010", "Lighting"))
    found = store.publication(job_id)
    assert found is not None
    assert (found.shot, found.task, found.state) == ("SQ01/SH010", "Lighting", "waiting")


def test_a_publication_that_cannot_be_stored_stores_no_job(store: Store) -> None:
    project = store.create_project("lionboy")
    broken = PublishTo(None, "Lighting")  # type: ignore[arg-type]  # a NOT NULL column refuses it
    with pytest.raises(IntegrityError):
        store.create_job_with(project_id=project.id, name="sh010", kind="noop", build=_build,
                              publish_to=broken)
    assert store.jobs() == []


def test_a_job_without_one_publishes_nothing(store: Store) -> None:
    project = store.create_project("lionboy")
    job_id = store.create_job_with(project_id=project.id, name="sh010", kind="noop",
                                   build=_build)
    assert store.publication(job_id) is None
