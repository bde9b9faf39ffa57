"""A submission's files staged for the API (`wanhe.api.staging`), as a submit and the scene
and storyboard estimates use them: checked out of storage for the `with` block and removed
after it, a file that cannot be checked out a 422 at `files`, and an inspection's refusal a
422 without the server's paths."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import HTTPException

from tests.api.conftest import FAKE_BLEND, Farm
from wanhe.api.auth import Principal
from wanhe.api.staging import inspect_staged, staged_files
from wanhe.jobtypes.registry import job_type


def _staging_left(farm: Farm) -> list[Any]:
    return list((farm.settings.storage_root / "staging").iterdir())


def test_staged_files_are_there_for_the_block_only(farm: Farm) -> None:
    service = farm.client.app.state.service  # type: ignore[attr-defined]
    files = farm.upload(farm.project("a"), {"shot/scene.blend": FAKE_BLEND})
    with staged_files(service, files) as staging:
        assert (staging / "input" / "shot" / "scene.blend").read_bytes() == FAKE_BLEND
    assert _staging_left(farm) == []
    with pytest.raises(HTTPException) as refused, staged_files(service, {"s.blend": "a" * 64}):
        pass
    assert refused.value.status_code == 422 and "never uploaded" in str(refused.value.detail)
    assert refused.value.detail[0]["loc"] == ["body", "files"]
    assert _staging_left(farm) == []


def test_an_inspections_refusal_leaves_out_the_servers_paths(farm: Farm) -> None:
    service = farm.client.app.state.service  # type: ignore[attr-defined]
    files = farm.upload(farm.project("a"), {"s.blend": b"PK\x03\x04 a zip, not a blend"})
    kind = job_type("blender_render")
    who = Principal(token_id=1, project_id=1, project="a", name="a")
    with staged_files(service, files) as staging, pytest.raises(HTTPException) as refused:
        inspect_staged(service, who, kind, staging, "s.blend", kind.parse_options({}))
    detail = str(refused.value.detail)
    assert refused.value.status_code == 422 and "s.blend is not a .blend" in detail, detail
    assert str(farm.settings.storage_root) not in detail
