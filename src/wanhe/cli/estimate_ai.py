"""`wanhe estimate SPEC.yaml` and `wanhe estimate STORY.yaml`: the AI kinds of `wanhe estimate`
(`wanhe.runs.estimate_ai`, `wanhe.runs.estimate_story`), printed as a table or --json."""

from pathlib import Path
from typing import TYPE_CHECKING, Any

from wanhe.cli.common import emit, err, fail
from wanhe.model import human_duration

if TYPE_CHECKING:
    from rich.table import Table

    from wanhe.runs.estimate import Prices


def estimate_ai(kind: str, path: Path, prices: "Prices", *, as_json: bool, db: str | None,
                blender: str | None, machines: int = 1, cores: int | None = None,
                gpus: int | None = None, deadline_s: float | None = None,
                farm_given: bool = False) -> None:
    """`farm_given`: --machines, --cores, --gpus or --deadline was given (a generation
    spec's wall time on that farm: GPUs for a GPU job, machines × cores for a CPU one)."""
    from wanhe.ai.pipelines import ModelLoadError
    from wanhe.config import Settings
    from wanhe.jobtypes.base import InputError
    from wanhe.store.store import DatabaseUnavailable
    from wanhe.voice.tts import VoiceError

    settings = Settings().overridden(db=db, blender=blender)

    def note(text: str) -> None:
        if not as_json:
            err.print(text, highlight=False)

    spec = _gen_spec(path) if kind == "gen" else None  # (its own one-line failures)
    if spec is not None and farm_given and spec.device != "auto":
        _gen_farm(spec.device, machines, cores, gpus)  # the wrong farm: one line, no probe
    try:
        if spec is not None:
            from wanhe.runs.estimate_ai import estimate_gen

            report: Any = estimate_gen(spec, settings=settings, prices=prices,
                                       name=str(path), on_probe=note)
            if farm_given:
                report.farm = _gen_farm(report.device, machines, cores, gpus)
                report.deadline_s = deadline_s
            emit(report.to_dict(), as_json, gen_table)
        else:
            from wanhe.runs.estimate_story import estimate_story

            report = estimate_story(path.expanduser().resolve(), settings=settings,
                                    prices=prices, on_probe=note,
                                    farm=_story_farm(machines, cores, gpus) if farm_given
                                    else None, deadline_s=deadline_s)
            emit(report.to_dict(), as_json, story_table)
    except InputError as exc:
        fail(f"{exc.field.removeprefix('options.')}: {exc.message}")
    except (DatabaseUnavailable, ModelLoadError, VoiceError, ValueError) as exc:
        fail(str(exc))
    except RuntimeError as exc:
        fail(str(exc), code=1)


def _gen_farm(device: str, machines: int, cores: int | None, gpus: int | None) -> Any:
    """The farm asked about, by the device the job runs on: --gpus GPUs for a GPU job,
    --machines of --cores cores (default: this machine's) for a CPU one; the other's
    options are one line."""
    import os

    from wanhe.runs.estimate_ai import GenFarm

    if device == "gpu":
        if machines != 1 or cores is not None:
            fail("--machines, --cores: this spec runs on the GPU — give --gpus N (the GPUs "
                 "on the farm, one worker each)")
        return GenFarm(units=gpus or 1, unit="GPU")
    if gpus is not None:
        fail(f"--gpus {gpus}: this spec runs on the CPU (device: cpu, or no GPU here) — give "
             "--machines N [--cores C]")
    return GenFarm(units=machines, unit="machine", cores=cores or os.cpu_count() or 1)


def _story_farm(machines: int, cores: int | None, gpus: int | None) -> Any:
    """A storyboard's farm: --machines of --cores cores (default: this machine's) and
    --gpus GPUs each (default none)."""
    import os

    from wanhe.runs.estimate_story import StoryFarm

    return StoryFarm(machines=machines, cores=cores or os.cpu_count() or 1, gpus=gpus or 0)


def _gen_spec(path: Path) -> Any:
    """The spec in `path`, checked as `wanhe gen run` checks it (one line when it is not)."""
    from wanhe.ai.spec import load_spec
    from wanhe.jobtypes.base import InputError
    from wanhe.jobtypes.registry import job_type

    try:
        raw = load_spec(path.expanduser())
    except ValueError as exc:
        fail(str(exc))
    base = path.expanduser().parent
    for shot in raw.get("shots", []) if isinstance(raw.get("shots"), list) else []:
        if isinstance(shot, dict) and shot.get("image") and not Path(shot["image"]).is_absolute():
            shot["image"] = str((base / shot["image"]).resolve())
    kind = job_type("gen")
    try:
        spec = kind.parse_options(raw)
        kind.check(spec)
    except InputError as exc:
        fail(f"{exc.field.removeprefix('options.')}: {exc.message} (in {path.name})")
    return spec


def _money(amount: float) -> str:
    return f"{amount:,.2f}" if amount >= 1 else f"{amount:.3g}"


def _bytes(n: int) -> str:
    from wanhe.ai.models import human_bytes

    return human_bytes(n)


def _shot_source(shot: dict[str, Any]) -> str:
    if shot["source"] == "history":
        history = shot["history"]
        return (f"from history of {shot['history_runs']} run(s) ({history['candidates']} "
                "candidate(s) metered)")
    probe = shot["probe"]
    cold, load = human_duration(shot["cold_s"]), human_duration(probe["load_s"])
    fixed, step = human_duration(probe["fixed_s"]), human_duration(probe["per_step_s"])
    return (f"probe: cold {cold} (load {load}), warm {fixed} + {step}/step"
            + (" — cached, nothing run now" if probe["cached"] else ""))


def gen_table(data: dict[str, Any]) -> "Table":
    from rich.table import Table

    unit = data["unit"]
    table = Table(title=f"estimate: {Path(data['spec']).name} (generation on the "
                        f"{data['device'].upper()}, {data['threads']} thread(s))",
                  show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for shot in data["shots"]:
        frames = f", {shot['frames']} frames" if shot["frames"] else ""
        table.add_row(f"shot {shot['name']}",
                      f"{shot['model']} ({shot['task']}), {shot['candidates']} candidate(s) × "
                      f"{shot['steps']} steps at {shot['size']}{frames}")
        table.add_row("  memory", f"{_bytes(shot['model_memory_bytes'])} registered; "
                      f"{_bytes(shot['task_memory_bytes'])} with a batch at this size")
        table.add_row("  each", f"{human_duration(shot['per_candidate_s'])} ({unit})")
        table.add_row("  shot", f"{human_duration(shot['seconds'])} ({unit})")
        table.add_row("  source", _shot_source(shot))
    table.add_section()
    if data["worker_start_s"]:
        table.add_row("worker start", f"{human_duration(data['worker_start_s'])} ({unit}): its "
                      "imports before the first candidate, once")
    table.add_row("total", f"{data['candidates']} candidate(s): "
                  f"{human_duration(data['seconds'])} ({unit}); {_hours_line(data)}")
    farm = data["farm"]
    if farm is not None:
        where = (f"{farm['units']} GPU(s)" if farm["unit"] == "GPU" else
                 f"{farm['units']} machine(s) × {farm['cores']} cores ({data['threads']} "
                 "thread(s) a task)")
        table.add_row("wall time", f"{human_duration(farm['wall_s'])} on {where}: "
                      f"{farm['workers']} worker(s) busy, {farm['loads']} model load(s), "
                      f"{human_duration(farm['seconds'])} ({unit}) billed in all")
        if farm["deadline"] is not None:
            table.add_row("deadline", farm["deadline"]["explanation"])
    for text in data["notes"]:
        table.add_row("note", text)
    return table


def _hours_line(data: dict[str, Any]) -> str:
    text = f"{data['core_hours']:.4g} core-hours, {data['gpu_hours']:.4g} GPU-hours"
    prices = data["prices"]
    if prices["core_hour"] > 0 or prices["gpu_hour"] > 0:
        text += (f"; cost {_money(data['cost'])} at {prices['core_hour']:g}/core-hour, "
                 f"{prices['gpu_hour']:g}/GPU-hour")
    return text


def story_table(data: dict[str, Any]) -> "Table":
    from rich.table import Table

    table = Table(title=f"estimate: {Path(data['storyboard']).name} (storyboard: "
                        f"{data['reel_s']:.1f} s reel, {data['reel_frames']} frames, "
                        f"{', '.join(data['languages'])})", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for part in data["parts"]:
        gpu = f", {human_duration(part['gpu_s'])} GPU" if part["gpu_s"] else ""
        table.add_row(part["part"], f"{human_duration(part['core_s'])} CPU{gpu} — {part['what']}")
        table.add_row("  from", part["source"])
    table.add_section()
    gpu = f", {human_duration(data['gpu_s'])} GPU" if data["gpu_s"] else ""
    table.add_row("total", f"{human_duration(data['core_s'])} CPU{gpu}; {_hours_line(data)}")
    farm = data["farm"]
    if farm is not None:
        gpus = f", {farm['gpus']} GPU(s)" if farm["gpus"] else ""
        kinds = ", ".join(f"{n} {kind}" for kind, n in farm["task_kinds"].items())
        table.add_row("wall time", f"{human_duration(farm['wall_s'])} on {farm['machines']} "
                      f"machine(s) × {farm['cores']} cores{gpus}: the job's {farm['tasks']} "
                      f"tasks ({kinds}) scheduled with their dependencies")
        if farm["deadline"] is not None:
            table.add_row("deadline", farm["deadline"]["explanation"])
    for text in data["notes"]:
        table.add_row("note", text)
    return table
