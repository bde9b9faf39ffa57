"""The farm takes `options.split` like `wanhe render --split`: with a border probe that finds
the scene's tiles inexact (a stand-in for Blender, as the other API tests use for inspection),
the job is split into sample chunks and the submitter is told why."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from wanhe.api.app import create_app
from wanhe.store.store import Store

from .conftest import FAKE_BLEND, FAKE_INSPECTORS, Farm, farm_settings


def inexact_borders(path: Path) -> dict[str, Any]:
    return {"border_exact": False, "border_why_not": "the scene has volumes"}


@pytest.fixture
def probed_farm(tmp_path: Path, db_url: str) -> Iterator[Farm]:
    settings = farm_settings(tmp_path, db_url)
    store = Store(settings.db_url)
    admin = store.create_token(None, "admin")
    store.dispose()
    inspectors = {**FAKE_INSPECTORS, "blender_render.borders": inexact_borders}
    app = create_app(settings, start_dispatcher=False, inspectors=inspectors)
    with TestClient(app) as client:
        yield Farm(client, settings, admin)


def test_split_on_an_inexact_scene_uses_sample_chunks(probed_farm: Farm) -> None:
    token = probed_farm.project("split")
    job = probed_farm.submit(token, options={"frames": "1", "denoise": False, "split": 4})
    warnings = [str(w) for w in job["warnings"]]  # type: ignore[union-attr]
    assert any("--split 4: 4 sample chunks" in w and "volumes" in w for w in warnings)
    detail = probed_farm.client.get(f"/api/jobs/{job['id']}",
                                    headers=probed_farm.auth(token)).json()
    assert detail["spec"]["sample_chunks"] == 4 and detail["spec"]["tiles_x"] == 1


def test_split_and_tiles_together_are_refused(probed_farm: Farm) -> None:
    token = probed_farm.project("both")
    files = probed_farm.upload(token, {"shot/scene.blend": FAKE_BLEND})
    r = probed_farm.client.post("/api/jobs", json={
        "main": "shot/scene.blend", "files": files,
        "options": {"frames": "1", "split": 4, "tiles": "2x2"}}, headers=probed_farm.auth(token))
    assert r.status_code == 422 and "not both" in r.text
