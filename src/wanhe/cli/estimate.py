"""`wanhe estimate FILE`: what a job will cost (and a render, when it will finish), before it
runs. FILE is a .blend (a render), a generation spec or a storyboard (YAML/JSON, told apart
by what they hold, as `wanhe submit` tells a storyboard from a scene)."""

import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from wanhe.cli.common import DbOpt, JsonOpt, emit, err, fail
from wanhe.model import human_duration

if TYPE_CHECKING:
    from rich.table import Table

    from wanhe.config import Settings


def _deadline_seconds(text: str, now: datetime) -> float:
    """Seconds from ``now`` to the ISO deadline (a time without a zone is local time)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--deadline {text!r} is not an ISO date and time — write e.g. 2026-12-14T18:00")
    if when.tzinfo is None:
        when = when.astimezone()  # local time, as a user types it
    seconds = (when - now).total_seconds()
    if seconds <= 0:
        fail(f"--deadline {text} is in the past (now {now.astimezone():%Y-%m-%dT%H:%M}) — "
             "give a later --deadline")
    return seconds


def _check_farm(machines: int, cores: int | None, gpus: int | None) -> None:
    if machines < 1:
        fail(f"--machines {machines}: a farm needs at least 1 machine")
    if cores is not None and cores < 1:
        fail(f"--cores {cores}: a machine needs at least 1 core")
    if gpus is not None and gpus < 1:
        fail(f"--gpus {gpus}: a GPU farm needs at least 1 GPU")


def _check_price(name: str, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        fail(f"{name} {value:g} is not a price: give a number ≥ 0 (money per hour)")


def estimate_command(
    scene: Annotated[Path, typer.Argument(
        help="the .blend, generation spec or storyboard (.yaml/.json) to estimate")],
    frames: Annotated[str | None, typer.Option("--frames", "-f",
                                               help="e.g. 1-2400; default: the scene's")] = None,
    tiles: Annotated[str, typer.Option(help="tiles per frame, COLUMNSxROWS")] = "1x1",
    samples: Annotated[int | None, typer.Option(help="override the scene's samples")] = None,
    quality: Annotated[str | None, typer.Option(
        help="PSNR target or draft/preview/final: the --quality probe picks the samples "
             "first (cached)")] = None,
    resolution_percentage: Annotated[int | None, typer.Option(
        help="override the scene's resolution %")] = None,
    machines: Annotated[int, typer.Option(help="machines on the farm")] = 1,
    cores: Annotated[int | None, typer.Option(
        help="cores per machine; default: this machine's")] = None,
    gpus: Annotated[int | None, typer.Option(
        help="GPUs on the farm, for a generation spec that runs on the GPU (default 1); "
             "for a storyboard, GPUs a machine (its AI shots' on the GPU)")
    ] = None,
    deadline: Annotated[str | None, typer.Option(
        help="finish by this ISO time (e.g. 2026-12-14T18:00): how many machines it needs")
    ] = None,
    price_core_hour: Annotated[float, typer.Option(help="price of one core-hour")] = 0.0,
    price_gpu_hour: Annotated[float, typer.Option(help="price of one GPU-hour")] = 0.0,
    as_json: JsonOpt = False,
    blender: Annotated[str | None, typer.Option(
        help="a blender binary to use instead of the bpy module")] = None,
    db: DbOpt = None,
) -> None:
    """Probe a few frames at low resolution and say the job's core-hours (with a range), its
    cost, its wall time on the farm and the machines a deadline needs. A generation spec:
    each model's candidates probed (cold load and warm per-step measured apart), or its
    metered history. A storyboard: its voices, Blender shots, AI shots and assembly."""
    from wanhe.runs.estimate import Farm, Prices

    now = datetime.now(UTC)
    _check_price("--price-core-hour", price_core_hour)
    _check_price("--price-gpu-hour", price_gpu_hour)
    kind = estimate_kind(scene)
    if kind != "scene":
        scene_only = {"--frames": frames, "--tiles": None if tiles == "1x1" else tiles,
                      "--samples": samples, "--quality": quality,
                      "--resolution-percentage": resolution_percentage}
        given = [name for name, value in scene_only.items() if value is not None]
        if given:
            fail(f"{', '.join(given)}: for a .blend scene; {scene.name} is a "
                 f"{'storyboard' if kind == 'story' else 'generation spec'}")
        _check_farm(machines, cores, gpus)
        from wanhe.cli.estimate_ai import estimate_ai

        estimate_ai(kind, scene, Prices(price_core_hour, price_gpu_hour), as_json=as_json,
                    db=db, blender=blender, machines=machines, cores=cores, gpus=gpus,
                    deadline_s=None if deadline is None else _deadline_seconds(deadline, now),
                    farm_given=machines != 1 or cores is not None or gpus is not None
                    or deadline is not None)
        return
    if gpus is not None:
        fail(f"--gpus {gpus}: for a generation spec; Cycles here renders on CPUs (give "
             "--machines and --cores)")
    _check_farm(machines, cores, gpus)
    if samples is not None and samples < 1:
        fail(f"--samples {samples}: give at least 1 sample")
    if samples is not None and quality is not None:
        fail("--samples and --quality both set the sample count — give one of them")
    deadline_s = None if deadline is None else _deadline_seconds(deadline, now)
    from wanhe.config import Settings

    settings = Settings().overridden(blender=blender)
    farm = Farm(machines=machines, cores=cores or os.cpu_count() or 1)
    report = _run(scene, frames, tiles, samples, quality, resolution_percentage, settings, farm,
                  Prices(price_core_hour, price_gpu_hour), deadline_s, as_json)
    emit(report.to_dict(), as_json, _table)


def _run(scene: Path, frames: str | None, tiles: str, samples: int | None,
         quality: str | None, percentage: int | None, settings: "Settings", farm: Any,
         prices: Any, deadline_s: float | None, quiet: bool,
         extra: dict[str, Any] | None = None) -> Any:
    from pydantic import ValidationError

    from wanhe.blender.errors import SceneError
    from wanhe.localrender import apply_quality
    from wanhe.render.spec import RenderOptions
    from wanhe.runs.estimate import estimate_render, prepare_spec

    try:
        options = RenderOptions(frames=frames, tiles=tiles, samples=samples, quality=quality,
                                resolution_percentage=percentage,
                                threads=os.cpu_count() or 1, **(extra or {}))
        from wanhe.blender.inspect import check_blend_file

        check_blend_file(scene.expanduser())
        prepared = prepare_spec(scene, options, settings.blender)
        if quality:
            if not quiet:
                err.print(f"--quality {quality}: probing the sample count …", highlight=False)
            prepared = apply_quality(prepared, options, settings.blender,
                                     cache_dir=settings.home / "probes")
        if not quiet:
            err.print(f"probing {Path(prepared.spec.scene).name}: a few frames at low "
                      "resolution …", highlight=False)
        return estimate_render(prepared, farm=farm, prices=prices, blender=settings.blender,
                               cache_dir=settings.home / "probes", deadline_s=deadline_s)
    except ValidationError as exc:
        fail("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()))
    except (SceneError, ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    except RuntimeError as exc:
        fail(str(exc), code=1)


def estimate_kind(path: Path) -> str:
    """"scene" (a .blend), "story" (a storyboard: a mapping with `film`) or "gen" (a
    generation spec: `shots`, or a list of shots); a file that is none is one line."""
    suffix = path.suffix.lower()
    if suffix == ".blend":
        return "scene"
    if suffix not in (".yaml", ".yml", ".json"):
        fail(f"{path.name}: wanhe estimate takes a .blend scene, or a generation spec or a "
             "storyboard (.yaml, .yml or .json)")
    from wanhe.ai.spec import load_spec

    try:
        data = load_spec(path.expanduser())
    except ValueError as exc:
        fail(str(exc))
    if "film" in data:
        return "story"
    if "shots" in data:
        return "gen"
    fail(f"{path.name} is neither a storyboard (no film) nor a generation spec (no shots)")


def _hours(h: float) -> str:
    return f"{h:.4g}"


def _money(amount: float) -> str:
    return f"{amount:,.2f}" if amount >= 1 else f"{amount:.3g}"


def _table(data: dict[str, Any]) -> "Table":
    from rich.table import Table

    table = Table(title=f"estimate: {Path(data['scene']).name}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    w, h = data["size"]
    tx, ty = data["tiles"]
    table.add_row("job", f"{data['frames']} frame(s), {w}x{h}, tiles {tx}x{ty}, samples "
                  f"{data['samples'] or 'scene'}")
    low, high = data["core_hours_range"]
    table.add_row("core-hours", f"{_hours(data['core_hours'])} (range {_hours(low)}–"
                  f"{_hours(high)}, ±{200 * data['sigma_rel']:.0f} %)")
    table.add_row("GPU-hours", "0 (Cycles on CPU)")
    parts = ", ".join(f"{k} {100 * v:.1f} %" for k, v in data["sigma_parts"].items())
    table.add_row("uncertainty (1σ)", parts)
    table.add_row("model", data["model"])
    if data["prices"]["core_hour"] > 0:
        clow, chigh = data["cost_range"]
        table.add_row("cost", f"{_money(data['cost'])} (range {_money(clow)}–"
                      f"{_money(chigh)}) at {data['prices']['core_hour']:g}/core-hour")
    farm = data["farm"]
    table.add_row("wall time", f"{human_duration(data['wall_s'])} on {farm['machines']} machine(s) "
                  f"× {farm['cores']} cores of their own (simulated with the farm's policy)")
    if data["deadline"] is not None:
        table.add_row("deadline", data["deadline"]["explanation"])
    probe = data["probe"]
    table.add_row("probe", f"frames {', '.join(map(str, probe['frames']))}, "
                  f"{probe['cells_per_frame']} cells each ({100 * probe['share_of_frame']:.0f} %"
                  f" of the pixels); {probe['core_hours']:.4g} core-hours "
                  f"({100 * probe['share_of_job']:.1f} % of the job)"
                  + (" — cached, nothing rendered now" if probe["cached"] else ""))
    if probe["contention"] > 1.3:
        table.add_row("note", f"this machine is shared: the probe got 1/{probe['contention']:.1f}"
                      " of its cores' time, so a render here takes that much longer in wall time "
                      "(and meters that many more core-hours) than on machines of its own")
    for note in data["notes"]:
        table.add_row("note", note)
    return table


def register(app: typer.Typer) -> None:
    app.command("estimate")(estimate_command)


def check_before_submit(
    scene: Path, options: dict[str, Any], server: str | None, token: str | None,
    *, strict: bool,
) -> dict[str, Any]:
    """`wanhe submit --estimate`: probe the scene on this machine (the submitter's own scene,
    never in the farm's API process), print the estimate, and hold it against what the
    project has left of its core-hour budget: a warning, or with ``strict`` the end (exit 2)
    before anything is uploaded. Returns the estimate (as `wanhe estimate --json`)."""
    from wanhe.cli.common import client
    from wanhe.estimate.progress import check_budget
    from wanhe.runs.estimate import Farm, Prices

    extra = ("sample_chunks", "camera", "denoise")  # the rest are _run's own arguments
    from wanhe.config import Settings

    settings = Settings()
    cores = os.cpu_count() or 1
    # core-seconds are the same on any thread count: the probe uses every core here
    report = _run(scene, options.get("frames"), options.get("tiles") or "1x1",
                  options.get("samples"), None, options.get("resolution_percentage"),
                  settings, Farm(machines=1, cores=cores), Prices(), None, quiet=False,
                  extra={k: options[k] for k in extra if options.get(k) is not None})
    data: dict[str, Any] = report.to_dict()
    low, high = data["core_hours_range"]
    err.print(f"estimate: {_hours(data['core_hours'])} core-hours (range {_hours(low)}–"
              f"{_hours(high)}); probe {100 * data['probe']['share_of_job']:.1f} % of it",
              highlight=False)
    with client(server, token) as c:
        projects = c.json("GET", "/api/projects")
    if len(projects) != 1:  # an admin token sees every project and cannot submit anyway
        return data
    project = projects[0]
    verdict = check_budget(data["core_hours"], high, project.get("budget_core_hours"),
                           project.get("used_core_hours") or 0.0)
    if not verdict.fits:
        if strict:
            fail(f"project {project['name']}: {verdict.message} (refused: --strict-budget)")
        err.print(f"[yellow]warning:[/] project {project['name']}: {verdict.message}",
                  highlight=False)
    elif "high end" in verdict.message:
        err.print(f"[yellow]warning:[/] project {project['name']}: {verdict.message}",
                  highlight=False)
    return data
