"""The OpenJD commands: `wanhe run` (a template or bundle on this machine) and the template
forms of `wanhe submit` (`--template FILE -p …`, or a bundle folder)."""


import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from wanhe.cli.common import (
    Bars,
    JsonOpt,
    ServerOpt,
    TokenOpt,
    client,
    emit,
    err,
    fail,
    finished_cleanly,
    interrupted,
    out,
    print_json_line,
)

if TYPE_CHECKING:
    from rich.progress import ProgressColumn, TaskID


class _Bars(Bars):
    """A whole-job bar and one for the task in flight (its openjd_progress and status)."""

    def __init__(self, quiet: bool) -> None:
        super().__init__(quiet)
        self.job: TaskID | None = None
        self.task: TaskID | None = None
        self.current: int | None = None

    def columns(self) -> "tuple[str | ProgressColumn, ...]":
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        return (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.percentage:>5.1f}%"), TimeElapsedColumn(), TextColumn("ETA"),
                TimeRemainingColumn(), TextColumn("{task.fields[status]}"))

    def start(self, tasks: list[Any], done: int) -> None:
        if self.quiet:  # no bars: rich's are never imported (a failed task still says so)
            return
        self.progress.start()
        self.job = self.progress.add_task("job", total=len(tasks), completed=done, status="")
        self.task = self.progress.add_task("task", total=100, visible=False, status="")

    def on_event(self, event: Any) -> None:
        if self.job is None or self.task is None:
            self.note_trouble(event)
            return
        task = event.task
        if event.kind == "done":
            self.progress.advance(self.job)
            if task.id == self.current:
                self.progress.update(self.task, completed=100)
        elif event.kind == "started" and task.kind == "openjd":
            self.current = task.id
            self.progress.update(self.task, visible=True, description=task.key[:40],
                                 completed=0, status="")
        elif event.kind == "progress" and event.result and task.id == self.current:
            self.progress.update(self.task, completed=100 * float(event.result["progress"]),
                                 status=str(event.result.get("status") or "")[:60])
        else:
            self.note_trouble(event)


def run_command(
    bundle: Annotated[Path | None, typer.Argument(
        help="an OpenJD job bundle folder (template.yaml|json, parameter_values, …)")] = None,
    template: Annotated[Path | None, typer.Option("--template", "-t",
                                                  help="an OpenJD job template file")] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="job parameter NAME=VALUE (repeatable)")] = None,
    env: Annotated[list[Path] | None, typer.Option(
        "--env", help="a queue environment template (environment-2023-09), entered before "
        "the job's environments, like `openjd run --env` (repeatable)")] = None,
    workers: Annotated[int | None, typer.Option(
        help="parallel sessions; default: cores / the greediest step's vCPUs")] = None,
    report_json: Annotated[Path | None, typer.Option(
        help="write one record per task attempt, with totals")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False,
    db: Annotated[str | None, typer.Option(help="database URL; default ~/.wanhe/wanhe.db")]
    = None,
    kind: Annotated[str | None, typer.Option(
        "--kind", help="run a job of this kind (GET /api/job-types, docs/architecture.md) "
        "from --options FILE instead of a template; BUNDLE is then its main file, if any")]
    = None,
    options: Annotated[Path | None, typer.Option(
        "--options", help="with --kind: the job's options (YAML or JSON); the files they "
        "name are relative to it")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="with --kind: where the job's files go; default: output/ "
        "beside the options file")] = None,
) -> None:
    """Run an OpenJD job template (or bundle) on every core of this machine, or any kind of
    job with --kind K --options FILE; run it again to resume."""
    if kind is not None or options is not None:
        from wanhe.cli.kinds import run_kind_command

        if kind is None or options is None:
            fail("--kind and --options go together: wanhe run --kind K --options FILE")
        run_kind_command(kind, options, bundle, output=output, workers=workers, quiet=quiet,
                         db=db)
        return
    if workers is not None and workers < 1:
        fail("--workers must be at least 1")
    from wanhe.openjd import hostpool
    from wanhe.plugins import find_plugins_ahead

    # The sessions' hosts start now, while the job is planned and its database opened; the
    # plugins (which the first dispatch loads) are looked up meanwhile.
    if not hostpool.planning():  # not started before the arguments were parsed (cli.early)
        hostpool.start_ahead(workers or os.cpu_count() or 1)
    find_plugins_ahead()
    from wanhe.config import Settings
    from wanhe.openjd.localrun import load_source
    from wanhe.openjd.template import TemplateError, parse_param_args
    from wanhe.runs.openjd import run as run_local
    from wanhe.runs.openjd import write_report
    from wanhe.store.store import DatabaseUnavailable

    settings = Settings().overridden(db=db)
    try:
        source = load_source(bundle, template, parse_param_args(param or []), env)
    except TemplateError as exc:
        fail(exc.message)
    bars = _Bars(quiet)

    def on_prepared(made: Any, job: Any, resumed: bool, done: int, tasks: list[Any]) -> None:
        if not quiet:
            steps = ", ".join(f"{s.name} ({len(s.tasks)})" for s in made.steps)
            err.print(f"[bold]{made.job_name}[/]: {made.task_count} task(s) in "
                      f"{len(made.steps)} step(s): {steps}", highlight=False)
            if resumed:
                err.print(f"resuming job {job.id}: {done} task(s) already done",
                          highlight=False)
        bars.start(tasks, done)

    try:
        outcome = run_local(source, settings=settings, workers=workers,
                            on_prepared=on_prepared, on_event=bars.on_event)
    except KeyboardInterrupt:
        interrupted(bars)
    except TemplateError as exc:
        bars.stop()
        fail(exc.message)
    except DatabaseUnavailable as exc:  # --db: one line naming it, as `wanhe render` says
        bars.stop()
        fail(str(exc))
    bars.stop()
    if report_json is not None:
        write_report(report_json, outcome, settings)
    state = outcome.job.state.value
    if quiet:
        print_json_line({"job": outcome.job.id, "state": state,
                         "logs": str(outcome.logs) if outcome.logs else None})
    else:
        from rich.table import Table

        table = Table(title=f"job {outcome.job.id}: {state}", show_header=False)
        table.add_column(style="bold")
        table.add_column()
        table.add_row("name", outcome.plan.job_name)
        table.add_row("tasks", f"{outcome.tasks_total} ({outcome.tasks_skipped} done before "
                      "this run)")
        table.add_row("wall time", f"{outcome.wall_s:.1f} s")
        table.add_row("core-hours", f"{outcome.core_seconds / 3600:.4f} "
                      f"({outcome.core_seconds:.1f} core-s)")
        if outcome.logs is not None:
            table.add_row("task logs", str(outcome.logs))
        out.print(table)
    finished_cleanly()  # the run's workers, hosts and database are closed: no teardown
    if state != "done":
        fail(f"job {outcome.job.id} {state}: {outcome.job.message}", code=1)


# ---------------------------------------------------------------------------------- submit


def _inputs(source: Any, made: Any,
            inouts: list[str] | None = None) -> tuple[dict[str, Path], dict[str, str], list[str]]:
    """What to upload: (relative name -> local file), submitter path -> relative name (path
    mapping), output folders. Inputs: the bundle's asset references and every PATH
    parameter whose value exists here and is not an output; an INOUT folder is both (its
    path is added to `inouts`)."""
    from wanhe.openjd.template import path_params

    base = source.template_path.parent
    files: dict[str, Path] = {}
    mapping: dict[str, str] = {}
    outputs: list[str] = []
    roots: list[Path] = []
    refs = (source.assets or {}).get("assetReferences", source.assets or {}) or {}
    for name in (refs.get("inputs") or {}).get("filenames") or []:
        roots.append(Path(name))
    for name in (refs.get("inputs") or {}).get("directories") or []:
        roots.append(Path(name))
    for name in (refs.get("outputs") or {}).get("directories") or []:
        outputs.append(os.path.normpath(str(base / name)))
    definitions = {p["name"]: p for p in path_params(source.template)}
    for name, value in made.parameters.items():
        if value["type"] != "PATH" or name not in definitions:
            continue
        flow = str(definitions[name].get("dataFlow", "IN")).upper()
        if flow in ("OUT", "INOUT"):
            outputs.append(os.path.normpath(value["value"]))
        if flow != "OUT" and Path(value["value"]).exists():
            roots.append(Path(value["value"]))
            if flow == "INOUT" and inouts is not None:
                inouts.append(os.path.normpath(value["value"]))
    for i, root in enumerate(dict.fromkeys(roots)):
        root = root if root.is_absolute() else base / root
        root = Path(os.path.normpath(root))
        if not root.exists():
            fail(f"input {root} does not exist — check the bundle's asset references and the "
                 "PATH parameters")
        inside = root == base or base in root.parents
        prefix = root.relative_to(base).as_posix() if inside and root != base else \
            ("" if inside else f"_inputs/{i}-{root.name}")
        if not inside:
            mapping[str(root)] = prefix
        walk = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in walk[:100_000]:
            rel = path.relative_to(root).as_posix() if root.is_dir() else ""
            name = "/".join(x for x in (prefix, rel) if x) or path.name
            files[name] = path
    return files, mapping, list(dict.fromkeys(outputs))


def outside_bundle(files: dict[str, Path], base: Path) -> list[Path]:
    """The files to send that lie outside the bundle folder (links resolved), sorted."""
    root = base.resolve()
    found = {path.resolve() for path in files.values()}
    return sorted(p for p in found if root not in p.parents)


def submit_template(
    target: Path | None, template: Path | None, params: list[str], *, priority: int,
    name: str | None, depends_on: list[int], server: str | None, token: str | None,
    as_json: bool, kitsu: dict[str, str] | None = None,
) -> None:
    """`wanhe submit --template FILE -p …` or `wanhe submit BUNDLE_DIR`; `kitsu`: the shot
    and task its newest movie or image output publishes to (docs/kitsu.md)."""
    from wanhe.openjd.localrun import load_source, make_plan
    from wanhe.openjd.template import TemplateError, parse_param_args
    from wanhe.transfer.pack import Bundle, hash_all, upload

    try:
        source = load_source(target, template, parse_param_args(params))
        made = make_plan(source)  # the same checks the farm makes, before any upload
    except TemplateError as exc:
        fail(exc.message)
    inouts: list[str] = []
    files, mapping, outputs = _inputs(source, made, inouts)
    main = source.template_path.name
    files.setdefault(main, source.template_path)
    base = source.template_path.parent
    outside = outside_bundle(files, base)
    if outside:  # a wrangler sees every file that leaves the bundle for the farm
        shown = ", ".join(str(p) for p in outside[:5])
        more = f" and {len(outside) - 5} more" if len(outside) > 5 else ""
        err.print(f"sending {len(outside)} file(s) from outside the bundle {base} (named by "
                  f"PATH parameters or asset references): {shown}{more}", highlight=False)
    bundle = Bundle(root=base, main=main, files=files)
    options = {"parameters": source.values, "template_dir": str(base), "inputs": mapping,
               "outputs": outputs, "inouts": [p for p in inouts if p in outputs]}
    with client(server, token) as c:  # an unreadable file (PackError) is one line too
        hash_all(bundle)
        sent, size = upload(c, bundle)
        job = c.json("POST", "/api/jobs", json={
            "kind": "openjd", "name": name or made.job_name, "main": main,
            "files": bundle.hashes, "options": options, "priority": priority,
            "depends_on": depends_on, **({"kitsu": kitsu} if kitsu else {}),
        })
    if as_json:
        emit({"id": job["id"], "state": job["state"], "files": len(files),
              "uploaded_files": sent, "uploaded_bytes": size,
              "outside_bundle": [str(p) for p in outside]}, True)
        return
    for i, folder in enumerate(outputs):  # where `wanhe download` will put them back
        err.print(f"output folder {folder} ← the job's out{i}"
                  f"{' (INOUT: uploaded, and copied back)' if folder in inouts else ''}",
                  highlight=False)
    err.print(f"{len(files)} file(s), {sent} uploaded ({size:,} bytes); OpenJD job "
              f"{job['id']} {job['state']}: {made.task_count} task(s) in {len(made.steps)} "
              "step(s)", highlight=False)
    out.print(job["id"])


def download_command(
    job_id: Annotated[int, typer.Argument(help="the job whose output files to fetch")],
    to: Annotated[Path | None, typer.Option(
        "--to", help="where files go that no output folder of the submission names "
        "(default: ./job<ID>)")] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fetch a job's output files: an OpenJD job's output folders (`dataFlow: OUT`/`INOUT`,
    asset references' outputs) go back to the folders they were submitted from."""
    from wanhe.imaging.atomic import atomic_write
    from wanhe.storage import UnsafePath, safe_relpath

    fallback = (to or Path(f"job{job_id}")).expanduser().absolute()
    written: list[str] = []
    with client(server, token) as c:
        job = c.json("GET", f"/api/jobs/{job_id}")
        folders = [Path(p) for p in (job.get("spec") or {}).get("output_folders") or []]
        for item in job.get("outputs") or []:
            rel = str(item["path"])
            head, _, rest = rel.partition("/")
            try:
                safe_relpath(rel)
            except UnsafePath:
                continue
            index = int(head[3:]) if head.startswith("out") and head[3:].isdigit() else -1
            target = (folders[index] / rest) if 0 <= index < len(folders) and rest \
                else fallback / rel
            data = c.request("GET", str(item["url"])).content
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(target) as tmp:
                tmp.write_bytes(data)
            written.append(str(target))
    if as_json:
        emit({"job": job_id, "files": written}, True)
        return
    err.print(f"{len(written)} file(s) of job {job_id}: "
              + (", ".join(sorted({str(Path(w).parent) for w in written})) or "none"),
              highlight=False)


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
    app.command("download")(download_command)
