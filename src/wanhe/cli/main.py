"""The root `wanhe` app and `wanhe render`; the other command modules of this package join it
here. Every command is a thin call into the library."""


import contextlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from wanhe.cli.common import Bars, ended_cleanly, err, fail, finished_cleanly, interrupted, out
from wanhe.sched.devices import DEVICE_HELP, Device

app = typer.Typer(
    rich_markup_mode=None,  # click's plain help: rich's help renderer costs 0.15-0.3 s
    name="wanhe",
    help="万核 wanhe — render Blender scenes on every core you can reach.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

if TYPE_CHECKING:
    from rich.progress import TaskID

    from wanhe.config import Settings


@app.callback()
def _root() -> None:
    """万核 wanhe — render Blender scenes on every core you can reach."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from pydantic import ValidationError

    from wanhe.blender.errors import SceneError
    from wanhe.imaging.errors import OutputError

    return (SceneError, ValueError, ValidationError, OutputError, FileNotFoundError)


def _describe(exc: BaseException) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        parts = []
        for problem in exc.errors():
            where = ".".join(str(p) for p in problem.get("loc", ()))
            msg = problem.get("msg")
            parts.append(f"{where}: {msg}" if where else str(msg))
        return "; ".join(parts)
    return str(exc)


class _RenderProgress(Bars):
    """A whole-job bar with ETA and a bar for the frame in flight."""

    def __init__(self, quiet: bool) -> None:
        super().__init__(quiet)
        self.job_bar: TaskID | None = None
        self.frame_bar: TaskID | None = None
        self.frame_tasks: dict[int, list[int]] = {}
        self.done: set[int] = set()
        self.inflight: dict[int, float] = {}
        self.current_frame: int | None = None

    def columns(self) -> tuple[Any, ...]:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        return (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.percentage:>5.1f}%"), TimeElapsedColumn(), TextColumn("ETA"),
                TimeRemainingColumn())

    def start(self, tasks: list[Any], already_done: int) -> None:
        for task in tasks:
            if task.kind == "render" and task.frame is not None:
                self.frame_tasks.setdefault(task.frame, []).append(task.id)
            if task.state.value == "done":
                self.done.add(task.id)
        self.progress.start()
        self.job_bar = self.progress.add_task("job", total=len(tasks), completed=already_done)
        self.frame_bar = self.progress.add_task("frame", total=100, visible=False)

    def on_event(self, event: Any) -> None:
        if self.job_bar is None or self.frame_bar is None:
            return
        task = event.task
        if event.kind == "done":
            self.done.add(task.id)
            self.inflight.pop(task.id, None)
            self.progress.advance(self.job_bar)
        elif event.kind == "progress" and event.result:
            self.inflight[task.id] = float(event.result.get("progress", 0.0))
        elif event.kind == "started" and task.kind == "render":
            self.inflight[task.id] = 0.0
            self.current_frame = task.frame
        elif self.note_trouble(event, f" on {event.node or '?'}"):
            self.inflight.pop(task.id, None)
        frame = self.current_frame
        if frame is not None and frame in self.frame_tasks:
            ids = self.frame_tasks[frame]
            finished = sum(1 for i in ids if i in self.done)
            partial = sum(self.inflight.get(i, 0.0) for i in ids if i not in self.done)
            self.progress.update(
                self.frame_bar, visible=True, description=f"frame {frame}",
                completed=100.0 * (finished + partial) / len(ids),
            )


@app.command()
def render(
    scene: Annotated[Path, typer.Argument(help="the .blend file to render")],
    frames: Annotated[
        str | None,
        typer.Option("--frames", "-f", help="e.g. 1-48, 1,5,10-20, 1-100x5; default: the scene's"),
    ] = None,
    tiles: Annotated[str, typer.Option(help="tiles per frame, COLUMNSxROWS")] = "1x1",
    overscan: Annotated[
        int | None,
        typer.Option(help="pixels each tile renders past its edges; default: the least that "
                     "is exact (0 without adaptive sampling)"),
    ] = None,
    split: Annotated[
        int | None,
        typer.Option(help="spread each frame over N workers: wanhe picks tiles, sample chunks "
                     "or both, and says why"),
    ] = None,
    samples: Annotated[int | None, typer.Option(help="override the scene's samples")] = None,
    sample_chunks: Annotated[
        int, typer.Option(help="split each frame's samples over this many tasks")
    ] = 1,
    resolution_percentage: Annotated[
        int | None, typer.Option(help="override the scene's resolution %")
    ] = None,
    camera: Annotated[str | None, typer.Option(help="render through this camera")] = None,
    denoise: Annotated[
        bool, typer.Option("--denoise/--no-denoise", help="OIDN on the assembled frame")
    ] = True,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="pattern, # = frame digits; default: the scene's"),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="parallel tasks; default: cores / threads")
    ] = None,
    threads_per_task: Annotated[
        int | None,
        typer.Option(help="Cycles threads per task; default: every core of this machine"),
    ] = None,
    qc: Annotated[bool, typer.Option("--qc/--no-qc", help="check every frame")] = False,
    video: Annotated[
        bool, typer.Option("--video/--no-video", help="preview MP4 + contact sheet")
    ] = False,
    device: Annotated[Device, typer.Option(help=DEVICE_HELP)] = Device.ANY,
    quality: Annotated[
        str | None,
        typer.Option(help="PSNR target in dB (e.g. 35) or draft/preview/final: a probe render "
                     "picks the fewest samples that reach it"),
    ] = None,
    qc_threshold: Annotated[
        list[str] | None,
        typer.Option(help="QC threshold NAME=VALUE (repeatable), e.g. firefly_ratio=12"),
    ] = None,
    task_timeout: Annotated[float | None, typer.Option(help="seconds per task at most")] = None,
    silence_timeout: Annotated[
        float | None, typer.Option(help="kill a task silent in its log this long")
    ] = None,
    report_json: Annotated[
        Path | None, typer.Option(help="write one record per task attempt, with totals")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(help="an existing Ray cluster; default: this machine, with an embedded "
                     "Ray when there is a second worker to place"),
    ] = None,
    db: Annotated[str | None, typer.Option(help="database URL; default ~/.wanhe/wanhe.db")] = None,
    blender: Annotated[
        str | None, typer.Option(help="a blender binary to use instead of the bpy module")
    ] = None,
    export_openjd: Annotated[
        Path | None, typer.Option(help="write the job as an OpenJD job bundle in this new "
                                  "folder instead of rendering (docs/openjd.md)")
    ] = None,
) -> None:
    """Render SCENE: frames cut into tiles, run on every core, assembled, denoised, metered."""
    from wanhe.config import Settings
    from wanhe.localrender import render as run_render
    from wanhe.localrender import stop_ray, write_report
    from wanhe.render.spec import RenderOptions

    settings = Settings().overridden(ray_address=ray_address, db=db, blender=blender)
    if workers is not None and workers < 1:
        fail("--workers must be at least 1")
    if sample_chunks < 1:
        fail(f"--sample-chunks must be at least 1 (sample_chunks = 1 renders each frame's "
             f"samples in one task), got {sample_chunks}")
    if report_json is not None:
        _check_report_path(report_json)
    if device is Device.GPU and ray_address is None:
        from wanhe.localrender import GPU_DEVICE_FILES, gpu_devices_present

        if not gpu_devices_present():
            fail(f"--device gpu: this machine shows no GPU ({', '.join(GPU_DEVICE_FILES)}); "
                 "render with --device cpu or any, or join a cluster with GPUs (--ray-address)")
    try:
        from wanhe.samplecount.levels import parse_quality_target

        if quality is not None:
            parse_quality_target(quality)  # its own message, without pydantic's prefix
        thresholds: dict[str, float] = {}
        if qc_threshold:  # the QC module imports numpy: only when asked (Blender waits)
            from wanhe.imaging.qc_thresholds import parse_threshold_args

            thresholds = parse_threshold_args(qc_threshold)
        options = RenderOptions(
            quality=quality, qc_thresholds=thresholds,
            frames=frames, tiles=tiles, overscan=overscan, samples=samples, split=split,
            sample_chunks=sample_chunks, resolution_percentage=resolution_percentage,
            camera=camera, denoise=denoise, output=output,
            # One warm process with every core beats one process per core: Cycles scales with
            # threads, and each process pays its own scene sync (bench/RESULTS.md).
            threads=threads_per_task or os.cpu_count() or 1,
            task_timeout_s=task_timeout, silence_timeout_s=silence_timeout, qc=qc, video=video,
            device=device,
        )
    except _user_errors() as exc:
        fail(_describe(exc))
    if export_openjd is not None:
        _export_openjd(scene, options, export_openjd, settings.blender, threads_per_task or 0)
        return
    bars = _RenderProgress(quiet)

    def on_prepared(
        prepared: Any, job: Any, resumed: bool, done_before: int, tasks: list[Any]
    ) -> None:
        spec = prepared.spec
        if not quiet:
            err.print(
                f"[bold]{Path(spec.scene).name}[/]: {prepared.facts.engine}, "
                f"{spec.width}x{spec.height}, {len(spec.frames)} frame(s), tiles "
                f"{spec.tiles_x}x{spec.tiles_y}"
                + (f" ({spec.overscan} px overscan)" if spec.tiles_x * spec.tiles_y > 1 else "")
                + (f", {spec.sample_chunks} sample chunks" if spec.sample_chunks > 1 else "")
                + f", samples {spec.samples or _scene_samples(prepared.facts.samples)}"
                f"{', denoise' if spec.denoise else ''}; {prepared.external_files} "
                f"external file(s)" + (f", {len(prepared.missing)} missing"
                                       if prepared.missing else ""),
                highlight=False,
            )
        if spec.split_note:
            err.print(spec.split_note, highlight=False)
        if spec.tile_note:
            err.print(f"[bold red]WARNING:[/] {spec.tile_note}", highlight=False)
        for note in prepared.notes:
            err.print(f"[yellow]note:[/] {note}", highlight=False)
        if prepared.quality is not None:
            reached = prepared.quality["reached"]
            if not quiet or not reached:
                err.print(("" if reached else "[yellow]warning:[/] ")
                              + prepared.quality["explanation"], highlight=False)
        from wanhe.jobtypes.blender_render import missing_messages

        for message in missing_messages(prepared.missing, prepared.missing_caches):
            err.print(f"[yellow]warning:[/] {message}", highlight=False)
        if resumed and not quiet:
            err.print(
                f"resuming job {job.id}: {done_before} task(s) already done", highlight=False
            )
        bars.start(tasks, done_before)

    if quality and not quiet:
        err.print(f"--quality {quality}: probing one frame at low resolution …",
                      highlight=False)
    try:
        outcome = run_render(
            scene, options, settings=settings, workers=workers,
            on_prepared=on_prepared, on_event=bars.on_event,
        )
    except KeyboardInterrupt:
        interrupted(bars)
    except _user_errors() as exc:
        bars.stop()
        fail(_describe(exc))
    bars.stop()
    stop_ray()  # now, not at interpreter exit: the summary comes with the prompt
    if report_json is not None:
        from wanhe.store.store import Store

        store = Store(settings.db_url, migrate=False)
        try:
            write_report(report_json, outcome, store)
        finally:
            store.dispose()
    _print_summary(outcome, quiet)
    _print_qc(settings, outcome)
    finished_cleanly()
    if outcome.job.state.value != "done":
        fail(f"job {outcome.job.id} {outcome.job.state.value}: {outcome.job.message}", code=1)


def _export_openjd(
    scene: Path, options: Any, dest: Path, blender: str | None, threads: int
) -> None:
    """`wanhe render … --export-openjd DIR`: write the bundle, print how to run it."""
    from wanhe.openjd_export import describe, export_render

    try:
        result = export_render(scene, options, dest, blender=blender, threads=threads)
    except _user_errors() as exc:
        fail(_describe(exc))
    for line in describe(result):
        err.print(line, highlight=False, soft_wrap=True)


def _scene_samples(samples: int | None) -> str:
    return "scene" if samples is None else f"{samples} (the scene's)"


def _check_report_path(path: Path) -> None:
    folder = path.expanduser().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot write the report to {path}: {exc.strerror or exc} — pick another path")
    if not os.access(folder, os.W_OK):
        fail(f"cannot write the report to {path}: {folder} is not writable — pick another path")


def _print_summary(outcome: Any, quiet: bool) -> None:
    from rich.table import Table

    spec = outcome.spec
    rendered = [a for a in outcome.attempts if a["kind"] == "render"]
    table = Table(title=f"job {outcome.job.id}: {outcome.job.state.value}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("scene", spec.scene)
    table.add_row("frames", f"{len(spec.frames)} ({_frames_text(spec.frames)})")
    table.add_row("tiles", f"{spec.tiles_x}x{spec.tiles_y} per frame, {spec.overscan} px overscan"
                  + (f", {spec.sample_chunks} sample chunks" if spec.sample_chunks > 1 else ""))
    if spec.split_note:
        table.add_row("split", spec.split_note)
    if spec.tile_note:
        table.add_row("tiles warning", spec.tile_note)
    table.add_row("tasks", f"{outcome.tasks_total} ({outcome.tasks_skipped} done before this run, "
                  f"{len(rendered)} render attempt(s) now)")
    table.add_row("wall time", f"{outcome.wall_s:.1f} s")
    table.add_row("core-hours", f"{outcome.core_seconds / 3600:.4f} allocated "
                  f"({outcome.core_seconds:.1f} core-s); CPU used {outcome.cpu_seconds:.1f} s")
    table.add_row("outputs", str(Path(spec.master_path(spec.frames[0])).parent))
    table.add_row("first frame", f"{spec.master_path(spec.frames[0])} (+ .png preview)")
    if spec.video:
        table.add_row("preview video", spec.video_path())
        table.add_row("contact sheet", spec.contact_sheet_path())
    if outcome.quality is not None:
        table.add_row("quality", outcome.quality["explanation"])
    if quiet:
        out.print(json.dumps({"job": outcome.job.id, "state": outcome.job.state.value,
                              "outputs": str(Path(spec.master_path(spec.frames[0])).parent)}))
    else:
        out.print(table)


def _print_qc(settings: "Settings", outcome: Any) -> None:
    """Name every frame QC flagged, and why."""
    from wanhe.localrender import qc_records
    from wanhe.store.store import Store

    store = Store(settings.db_url, migrate=False)
    try:
        records = qc_records(store, outcome.job.id)
    finally:
        store.dispose()
    for record in records:
        if record.get("rerender"):
            err.print(f"QC frame {record['frame']}: {record['rerender']}", highlight=False)
        if record.get("flagged"):
            err.print(f"[yellow]QC flagged frame {record['frame']}:[/] "
                          + "; ".join(record.get("reasons") or ["see the report"]),
                          highlight=False)


def _frames_text(frames: list[int]) -> str:
    from wanhe.plan.frames import format_frames

    return format_frames(frames)


def _mount_commands() -> None:
    """Every other command module of this package joins the root app here."""
    from wanhe.cli import addon, estimate, gen, kitsu, openjd, service, simulate, story

    app.command("simulate")(simulate.simulate_command)
    app.add_typer(story.story_app, name="story")
    openjd.register(app)
    service.register(app)
    addon.register(app)
    gen.register(app)
    estimate.register(app)
    kitsu.register(app)


_mount_commands()



def _end_now(code: object) -> NoReturn:
    """Flush what is written and leave at once (`os._exit`), with SystemExit's exit status."""
    import logging

    logging.shutdown()  # flushes and closes wanhe.log
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0 if code is None else code if isinstance(code, int) else 1)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except SystemExit as done:
        # Not with Ray imported: its own exit hooks stop what it started.
        if ended_cleanly() and "ray" not in sys.modules and not isinstance(done.code, str):
            _end_now(done.code)
        raise


if __name__ == "__main__":
    main()
