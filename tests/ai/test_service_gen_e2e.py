"""Through `wanhe serve` (a real subprocess with its embedded Ray, CPU workers): a 3-shot spec
× 4 candidates with two tiny models runs; every candidate's recipe regenerates it
bit-identically; scores are stored; a pick made through the API is exported; more candidates
come as a new job; model loads stay ≤ workers × models (affinity)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.api._service import ServiceProc, make_project, wait_for
from wanhe.cli import app
from wanhe.store.store import Store

pytestmark = pytest.mark.slow


def cli(svc: ServiceProc, token: str, *args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--server", svc.url, "--token", token])
    assert result.exit_code == 0, result.output
    return result.stdout


def finished(svc: ServiceProc, token: str, job: int) -> dict[str, Any] | None:
    with svc.client(token) as c:
        body: dict[str, Any] = c.get(f"/api/gen/{job}").json()
    assert body["state"] not in ("failed", "cancelled"), body
    return body if body["state"] == "done" else None


def test_a_storyboard_through_the_farm(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    import shutil

    from wanhe.ai.again import regenerate

    home = tmp_path / "farm"
    db = f"sqlite:///{home / 'wanhe.db'}"
    svc = ServiceProc(home, db, 0, workers=2, num_cpus=3)
    svc.start()
    try:
        store = Store(db)
        admin = store.create_token(None, "admin")
        store.dispose()
        token = make_project(db, "board")
        other = shutil.copytree(tiny_models["sd"], tmp_path / "sd-b")
        cli(svc, admin, "models", "add", "sd-a", str(tiny_models["sd"]))
        cli(svc, admin, "models", "add", "sd-b", str(other))
        listed = json.loads(cli(svc, token, "models", "list", "--json"))
        assert {m["name"] for m in listed} == {"sd-a", "sd-b"}
        spec = tmp_path / "board.json"
        shot = {"size": "32x32", "candidates": 4, "steps": 2}
        spec.write_text(json.dumps({"seed": 50, "shots": [
            {"name": "s1", "model": "sd-a", "prompt": "a fox", **shot},
            {"name": "s2", "model": "sd-b", "prompt": "an owl", **shot},
            {"name": "s3", "model": "sd-a", "prompt": "a cat", **shot}]}))
        job = int(json.loads(cli(svc, token, "gen", "run", str(spec), "--json"))["id"])
        results = wait_for(lambda: finished(svc, token, job), 600, "the generation job")
        assert "no GPU" in results["note"]
        cands = [c for s in results["shots"] for c in s["candidates"]]
        assert len(cands) == 12 and all(c["score"]["rank"] >= 1 for c in cands)
        assert [c["seed"] for c in results["shots"][1]["candidates"]] == [1050, 1051, 1052,
                                                                          1053]
        records = {m["name"]: m for m in listed}
        for cand in cands:  # every recipe makes its candidate again, bit for bit
            again = regenerate(Path(cand["output"]), model=records[cand["recipe"]["model"]
                                                                   ["name"]],
                               output=tmp_path / "again" / Path(cand["output"]).name)
            assert again.identical, cand["output"]
        with svc.client(token) as c:
            r = c.post(f"/api/gen/{job}/picks", json={"shot": 1, "candidate": 3,
                                                      "verdict": "picked"})
            assert r.status_code == 200, r.text
            assert c.post(f"/api/gen/{job}/picks", json={"shot": 1, "candidate": 9,
                                                         "verdict": "picked"}
                          ).status_code == 422
            more = c.post(f"/api/gen/{job}/more", json={"shot": 0, "count": 2}).json()
        exported = json.loads(cli(svc, token, "gen", "picks", str(job), "--json", "--copy-to",
                                  str(tmp_path / "chosen")))
        assert exported["shots"][1]["chosen"]["index"] == 3
        assert exported["shots"][1]["candidates"][3]["verdict"] == "picked"
        copied = tmp_path / "chosen" / f"s2_{Path(cands[7]['output']).name}"
        assert copied.read_bytes() == Path(cands[7]["output"]).read_bytes()
        extra = wait_for(lambda: finished(svc, token, more["id"]), 600, "more candidates")
        assert [c["index"] for c in extra["shots"][0]["candidates"]] == [4, 5]
        assert [c["seed"] for c in extra["shots"][0]["candidates"]] == [54, 55]
        # affinity: each worker loads each model at most once, not once per task
        store = Store(db)
        loads: dict[str, int] = {}
        for task in store.tasks(job):
            if task.kind == "gen":
                worker = next(a["worker"] for a in store.attempts(job)
                              if a["task_id"] == task.id and a["outcome"] == "ok")
                loads[worker] = max(loads.get(worker, 0), int(task.output["loads"]))
        store.dispose()
        assert sum(loads.values()) <= len(loads) * 2 < 12, loads
        with svc.client(admin) as c:
            report = c.get("/api/gen-report").json()
        assert {r["model"] for r in report} == {"sd-a", "sd-b"}
        bill = json.loads(cli(svc, token, "report", "--json"))
        assert {(r["project"], r["model"]) for r in bill["models"]} == {("board", "sd-a"),
                                                                        ("board", "sd-b")}
    finally:
        svc.kill()
