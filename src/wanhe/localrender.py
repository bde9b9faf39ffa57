"""`wanhe render`: inspect a scene, make (or resume) its job in the local database, run it on Ray.

The same store, job compiler, policy and dispatcher that `wanhe serve` uses; here the job lives
in the project `local` and the dispatcher runs until it finishes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wanhe.config import Settings
from wanhe.model import TaskKind, TaskState
from wanhe.render.spec import RenderOptions, RenderSpec, SceneFacts

# The job type and the store (SQLAlchemy, numpy: ≈0.3 s to import) are imported where used:
# a `wanhe render` imports them while its Blender starts, not before (`render`).
if TYPE_CHECKING:
    from wanhe.blender.runner import BlenderProcess
    from wanhe.engine.cluster import EmbeddedStart
    from wanhe.engine.dispatcher import Dispatcher
    from wanhe.engine.handles import LocalWorker
    from wanhe.store.store import JobRow, Store, TaskRow

class RenderSetupError(ValueError):
    """Something about the request or the machine that stops a render before it starts."""


@dataclass(slots=True)
class Prepared:
    spec: RenderSpec
    facts: SceneFacts
    missing: list[str]
    dependencies: list[str]
    scene_digest: str
    quality: dict[str, Any] | None = None  # the --quality probe's result, when one ran
    notes: list[str] = field(default_factory=list)  # scene notes (drivers, --samples, …)
    missing_caches: list[str] = field(default_factory=list)  # missing point caches
    external_files: int = 0  # every external file the scene names, found or missing


@dataclass(slots=True)
class RenderOutcome:
    job: JobRow
    spec: RenderSpec
    resumed: bool
    tasks_total: int
    tasks_skipped: int  # already done before this run (resume)
    wall_s: float
    attempts: list[dict[str, Any]] = field(default_factory=list)
    quality: dict[str, Any] | None = None

    @property
    def core_seconds(self) -> float:
        from wanhe.store.usage import core_seconds

        return sum(core_seconds(a) for a in self.attempts)

    @property
    def cpu_seconds(self) -> float:
        return sum(a["cpu_s"] or 0 for a in self.attempts)


def ensure_writable_folder(folder: Path) -> None:
    """Create `folder` if needed and prove a file can be written there."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".wanhe-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise RenderSetupError(
            f"cannot write to the output folder {folder}: {exc.strerror or exc} — "
            "pick another --output or fix the folder's permissions"
        ) from exc


def precheck(scene: Path, options: RenderOptions) -> None:
    """The checks that need no Blender and no Ray: fail in milliseconds, not after start-up."""
    from wanhe.blender.inspect import check_blend_file
    from wanhe.jobtypes.blender_render import resolve_output_pattern
    from wanhe.plan.frames import expand_output_pattern, parse_frames
    from wanhe.plan.tiles import parse_grid

    check_blend_file(scene.expanduser())
    if options.frames:
        parse_frames(options.frames)
    parse_grid(options.tiles)
    if options.output:
        pattern = resolve_output_pattern(options.output, str(scene.expanduser().resolve()))
        ensure_writable_folder(Path(expand_output_pattern(pattern, 1)).parent)


def prepare(
    scene: Path, options: RenderOptions, blender: str | None = None,
    process: BlenderProcess | None = None, cache_dir: Path | None = None,
) -> Prepared:
    """Inspect the scene and meet it with the options. Raises SceneError / ValueError subtypes.

    `process`: a worker's Blender to inspect with; it keeps the scene loaded for the renders.
    When the job would tile a Cycles scene, the border probe checks that tiles are exact
    (cached in `cache_dir` per scene).
    """
    from wanhe.blender.inspect import inspect_scene
    from wanhe.jobtypes.blender_render import (
        facts_from_report,
        needs_border_probe,
        probe_facts,
        resolve_spec,
        scene_notes,
    )
    from wanhe.storage import sha256_file

    scene = scene.expanduser().resolve()
    report = inspect_scene(scene, blender=blender, process=process)
    digest = sha256_file(scene)
    facts = facts_from_report(report).model_copy(update={"path": str(scene)})
    if needs_border_probe(options, facts):
        resolve_spec(options, facts)  # a bad option fails before the probe renders
        facts = facts.model_copy(update=probe_facts(
            scene, facts, options, blender, cache_dir, process=process, digest=digest))
    spec = resolve_spec(options, facts)
    ensure_writable_folder(Path(spec.master_path(spec.frames[0])).parent)
    return Prepared(
        spec=spec,
        facts=facts,
        missing=[str(p) for p in report.missing],
        dependencies=[str(p) for p in report.dependencies],
        scene_digest=digest,
        notes=scene_notes(options, facts),
        missing_caches=[str(p) for p in report.missing_caches],
        external_files=report.external_files,
    )


def apply_quality(
    prepared: Prepared, options: RenderOptions, blender: str | None,
    cache_dir: Path | None = None,
) -> Prepared:
    """`--quality`: probe one frame and render with the smallest sample count that reaches the
    target (the most probed, with the frames flagged, when none does).

    With `cache_dir`, the probe's answer is kept per scene content, spec and target, so running
    the same command again (to resume) reuses it instead of probing again.
    """
    if not options.quality:
        return prepared
    from wanhe.samplecount.autoquality import choose_samples, spec_for_probe

    key = _probe_key(prepared, options.quality)
    cache = None if cache_dir is None else cache_dir / f"{key}.json"
    cached = _read_probe(cache)
    if cached is not None:
        prepared.spec = spec_for_probe(prepared.spec, cached)
        prepared.quality = {**cached, "cached": True, "explanation":
                            cached["explanation"] + " (probed on an earlier run; reused)"}
        return prepared
    result, spec = choose_samples(prepared.spec, prepared.facts, options.quality, blender)
    if cache is not None:
        from wanhe.imaging.atomic import atomic_write

        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(cache) as tmp:
            tmp.write_text(json.dumps(result, default=str))
    prepared.spec = spec
    prepared.quality = result
    return prepared


def _probe_key(prepared: Prepared, quality: str) -> str:
    """What a probe's answer depends on: the scene's bytes, the spec before the probe, the
    target."""
    basis = f"{prepared.scene_digest}:{prepared.spec.fingerprint()}:{quality}"
    return hashlib.sha256(basis.encode()).hexdigest()


def _read_probe(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # none yet, or unreadable: probe again
    if not {"samples", "reached", "explanation"} <= data.keys():
        return None
    return data


def job_fingerprint(spec: RenderSpec, scene_digest: str) -> str:
    return hashlib.sha256(f"{spec.fingerprint()}:{scene_digest}".encode()).hexdigest()


def open_or_resume_job(
    store: Store, prepared: Prepared, work_root: Path
) -> tuple[JobRow, bool, int]:
    """The job for this exact spec and scene: resumed if it exists, else created.

    Returns (job, resumed, tasks already done). Frames whose outputs went missing after the job
    finished render again; a finished tile or frame whose outputs are present never does.
    """
    from wanhe.jobtypes.blender_render import KIND, compile_render_job, final_outputs
    from wanhe.runs.local import NewJob, open_or_resume

    fingerprint = job_fingerprint(prepared.spec, prepared.scene_digest)
    work_dir = work_root / fingerprint[:16]

    def new_job() -> NewJob:
        return NewJob(name=Path(prepared.spec.scene).name, kind=KIND,
                      spec=prepared.spec.model_dump(mode="json"),
                      tasks=compile_render_job(prepared.spec, str(work_dir)),
                      work_dir=str(work_dir))

    def redo(job: JobRow, rows: list[TaskRow]) -> list[int]:
        missing_frames = {
            frame for frame in prepared.spec.frames
            if any(not Path(p).exists() for p in final_outputs(prepared.spec, frame))
        }
        return [t.id for t in rows if t.state is TaskState.DONE and t.frame in missing_frames
                and _frame_finished(rows, t.frame)]

    local = open_or_resume(store, fingerprint, new_job, redo=redo)
    return local.job, local.resumed, local.done_before


def _frame_finished(tasks: list[Any], frame: int | None) -> bool:
    """A frame counts as finished when its every task is done (its outputs were written)."""
    return all(t.state is TaskState.DONE for t in tasks if t.frame == frame)


def run_jobs(
    store: Store,
    job_ids: list[int],
    *,
    settings: Settings,
    threads: int,
    workers: int | None,
    on_event: Callable[[Any], None] | None = None,
    dispatcher: Dispatcher | None = None,
) -> None:
    """Run jobs to the end on Ray (embedded unless settings.ray_address is set).

    `dispatcher`: one made earlier by `make_dispatcher` (Ray up or starting); it is closed here
    either way.
    """
    from wanhe.runs.local import make_dispatcher, run_to_end

    if dispatcher is None:
        from wanhe.engine import cluster

        cluster.connect(settings.ray_address)
        dispatcher = make_dispatcher(store, settings=settings, threads=threads, workers=workers,
                                     on_event=on_event)
    first = store.job(job_ids[0])
    scene = first.spec.get("scene") if first else None
    run_to_end(dispatcher, job_ids, warm=(TaskKind.RENDER.value, scene) if scene else None)


def attempt_records(store: Store, job_id: int) -> list[dict[str, Any]]:
    """One record per task attempt, for `--report-json` and the summary."""
    from wanhe.store.usage import core_seconds

    return [
        {
            "task": a["key"], "kind": a["kind"], "frame": a["frame"], "tile": a["tile"],
            "chunk": a["chunk"], "attempt": a["number"], "node": a["node"],
            "worker": a["worker"], "outcome": a["outcome"], "wall_s": a["wall_s"],
            "cores": a["cores"], "core_seconds": core_seconds(a),
            "gpu_seconds": float(a["gpu_s"] or 0.0),
            "cpu_s": a["cpu_s"], "peak_rss_bytes": a["peak_rss"], "message": a["message"],
            "log": a["log_path"], "started_at": a["started_at"], "ended_at": a["ended_at"],
        }
        for a in store.attempts(job_id)
    ]


def qc_records(store: Store, job_id: int) -> list[dict[str, Any]]:
    """The QC task outputs of a job, one per checked frame."""
    return [
        {"frame": t.frame, **t.output.get("qc", {})}
        for t in store.tasks(job_id)
        if t.kind == "qc" and t.output.get("qc")
    ]


def write_report(path: Path, outcome: RenderOutcome, store: Store) -> None:
    from wanhe.imaging.atomic import atomic_write

    records = attempt_records(store, outcome.job.id)
    by_outcome: dict[str, float] = {}
    for r in records:
        key = r["outcome"] or "running"
        by_outcome[key] = by_outcome.get(key, 0.0) + r["core_seconds"]
    qc = qc_records(store, outcome.job.id)
    body = {
        "job": outcome.job.id,
        "scene": outcome.spec.scene,
        "state": outcome.job.state.value,
        "resumed": outcome.resumed,
        "frames": outcome.spec.frames,
        "tiles": f"{outcome.spec.tiles_x}x{outcome.spec.tiles_y}",
        "sample_chunks": outcome.spec.sample_chunks,
        "overscan": outcome.spec.overscan,
        "split": outcome.spec.split_note,
        "tile_warning": outcome.spec.tile_note,
        "outputs": {
            str(f): {"exr": outcome.spec.master_path(f), "png": outcome.spec.preview_path(f)}
            for f in outcome.spec.frames
        },
        "video": outcome.spec.video_path() if outcome.spec.video else None,
        "contact_sheet": outcome.spec.contact_sheet_path() if outcome.spec.video else None,
        "attempts": records,
        "qc": qc,
        "quality": outcome.quality,
        "flagged_frames": sorted(
            {int(q["frame"]) for q in qc if q.get("flagged") or q.get("passed") is False}
            | (set(outcome.spec.frames)
               if outcome.spec.quality_note or outcome.spec.tile_note else set())
        ),
        "totals": {
            "wall_s": outcome.wall_s,
            "attempts": len(records),
            "core_seconds": sum(r["core_seconds"] for r in records),
            "core_hours": sum(r["core_seconds"] for r in records) / 3600,
            "cpu_seconds": sum(r["cpu_s"] or 0 for r in records),
            "cpu_hours": sum(r["cpu_s"] or 0 for r in records) / 3600,
            "gpu_hours": sum(r["gpu_seconds"] for r in records) / 3600,
            "core_hours_by_outcome": {k: v / 3600 for k, v in by_outcome.items()},
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(body, indent=2, default=str))


def _log_to_file(path: Path) -> None:
    """wanhe's own log (dispatch decisions, worker start-up) goes to a file, not the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(name)s: %(message)s"))
    root = logging.getLogger("wanhe")
    if not any(isinstance(h, logging.FileHandler) for h in root.handlers):
        root.addHandler(handler)
    root.setLevel(logging.INFO)


def render(
    scene: Path,
    options: RenderOptions,
    *,
    settings: Settings,
    workers: int | None,
    on_prepared: Callable[[Prepared, JobRow, bool, int, list[TaskRow]], None] | None = None,
    on_event: Callable[[Any], None] | None = None,
) -> RenderOutcome:
    """The whole of `wanhe render`, minus the terminal.

    `on_prepared(prepared, job, resumed, tasks done before, the job's tasks)` is called once
    the job exists, before its tasks run.

    Without `--ray-address` the first worker is this command's own: its Blender starts at
    once, inspects the scene (which stays loaded) and renders. When there are further workers
    to place (`ray_needed`), an embedded Ray starts beside it and runs them and the image work;
    when that one worker takes every core, no Ray starts and the image work runs on a light
    worker of this process. Joining a cluster (`--ray-address`), every worker is Ray's.
    """
    started = time.monotonic()
    _log_to_file(settings.home / "logs" / "wanhe.log")
    local: LocalWorker | None = None
    ray_start: EmbeddedStart | None = None
    store: Store | None = None
    dispatcher: Dispatcher | None = None
    try:
        if settings.ray_address is None and not _ray_running_here():
            from wanhe.engine.handles import LocalWorker

            local = LocalWorker("w0", settings.worker_tools())
            # Blender starts first, the critical path: Python and bpy load in it (as long as
            # in a plain Blender) while this process checks the request, and then the scene
            # loads while this thread starts Ray in the background, opens the database and
            # imports what runs the job. A request that fails its checks kills it (`finally`).
            blender = local.worker.blender_process()
            blender.spawn()
            precheck(scene, options)
            inspection = _in_thread(
                lambda: prepare(scene, options, settings.blender, process=blender,
                                cache_dir=settings.home / "probes")
            )
            if ray_needed(options.threads, workers) or (
                options.device != "cpu" and gpu_devices_present()
            ):  # Ray finds the GPUs and each becomes a GPU slot
                ray_start = _start_ray_beside(options.threads)
            else:
                logging.getLogger("wanhe").info(
                    "one worker takes every core: rendering in this process, no Ray to start"
                )
            from wanhe.store.store import Store

            store = Store(settings.db_url)
            _import_while(inspection, _JOB_MODULES)
            _import_while(inspection, _FRAME_MODULES, stop_when_done=True)
            on_event = _import_at_first_start(on_event, _FRAME_MODULES)
            prepared = inspection.result()
        else:
            precheck(scene, options)
            from wanhe.store.store import Store

            store = Store(settings.db_url)  # a bad --db is told before the scene is read
            prepared = _prepare_while_joining(scene, options, settings)
        prepared = apply_quality(prepared, options, settings.blender,
                                 cache_dir=settings.home / "probes")
        if prepared.quality is not None:  # new samples: fit tiles, chunks and overscan again
            from wanhe.jobtypes.blender_render import refit_split

            prepared.spec = refit_split(prepared.spec, options, prepared.facts)
        job, resumed, done_before = open_or_resume_job(
            store, prepared, settings.storage_root / "work"
        )
        tasks = store.tasks(job.id)
        if on_prepared is not None:
            on_prepared(prepared, job, resumed, done_before, tasks)
        total = len(tasks)
        if done_before < total:
            from wanhe.runs.local import make_dispatcher

            dispatcher = make_dispatcher(
                store, settings=settings, threads=options.threads, workers=workers,
                on_event=on_event, local_workers=[local] if local is not None else [],
                ray_start=ray_start, use_ray=local is None or ray_start is not None,
            )
            local = None  # the dispatcher owns it now
            run_jobs(store, [job.id], settings=settings, threads=options.threads,
                     workers=workers, on_event=on_event, dispatcher=dispatcher)
            dispatcher = None  # run_jobs closed it
        note = "; ".join(n for n in (prepared.spec.quality_note, prepared.spec.tile_note) if n)
        if note:  # the job keeps the note (a finished job's is cleared)
            store.set_job_message(job.id, note)
        final = store.job(job.id)
        assert final is not None
        return RenderOutcome(
            job=final, spec=prepared.spec, resumed=resumed, tasks_total=total,
            tasks_skipped=done_before, wall_s=time.monotonic() - started,
            attempts=store.attempts(job.id), quality=prepared.quality,
        )
    except BaseException as exc:
        if ray_start is not None:
            from wanhe.engine import cluster

            cluster.shutdown()  # ours, perhaps still starting: stop it before the error shows
        # the pool's, not the dispatcher's name: a bad scene is told without importing it
        from wanhe.engine.pool import RayStartError

        if isinstance(exc, RayStartError):
            raise RenderSetupError(str(exc)) from exc
        raise
    finally:
        if dispatcher is not None:
            dispatcher.close()
        if local is not None:
            local.kill()
        if store is not None:
            store.dispose()


GPU_DEVICE_FILES = ("/dev/nvidia0", "/dev/kfd")  # NVIDIA's driver, AMD's ROCm


def gpu_devices_present(files: Sequence[str] = GPU_DEVICE_FILES) -> bool:
    """Whether this machine shows a GPU driver's device file: cheap, without Ray or Blender
    (Ray and then Cycles find the GPUs themselves once started)."""
    return any(os.path.exists(f) for f in files)


def ray_needed(threads: int, workers: int | None, cores: int | None = None) -> bool:
    """Whether a local `wanhe render` has work for an embedded Ray.

    The command's own worker renders with `threads` cores. Ray is worth its start (seconds of
    CPU on a small machine, taken from the first frame's render) only when there are more
    render workers to place: `--workers` above 1, or cores enough for a second worker.
    """
    cores = cores or os.cpu_count() or 1
    wanted = workers if workers is not None else max(1, cores // max(1, threads))
    return wanted > 1


def stop_ray() -> None:
    """Stop the Ray this command started (or leave the one it joined); nothing if it never
    touched Ray."""
    if "ray" in sys.modules:
        from wanhe.engine import cluster

        cluster.shutdown()


def _ray_running_here() -> bool:
    """Whether this process is already connected to a Ray (tests, a library user)."""
    ray = sys.modules.get("ray")
    return ray is not None and bool(ray.is_initialized())


def _start_ray_beside(threads: int) -> EmbeddedStart:
    """Start the embedded Ray in the background with the cores the local worker leaves."""
    from wanhe.engine import cluster

    ray_cpus = max(0, (os.cpu_count() or 1) - threads)
    logging.getLogger("wanhe").info("starting Ray (%d CPU) beside the local worker", ray_cpus)
    return cluster.start_embedded(ray_cpus)


# What making and running a render job imports after the scene is inspected: the job types,
# the dispatcher, every executor and the render step's frame checks (numpy) — ≈ 0.3 s of CPU,
# taken while Blender loads instead of between its loading the scene and its first render.
_JOB_MODULES = (
    "wanhe.runs.local", "wanhe.jobtypes.registry:_load", "wanhe.engine.dispatcher",
    "wanhe.engine.executors.registry:_load", "wanhe.engine.frame_checks",
)
# What the frame's image steps and the summary import after the render (OpenEXR, PIL): while
# Blender loads if it is still loading, else as the first render starts — not after it ends.
# Nothing else of this process imports them meanwhile (no two threads import one module).
_FRAME_MODULES = ("wanhe.imaging.assemble", "wanhe.imaging.preview", "rich.table")


def _import_while(inspection: Future[Prepared], modules: Sequence[str], *,
                  stop_when_done: bool = False) -> None:
    """Import `modules` (`module:function` also calls it) unless the inspection has failed
    meanwhile (its message should come at once), or (`stop_when_done`) has ended at all."""
    import importlib

    for name in modules:
        if inspection.done() and (stop_when_done or inspection.exception() is not None):
            return
        module, _, call = name.partition(":")
        found = importlib.import_module(module)
        if call:
            getattr(found, call)()


def _import_at_first_start(
    on_event: Callable[[Any], None] | None, modules: Sequence[str]
) -> Callable[[Any], None]:
    """`on_event`, importing `modules` first when the first task has started (the dispatcher's
    thread, which then only waits for the render's answer)."""
    pending = list(modules)

    def seen(event: Any) -> None:
        if pending and getattr(event, "kind", None) == "started":
            import importlib

            for name in pending:
                importlib.import_module(name)
            pending.clear()
        if on_event is not None:
            on_event(event)

    return seen


def _in_thread(work: Callable[[], Prepared]) -> Future[Prepared]:
    """Run `work` on a thread of its own; its exception comes out of `result()`."""
    future: Future[Prepared] = Future()

    def run() -> None:
        try:
            future.set_result(work())
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name="inspect", daemon=True).start()
    return future


def _prepare_while_joining(scene: Path, options: RenderOptions, settings: Settings) -> Prepared:
    """Inspect the scene in a thread while this (main) thread joins or starts Ray."""
    from wanhe.engine import cluster

    inspection = _in_thread(lambda: prepare(scene, options, settings.blender,
                                            cache_dir=settings.home / "probes"))
    try:
        logging.getLogger("wanhe").info("starting or joining Ray (%s)", settings.ray_address)
        cluster.connect(settings.ray_address)
        logging.getLogger("wanhe").info("Ray ready")
    except Exception as exc:
        failed = inspection.exception()
        if failed is not None:  # a bad scene is the more useful message
            raise failed from None
        raise RenderSetupError(f"could not start or reach Ray: {exc}") from exc
    return inspection.result()
