"""`POST /api/estimate` of a generation spec (`kind: gen`): the same estimate as `wanhe
estimate SPEC --json` (`wanhe.runs.estimate_ai`), made without loading a diffusion model in
the API process.

The spec is checked and compiled as a `gen` job's submit is (the project's catalogue, the
farm's capacity). A shot whose model has metered history on its shape (the farm's own
`gen` attempts, `wanhe.ai.history`) is estimated from it; the others need a probe: one
cached for the project (`estimates-p<id>/gen-*.json`) is reused, else the farm runs it as a
task on a worker (a `gen_probe` job of the project, `wanhe.jobtypes.gen_probe`: billed as
farm work, listed with the project's jobs) and the request waits for it, at most its time
limit (`timeout_s`, at most `WANHE_ESTIMATE_TIMEOUT_S`): past it the job is cancelled and
the answer is 504 with what to do.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import HTTPException

from wanhe.api.auth import Principal
from wanhe.api.errors import unprocessable
from wanhe.api.schemas import EstimateRequest
from wanhe.api.service import Service

POLL_S = 0.25  # how often the request looks at its probe job


def estimate_gen_on_farm(service: Service, who: Principal, body: EstimateRequest,
                         limit_s: float) -> dict[str, Any]:
    """The estimate of the gen spec in `body.options` (raises HTTPException: 422 for the
    spec, 504 past `limit_s`)."""
    from wanhe.ai.history import model_history
    from wanhe.api.intake_context import intake_context
    from wanhe.jobtypes.base import InputError, JobFolder
    from wanhe.jobtypes.registry import job_type
    from wanhe.runs.estimate import Prices
    from wanhe.runs.estimate_ai import (
        GenFarm,
        estimate_compiled,
        probes_needed,
        start_cache,
    )

    assert who.project_id is not None
    if body.files or body.main:
        raise unprocessable("files", "a generation spec's estimate takes no files (an "
                                      "image-to-image shot's image: estimate it with `wanhe "
                                      "estimate SPEC` on your machine)")
    kind = job_type("gen")
    try:
        spec = kind.parse_options(body.options)
        kind.check(spec)
        inspected = kind.inspect(intake_context(service, who), None, spec)
        with tempfile.TemporaryDirectory(prefix="wanhe-estimate-gen-") as tmp:
            folder = JobFolder(input=Path(tmp), output=Path(tmp), work=Path(tmp) / ".work")
            compiled = kind.compile(spec, inspected, None, folder)
    except InputError as exc:
        raise unprocessable(exc.field, exc.message) from None
    resolved, tasks = compiled.spec, compiled.tasks
    device = str(resolved["device"])
    threads = spec.threads or os.cpu_count() or 1  # type: ignore[attr-defined]
    cache = service.intake.cache_dir
    cache_dir = (cache if cache is not None else Path(tempfile.gettempdir()) / "wanhe-probes") \
        / f"estimates-p{who.project_id}"

    def history(key: str, **shape: Any) -> Any:
        return model_history(service.store, key, **shape)

    needs = probes_needed(spec, resolved, tasks, threads=threads,  # type: ignore[arg-type]
                          cache_dir=cache_dir, history=history)
    start_s = None
    if needs:
        start = not start_cache(device, cache_dir).exists()
        results = _probe_on_farm(service, who, needs, tasks, threads, start, limit_s)
        from wanhe.runs.estimate_ai import write_probe

        for need, output in zip(needs, results, strict=True):
            write_probe(need.cache, output["probe"])
            if output.get("start_s") is not None:
                start_s = float(output["start_s"])
    farm = (GenFarm(units=body.gpus or 1, unit="GPU") if device == "gpu" else
            GenFarm(units=body.machines, unit="machine", cores=body.cores or os.cpu_count() or 1))
    try:
        made = estimate_compiled(
            spec, resolved, tasks, list(inspected.warnings),  # type: ignore[arg-type]
            prices=Prices(body.price_core_hour, body.price_gpu_hour), name="spec",
            threads=threads, cache_dir=cache_dir, history=history,
            probed={n.cache for n in needs}, start_s=start_s, farm=farm)
    except RuntimeError as exc:
        raise unprocessable("options", str(exc)) from None
    data: dict[str, Any] = made.to_dict()
    data["probe_jobs"] = 1 if needs else 0
    return data


def _probe_on_farm(service: Service, who: Principal, needs: list[Any], tasks: list[Any],
                   threads: int, start: bool, limit_s: float) -> list[dict[str, Any]]:
    """Run `needs` as one `gen_probe` job of the project and wait for it: each probe's task
    output, in order. Past `limit_s` the job is cancelled (its running tasks stopped)."""
    from wanhe.jobtypes.gen_probe import KIND, probe_tasks

    probes = []
    for i, need in enumerate(needs):
        gen = next(t for t in tasks if t.payload is need.payload)
        probes.append({"gen": need.payload, "steps": list(need.steps), "threads": threads,
                       "start": start and i == 0, "cpus": gen.resources.cpus,
                       "memory": gen.resources.memory, "gpus": gen.resources.gpus})
    made = probe_tasks(probes)
    outputs = run_probe_job(
        service, who, name="estimate probe", kind=KIND, limit_s=limit_s,
        build=lambda _id: ({"probes": len(probes)}, made, ""),
        late=lambda job_id: (
            f"the estimate's model probe (job {job_id}) ran past its {limit_s:g} s limit and "
            "was cancelled — ask again with a longer timeout_s when the farm's GPUs are less "
            "busy, or estimate with `wanhe estimate SPEC` on your own machine"),
        field="options", subject="the model")
    return [outputs[task.key] for task in made]


def run_probe_job(
    service: Service, who: Principal, *, name: str, kind: str, limit_s: float,
    build: Callable[[int], tuple[dict[str, Any], list[Any], str]],
    late: Callable[[int], str], field: str, subject: str,
) -> dict[str, Any]:
    """Make the project's estimate probe job (`build(job_id)`: its spec, tasks and work
    folder), wait for it (`wait_for_probe_job`: past `limit_s` it is cancelled, 504 saying
    `late(job_id)`), and answer each task's output by its key; a probe that did not finish is
    422 at `field`, naming `subject`."""
    from wanhe.model import TaskState

    assert who.project_id is not None
    fingerprint = hashlib.sha256(f"estimate:{time.time_ns()}:{os.getpid()}".encode()
                                 ).hexdigest()

    def made(job_id: int) -> tuple[dict[str, Any], str, list[Any], str]:
        spec, tasks, work_dir = build(job_id)
        return spec, fingerprint, tasks, work_dir

    job_id = service.store.create_job_with(
        project_id=who.project_id, name=name, kind=kind, build=made,
        submitter=who.name or f"token {who.token_id}", priority=90)
    service.poke(job_id)
    outputs: dict[str, Any] = {}
    for row in wait_for_probe_job(service, job_id, limit_s, late(job_id)):
        if TaskState(row.state) != TaskState.DONE:
            reason = row.error or f"it ended {row.state}"
            raise unprocessable(field, f"the farm's probe of {subject} failed (job "
                                       f"{job_id}): {reason}")
        outputs[row.key] = row.output
    return outputs


def wait_for_probe_job(service: Service, job_id: int, limit_s: float, late: str) -> list[Any]:
    """Wait for an estimate's probe job to end: its task rows. Past `limit_s` the job is
    cancelled (its running tasks stopped) and the answer is 504 saying `late`."""
    from wanhe.model import TaskState

    ends = time.monotonic() + limit_s
    while True:
        rows = service.store.tasks(job_id)
        if all(TaskState(r.state).is_final for r in rows):
            return list(rows)
        if time.monotonic() >= ends:
            service.store.cancel_job(job_id, message="the estimate's time limit passed")
            service.poke(job_id)
            raise HTTPException(504, late)
        time.sleep(POLL_S)
