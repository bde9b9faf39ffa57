"""The generation API without a dispatcher: models are an admin's to register, bad input is a
422 at its field, a job's results are its project's only."""

from __future__ import annotations

import json
from pathlib import Path

from tests.api.conftest import Farm


def fake_model(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "model_index.json").write_text(json.dumps(
        {"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"]}))
    (root / "unet").mkdir()
    (root / "unet" / "w.safetensors").write_bytes(b"x" * 100)
    return root


def test_models_and_bad_submissions(farm: Farm, tmp_path: Path) -> None:
    token = farm.project("board")
    body = {"name": "sd", "path": str(fake_model(tmp_path / "sd"))}
    assert farm.client.post("/api/models", json=body,
                            headers=farm.auth(token)).status_code == 403
    r = farm.client.post("/api/models", json={"name": "x", "path": str(tmp_path)},
                         headers=farm.auth(farm.admin))
    assert r.status_code == 422 and "not a diffusers model folder" in r.text
    assert farm.client.post("/api/models", json=body,
                            headers=farm.auth(farm.admin)).status_code == 201
    assert farm.client.post("/api/models", json=body,
                            headers=farm.auth(farm.admin)).status_code == 409
    listed = farm.client.get("/api/models", headers=farm.auth(token)).json()
    assert [m["name"] for m in listed] == ["sd"]

    def submit(options: dict[str, object]) -> tuple[int, str]:
        r = farm.client.post("/api/jobs", json={"kind": "gen", "options": options},
                             headers=farm.auth(token))
        return r.status_code, r.text

    shot = {"model": "sd", "prompt": "fox"}
    for options, where, needle in [
        ({"shots": [{**shot, "model": "nope"}]}, "model", "unknown model 'nope'"),
        ({"shots": []}, "shots", "0 prompts"),
        ({"shots": [{**shot, "size": "33x32"}]}, "size", "not a multiple of 8"),
        ({"shots": [{**shot, "candidates": 100_000}]}, "candidates", "between 1 and 1000"),
        ({"shots": [{**shot, "image": "/etc/hosts"}]}, "image", "outside this job's files"),
    ]:
        code, text = submit(options)
        assert code == 422 and needle in text and where in text, text
    code, text = submit({"shots": [shot]})
    assert code == 201, text
    job = json.loads(text)["id"]
    results = farm.client.get(f"/api/gen/{job}", headers=farm.auth(token)).json()
    assert results["shots"][0]["candidates"][0]["state"] == "ready"
    assert "no GPU" in results["note"]
    other = farm.project("other")
    assert farm.client.get(f"/api/gen/{job}", headers=farm.auth(other)).status_code == 404
    r = farm.client.post(f"/api/gen/{job}/picks", json={"shot": 0, "candidate": 7,
                                                        "verdict": "picked"},
                         headers=farm.auth(token))
    assert r.status_code == 422 and "no candidate 7" in r.text
