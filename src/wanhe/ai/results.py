"""A generation job's results from the database: per shot, its candidates with their recipe,
scores, rank and people's verdicts; which file is the chosen one. Used by `wanhe gen picks`,
the API and the dashboard's contact sheet, and by other job types (story shots) that need a
shot's chosen image."""

from __future__ import annotations

from typing import Any

from wanhe.ai import catalog
from wanhe.store.store import Store


def job_results(store: Store, job_id: int) -> dict[str, Any]:
    job = store.job(job_id)
    if job is None or job.kind != "gen":
        raise LookupError(f"no generation job {job_id}")
    verdicts = catalog.picks(store, job_id)
    shots: dict[int, dict[str, Any]] = {}
    gen = job.spec.get("gen", {})
    for si, shot in enumerate(gen.get("shots", [])):
        shots[si] = {"shot": si, "name": shot.get("name") or f"shot{si:03d}",
                     "prompt": shot.get("prompt", ""), "model": shot.get("model"),
                     "candidates": {}, "scored": False}
    for task in store.tasks(job_id):
        si = int(task.payload.get("shot", -1))
        if si not in shots:
            continue
        if task.kind == "gen":
            for cand in task.payload.get("candidates", []):
                entry = shots[si]["candidates"].setdefault(cand["index"], {
                    "index": cand["index"], "seed": cand["seed"], "output": cand["output"],
                    "state": task.state.value, "task": task.key, "progress": task.progress,
                })
                entry["state"] = task.state.value
            for made in task.output.get("candidates", []):
                shots[si]["candidates"][made["index"]]["recipe"] = made.get("recipe")
        elif task.kind == "gen_score" and task.output.get("scores"):
            shots[si]["scored"] = True
            shots[si]["nsfw_check"] = task.output.get("nsfw_check")
            for score in task.output["scores"]:
                entry = shots[si]["candidates"].get(score["index"])
                if entry is not None:
                    entry["score"] = {k: v for k, v in score.items()
                                      if k not in ("index", "seed", "output")}
    out = []
    for si in sorted(shots):
        shot = shots[si]
        cands = sorted(shot["candidates"].values(), key=lambda c: c["index"])
        for c in cands:
            c["verdict"] = verdicts.get((si, c["index"]))
        shot["candidates"] = cands
        shot["chosen"] = chosen(cands)
        out.append(shot)
    return {"job": job_id, "state": job.state.value, "device": job.spec.get("device"),
            "note": job.spec.get("device_note", ""), "shots": out}


def chosen(candidates: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The shot's chosen candidate: the picked one (first by index), else the best ranked
    one not rejected, else the first finished one not rejected."""
    done = [c for c in candidates if c.get("state") == "done" and c.get("verdict") != "rejected"]
    picked = [c for c in candidates if c.get("verdict") == "picked"]
    if picked:
        return {"index": picked[0]["index"], "output": picked[0]["output"], "why": "picked"}
    ranked = [c for c in done if c.get("score")]
    if ranked:
        best = min(ranked, key=lambda c: c["score"]["rank"])
        return {"index": best["index"], "output": best["output"], "why": "best score"}
    if done:
        return {"index": done[0]["index"], "output": done[0]["output"], "why": "first done"}
    return None


def chosen_file(store: Store, job_id: int, shot: int = 0) -> str | None:
    """The file of a shot's chosen (picked, else best) candidate; None while none is done."""
    shots = job_results(store, job_id)["shots"]
    if not 0 <= shot < len(shots):
        raise LookupError(f"job {job_id} has no shot {shot}")
    found = shots[shot]["chosen"]
    return None if found is None else str(found["output"])
