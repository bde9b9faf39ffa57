"""`wanhe story render|check|schema`: story reels from a storyboard file, on this machine.

(`wanhe submit story.yaml` sends one to the farm: `wanhe.cli.story_submit`.)
"""


import json
from pathlib import Path
from typing import Annotated, Any

import typer

from wanhe.cli.common import Bars, err, fail, interrupted, out, print_json_line

story_app = typer.Typer(
    rich_markup_mode=None,  # click's plain help: rich's help renderer costs 0.15-0.3 s
    help="Story reels: a storyboard file becomes an animatic with voices, "
         "subtitles, dubbed tracks and lip-synced characters.",
    no_args_is_help=True)
class _Bars(Bars):
    """A bar for the whole job and one per task kind (voices, renders, clips …)."""

    def __init__(self, quiet: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

        super().__init__(quiet, TextColumn("[bold]{task.description:<8}"), BarColumn(),
                         MofNCompleteColumn(), TimeElapsedColumn())
        self.bars: dict[str, Any] = {}

    def start(self, tasks: list[Any], done: int) -> None:
        self.progress.start()
        self.bars["job"] = self.progress.add_task("job", total=len(tasks), completed=done)
        kinds: dict[str, list[Any]] = {}
        for t in tasks:
            kinds.setdefault(t.kind, []).append(t)
        for kind, rows in kinds.items():
            finished = sum(1 for t in rows if t.state.value == "done")
            self.bars[kind] = self.progress.add_task(kind, total=len(rows), completed=finished)

    def on_event(self, event: Any) -> None:
        if event.kind == "done":
            for name in ("job", event.task.kind):
                if name in self.bars:
                    self.progress.advance(self.bars[name])
        else:
            self.note_trouble(event)


@story_app.command("render")
def render(
    storyboard: Annotated[Path, typer.Argument(help="the storyboard YAML")],
    output: Annotated[Path, typer.Option("--output", "-o", help="folder for the reel, "
                                         "subtitles, timeline, contact sheet and report")],
    workers: Annotated[int | None, typer.Option(help="parallel tasks; default: every core")]
    = None,
    report_json: Annotated[Path | None, typer.Option(help="also write the report (with one "
                                                     "record per task attempt) here")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False,
    db: Annotated[str | None, typer.Option(help="database URL; default ~/.wanhe/wanhe.db")]
    = None,
    ray_address: Annotated[str | None, typer.Option(help="run on this Ray cluster instead of "
                                                    "this machine's cores")] = None,
    blender: Annotated[str | None, typer.Option(help="a blender binary instead of bpy")]
    = None,
    burn_in: Annotated[bool, typer.Option("--burn-in", help="draw the shot, the timecode and "
                                          "the line on the reels (film.burn_in)")] = False,
) -> None:
    """Render STORYBOARD into OUTPUT/reel.mp4 and friends; run it again to resume."""
    from wanhe.config import Settings
    from wanhe.localrender import RenderSetupError, attempt_records
    from wanhe.runs.story import core_hours_by_kind, render_story
    from wanhe.store.store import DatabaseUnavailable
    from wanhe.story.load import StoryError

    if workers is not None and workers < 1:
        fail("--workers must be at least 1")
    settings = Settings().overridden(ray_address=ray_address, db=db, blender=blender)
    bars = _Bars(quiet)

    def on_prepared(job: Any, resumed: bool, done: int, tasks: list[Any]) -> None:
        if resumed and not quiet:
            err.print(f"resuming job {job.id}: {done} of {len(tasks)} task(s) already done",
                      highlight=False)
        bars.start(tasks, done)

    try:
        outcome = render_story(storyboard, output, settings=settings, workers=workers,
                               on_prepared=on_prepared, on_event=bars.on_event,
                               burn_in=burn_in)
    except (StoryError, RenderSetupError, DatabaseUnavailable) as exc:
        bars.stop()
        fail(str(exc))
    except KeyboardInterrupt:
        interrupted(bars)
    bars.stop()
    report_path = outcome.output / "report.json"
    report: dict[str, Any] = {}
    if report_path.exists():
        report = json.loads(report_path.read_text(encoding="utf-8"))
    if report_json is not None:
        from wanhe.store.store import Store

        store = Store(settings.db_url, migrate=False)
        try:
            body = {**report, "state": outcome.job.state.value, "resumed": outcome.resumed,
                    "wall_s": outcome.wall_s, "attempts": attempt_records(store, outcome.job.id),
                    "core_hours_by_kind": core_hours_by_kind(store.attempts(outcome.job.id))}
        finally:
            store.dispose()
        report_json.parent.mkdir(parents=True, exist_ok=True)
        report_json.write_text(json.dumps(body, indent=2, default=str), encoding="utf-8")
    _summary(outcome, report, quiet)
    if outcome.job.state.value != "done":
        fail(f"job {outcome.job.id} {outcome.job.state.value}: {outcome.job.message}", code=1)


def _summary(outcome: Any, report: dict[str, Any], quiet: bool) -> None:
    from rich.table import Table

    if quiet:
        print_json_line({"job": outcome.job.id, "state": outcome.job.state.value,
                         "reel": str(outcome.output / "reel.mp4"),
                         "overruns": len(report.get("overruns", [])),
                         "extended": [s["id"] for s in report.get("shots", [])
                                      if s.get("extended")]})
        return
    table = Table(title=f"story job {outcome.job.id}: {outcome.job.state.value}",
                  show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("reel", str(outcome.output / "reel.mp4"))
    if report:
        table.add_row("duration", f"{report['duration_s']:.2f} s, {len(report['shots'])} "
                      f"shot(s), languages {', '.join(report['languages'])}")
    table.add_row("tasks", f"{outcome.tasks_total} ({outcome.tasks_skipped} done before this "
                  "run)")
    table.add_row("voices", f"{len(outcome.synthesized())} synthesized now, the rest cached")
    table.add_row("wall time", f"{outcome.wall_s:.1f} s")
    for warning in outcome.job.spec.get("facts", {}).get("warnings", []):
        table.add_row("[yellow]warning[/]", warning)
    for kind, hours in report.get("core_hours_by_kind", {}).items():
        table.add_row(f"core-h {kind}", f"{hours:.5f}")
    for shot in report.get("shots", []):
        if shot.get("extended"):
            held = (": its last frame is held, the mouths at rest"
                    if shot.get("source") == "blender" else "")
            table.add_row("[yellow]extended[/]", f"shot {shot['id']} lasts "
                          f"{shot['duration_s']:.2f} s, longer than it asked for, to fit its "
                          f"dialogue{held}")
    for over in report.get("overruns", []):
        table.add_row("[yellow]overrun[/]", f"line {over['line']} ({over['lang']}) runs "
                      f"{over['overrun_s']:.2f} s ({over['overrun_pct']:.0f} %) past its slot "
                      "even sped up — shorten the translation")
    out.print(table)


@story_app.command("check")
def check(
    storyboard: Annotated[Path, typer.Argument(help="the storyboard YAML")],
    db: Annotated[str | None, typer.Option(help="database URL (its model catalogue for AI "
                                           "shots); default ~/.wanhe/wanhe.db")] = None,
) -> None:
    """Check STORYBOARD (syntax, schema, files, voices, rigs) without rendering anything."""
    from wanhe.config import Settings
    from wanhe.story.checks import check_storyboard, local_models
    from wanhe.story.load import StoryError, load_storyboard

    settings = Settings().overridden(db=db)
    try:
        board = load_storyboard(storyboard)
        facts = check_storyboard(board, storyboard.expanduser().resolve().parent,
                                 models=local_models(settings.db_url))
    except StoryError as exc:
        fail(str(exc))
    for warning in facts.get("warnings", []):
        err.print(f"warning: {warning}", highlight=False, soft_wrap=True)
    out.print(f"{storyboard}: ok — {len(board.shots)} shot(s), "
              f"{sum(len(s.lines) for s in board.shots)} line(s), languages "
              f"{', '.join(board.film.languages)}", highlight=False, soft_wrap=True)


@story_app.command("retake")
def retake_line(
    storyboard: Annotated[Path, typer.Argument(help="the storyboard YAML")],
    line: Annotated[str, typer.Argument(help="the line: shot.N, e.g. s3.1")],
    lang: Annotated[str | None, typer.Option("--lang", help="the language to retake; default: "
                                             "the original")] = None,
) -> None:
    """Ask for a new take of LINE: its take number goes up in STORYBOARD (the file is edited,
    comments kept); the next render synthesizes that take and keeps every other."""
    from wanhe.story.load import StoryError
    from wanhe.story.retake import retake

    try:
        language, take = retake(storyboard, line, lang)
    except StoryError as exc:
        fail(str(exc))
    out.print(f"{storyboard}: line {line} ({language}) now speaks take {take} — render again "
              "to synthesize it", highlight=False, soft_wrap=True)


@story_app.command("schema")
def schema() -> None:
    """Print the storyboard's JSON Schema."""
    from wanhe.story.schema import Storyboard

    out.print_json(json.dumps(Storyboard.model_json_schema()))

