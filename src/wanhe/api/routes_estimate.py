"""`POST /api/estimate`: what a render will cost, probed on the farm (the same estimate as
`wanhe estimate`, `wanhe.runs.estimate`), and the probe a submit asks for with
`estimate_on_farm` (its result kept with the job).

The probe renders the submitted scene: on a sandboxing farm in the submitting project's
sandbox (`wanhe.sandbox.tool.inspection_box`: its OS user, a mount namespace showing only
the submission's files and a scratch folder for the probe's renders, a cgroup), the image
work (OIDN, preview) in a temporary folder of the service's own. It runs off the event loop
(a plain `def` route: FastAPI's thread pool) and is bounded: at most `WANHE_ESTIMATES`
probes at once (default 1; a request that waits 30 s for its turn is answered 429), each
stopped after `WANHE_ESTIMATE_TIMEOUT_S` seconds (default 300; answered 504), everything it
started killed with it; a request may ask for less time (`timeout_s`). Probes are cached per
project, scene content and spec, like `wanhe estimate`'s.

A generation spec (`kind: gen`) is answered by `wanhe.api.estimate_gen`: from the farm's
history, a cached probe, or a probe run as a task on a worker (never in this process), in
the same slots and time limit; a storyboard (`kind: story`) by `wanhe.api.estimate_story`:
a cached probe, or its probes run as a task on a worker.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel

from wanhe.api.auth import Principal, principal
from wanhe.api.deps import get_service
from wanhe.api.errors import checked_options, require_uploaded, unprocessable
from wanhe.api.schemas import EstimateRequest
from wanhe.api.service import Service

router = APIRouter(tags=["estimate"])
WAIT_S = 30.0  # how long a request waits for a probe slot before it is told to come back
PROBE_THREADS = 4  # the probe's Cycles threads at most (core-seconds are the same on any)
_slots: threading.BoundedSemaphore | None = None
_slots_lock = threading.Lock()


def _env_number(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, "") or default)
    except ValueError:
        return default
    return value if value > 0 else default


def probe_slots() -> threading.BoundedSemaphore:
    """How many probes may run at once in this service (`WANHE_ESTIMATES`, default 1)."""
    global _slots
    with _slots_lock:
        if _slots is None:
            _slots = threading.BoundedSemaphore(int(_env_number("WANHE_ESTIMATES", 1)))
        return _slots


def probe_limit_s() -> float:
    """How long one probe may run (`WANHE_ESTIMATE_TIMEOUT_S`, default 300 s)."""
    return _env_number("WANHE_ESTIMATE_TIMEOUT_S", 300.0)


@router.post("/api/estimate")
def estimate(
    body: EstimateRequest, who: Principal = Depends(principal),
    service: Service = Depends(get_service),
) -> dict[str, Any]:
    # A plain `def` on purpose: the probe renders for seconds to minutes on FastAPI's thread
    # pool, never on the event loop.
    from wanhe.api.staging import staged_files
    from wanhe.jobtypes.registry import job_type
    from wanhe.runs.estimate import Farm, Prices

    if who.project_id is None:
        raise HTTPException(403, "an admin token belongs to no project: estimate with a "
                                 "project's token (its files are the project's)")
    limit = min(body.timeout_s or probe_limit_s(), probe_limit_s())
    if body.kind in ("gen", "story"):  # probed on a worker (a probe job), not in this process
        from wanhe.api.estimate_gen import estimate_gen_on_farm
        from wanhe.api.estimate_story import estimate_story_on_farm

        on_farm = estimate_gen_on_farm if body.kind == "gen" else estimate_story_on_farm
        slots = probe_slots()
        if not slots.acquire(timeout=WAIT_S):
            raise _busy()
        try:
            answer = on_farm(service, who, body, limit)
        finally:
            slots.release()
        answer["budget"] = _budget(service, who.project_id, {
            "core_hours": answer["core_hours"], "core_hours_range": [answer["core_hours"]] * 2})
        return answer
    if body.gpus is not None:
        raise unprocessable("gpus", "a render's estimate is for Cycles on CPUs: give "
                                     "machines and cores")
    kind = job_type("blender_render")
    options = checked_options(kind, body.main, body.options)
    main = require_uploaded(service.store, who.project_id, body.main, body.files)
    farm = Farm(machines=body.machines, cores=body.cores or os.cpu_count() or 1)
    prices = Prices(body.price_core_hour, body.price_gpu_hour)
    with staged_files(service, body.files) as staging:
        data = estimate_inputs(service, who, staging / "input", main, options, farm,
                               prices, limit_s=limit)
    data["budget"] = _budget(service, who.project_id, data)
    return data


def _budget(service: Service, project_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """The estimate against what the project has left of its core-hour budget."""
    from wanhe.estimate.progress import check_budget

    project = service.store.project(project_id)
    budget = project.budget_core_hours if project is not None else None
    used = service.store.used_core_seconds(project_id).get(project_id, 0.0) / 3600
    verdict = check_budget(data["core_hours"], data["core_hours_range"][1], budget, used)
    return {"fits": verdict.fits, "message": verdict.message}


def _past_limit(limit: float) -> HTTPException:
    return HTTPException(504, f"the estimate's probe ran past its {limit:g} s limit and was "
                              "stopped — estimate fewer frames, or with `wanhe estimate` on "
                              "your own machine")


def _busy() -> HTTPException:
    return HTTPException(429, "the farm is busy estimating other renders — try again in a "
                              "minute", headers={"Retry-After": "30"})


def estimate_inputs(service: Service, who: Principal, inputs: Path, main: str,
                    options: BaseModel, farm: Any, prices: Any,
                    limit_s: float | None = None) -> dict[str, Any]:
    """Probe and estimate the render of `inputs/main` (a submission's checked-out files) with
    a blender_render job's `options`; `wanhe estimate --json`'s answer. Raises HTTPException:
    422 (the scene or options), 429 (every probe slot busy), 504 (past the time limit:
    `limit_s`, default the service's)."""
    slots = probe_slots()
    if not slots.acquire(timeout=WAIT_S):
        raise _busy()
    try:
        return _probe(service, who, inputs, main, options, farm, prices,
                      limit_s or probe_limit_s())
    finally:
        slots.release()


def _probe(service: Service, who: Principal, inputs: Path, main: str, options: BaseModel,
           farm: Any, prices: Any, limit: float) -> dict[str, Any]:
    from pydantic import ValidationError

    from wanhe.blender.errors import BlenderError, SceneError
    from wanhe.blender.inspect import check_blend_file
    from wanhe.blender.runner import BlenderProcess
    from wanhe.render.spec import RenderOptions
    from wanhe.runs.estimate import estimate_render, prepare_spec
    from wanhe.sandbox.tool import inspection_box, tool_env

    scene = inputs / main
    blender = service.intake.blender
    threads = min(os.cpu_count() or 1, PROBE_THREADS)
    try:
        render_options = RenderOptions.model_validate(
            {**options.model_dump(exclude={"output"}), "threads": threads})
        check_blend_file(scene)
    except ValidationError as exc:
        raise unprocessable("options", "; ".join(str(e["msg"]) for e in exc.errors())) \
            from None
    except SceneError as exc:
        raise unprocessable("main", str(exc)) from None
    scratch = inputs.parent / "estimate"
    software = (Path(blender).resolve().parent,) if blender else ()
    try:
        box = inspection_box(inputs, scratch, who.project or "", who.project_id,
                             software=software)
    except (OSError, ValueError) as exc:  # CgroupError, MountError
        raise HTTPException(503, f"cannot make the sandbox to probe the scene in: {exc}") \
            from None
    process = BlenderProcess(blender, env=tool_env() if box is not None else None,
                             wrap=box.command if box is not None else None)
    stopped = threading.Event()

    def stop() -> None:  # past the limit: Blender and everything it started, for good
        stopped.set()
        process.retire()
        if box is not None:
            box.kill_all()

    timer = threading.Timer(limit, stop)
    timer.daemon = True
    timer.start()
    cache = service.intake.cache_dir
    try:
        prepared = prepare_spec(scene, render_options, blender, process=process,
                                within=inputs if box is not None else None)
        report = estimate_render(
            prepared, farm=farm, prices=prices, blender=blender, process=process,
            renders=scratch if box is not None else None,
            cache_dir=None if cache is None else cache / f"estimates-p{who.project_id}")
    except (BlenderError, RuntimeError, OSError, SceneError, ValueError) as exc:
        if stopped.is_set():  # killed at the limit, whatever it was doing (reading the scene)
            raise _past_limit(limit) from None
        if isinstance(exc, SceneError | ValueError):
            raise unprocessable("options", str(exc)) from None
        raise unprocessable("main", f"the probe could not render the scene: {exc}") from None
    finally:
        timer.cancel()
        process.close()
        if box is not None:
            box.close()
        shutil.rmtree(scratch, ignore_errors=True)
    if stopped.is_set():  # past the limit after Blender's last answer
        raise _past_limit(limit)
    data: dict[str, Any] = report.to_dict()
    data["scene"] = main  # the submission's name, not the farm's checkout path
    return data
