"""A project's OpenJD queue environments in the database: kept in the order they were added,
a name once per project (or replaced in place), removed by name, never another project's."""

from __future__ import annotations

import pytest

from wanhe.store.store import Store, StoreError


def _env(name: str, tool: str) -> dict[str, object]:
    return {"specificationVersion": "environment-2023-09", "environment": {
        "name": name, "variables": {"TOOL": tool}}}


def test_environments_keep_their_order_and_stay_with_their_project(store: Store) -> None:
    alpha = store.create_project("alpha")
    beta = store.create_project("beta")
    store.add_project_environment(alpha.id, "Conda", _env("Conda", "conda"))
    store.add_project_environment(alpha.id, "Rez", _env("Rez", "rez"))
    with pytest.raises(StoreError, match="named 'Conda' already"):
        store.add_project_environment(alpha.id, "Conda", _env("Conda", "other"))
    # replacing keeps its place in the order
    store.add_project_environment(alpha.id, "Conda", _env("Conda", "conda2"), replace=True)
    envs = store.project_environments(alpha.id)
    assert [n for n, _ in envs] == ["Conda", "Rez"]
    assert envs[0][1]["environment"]["variables"] == {"TOOL": "conda2"}
    assert store.project_environments(beta.id) == []
    assert not store.remove_project_environment(beta.id, "Rez")  # not beta's to remove
    assert store.remove_project_environment(alpha.id, "Conda")
    store.add_project_environment(alpha.id, "Venv", _env("Venv", "venv"))
    assert [n for n, _ in store.project_environments(alpha.id)] == ["Rez", "Venv"]
