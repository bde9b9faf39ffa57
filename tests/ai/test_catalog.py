"""The model catalogue and picks in the database (SQLite, and PostgreSQL when configured):
farm-wide and project models, names unique per scope, a project's own model first."""

from __future__ import annotations

import pytest

from wanhe.ai import catalog
from wanhe.ai.models import ModelFacts
from wanhe.model import TaskSpec
from wanhe.store.store import Store, StoreError


def facts(path: str, sha: str = "a" * 64) -> ModelFacts:
    return ModelFacts(path, "diffusers", "StableDiffusionPipeline", "text-to-image", 10, sha,
                      1 << 30, True)


def test_scopes_names_and_replace(store: Store) -> None:
    p1 = store.create_project("p1")
    p2 = store.create_project("p2")
    catalog.add_model(store, "sd", facts("/farm/sd"))
    catalog.add_model(store, "sd", facts("/p1/sd", "b" * 64), project_id=p1.id)
    with pytest.raises(StoreError, match="--replace"):
        catalog.add_model(store, "sd", facts("/farm/other"))
    assert catalog.find_model(store, "sd", p1.id)["path"] == "/p1/sd"
    assert catalog.find_model(store, "sd", p2.id)["path"] == "/farm/sd"
    assert catalog.find_model(store, "nope", p2.id) is None
    catalog.add_model(store, "sd", facts("/farm/new"), replace=True)
    assert catalog.find_model(store, "sd", p2.id)["path"] == "/farm/new"
    assert len(catalog.list_models(store, p2.id)) == 1
    assert len(catalog.list_models(store, every=True)) == 2
    assert catalog.remove_model(store, "sd") and catalog.find_model(store, "sd", p2.id) is None


def test_picks_and_task_affinity_are_stored(store: Store) -> None:
    project = store.create_project("p")
    job = store.create_job(project_id=project.id, name="g", kind="gen", spec={},
                           fingerprint="f", tasks=[TaskSpec("s/c000", "gen", {},
                                                            affinity="model:sd@x")])
    assert store.tasks(job)[0].affinity == "model:sd@x"
    assert store.ready_tasks_of([job])[0].affinity == "model:sd@x"
    catalog.set_pick(store, job, 0, 1, "picked", by="ana")
    catalog.set_pick(store, job, 0, 2, "rejected")
    catalog.set_pick(store, job, 0, 2, "clear")
    assert catalog.picks(store, job) == {(0, 1): "picked"}
    with pytest.raises(StoreError):
        catalog.set_pick(store, job, 0, 1, "maybe")
