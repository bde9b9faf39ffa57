"""Project names map to OS users one-to-one: a name is stored lowercase, and a new project
whose name or OS user name is an existing project's but for case or punctuation is refused
naming the other project (the CLI and the API share the rule; the API case is in
tests/api/test_project_names.py)."""

from __future__ import annotations

import pytest

from wanhe.sandbox.accounts import user_name
from wanhe.store.rows import ProjectNameTaken, StoreError
from wanhe.store.store import Store


def test_colliding_names_are_refused_naming_the_other(db_url: str) -> None:
    store = Store(db_url)
    try:
        alpha = store.create_project("alpha")
        with pytest.raises(ProjectNameTaken, match=r"'Alpha'.*project 'alpha'"):
            store.create_project("Alpha")
        dotted = store.create_project("al.pha")  # another name: its own user
        with pytest.raises(ProjectNameTaken, match=r"'al-pha'.*project 'al\.pha'"):
            store.create_project("al-pha")
        with pytest.raises(ProjectNameTaken, match=r"project 'al\.pha'"):
            store.create_project("AL_PHA")
        with pytest.raises(StoreError, match="exists already"):
            store.create_project("alpha")
        assert store.create_project("Lionboy").name == "lionboy"  # stored lowercase
        assert store.project_by_name("LionBoy") is not None  # and found however spelled
        assert [p.name for p in store.projects()] == ["alpha", "al.pha", "lionboy"]
        users = {user_name(p.name, p.id) for p in store.projects()}
        assert len(users) == 3
        assert user_name(alpha.name, alpha.id) == f"wanhe-p{alpha.id}-alpha"
        assert user_name(dotted.name, dotted.id) == f"wanhe-p{dotted.id}-al-pha"
    finally:
        store.dispose()


def test_user_names_carry_the_id_and_fit_useradd() -> None:
    assert user_name("alpha", 1) != user_name("alpha", 2)
    long = user_name("a" * 100, 123456)
    assert len(long) <= 32 and long.startswith("wanhe-p123456-")
