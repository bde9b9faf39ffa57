"""Submit refuses a job whose task needs more memory than any worker has, with the number
(422 at the field), for generation (by size and batch) and Blender (by the scene)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.api.conftest import FAKE_BLEND, Farm, fake_inspector, farm_settings
from tests.api.test_gen_routes import fake_model
from wanhe.api.app import create_app
from wanhe.jobtypes.blender_render import SceneFacts
from wanhe.store.store import Store


def test_a_gen_shot_too_big_for_the_farm_is_refused_naming_the_numbers(
    farm: Farm, tmp_path: Path
) -> None:
    body = {"name": "sd", "path": str(fake_model(tmp_path / "sd"))}
    assert farm.client.post("/api/models", json=body,
                            headers=farm.auth(farm.admin)).status_code == 201
    token = farm.project("board")
    shot = {"model": "sd", "prompt": "fox", "size": "8192x8192", "candidates": 8}
    r = farm.client.post("/api/jobs", json={"kind": "gen", "options": {
        "batch": 8, "shots": [shot]}}, headers=farm.auth(token))  # 8 images at once: 808 GiB
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["loc"] == ["body", "options", "shots", "0", "size"]
    assert detail["msg"].startswith("shot 0 (model 'sd' at 8192x8192, 8 image(s) at once) "
                                    "needs 8")  # 808 GiB and the model
    assert "GiB of memory; the largest worker has" in detail["msg"]
    assert detail["msg"].endswith("— lower the size or the batch, or add a bigger machine")
    ok = {**shot, "size": "512x512"}
    r = farm.client.post("/api/jobs", json={"kind": "gen", "options": {"shots": [ok]}},
                         headers=farm.auth(token))
    assert r.status_code == 201, r.text


def huge_scene(path: Path) -> tuple[SceneFacts, list[str]]:
    facts, missing = fake_inspector(path)
    return facts.model_copy(update={"polygons": 10**10}), missing  # 4 TB of geometry


def test_a_scene_too_big_for_every_worker_is_refused(tmp_path: Path, db_url: str) -> None:
    settings = farm_settings(tmp_path, db_url)
    store = Store(settings.db_url)
    admin = store.create_token(None, "admin")
    store.dispose()
    app = create_app(settings, start_dispatcher=False,
                     inspectors={"blender_render": huge_scene})
    with TestClient(app) as client:
        farm = Farm(client, settings, admin)
        token = farm.project("lion")
        files = farm.upload(token, {"shot/scene.blend": FAKE_BLEND})
        r = client.post("/api/jobs", json={"main": "shot/scene.blend", "files": files,
                                           "options": {"frames": "1"}},
                        headers=farm.auth(token))
    assert r.status_code == 422, r.text
    msg = r.json()["detail"][0]["msg"]
    assert msg.startswith("frame 1 ") and "TiB of memory; the largest worker has" in msg
