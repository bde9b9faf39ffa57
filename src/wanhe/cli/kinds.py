"""Any job type by name and options file: `wanhe submit --kind K --options FILE` (to the
farm) and `wanhe run --kind K --options FILE` (here). Nothing here names a kind: the farm's
`GET /api/job-types` gives the options' JSON Schema they are checked against, and the job
type (`wanhe.jobtypes`) says which files a submission carries."""

import json
from pathlib import Path
from typing import Any

from wanhe.cli.common import Bars, client, emit, err, fail, interrupted, out, print_json_line


def read_options(path: Path) -> dict[str, Any]:
    """The options file (YAML or JSON) as a mapping, or one line saying what is wrong."""
    import yaml

    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read the options file {path}: {exc.strerror or exc}")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        fail(f"the options file {path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}"
             f": {first}")
    if data is None:
        return {}
    if not isinstance(data, dict):
        fail(f"the options file {path} must hold a mapping of option names to values, not a "
             f"{type(data).__name__}")
    return data


def _schema_problem(schema: dict[str, Any], raw: dict[str, Any]) -> str | None:
    """The first way `raw` breaks the kind's options schema, as `options.<where>: <what>`."""
    from jsonschema import Draft202012Validator

    errors = sorted(Draft202012Validator(schema).iter_errors(raw), key=lambda e: list(e.path))
    if not errors:
        return None
    first = errors[0]
    where = ".".join(str(p) for p in ("options", *first.path))
    return f"{where}: {first.message}"


def _bundle(kind: str, raw: dict[str, Any], base: Path, main: Path | None) -> Any:
    """The files the submission carries (the job type's `input_files`, the main file), with
    their paths relative to the options file's folder."""
    from wanhe.jobtypes.base import InputError
    from wanhe.jobtypes.registry import find_job_type
    from wanhe.transfer.pack import Bundle, hash_all

    found: list[Path] = [] if main is None else [main.expanduser().absolute()]
    jt = find_job_type(kind)
    if jt is not None:  # a kind only the farm has (its plugin): the options carry no files
        try:
            found += jt.input_files(jt.parse_options(raw), base)
        except InputError as exc:
            fail(f"{exc.field}: {exc.message}")
    files: dict[str, Path] = {}
    for path in found:
        try:
            relative = path.absolute().relative_to(base.absolute()).as_posix()
        except ValueError:
            fail(f"{path} is outside {base}, the options file's folder: the farm gets the "
                 "files below it — move the file in, or the options file up")
        if not path.is_file():
            fail(f"{relative} does not exist — check the path in the options file")
        files[relative] = path
    main_name = "" if main is None else next(iter(files))
    bundle = Bundle(base, main_name, files)
    hash_all(bundle)
    return bundle


def submit_kind(kind: str, options_file: Path, main: Path | None, *, name: str | None,
                priority: int, depends_on: list[int], server: str | None, token: str | None,
                as_json: bool) -> None:
    """`wanhe submit --kind K --options FILE [MAIN]`."""
    from wanhe.transfer.pack import upload

    raw = read_options(options_file)
    base = options_file.expanduser().absolute().parent
    with client(server, token) as c:
        kinds = {row["kind"]: row for row in c.json("GET", "/api/job-types")}
        if kind not in kinds:
            fail(f"this farm runs no {kind!r} jobs — it runs: {', '.join(sorted(kinds))}")
        problem = _schema_problem(kinds[kind]["options_schema"], raw)
        if problem is not None:
            fail(f"{problem} (in {options_file}; GET /api/job-types has the {kind} options)")
        bundle = _bundle(kind, raw, base, main)
        sent, size = upload(c, bundle)
        job = c.json("POST", "/api/jobs", json={
            "kind": kind, "name": name, "main": bundle.main or None, "files": bundle.hashes,
            "options": raw, "priority": priority, "depends_on": depends_on,
        })
    for warning in job.get("warnings", []):
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if as_json:
        emit({"id": job["id"], "state": job["state"], "kind": kind, "files": len(bundle.files),
              "uploaded_files": sent, "uploaded_bytes": size}, True)
        return
    err.print(f"{len(bundle.files)} file(s), {sent} uploaded ({size:,} bytes); {kind} job "
              f"{job['id']} {job['state']}", highlight=False)
    out.print(job["id"])


class _Bars(Bars):
    """A whole-job bar and one for the task in flight."""

    def __init__(self, quiet: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

        super().__init__(quiet, TextColumn("[bold]{task.description}"), BarColumn(),
                         MofNCompleteColumn(), TimeElapsedColumn())
        self.job: Any = None
        self.task: Any = None

    def start(self, tasks: list[Any], done: int) -> None:
        self.progress.start()
        self.job = self.progress.add_task("job", total=len(tasks), completed=done)
        self.task = self.progress.add_task("task", total=100, visible=False)

    def on_event(self, event: Any) -> None:
        if self.job is None:
            return
        if event.kind == "done":
            self.progress.advance(self.job)
        elif event.kind == "started":
            self.progress.update(self.task, visible=True, completed=0,
                                 description=event.task.key[:40])
        elif event.kind == "progress" and event.result:
            self.progress.update(self.task, completed=100 * float(event.result["progress"]))
        else:
            self.note_trouble(event)


def run_kind_command(kind: str, options_file: Path, main: Path | None, *,
                     output: Path | None, workers: int | None, quiet: bool,
                     db: str | None) -> None:
    """`wanhe run --kind K --options FILE [MAIN]`: the job here, resumed when run again."""
    from rich.table import Table

    from wanhe.config import Settings
    from wanhe.runs.kind import KindError, run_kind
    from wanhe.store.store import DatabaseUnavailable

    if workers is not None and workers < 1:
        fail("--workers must be at least 1")
    raw = read_options(options_file)
    base = options_file.expanduser().absolute().parent
    settings = Settings().overridden(db=db)
    bars = _Bars(quiet)

    def on_prepared(job: Any, resumed: bool, done: int, tasks: list[Any]) -> None:
        if resumed and not quiet:
            err.print(f"resuming job {job.id}: {done} task(s) already done", highlight=False)
        bars.start(tasks, done)

    try:
        outcome = run_kind(kind, raw, settings=settings, base=base,
                           output=(output or base / "output").expanduser().absolute(),
                           main=main, workers=workers or 1, on_prepared=on_prepared,
                           on_event=bars.on_event)
    except KeyboardInterrupt:
        interrupted(bars)
    except (KindError, DatabaseUnavailable) as exc:
        bars.stop()
        fail(str(exc))
    bars.stop()
    state = outcome.job.state.value
    if quiet:
        print_json_line({"job": outcome.job.id, "kind": kind, "state": state,
                         "deliverables": outcome.deliverables if state == "done" else []})
    else:
        table = Table(title=f"{kind} job {outcome.job.id}: {state}", show_header=False)
        table.add_column(style="bold")
        table.add_column()
        if outcome.summary:
            table.add_row("makes", outcome.summary)
        table.add_row("tasks", f"{outcome.tasks_total} ({outcome.tasks_skipped} done before "
                      "this run)")
        table.add_row("wall time", f"{outcome.wall_s:.1f} s")
        table.add_row("core-hours", f"{outcome.core_seconds / 3600:.4f}")
        for path in outcome.deliverables if state == "done" else []:
            table.add_row("deliverable", path)
        out.print(table)
    if state != "done":
        fail(f"job {outcome.job.id} {state}: {outcome.job.message}", code=1)
