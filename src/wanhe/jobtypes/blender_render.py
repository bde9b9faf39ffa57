"""The Blender render job type: a validated spec compiled into a per-frame task graph.

    render tile×chunk ─► assemble ─► denoise ─► preview        (one graph per frame)
                                                └─► video      (one per job, after every frame)

Pure: no Blender, no files, no database. Paths in the payloads are where the workers read and
write; `work_dir` holds intermediate tiles, the final outputs follow the user's pattern.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path, PurePath
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from wanhe.jobtypes.base import (
    CompiledJob,
    InputError,
    Inspected,
    IntakeContext,
    JobFolder,
    JobType,
    TaskView,
)
from wanhe.jobtypes.registry import register_job_type
from wanhe.model import Resources, TaskKind, TaskSpec
from wanhe.plan.samples import SampleChunk, plan_sample_chunks
from wanhe.plan.seams import seam_plan
from wanhe.plan.tiles import TileGrid, plan_tiles
from wanhe.render.payloads import PartialPlan, Placement, RenderTask
from wanhe.render.spec import RenderKnobs, RenderOptions, RenderSpec, SceneFacts
from wanhe.sched.devices import Device, render_resources

KIND = "blender_render"


def compile_render_job(spec: RenderSpec, work_dir: str) -> list[TaskSpec]:
    """The job's task graph, frame by frame, in the order tasks should run."""
    tiles = plan_tiles(spec.width, spec.height, spec.grid, spec.overscan)
    chunks = (
        plan_sample_chunks(spec.samples, spec.sample_chunks)
        if spec.samples is not None and spec.sample_chunks > 1
        else []
    )
    render_cpus = render_resources(spec.device, spec.threads)
    light = Resources(cpus=0.0)  # short image work runs beside the renders (metered as 1 core)
    graph: list[TaskSpec] = []
    last_of_frame: list[str] = []
    for frame in spec.frames:
        frame_dir = f"{work_dir}/f{frame:06d}"
        renders: list[str] = []
        render_tasks: list[tuple[str, RenderTask, int, SampleChunk | None]] = []
        placements: list[Placement] = []
        for tile in tiles:
            whole = len(tiles) == 1
            paths: list[str] = []
            weights: list[int] = []
            chunk_plan: list[SampleChunk | None] = list(chunks) or [None]
            for chunk in chunk_plan:
                suffix = "" if chunk is None else f"_c{chunk.index:02d}"
                out = f"{frame_dir}/tile{tile.index:03d}{suffix}.exr"
                task = RenderTask(
                    scene=spec.scene, frame=frame, output=out,
                    resolution_percentage=spec.resolution_percentage,
                    border=None if whole else tile.border(spec.width, spec.height),
                    expected_size=tile.render_size, samples=spec.samples, seed=spec.seed,
                    camera=spec.camera, threads=spec.threads, denoise_passes=spec.denoise,
                    sample_offset=None if chunk is None else chunk.offset,
                    sample_subset_length=None if chunk is None else chunk.length,
                    timeout_s=spec.task_timeout_s, silence_s=spec.silence_timeout_s,
                    device=spec.device,
                )
                render_tasks.append((f"{frame}/render/t{tile.index:03d}{suffix}", task,
                                     tile.index, chunk))
                paths.append(out)
                weights.append(chunk.length if chunk is not None else 1)
            placements.append(Placement(paths=paths, samples=weights, src=list(tile.keep_box),
                                        dst=[tile.core_box[0], tile.core_box[1]]))
        partial = spec.partial_path(frame) if chunks else None
        plan = None if partial is None else PartialPlan(  # each finished chunk previews
            output=partial, width=spec.width, height=spec.height, placements=placements)
        render_payloads: list[dict[str, Any]] = []
        for key, task, tile_index, chunk in render_tasks:
            task.partial = plan
            payload = task.stored()
            graph.append(
                TaskSpec(
                    key, TaskKind.RENDER, payload, frame=frame, tile=tile_index,
                    chunk=None if chunk is None else chunk.index, resources=render_cpus,
                )
            )
            renders.append(key)
            render_payloads.append(payload)
        master = spec.master_path(frame)
        assembled = f"{frame_dir}/assembled.exr" if spec.denoise else master
        assemble_key = f"{frame}/assemble"
        assemble_payload: dict[str, Any] = {
            "placements": [p.model_dump(mode="json") for p in placements],
            "width": spec.width, "height": spec.height,
            "output": assembled, "frame": frame,
        }
        graph.append(
            TaskSpec(
                assemble_key, TaskKind.ASSEMBLE, assemble_payload,
                deps=renders, frame=frame, resources=light,
            )
        )
        previous = assemble_key
        denoise_payload: dict[str, Any] | None = None
        if spec.denoise:
            key = f"{frame}/denoise"
            denoise_payload = {"input": assembled, "output": master, "frame": frame}
            graph.append(
                TaskSpec(
                    key, TaskKind.DENOISE, denoise_payload,
                    deps=[previous], frame=frame, resources=light,
                )
            )
            previous = key
        preview_key = f"{frame}/preview"
        preview_payload = {"input": master, "output": spec.preview_path(frame), "frame": frame,
                           "partial": partial}
        graph.append(
            TaskSpec(
                preview_key, TaskKind.PREVIEW, preview_payload,
                deps=[previous], frame=frame, resources=light,
            )
        )
        last = preview_key
        if spec.qc:
            key = f"{frame}/qc"
            graph.append(
                TaskSpec(
                    key, TaskKind.QC,
                    _qc_payload(spec, frame, master, tiles, {
                        "work_dir": frame_dir, "renders": render_payloads,
                        "assemble": assemble_payload, "denoise": denoise_payload,
                        "preview": preview_payload,
                    }),
                    # a failing frame is re-rendered inside the QC task: it reserves (and is
                    # billed) a render slot's cores, not the light slot's none
                    deps=[preview_key], frame=frame, resources=render_cpus,
                )
            )
            last = key
        last_of_frame.append(last)
    if spec.video:
        graph.append(
            TaskSpec(
                "video", TaskKind.VIDEO,
                {"previews": [spec.preview_path(f) for f in spec.frames], "fps": spec.fps,
                 "frames": spec.frames, "output": spec.video_path(),
                 "contact_sheet": spec.contact_sheet_path()},
                deps=last_of_frame, resources=light,
            )
        )
    return graph


def _qc_payload(
    spec: RenderSpec, frame: int, master: str, tiles: list[Any], rerender: dict[str, Any]
) -> dict[str, Any]:
    """What the QC task needs: the frame, its tile boxes, its neighbours' masters (compared
    when they are finished), thresholds, and the plan to re-render it once if it fails."""
    at = spec.frames.index(frame)
    near = spec.frames[max(0, at - 2) : at] + spec.frames[at + 1 : at + 3]
    seams = None
    if len(tiles) > 1 and spec.sample_chunks == 1:  # tiles vs a whole render at the seams
        seams = seam_plan(rerender["renders"][0], rerender["assemble"]["output"], spec.width,
                          spec.height, [tile.core_box for tile in tiles], spec.overscan)
    return {
        "seams": seams,
        "input": master, "frame": frame, "width": spec.width, "height": spec.height,
        "tiles": [list(tile.core_box) for tile in tiles] if len(tiles) > 1 else None,
        "neighbours": [spec.master_path(f) for f in near],
        "thresholds": dict(spec.qc_thresholds),
        "seed": spec.seed,
        "notes": [n for n in (spec.quality_note, spec.tile_note) if n],
        "rerender": rerender,
    }


def final_outputs(spec: RenderSpec, frame: int) -> list[str]:
    """The files a finished frame leaves for the user."""
    return [spec.master_path(frame), spec.preview_path(frame)]


def reserve_render_memory(tasks: list[TaskSpec], spec: RenderSpec, facts: SceneFacts) -> None:
    """Give each render task the memory its scene and tile need (`wanhe.blender.memory`);
    the image tasks that follow hold a frame's passes: the whole frame's pixels."""
    from wanhe.blender.memory import render_memory

    tiles = {t.index: t for t in plan_tiles(spec.width, spec.height, spec.grid, spec.overscan)}
    for task in tasks:
        if task.kind == TaskKind.RENDER.value:
            tile = tiles.get(task.tile or 0)
            width, height = tile.render_size if tile is not None else (spec.width, spec.height)
            pixels = width * height
            need = render_memory(polygons=facts.polygons, blend_bytes=facts.blend_bytes,
                                 texture_bytes=facts.texture_bytes, pixels=pixels)
            task.resources = replace(task.resources, memory=need)


def resolve_output_pattern(pattern: str, blend_path: str) -> str:
    """Blender's `//` means "next to the .blend"; a pattern without `#` gets `####` appended."""
    folder = str(PurePath(blend_path).parent)
    if pattern.startswith("//"):
        pattern = f"{folder}/{pattern[2:]}"
    if not pattern:
        pattern = f"{folder}/render/{PurePath(blend_path).stem}_"
    if pattern.endswith(("/", "\\")):
        pattern += "frame_"
    if "#" not in PurePath(pattern).name:
        pattern += "####"
    return pattern


def resolve_spec(options: RenderOptions, scene: SceneFacts) -> RenderSpec:
    """Meet the user's options with the scene: frames, size, samples, camera, output."""
    from wanhe.plan.frames import check_frames_in_scene, parse_frames, scene_frames
    from wanhe.plan.samples import SampleChunkError
    from wanhe.plan.tiles import parse_grid, scaled_size

    frames = (
        parse_frames(options.frames)
        if options.frames
        else scene_frames(scene.frame_start, scene.frame_end, scene.frame_step)
    )
    check_frames_in_scene(frames, scene.frame_start, scene.frame_end)
    camera = options.camera or scene.camera
    if options.camera and options.camera not in scene.cameras:
        known = ", ".join(scene.cameras) or "none"
        raise SceneSetupError(
            f"camera {options.camera!r} is not in the scene (cameras: {known}) — "
            "pass one of those to --camera"
        )
    if camera is None:
        raise SceneSetupError(
            "the scene has no active camera — add a camera in Blender and make it active, "
            "or pass --camera NAME"
        )
    percentage = options.resolution_percentage or scene.resolution_percentage
    width, height = scaled_size(scene.resolution_x, scene.resolution_y, percentage)
    if width < 1 or height < 1:
        raise SceneSetupError(
            f"{scene.resolution_x}x{scene.resolution_y} at {percentage}% is less than one "
            "pixel — raise --resolution-percentage"
        )
    grid = parse_grid(options.tiles)
    plan_tiles(width, height, grid, options.overscan or 0)  # a clear error if it cannot fit
    samples = options.samples or scene.samples
    if options.sample_chunks > 1:
        if scene.engine != "CYCLES":
            raise SceneSetupError("--sample-chunks needs Cycles; this scene uses " + scene.engine)
        if samples is None:
            raise SceneSetupError("--sample-chunks needs a sample count: pass --samples N")
        try:
            plan_sample_chunks(samples, options.sample_chunks)
        except SampleChunkError as exc:
            raise SceneSetupError(str(exc)) from exc
    if scene.engine != "CYCLES" and grid.count > 1:
        raise SceneSetupError(
            f"tiles need Cycles border rendering; this scene renders with {scene.engine}, "
            "which wanhe renders as whole frames — drop --tiles or switch the scene to Cycles"
        )
    output = resolve_output_pattern(options.output or scene.output_path, scene.path)
    kept = options.model_dump(include=set(RenderKnobs.model_fields))
    kept.update(
        # EEVEE: --samples sets its own sample count; without it the scene's are used
        samples=samples if scene.engine == "CYCLES" else (
            options.samples if _eevee(scene.engine) else None),
        camera=camera,
        denoise=options.denoise and scene.engine == "CYCLES",
    )
    kept.update(fit_split(options, scene, width, height, kept["samples"], grid))
    return RenderSpec(
        scene=scene.path,
        frames=frames,
        width=width,
        height=height,
        resolution_percentage=percentage,
        engine=scene.engine,
        output=output,
        fps=scene.fps,
        **kept,
    )


def _eevee(engine: str) -> bool:
    return engine.startswith("BLENDER_EEVEE")


def needs_border_probe(options: RenderOptions, facts: SceneFacts) -> bool:
    """Whether the job would tile a Cycles scene, so border exactness must be checked."""
    from wanhe.plan.tiles import parse_grid

    return facts.engine == "CYCLES" and (
        (options.split or 1) > 1 or parse_grid(options.tiles).count > 1
    )


def fit_split(
    options: RenderOptions, scene: SceneFacts, width: int, height: int, samples: int | None,
    grid: TileGrid,
) -> dict[str, Any]:
    """Tiles, sample chunks, overscan and the notes about them, for these samples.

    Overscan defaults to the least that is exact (wanhe.plan.overscan). `--split N` picks
    tiles and/or chunks (wanhe.plan.split); explicit `--tiles` on a scene whose border renders
    the probe found inexact is kept but noted loudly, and its frames are flagged."""
    from wanhe.plan.overscan import exact_overscan
    from wanhe.plan.split import SplitError, plan_split

    cycles = scene.engine == "CYCLES"
    adaptive = cycles and scene.adaptive_sampling
    if options.overscan is not None:
        overscan = options.overscan
    else:
        overscan = exact_overscan(adaptive=adaptive, samples=samples or 1,
                                  threshold=scene.adaptive_threshold,
                                  min_samples=scene.adaptive_min_samples)
    exact = scene.border_exact is not False
    chunks = options.sample_chunks
    fields: dict[str, Any] = {"overscan": overscan, "split_note": None, "tile_note": None}
    if options.split is not None:
        if grid.count > 1 or chunks > 1:
            raise SceneSetupError(
                "--split picks tiles and sample chunks itself — give --split N, or --tiles / "
                "--sample-chunks, not both"
            )
        try:
            plan = plan_split(
                options.split, width=width, height=height, samples=samples, overscan=overscan,
                tiles_exact=exact, tiles_why_not=scene.border_why_not, cycles=cycles,
            )
        except SplitError as exc:
            raise SceneSetupError(str(exc)) from exc
        grid, chunks = plan.grid, plan.chunks
        fields["split_note"] = plan.describe(options.split)
    elif grid.count > 1 and not exact:
        fields["tile_note"] = (
            f"--tiles {grid} on a scene whose border renders are NOT exact "
            f"({scene.border_why_not}): the tiled frames may differ from whole frames and are "
            "flagged — use --split N or --sample-chunks K instead"
        )
    fields.update(tiles_x=grid.columns, tiles_y=grid.rows, sample_chunks=chunks)
    return fields


def refit_split(spec: RenderSpec, options: RenderOptions, facts: SceneFacts) -> RenderSpec:
    """`spec` with its tiles, chunks and overscan fitted again (after --quality changed the
    samples)."""
    from wanhe.plan.tiles import parse_grid

    fields = fit_split(options, facts, spec.width, spec.height, spec.samples,
                       parse_grid(options.tiles))
    return RenderSpec.model_validate({**spec.model_dump(), **fields})


def missing_messages(missing: list[str], caches: list[str]) -> list[str]:
    """One warning per missing external file; a point cache is simulated again, not pink."""
    out = []
    for path in missing:
        if path in caches:
            out.append(f"missing point cache {path}: the simulation is re-run on each worker "
                       "(slower, and it may differ from the cached result)")
        else:
            out.append(f"missing external file (renders pink or empty): {path}")
    return out


def scene_notes(options: RenderOptions, facts: SceneFacts) -> list[str]:
    """What the user should know about how the scene will render (one line each)."""
    notes: list[str] = []
    if options.samples is not None and not (facts.engine == "CYCLES" or _eevee(facts.engine)):
        notes.append(f"--samples does not apply to {facts.engine} (it has no sample count); "
                     "ignored")
    drivers = facts.python_drivers
    if drivers:
        shown = "; ".join(drivers[:5]) + (" …" if len(drivers) > 5 else "")
        notes.append(
            f"{len(drivers)} Python driver(s) will not run (wanhe never auto-runs a "
            f"scene's scripts) and render frozen at their saved values: {shown}"
        )
    return notes


class SceneSetupError(ValueError):
    """The options do not fit the scene (no camera, unknown camera, tiles on EEVEE, …)."""


# ---------------------------------------------------------------------- the job type

MAX_JOB_TASKS = 200_000


class FarmRenderOptions(RenderOptions):
    """The render flags of `wanhe render` as a farm submission takes them: everything but
    where outputs go (the farm writes them to the job's own folder)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("output")
    @classmethod
    def _no_output(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError(
                "the farm writes outputs to the job's own folder; leave output out and "
                "download them from /api/jobs/{id}/files"
            )
        return value


def inspect_blend(path: Path, blender: str | None = None, *, process: Any = None,
                  within: Path | None = None,
                  outside: list[str] | None = None) -> tuple[SceneFacts, list[str]]:
    """Read a .blend with Blender (auto-run scripts off, factory startup): its facts and the
    external files it misses (paths as text). `process`: the Blender to read it in (the
    project's sandbox on a farm); `within`: the job's input folder, files outside which are
    appended to `outside` unlooked-at."""
    from wanhe.blender.inspect import inspect_scene

    info = inspect_scene(path, blender=blender, process=process, within=within)
    facts = facts_from_report(info, output_path="")
    if outside is not None:
        outside.extend(str(p) for p in info.outside)
    return facts, [str(p) for p in info.missing]


def outside_messages(outside: list[str]) -> list[str]:
    """One warning per external file a farm job's scene names outside the job's files."""
    return [f"external file outside this job's files (the farm renders without it; add it "
            f"to the job's files): {path}" for path in outside]


@contextlib.contextmanager
def _scene_reader(ctx: IntakeContext) -> Iterator[tuple[Any, Path | None]]:
    """The Blender a submitted scene is read (and border-probed) in, and its scratch folder:
    on a sandboxing farm one in the submitting project's sandbox (`wanhe.sandbox.tool`: its
    OS user, a mount namespace showing only the submission's files, a cgroup), else (None,
    None): the inspection starts its own, as before."""
    from wanhe.sandbox.tool import inspection_box, tool_env

    if ctx.inputs is None or not ctx.project or ctx.inspectors.get(KIND) is not None:
        yield None, None
        return
    from wanhe.blender.errors import BlenderError
    from wanhe.blender.runner import BlenderProcess

    scratch = ctx.inputs.parent / "inspect"
    software = (Path(ctx.blender).resolve().parent,) if ctx.blender else ()
    try:
        box = inspection_box(ctx.inputs, scratch, ctx.project, ctx.project_id,
                             software=software)
    except (OSError, ValueError) as exc:  # CgroupError, MountError
        raise InputError("main", f"cannot make the sandbox to read the scene in: {exc}") \
            from None
    if box is None:
        yield None, None
        return
    process = BlenderProcess(ctx.blender, env=tool_env(), wrap=box.command)
    try:
        yield process, scratch
    finally:
        with contextlib.suppress(BlenderError, OSError):
            process.close()
        box.close()
        shutil.rmtree(scratch, ignore_errors=True)


def facts_from_report(report: Any, output_path: str | None = None) -> SceneFacts:
    """SceneFacts from a wanhe.blender.inspect.SceneReport."""
    from wanhe.blender.border_probe import border_hints

    return SceneFacts(
        path=str(report.path), frame_start=report.frame_start, frame_end=report.frame_end,
        frame_step=report.frame_step, fps=report.fps, resolution_x=report.resolution_x,
        resolution_y=report.resolution_y, resolution_percentage=report.resolution_percentage,
        engine=report.engine, camera=report.camera, cameras=list(report.cameras),
        samples=report.samples,
        output_path=report.output_path if output_path is None else output_path,
        adaptive_sampling=bool(report.adaptive_sampling),
        adaptive_threshold=report.adaptive_threshold,
        adaptive_min_samples=report.adaptive_min_samples,
        border_hints=list(border_hints(volumes=report.volumes, path_guiding=report.path_guiding,
                                       time_limit=report.time_limit)),
        python_drivers=list(report.python_drivers),
        missing_caches=[str(c) for c in getattr(report, "missing_caches", [])],
        time_limit=report.time_limit,
        polygons=int(getattr(report, "polygons", 0) or 0),
        blend_bytes=int(getattr(report, "blend_bytes", 0) or 0),
        texture_bytes=int(getattr(report, "texture_bytes", 0) or 0),
    )


def probe_facts(
    path: Path, facts: SceneFacts, options: RenderOptions, blender: str | None = None,
    cache_dir: Path | None = None, process: Any = None, digest: str | None = None,
    scratch: Path | None = None,
) -> dict[str, Any]:
    """Run (or reuse) the border probe on the job's middle frame: SceneFacts fields to update.

    A render time limit makes each tile stop after its own time: no probe can vouch for it."""
    if facts.time_limit > 0:
        return {"border_exact": False, "border_why_not": (
            f"the scene has a {facts.time_limit:g} s render time limit, so each tile renders "
            "as many samples as its time allows")}
    from wanhe.blender.border_probe import check_scene_borders
    from wanhe.plan.frames import parse_frames, scene_frames
    from wanhe.storage import sha256_file

    frames = (parse_frames(options.frames) if options.frames
              else scene_frames(facts.frame_start, facts.frame_end, facts.frame_step))
    from wanhe.blender.errors import BlenderError
    from wanhe.imaging.errors import ImagingError

    try:
        probe = check_scene_borders(
            scene=path, frame=sorted(frames)[len(frames) // 2],
            resolution=(facts.resolution_x, facts.resolution_y),
            camera=options.camera or facts.camera, hints=tuple(facts.border_hints),
            blender=blender, process=process, scratch=scratch,
            cache_dir=cache_dir, digest=digest or sha256_file(path),
        )
    except (RuntimeError, BlenderError, ImagingError, OSError, ValueError) as exc:
        # unknown is not exact: --split uses chunks, --tiles warns
        return {"border_exact": False,
                "border_why_not": f"the border probe could not check it: {exc}"}
    return {"border_exact": probe.exact, "border_why_not": probe.why_not()}


def resolve_within_limits(options: RenderOptions, facts: SceneFacts) -> RenderSpec:
    """`resolve_spec`, refusing jobs of more tasks than one job may hold."""
    spec = resolve_spec(options, facts)
    per_frame = spec.tiles_x * spec.tiles_y * spec.sample_chunks + 4
    if len(spec.frames) * per_frame > MAX_JOB_TASKS:
        raise ValueError(
            f"{len(spec.frames)} frame(s) × {spec.tiles_x}x{spec.tiles_y} tiles × "
            f"{spec.sample_chunks} sample chunk(s) make more than {MAX_JOB_TASKS:,} tasks — "
            "submit fewer frames per job or fewer tiles"
        )
    return spec


@register_job_type
class BlenderRenderJob(JobType):
    kind = KIND
    title = "Blender render"
    options_model = FarmRenderOptions
    main_file = "required"
    main_suffixes = (".blend",)
    panels = ("frames", "heatmap", "latest", "video")

    def check(self, options: BaseModel) -> None:
        from wanhe.plan.frames import FrameSpecError, parse_frames
        from wanhe.plan.tiles import TileSpecError, parse_grid

        assert isinstance(options, RenderOptions)
        try:
            if options.frames:
                parse_frames(options.frames)
        except (FrameSpecError, ValueError) as exc:
            raise InputError("options.frames", str(exc)) from None
        try:
            parse_grid(options.tiles)
        except (TileSpecError, ValueError) as exc:
            raise InputError("options.tiles", str(exc)) from None

    def inspect(self, ctx: IntakeContext, main: Path | None, options: BaseModel) -> Inspected:
        from wanhe.blender.errors import SceneError

        assert main is not None
        with _scene_reader(ctx) as (process, scratch):
            outside: list[str] = []
            inspector = ctx.inspectors.get(KIND) or (lambda p: inspect_blend(
                p, ctx.blender, process=process, within=ctx.inputs, outside=outside))
            try:
                facts, missing = inspector(main)
            except SceneError as exc:
                raise InputError("main", str(exc)) from None
            assert isinstance(options, RenderOptions)
            prober = ctx.inspectors.get(KIND + ".borders")
            if prober is None and KIND not in ctx.inspectors:  # the real Blender: probe
                def prober(p: Path) -> dict[str, Any]:
                    assert isinstance(options, RenderOptions)
                    return probe_facts(p, facts, options, ctx.blender, ctx.cache_dir,
                                       process=process, scratch=scratch)
            if prober is not None and needs_border_probe(options, facts):
                facts = facts.model_copy(update=prober(main))
        spec = self._resolve(options, facts, main, main.parent / "o" / "f_####")  # fail early
        notes = [n for n in (spec.split_note, spec.tile_note) if n] + scene_notes(options, facts)
        return Inspected(facts, notes + missing_messages(missing, facts.missing_caches)
                         + outside_messages(outside))

    @staticmethod
    def _resolve(options: BaseModel, facts: SceneFacts, scene: Path, output: Path) -> RenderSpec:
        resolved = RenderOptions(**{**options.model_dump(), "output": str(output)})
        try:
            return resolve_within_limits(
                resolved, facts.model_copy(update={"path": str(scene), "output_path": ""})
            )
        except ValueError as exc:
            raise InputError("options", str(exc)) from None

    def compile(
        self, options: BaseModel, inspected: Inspected, main: Path | None, folder: JobFolder
    ) -> CompiledJob:
        assert main is not None
        spec = self._resolve(options, inspected.facts, main, folder.output / "frame_####")
        tasks = compile_render_job(spec, str(folder.work))
        reserve_render_memory(tasks, spec, inspected.facts)
        return CompiledJob(spec.model_dump(mode="json"), spec.fingerprint(), tasks)

    def any_device(self, spec: dict[str, Any]) -> bool:
        return bool(spec.get("device", Device.ANY.value) == Device.ANY.value)

    def task_label(self, task: TaskView) -> str:
        if task.kind == TaskKind.VIDEO.value:
            return "the preview video"
        if task.frame is None:
            return f"task {task.key}"
        if task.kind == TaskKind.RENDER.value:
            part = f" tile {task.tile}" if task.tile is not None else ""
            part += f" sample chunk {task.chunk}" if task.chunk is not None else ""
            return f"frame {task.frame}{part}"
        return f"frame {task.frame} {task.kind}"

    def deliverables(self, spec: dict[str, Any]) -> list[str]:
        render = RenderSpec.model_validate(spec)
        files = [path for frame in render.frames for path in final_outputs(render, frame)]
        if render.video:
            files += [render.video_path(), render.contact_sheet_path()]
        return files
