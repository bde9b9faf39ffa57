"""Submissions that used to be accepted and then fail at run time after every retry (or with a
500) are refused at submit with one line at their field (HTTP 422): a generation take index or
seed past what a seed can hold, an OpenJD action timeout no clock counts, steps that depend
on each other in a cycle, a binary file as the template."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.api.conftest import Farm
from tests.api.test_gen_routes import fake_model


def _one_line_422(r: Any, field: str, needle: str) -> None:
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert ".".join(str(p) for p in detail["loc"]).startswith(f"body.{field}"), detail
    assert needle in detail["msg"] and "\n" not in detail["msg"], detail["msg"]


def test_gen_indexes_and_seeds_out_of_range(farm: Farm, tmp_path: Path) -> None:
    token = farm.project("board")
    r = farm.client.post("/api/models", json={"name": "sd", "path": str(fake_model(
        tmp_path / "sd"))}, headers=farm.auth(farm.admin))
    assert r.status_code == 201
    shot = {"model": "sd", "prompt": "fox", "candidates": 1}
    for extra, needle in (({"first_index": 10**30}, "less than or equal to 1000000000"),
                          ({"seeds": [2**70]}, f"seed {2**70} is out of range"),
                          ({"seed": 2**63 - 1, "candidates": 2}, "over 9223372036854775807")):
        r = farm.client.post("/api/jobs", json={"kind": "gen", "options": {
            "shots": [{**shot, **extra}]}}, headers=farm.auth(token))
        _one_line_422(r, "options", needle)
    r = farm.client.post("/api/jobs", json={"kind": "gen", "options": {
        "shots": [{**shot, "seeds": [2**63 - 1]}]}}, headers=farm.auth(token))
    assert r.status_code == 201, r.text


def _openjd(farm: Farm, token: str, data: bytes) -> Any:
    files = farm.upload(token, {"job.yaml": data})
    return farm.client.post("/api/jobs", json={"kind": "openjd", "main": "job.yaml",
                                               "files": files, "options": {}},
                            headers=farm.auth(token))


def _template(**action: Any) -> dict[str, Any]:
    return {"specificationVersion": "jobtemplate-2023-09", "name": "t", "steps": [
        {"name": "A", "script": {"actions": {"onRun": {"command": "true", **action}}}}]}


def test_openjd_templates_refused_at_submit(farm: Farm) -> None:
    token = farm.project("fx")
    r = _openjd(farm, token, json.dumps(_template(timeout=10**20)).encode())
    _one_line_422(r, "main", "more than a year")
    cycle = _template()
    cycle["steps"] = [
        {"name": "A", "dependencies": [{"dependsOn": "B"}],
         "script": {"actions": {"onRun": {"command": "true"}}}},
        {"name": "B", "dependencies": [{"dependsOn": "A"}],
         "script": {"actions": {"onRun": {"command": "true"}}}}]
    _one_line_422(_openjd(farm, token, json.dumps(cycle).encode()), "main",
                  "cycle: 'A' -> 'B' -> 'A'")
    inline = farm.client.post("/api/jobs", json={"kind": "openjd", "options": {
        "template": cycle}}, headers=farm.auth(token))
    _one_line_422(inline, "options.template", "cycle")
    binary = bytes(range(256)) * 4
    _one_line_422(_openjd(farm, token, binary), "main", "is not text (not UTF-8)")
    assert _openjd(farm, token, json.dumps(_template(timeout=3600)).encode()).status_code == 201
