"""`wanhe models …` and `wanhe gen …`: register models, generate seeded candidates (locally on
every core, or as a farm job with `--server`), re-create a candidate from its file, pick.

Local commands use the local database (`--db`, default ~/.wanhe/wanhe.db); `--server URL`
(with `--token` / WANHE_TOKEN) talks to a farm instead. Errors are one line, never a
traceback.
"""


import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from wanhe.cli.common import (
    Bars,
    DbOpt,
    JsonOpt,
    TokenOpt,
    client,
    emit,
    err,
    fail,
    interrupted,
    open_store_or_fail,
    out,
)

if TYPE_CHECKING:
    from rich.table import Table

models_app = typer.Typer(
    rich_markup_mode=None,  # click's plain help: rich's help renderer costs 0.15-0.3 s
    help="Diffusion models the farm may use (local folders the studio "
         "owns; nothing is downloaded).", no_args_is_help=True)
gen_app = typer.Typer(
    rich_markup_mode=None,  # click's plain help: rich's help renderer costs 0.15-0.3 s
    help="AI generation: seeded candidates per shot, scored, picked, "
         "reproducible.", no_args_is_help=True)

ServerOpt = Annotated[str | None, typer.Option(
    "--server", help="a farm URL: run there (token: --token or WANHE_TOKEN); default: here")]


ShotOpt = Annotated[str | None, typer.Option(
    "--shot", help="with --server: publish the candidate you pick to this Kitsu shot, "
    "SEQUENCE/SHOT (docs/kitsu.md)")]
TaskOpt = Annotated[str | None, typer.Option(
    "--task", help="with --shot: the shot's task type the pick goes to (default Storyboard)")]


def _kitsu_target(spec_raw: dict[str, Any], shot: str | None, task: str | None,
                  server: str | None) -> dict[str, str] | None:
    """Where the job's pick publishes: --shot/--task, else the spec's `kitsu: {shot, task}`
    (taken out of the spec: it is the farm's business, not the generation's)."""
    from wanhe.publish.pick import DEFAULT_TASK

    named = spec_raw.pop("kitsu", None)
    if named is not None and (not isinstance(named, dict) or not isinstance(
            named.get("shot"), str) or not isinstance(named.get("task", ""), str)):
        fail("kitsu: in a spec is {shot: SEQUENCE/SHOT, task: TYPE} (task optional)")
    if task is not None and shot is None and named is None:
        fail("--task goes with --shot: --shot SQ01/SH010 --task Storyboard")
    target = named or {}
    if shot is not None:
        target = {"shot": shot, **({"task": task} if task else {})}
    elif task is not None:
        target = {**target, "task": task}
    if not target:
        return None
    if not server:
        fail("publishing a pick to Kitsu is the farm's: add --server URL")
    return {"shot": target["shot"], "task": target.get("task") or DEFAULT_TASK}


def _settings(db: str | None) -> Any:
    from wanhe.config import Settings

    return Settings().overridden(db=db)


# ---------------------------------------------------------------------------------- models


def _models_table(rows: list[dict[str, Any]]) -> "Table":
    from rich.table import Table

    from wanhe.ai.models import human_bytes

    table = Table("name", "project", "pipeline", "task", "size", "GPU memory", "hash", "path")
    for r in rows:
        table.add_row(r["name"], r.get("project") or "(farm)", r["pipeline_class"], r["task"],
                      human_bytes(int(r["size_bytes"])), human_bytes(int(r["gpu_memory"])),
                      r["sha256"][:12], r["path"])
    return table


@models_app.command("add")
def models_add(
    name: Annotated[str, typer.Argument(help="the name jobs use, e.g. sdxl")],
    path: Annotated[Path, typer.Argument(help="a diffusers folder (save_pretrained) or a "
                                         ".safetensors checkpoint")],
    pipeline: Annotated[str | None, typer.Option(help="pipeline class (default: from "
                                                 "model_index.json or the checkpoint)")] = None,
    gpu_memory: Annotated[str | None, typer.Option(help="GPU memory it needs, e.g. 24GB "
                                                   "(default: estimated from the weights)")]
    = None,
    replace: Annotated[bool, typer.Option(help="re-register an existing name")] = False,
    project: Annotated[str | None, typer.Option(help="only for this project (default: "
                                                "farm-wide)")] = None,
    db: DbOpt = None, server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Register a model: inspects it (pipeline class, size, content hash, GPU memory)."""
    from wanhe.ai.models import ModelError, check_name, inspect_model, parse_memory

    try:
        check_name(name)
        need = parse_memory(gpu_memory) if gpu_memory else None
    except ModelError as exc:
        fail(str(exc))
    if server:
        body = {"name": name, "path": str(path), "pipeline_class": pipeline,
                "gpu_memory": need, "replace": replace, "project": project}
        with client(server, token) as c:
            row = c.json("POST", "/api/models", json=body)
    else:
        from wanhe.ai import catalog

        try:
            facts = inspect_model(path, pipeline_class=pipeline, gpu_memory=need)
        except ModelError as exc:
            fail(str(exc))
        with open_store_or_fail(db) as store:
            project_id = None
            if project:
                found = store.project_by_name(project)
                if found is None:
                    fail(f"no project {project!r} (wanhe project create {project})")
                project_id = found.id
            row = catalog.add_model(store, name, facts, project_id=project_id, replace=replace)
        if not facts.tested:
            err.print(f"[yellow]warning:[/] {facts.pipeline_class} is not among the pipelines "
                      "wanhe tests (README: AI generation); it may still run", highlight=False)
    emit(row, as_json, _models_table([row]))


@models_app.command("list")
def models_list(db: DbOpt = None, server: ServerOpt = None, token: TokenOpt = None,
                as_json: JsonOpt = False) -> None:
    """The models jobs may use."""
    if server:
        with client(server, token) as c:
            rows = c.json("GET", "/api/models")
    else:
        from wanhe.ai import catalog

        with open_store_or_fail(db) as store:
            rows = catalog.list_models(store, every=True)
    emit(rows, as_json, _models_table(rows))


@models_app.command("remove")
def models_remove(name: str, db: DbOpt = None, server: ServerOpt = None,
                  token: TokenOpt = None) -> None:
    """Forget a model (its files stay)."""
    if server:
        with client(server, token) as c:
            c.request("DELETE", f"/api/models/{name}")
    else:
        from wanhe.ai import catalog

        with open_store_or_fail(db) as store:
            if not catalog.remove_model(store, name):
                fail(f"no farm-wide model {name!r}")
    err.print(f"model {name} removed", highlight=False)


# ---------------------------------------------------------------------------------- gen


class _Bars(Bars):
    """A job bar (tasks done) and a bar for the candidate in flight (denoising steps)."""

    def __init__(self, quiet: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

        super().__init__(quiet, TextColumn("[bold]{task.description}"), BarColumn(),
                         MofNCompleteColumn(), TimeElapsedColumn())
        self.job: Any = None
        self.step: Any = None

    def start(self, job: Any, tasks: list[Any]) -> None:
        done = sum(1 for t in tasks if t.state.value == "done")
        self.progress.start()
        self.job = self.progress.add_task(f"job {job.id}", total=len(tasks), completed=done)
        self.step = self.progress.add_task("candidate", total=100)

    def on_event(self, event: Any) -> None:
        if self.job is None:
            return
        if event.kind == "done":
            self.progress.advance(self.job)
        elif event.kind == "started" and event.task.kind == "gen":
            self.progress.update(self.step, description=event.task.key, completed=0)
        elif event.kind == "progress" and event.result and event.task.kind == "gen":
            self.progress.update(self.step, completed=100 * float(event.result["progress"]))
        else:
            self.note_trouble(event)


def _results_table(results: dict[str, Any]) -> "Table":
    from rich.table import Table

    table = Table("shot", "cand", "seed", "rank", "score", "flags", "verdict", "file",
                  title=f"job {results['job']}: {results['state']}")
    for shot in results["shots"]:
        for c in shot["candidates"]:
            score = c.get("score") or {}
            table.add_row(shot["name"], str(c["index"]), str(c["seed"]),
                          str(score.get("rank", "")),
                          f"{score['score']:.3f}" if "score" in score else "",
                          "; ".join(score.get("flags", [])), c.get("verdict") or "",
                          c["output"])
    return table


def _spec_or_fail(raw: dict[str, Any]) -> Any:
    from wanhe.jobtypes.base import InputError
    from wanhe.jobtypes.registry import job_type

    kind = job_type("gen")
    try:
        spec = kind.parse_options(raw)
        kind.check(spec)
    except InputError as exc:
        fail(f"{exc.field.removeprefix('options.')}: {exc.message}")
    return spec


def _submit(spec_raw: dict[str, Any], server: str, token: str | None, name: str | None,
            priority: int, as_json: bool, kitsu: dict[str, str] | None = None) -> None:
    """Upload the init images the spec names, queue the job on the farm, print its id."""
    from wanhe.storage import sha256_file
    from wanhe.transfer.pack import Bundle, upload

    files: dict[str, Path] = {}
    for shot in spec_raw.get("shots", []):
        image = shot.get("image")
        if image:
            local = Path(image).expanduser()
            if not local.is_file():
                fail(f"image {image} does not exist")
            rel = f"images/{sha256_file(local)[:16]}{local.suffix.lower()}"
            files[rel] = local
            shot["image"] = rel
    bundle = Bundle(root=Path("."), main="", files=files,
                    hashes={rel: sha256_file(p) for rel, p in files.items()})
    with client(server, token) as c:
        if files:
            upload(c, bundle)
        job = c.json("POST", "/api/jobs", json={
            "kind": "gen", "name": name, "files": bundle.hashes, "options": spec_raw,
            "priority": priority, **({"kitsu": kitsu} if kitsu else {})})
    for warning in job.get("warnings", []):
        err.print(f"[yellow]note:[/] {warning}", highlight=False)
    if as_json:
        emit({"id": job["id"], "state": job["state"]}, True)
    else:
        err.print(f"job {job['id']} {job['state']}", highlight=False)
        out.print(job["id"])


def _run(spec_raw: dict[str, Any], *, output: Path | None, name: str, db: str | None,
         server: str | None, token: str | None, priority: int, quiet: bool,
         as_json: bool, shot: str | None = None, task: str | None = None) -> None:
    kitsu = _kitsu_target(spec_raw, shot, task, server)
    if server:
        _spec_or_fail(json.loads(json.dumps(spec_raw)))
        _submit(spec_raw, server, token, name, priority, as_json, kitsu)
        return
    from wanhe.jobtypes.base import InputError
    from wanhe.runs.gen import run_local
    from wanhe.store.store import DatabaseUnavailable

    for prompt in spec_raw.get("shots", []):
        if prompt.get("image"):
            prompt["image"] = str(Path(prompt["image"]).expanduser().resolve())
    spec = _spec_or_fail(spec_raw)
    settings = _settings(db)
    folder = output or Path("gen") / name
    bars = _Bars(quiet or as_json)
    try:
        outcome = run_local(spec, settings=settings, output=folder, name=name,
                            on_event=bars.on_event, on_job=bars.start)
    except InputError as exc:
        bars.stop()
        fail(f"{exc.field.removeprefix('options.')}: {exc.message}")
    except DatabaseUnavailable as exc:  # --db: one line naming it, as `wanhe render` says
        bars.stop()
        fail(str(exc))
    except KeyboardInterrupt:
        interrupted(bars)
    bars.stop()
    if outcome.results.get("note") and not as_json:
        err.print(f"note: {outcome.results['note']}", highlight=False)
    emit(outcome.results, as_json, _results_table(outcome.results))
    if outcome.job.state.value != "done":
        fail(f"job {outcome.job.id} {outcome.job.state.value}: {outcome.job.message}", code=1)


ModelOpt = Annotated[str, typer.Option("--model", "-m", help="a registered model's name")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="folder for the "
                                                "candidates (local runs); default gen/NAME")]
NameOpt = Annotated[str, typer.Option(help="job name")]


@gen_app.command("image")
def gen_image(
    model: ModelOpt,
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="what to make")],
    negative: Annotated[str, typer.Option(help="what to avoid")] = "",
    candidates: Annotated[int, typer.Option("--candidates", "-n", help="seeded takes")] = 4,
    seed: Annotated[int, typer.Option(help="job seed: take i gets seed + i")] = 0,
    steps: Annotated[int, typer.Option(help="denoising steps")] = 30,
    guidance: Annotated[float, typer.Option(help="classifier-free guidance scale")] = 6.0,
    size: Annotated[str, typer.Option(help="WIDTHxHEIGHT, multiples of 8")] = "512x512",
    image: Annotated[Path | None, typer.Option(help="init image (image-to-image)")] = None,
    strength: Annotated[float, typer.Option(help="how far from the init image, 0-1")] = 0.75,
    batch: Annotated[int, typer.Option(help="candidates per task")] = 1,
    output: OutputOpt = None, name: NameOpt = "image", priority: int = 50,
    db: DbOpt = None, server: ServerOpt = None, token: TokenOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False, as_json: JsonOpt = False,
    shot: ShotOpt = None, task: TaskOpt = None,
) -> None:
    """Seeded candidates of one prompt (text-to-image, or image-to-image with --image)."""
    one = {"model": model, "prompt": prompt, "negative": negative, "candidates": candidates,
           "steps": steps, "guidance": guidance, "size": size, "strength": strength,
           "image": str(image) if image else None}
    _run({"seed": seed, "batch": batch, "shots": [one]}, output=output, name=name, db=db,
         server=server, token=token, priority=priority, quiet=quiet, as_json=as_json,
         shot=shot, task=task)


@gen_app.command("video")
def gen_video(
    model: ModelOpt,
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="text-to-video prompt")] = "",
    image: Annotated[Path | None, typer.Option(help="first frame (image-to-video)")] = None,
    negative: Annotated[str, typer.Option(help="what to avoid")] = "",
    frames: Annotated[int, typer.Option(help="frames per video")] = 25,
    fps: Annotated[int, typer.Option(help="frames per second")] = 8,
    candidates: Annotated[int, typer.Option("--candidates", "-n")] = 1,
    seed: int = 0, steps: int = 25, guidance: float = 5.0,
    size: Annotated[str, typer.Option(help="WIDTHxHEIGHT, multiples of 8")] = "512x320",
    output: OutputOpt = None, name: NameOpt = "video", priority: int = 50,
    db: DbOpt = None, server: ServerOpt = None, token: TokenOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False, as_json: JsonOpt = False,
    shot: ShotOpt = None, task: TaskOpt = None,
) -> None:
    """Seeded video candidates: image-to-video (--image, e.g. Stable Video Diffusion) or
    text-to-video (--prompt, e.g. Wan)."""
    one = {"model": model, "prompt": prompt, "negative": negative, "candidates": candidates,
           "steps": steps, "guidance": guidance, "size": size, "frames": frames, "fps": fps,
           "image": str(image) if image else None}
    _run({"seed": seed, "shots": [one]}, output=output, name=name, db=db, server=server,
         token=token, priority=priority, quiet=quiet, as_json=as_json, shot=shot, task=task)


@gen_app.command("run")
def gen_run(
    spec: Annotated[Path, typer.Argument(help="a generation spec (YAML or JSON)")],
    output: OutputOpt = None, name: Annotated[str | None, typer.Option(help="job name")] = None,
    priority: int = 50, db: DbOpt = None, server: ServerOpt = None, token: TokenOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False, as_json: JsonOpt = False,
    shot: ShotOpt = None, task: TaskOpt = None,
) -> None:
    """Every shot of a spec file as one job."""
    from wanhe.ai.spec import load_spec

    try:
        raw = load_spec(spec)
    except ValueError as exc:
        fail(str(exc))
    base = spec.parent
    for one in raw.get("shots", []) if isinstance(raw.get("shots"), list) else []:
        if isinstance(one, dict) and one.get("image") and not Path(one["image"]).is_absolute():
            one["image"] = str(base / one["image"])
    _run(raw, output=output, name=name or spec.stem, db=db, server=server, token=token,
         priority=priority, quiet=quiet, as_json=as_json, shot=shot, task=task)


@gen_app.command("again")
def gen_again(
    file: Annotated[Path, typer.Argument(help="a PNG or MP4 made by wanhe gen")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="where to write it; "
                                                "default FILE.again.png")] = None,
    model_path: Annotated[Path | None, typer.Option(help="the model's folder here, if it is "
                                                    "not registered under its name")] = None,
    db: DbOpt = None, as_json: JsonOpt = False,
) -> None:
    """Re-create a candidate from the recipe in its file, on the CPU; says whether it is
    bit-identical."""
    from wanhe.ai import catalog
    from wanhe.ai.again import regenerate
    from wanhe.ai.recipe import read_recipe

    try:
        recipe = read_recipe(file)
    except ValueError as exc:
        fail(str(exc))
    model = None
    if model_path is not None:
        model = {**recipe["model"], "path": str(model_path.expanduser().resolve()),
                 "gpu_memory": 0}
    else:
        with open_store_or_fail(db) as store:
            model = catalog.find_model(store, recipe["model"]["name"])
    try:
        again = regenerate(file, model=model, output=output)
    except ValueError as exc:
        fail(str(exc))
    body = {"original": str(again.original), "output": str(again.output),
            "bit_identical": again.identical, "max_difference": again.max_difference,
            "seed": again.recipe["seed"], "note": again.note}
    if as_json:
        emit(body, True)
    else:
        verdict = "bit-identical" if again.identical else \
            f"differs (largest pixel difference {again.max_difference}/255)"
        out.print(f"{again.output}: {verdict}{' — ' + again.note if again.note else ''}",
                  highlight=False)
    if not again.identical and not again.note:
        raise typer.Exit(1)


@gen_app.command("picks")
def gen_picks(
    job: Annotated[int, typer.Argument(help="a generation job's id")],
    copy_to: Annotated[Path | None, typer.Option(help="copy each shot's chosen file here")]
    = None,
    db: DbOpt = None, server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Each shot's candidates with scores, ranks and verdicts, and the chosen file."""
    if server:
        with client(server, token) as c:
            results = c.json("GET", f"/api/gen/{job}")
            if copy_to is not None:
                copy_to.mkdir(parents=True, exist_ok=True)
                for shot in results["shots"]:
                    if shot["chosen"]:
                        data = c.request("GET", f"/api/gen/{job}/file/{shot['shot']}/"
                                         f"{shot['chosen']['index']}").content
                        name = Path(shot["chosen"]["output"]).name
                        (copy_to / f"{shot['name']}_{name}").write_bytes(data)
    else:
        from wanhe.ai.results import job_results

        with open_store_or_fail(db) as store:
            try:
                results = job_results(store, job)
            except LookupError as exc:
                fail(str(exc))
        if copy_to is not None:
            copy_to.mkdir(parents=True, exist_ok=True)
            for shot in results["shots"]:
                if shot["chosen"]:
                    src = Path(shot["chosen"]["output"])
                    shutil.copy2(src, copy_to / f"{shot['name']}_{src.name}")
    emit(results, as_json, _results_table(results))


@gen_app.command("pick")
def gen_pick(
    job: int, shot: int, candidate: int,
    reject: Annotated[bool, typer.Option("--reject", help="reject instead of pick")] = False,
    clear: Annotated[bool, typer.Option("--clear", help="forget the verdict")] = False,
    db: DbOpt = None, server: ServerOpt = None, token: TokenOpt = None,
) -> None:
    """Pick (or --reject, --clear) candidate CANDIDATE of shot SHOT (0-based) of JOB."""
    verdict = "clear" if clear else "rejected" if reject else "picked"
    if server:
        with client(server, token) as c:
            c.json("POST", f"/api/gen/{job}/picks",
                   json={"shot": shot, "candidate": candidate, "verdict": verdict})
    else:
        from wanhe.ai import catalog
        from wanhe.ai.results import check_candidate, job_results

        with open_store_or_fail(db) as store:
            try:
                check_candidate(job_results(store, job), shot, candidate)
            except LookupError as exc:
                fail(str(exc))
            catalog.set_pick(store, job, shot, candidate, verdict)
    err.print(f"job {job} shot {shot} candidate {candidate}: {verdict}", highlight=False)


@gen_app.command("more")
def gen_more(
    job: int, shot: int,
    count: Annotated[int, typer.Option("--count", "-n", help="how many more")] = 4,
    around: Annotated[int | None, typer.Option(help="vary the seed of this candidate (nearby "
                                               "seeds) instead of new ones")] = None,
    server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Ask a farm for COUNT more candidates of a shot (a new job with the same settings)."""
    if not server:
        fail("`wanhe gen more` asks a farm (--server); locally, run `wanhe gen image` with "
             "--seed past the last candidate")
    with client(server, token) as c:
        made = c.json("POST", f"/api/gen/{job}/more",
                      json={"shot": shot, "count": count, "around": around})
    emit(made, True) if as_json else out.print(made["id"])


@gen_app.command("report")
def gen_report(
    project: Annotated[str | None, typer.Option(help="one project")] = None,
    db: DbOpt = None, server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """GPU-hours and core-hours of generation, by project and model."""
    from rich.table import Table

    if server:
        with client(server, token) as c:
            rows = c.json("GET", "/api/gen-report", params={"project": project} if project
                          else {})
    else:
        from wanhe.ai.report import by_model

        with open_store_or_fail(db) as store:
            rows = by_model(store, project)
    table = Table("project", "model", "device", "candidates", "attempts", "GPU-h", "core-h")
    for r in rows:
        table.add_row(r["project"], r["model"], r["device"], str(r["candidates"]),
                      str(r["attempts"]), f"{r['gpu_hours']:.4f}", f"{r['core_hours']:.4f}")
    emit(rows, as_json, table)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
    app.add_typer(gen_app, name="gen")
