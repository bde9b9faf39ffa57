"""`POST /api/estimate` of a storyboard (`kind: story`): the same estimate as `wanhe estimate
STORY --json` (`wanhe.runs.estimate_story`), made without synthesizing a voice, encoding a
clip or running Blender in the API process.

The storyboard and its files are uploaded by content and checked as a story job's submit
checks them (`main`, `files`; 422 at the field). Where the project's farm rendered the same
storyboard and files before (a done story job of the fingerprint a submit of them gets), the
answer is that job's history: its attempts' metered CPU seconds, per part and per task. Else
the probes' answer (the parts and each task's seconds) is cached for the project by the
files' content (`estimates-p<id>/story-*`); else the farm runs the probes as one task on a
worker (a `story_probe` job of the project, `wanhe.jobtypes.story_probe`, holding the
storyboard's files as a story job does: billed as farm work, listed with the project's jobs,
never retried) and the request waits for it, at most its time limit (504 past it, the job
cancelled). The job's task graph is then scheduled
here on the farm asked about (`machines` × `cores`, `gpus` a machine; pure), as the CLI's
`farm`.

Not yet: AI shots (their models would load in the probe's process: estimate them with
`wanhe estimate STORY`), and Blender shots where the farm sandboxes (the probe's Blender
would run outside the project's sandbox): both 422 saying so.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from wanhe.api.auth import Principal
from wanhe.api.errors import checked_options, require_uploaded, unprocessable
from wanhe.api.schemas import EstimateRequest
from wanhe.api.service import Service
from wanhe.runs.story_graph import TaskCosts

CACHE_VERSION = 1  # bump when the probe job's answer changes: older cached answers are dropped


def estimate_story_on_farm(service: Service, who: Principal, body: EstimateRequest,
                           limit_s: float) -> dict[str, Any]:
    """The estimate of the storyboard `body.main` among `body.files` (raises HTTPException:
    422 for the storyboard, 504 past `limit_s`)."""
    from wanhe.api.staging import inspect_staged, staged_files
    from wanhe.jobtypes.registry import job_type

    assert who.project_id is not None
    kind = job_type("story")
    options = checked_options(kind, body.main, body.options)
    name = require_uploaded(service.store, who.project_id, body.main, body.files)
    with staged_files(service, body.files) as staging:
        inspected = inspect_staged(service, who, kind, staging, name, options)
        board, facts = inspected.facts["board"], inspected.facts["facts"]
        _refuse_unprobed(board, service, who)
        past = _history(service, who, body, board, facts)
        cache = _cache_file(service, who, body)
        probe_jobs = 0
        source = "cached probe"
        if past is not None:
            found, seconds = past
            source = f"history of job {found['job']}"
        else:
            seconds = None
            try:
                found = json.loads(cache.read_text())
            except (OSError, ValueError):
                found = None
        if found is None:
            found = _probe_on_farm(service, who, name, staging, limit_s)
            probe_jobs = 1
            source = "probe job"
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(found))
        data = _answer(found, board, (staging / "input" / name).parent, facts, body, seconds)
    data["storyboard"] = body.main  # the submission's name, not the farm's checkout path
    data["probe_jobs"] = probe_jobs
    data["source"] = source
    return data


PART_KINDS = {"voices": ("voice", "dub"), "blender": ("render", "lipsync"),
              "assembly": ("clip", "reel", "track")}


def _history(service: Service, who: Principal, body: EstimateRequest, board: Any,
             facts: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]] | None:
    """The project's finished story job of the same storyboard and files (the fingerprint a
    submit of them gets): its parts from the attempts' metered CPU seconds, and each task's
    by its key; None when there is none."""
    from wanhe.model import JobState
    from wanhe.story.plan import fingerprint

    assert who.project_id is not None
    files = hashlib.sha256(json.dumps(sorted(body.files.items())).encode()).hexdigest()
    job = service.store.find_job(who.project_id, hashlib.sha256(
        f"{fingerprint(board, facts)}:{files}".encode()).hexdigest())
    if job is None or job.kind != "story" or job.state != JobState.DONE:
        return None
    seconds: dict[str, float] = {}
    for attempt in service.store.attempts(job.id):
        if attempt["outcome"] == "ok":
            seconds[str(attempt["key"])] = float(attempt["cpu_s"] or 0.0)
    outputs = {r.key: r.output for r in service.store.tasks(job.id)}
    parts = []
    for part, kinds in PART_KINDS.items():
        keys = [k for k in seconds if k.split("/", 1)[0] in kinds]
        if keys:
            parts.append({"part": part, "what": f"{len(keys)} task(s) of job {job.id}",
                          "core_s": sum(seconds[k] for k in keys), "gpu_s": 0.0,
                          "source": f"history: job {job.id}'s metered CPU seconds",
                          "detail": {"tasks": len(keys)}})
    reel = outputs.get("reel") or {}
    frames = sum(int((outputs.get(f"clip/{shot.id}") or {}).get("frames") or 0)
                 for shot in board.shots)
    found = {"job": job.id, "storyboard": body.main, "languages": list(board.film.languages),
             "reel_s": float(reel.get("seconds") or 0.0), "reel_frames": frames,
             "parts": parts, "notes": [
                 f"from the metered history of job {job.id} (the same storyboard and files): "
                 "a task that found its voice or render in the project's cache cost little "
                 "then, as it would now"],
             "task_costs": asdict(TaskCosts())}
    return found, seconds


def _refuse_unprobed(board: Any, service: Service, who: Principal) -> None:
    from wanhe.sandbox.tool import sandboxed

    if any(shot.prompt is not None for shot in board.shots):
        raise unprocessable("main", "a storyboard's AI shots are not estimated on the farm "
                                     "yet — estimate it with `wanhe estimate STORY` on your "
                                     "own machine")
    if any(shot.blender is not None for shot in board.shots) and \
            sandboxed(service.work.root, who.project):
        raise unprocessable("main", "a storyboard's Blender shots are not estimated on a "
                                     "sandboxing farm yet — estimate it with `wanhe estimate "
                                     "STORY` on your own machine")


def _cache_file(service: Service, who: Principal, body: EstimateRequest) -> Path:
    cache = service.intake.cache_dir
    root = cache if cache is not None else Path(tempfile.gettempdir()) / "wanhe-probes"
    key = hashlib.sha256(json.dumps([CACHE_VERSION, body.main, sorted(body.files.items())])
                         .encode()).hexdigest()
    return root / f"estimates-p{who.project_id}" / f"story-{key}.json"


def _probe_on_farm(service: Service, who: Principal, main: str, staging: Path,
                   limit_s: float) -> dict[str, Any]:
    """Run the probes as a `story_probe` job of the project holding the staged files (the
    staging becomes the job's folder), and wait for it: its output."""
    from wanhe.api.estimate_gen import run_probe_job
    from wanhe.jobtypes.story_probe import KIND, probe_task

    def build(job_id: int) -> tuple[dict[str, Any], list[Any], str]:
        root = service.work.job_dir(job_id)
        task = probe_task(root / "input" / main)
        service.work.adopt(staging, job_id)
        for made in (root / "output", root / "work"):
            made.mkdir(parents=True, exist_ok=True)
        return {"storyboard": main}, [task], str(root / "work")

    outputs = run_probe_job(
        service, who, name="storyboard estimate probe", kind=KIND, limit_s=limit_s,
        build=build,
        late=lambda job_id: (
            f"the estimate's storyboard probe (job {job_id}) ran past its {limit_s:g} s limit "
            "and was cancelled — ask again with a longer timeout_s when the farm is less busy, "
            "or estimate with `wanhe estimate STORY` on your own machine"),
        field="main", subject="the storyboard")
    [output] = outputs.values()
    return dict(output)


def _answer(found: dict[str, Any], board: Any, base: Path, facts: dict[str, Any],
            body: EstimateRequest, seconds: dict[str, float] | None = None) -> dict[str, Any]:
    """The probes' answer with the prices and farm asked about: the job's graph scheduled."""
    from wanhe.runs.estimate import Prices
    from wanhe.runs.estimate_story import Part, StoryEstimate, StoryFarm
    from wanhe.runs.story_graph import TaskCosts, story_graph

    costs = TaskCosts.from_dict(found["task_costs"])
    graph, kinds = story_graph(board, base, facts, costs, seconds)
    made = StoryEstimate(
        storyboard=str(found["storyboard"]), languages=list(found["languages"]),
        reel_s=float(found["reel_s"]), reel_frames=int(found["reel_frames"]),
        parts=[Part(**p) for p in found["parts"]],
        prices=Prices(body.price_core_hour, body.price_gpu_hour), notes=list(found["notes"]),
        graph=graph, task_kinds=kinds,
        farm=StoryFarm(body.machines, body.cores or os.cpu_count() or 1, body.gpus or 0),
        costs=costs)
    try:
        return made.to_dict()
    except ValueError as exc:  # a farm that cannot run a task
        raise unprocessable("gpus", str(exc)) from None
