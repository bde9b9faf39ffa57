"""A project's GPU-hour budget: set on creation, changed, removed, refused when negative, and
every change stamped so a running dispatcher's sync sees it."""

from __future__ import annotations

import pytest

from wanhe.model import TaskKind, TaskSpec
from wanhe.store.store import Store, StoreError, Usage


def test_create_with_gpu_budget(store: Store) -> None:
    made = store.create_project("gpu", weight=2.0, budget_core_hours=10, budget_gpu_hours=1.5)
    assert made.budget_gpu_hours == 1.5 and made.budget_core_hours == 10
    for found in (store.project(made.id), store.project_by_name("gpu"), store.projects()[0]):
        assert found == made
    plain = store.create_project("cpu")
    assert plain.budget_gpu_hours is None
    assert store.project(plain.id).budget_gpu_hours is None  # type: ignore[union-attr]


def test_update_and_clear_gpu_budget(store: Store) -> None:
    project = store.create_project("gpu", budget_core_hours=4)
    store.update_project(project.id, budget_gpu_hours=2.5)
    fresh = store.project(project.id)
    assert fresh is not None
    assert (fresh.budget_core_hours, fresh.budget_gpu_hours) == (4, 2.5)
    store.update_project(project.id, clear_budget=True)  # the core budget only
    fresh = store.project(project.id)
    assert fresh is not None
    assert (fresh.budget_core_hours, fresh.budget_gpu_hours) == (None, 2.5)
    store.update_project(project.id, budget_core_hours=3, clear_gpu_budget=True)
    fresh = store.project(project.id)
    assert fresh is not None
    assert (fresh.budget_core_hours, fresh.budget_gpu_hours) == (3, None)
    store.update_project(project.id, budget_gpu_hours=0)  # zero is a budget, not "none"
    assert store.project(project.id).budget_gpu_hours == 0  # type: ignore[union-attr]


def test_negative_gpu_budget_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="GPU-hours"):
        store.create_project("neg", budget_gpu_hours=-1)
    assert store.project_by_name("neg") is None
    project = store.create_project("ok", budget_gpu_hours=1)
    with pytest.raises(StoreError, match="negative"):
        store.update_project(project.id, budget_gpu_hours=-0.5)
    assert store.project(project.id).budget_gpu_hours == 1  # type: ignore[union-attr]


def test_gpu_budget_changes_are_stamped_for_the_dispatcher(store: Store) -> None:
    project = store.create_project("gpu")
    start = store.revision()
    assert store.changes_since(start).projects == []
    store.update_project(project.id, budget_gpu_hours=3)
    changed = store.changes_since(start)
    assert [(p.id, p.budget_gpu_hours) for p in changed.projects] == [(project.id, 3)]
    store.update_project(project.id, clear_gpu_budget=True)
    cleared = store.changes_since(changed.revision)
    assert [(p.id, p.budget_gpu_hours) for p in cleared.projects] == [(project.id, None)]
    created = store.create_project("new", budget_gpu_hours=7)
    fresh = store.changes_since(cleared.revision)
    assert [(p.id, p.budget_gpu_hours) for p in fresh.projects] == [(created.id, 7)]
    store.update_project(project.id)  # nothing to change: nothing stamped
    assert store.changes_since(fresh.revision).projects == []


def test_used_gpu_seconds_counts_metered_attempts(store: Store) -> None:
    project = store.create_project("gpu", budget_gpu_hours=1)
    job = store.create_job(project_id=project.id, name="shot", kind="test", spec={},
                           fingerprint="fp", tasks=[TaskSpec("r", TaskKind.RENDER, {})])
    task = store.tasks(job)[0]
    attempt = store.start_attempt(task.id, node="n1", worker="w1", cores=1)
    store.finish_attempt(attempt, task.id, Usage(wall_s=7200, cores=1, gpu_s=7200), {})
    assert store.used_gpu_seconds() == {project.id: 7200}
    assert store.used_gpu_seconds(project.id) == {project.id: 7200}
