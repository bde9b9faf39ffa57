"""`wanhe estimate SPEC.yaml`: what a generation spec will cost, from a probe of each model.

Each shot's model is checked against the local catalogue (as `wanhe gen` without --server
does) and compiled into its gen tasks; the first task's payload is then probed in this
process on the device the job would use: the model loaded (timed), one candidate of 1 step
(the cold call), the same again warm, and one of a few more steps (both warm, each timed
twice on a CPU: the fixed cost and the cost per step, :mod:`wanhe.estimate.ai`). No output
is written. A worker's first gen task also pays what this process had imported before
its probe (torch, diffusers, transformers, wanhe's pipelines): that start is timed apart, in
a fresh interpreter (less what a worker has imported anyway), and charged once to the job.
Probes are cached per model content, device, threads and shot shape under the home folder's
`probes/`, as the scene probe is, so asking again (other prices, more candidates, more
steps) probes nothing; the start, per device and library versions.
A model with metered history on this shape (earlier `wanhe gen` runs in the database) is
estimated from that history instead, and says so.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wanhe.ai.probe import Prober, probe_worker_start
from wanhe.ai.spec import GenSpec
from wanhe.config import Settings
from wanhe.estimate.ai import GenHistory, GenProbe, ShotCost, shot_cost
from wanhe.estimate.deadline import DeadlineAnswer, fewest_within
from wanhe.estimate.workers import MOST_WORKERS, FarmRun, WorkTask, farm_runs
from wanhe.runs.estimate import Prices

__all__ = ["GenEstimate", "GenFarm", "ShotEstimate", "estimate_gen", "probe_payload"]

PROBE_VERSION = 2  # bump when the probe's plan changes: older cached probes are not reused
PROBE_STEPS = 3  # the warm call of more steps takes at most this many


@dataclass
class ShotEstimate:
    name: str
    model: str
    task: str
    size: str
    frames: int | None
    model_memory: int  # the model's registered need, bytes
    task_memory: int  # with one batch's activations at this size
    cost: ShotCost
    probe: GenProbe | None
    cached: bool
    history: GenHistory | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "model": self.model, "task": self.task, "size": self.size,
            "frames": self.frames, "model_memory_bytes": self.model_memory,
            "task_memory_bytes": self.task_memory, **asdict(self.cost),
            "probe": None if self.probe is None else {
                **asdict(self.probe), "cold_s": self.probe.cold_s, "cached": self.cached},
            "history": None if self.history is None else asdict(self.history),
        }


@dataclass(frozen=True)
class GenFarm:
    """The farm a generation job is asked about: `units` GPUs (a GPU job: one worker each)
    or machines of `cores` cores (a CPU job: one worker per `threads` of them)."""

    units: int
    unit: str  # "GPU" or "machine"
    cores: int = 0

    def workers_per_unit(self, threads: int) -> int:
        return 1 if self.unit == "GPU" else max(1, self.cores // max(threads, 1))


@dataclass
class GenEstimate:
    """Everything `wanhe estimate SPEC` prints (``to_dict`` is its --json)."""

    spec: str
    device: str  # "cpu" or "gpu": what the seconds are of
    threads: int
    shots: list[ShotEstimate]
    prices: Prices
    notes: list[str] = field(default_factory=list)
    start_s: float = 0.0  # a worker's imports before its first candidate (once, probed shots)
    start_cached: bool = True
    work: list[WorkTask] = field(default_factory=list)  # the gen tasks, in the farm's order
    cold: dict[str, float] = field(default_factory=dict)  # each model's cold cost, a worker
    farm: GenFarm | None = None
    deadline_s: float | None = None

    def on_farm(self) -> tuple[FarmRun, DeadlineAnswer | None] | None:
        """The job on the farm asked about (list scheduling, :mod:`wanhe.estimate.workers`),
        and the fewest GPUs or machines that meet the deadline; None without a farm."""
        if self.farm is None or not self.work:
            return None
        per = self.farm.workers_per_unit(self.threads)
        speed = 1.0 if self.device == "gpu" else float(self.threads)
        most_workers = min(len(self.work), MOST_WORKERS)
        runs = farm_runs(self.work, most_workers, start_s=self.start_s, cold=self.cold,
                         speed=speed)

        def on(units: int) -> FarmRun:
            return runs[min(units * per, most_workers) - 1]

        answer = None
        if self.deadline_s is not None:
            most_units = math.ceil(most_workers / per)
            answer = fewest_within(lambda n: on(n).wall_s, most_units, self.deadline_s,
                                   unit=self.farm.unit)
        return on(self.farm.units), answer

    @property
    def seconds(self) -> float:
        return self.start_s + sum(s.cost.seconds for s in self.shots)

    @property
    def hours(self) -> tuple[float, float]:
        """(core-hours, GPU-hours): a GPU task bills one core beside its GPU."""
        hours = self.seconds / 3600
        return (hours, hours) if self.device == "gpu" else (hours, 0.0)

    @property
    def probe_s(self) -> float:
        seen: dict[int, float] = {}
        for s in self.shots:
            if s.probe is not None and not s.cached:
                seen[id(s.probe)] = s.probe.probe_s
        return sum(seen.values()) + (0.0 if self.start_cached else self.start_s)

    def farm_dict(self) -> dict[str, Any] | None:
        found = self.on_farm()
        if found is None or self.farm is None:
            return None
        run, answer = found
        return {
            **asdict(self.farm), "workers": run.workers, "wall_s": run.wall_s,
            "seconds": run.seconds, "loads": run.loads,
            "deadline_s": self.deadline_s,
            "deadline": None if answer is None else {
                **asdict(answer), "explanation": answer.explain(self.deadline_s or 0.0)},
        }

    def to_dict(self) -> dict[str, Any]:
        core_h, gpu_h = self.hours
        return {
            "kind": "gen", "spec": self.spec, "device": self.device, "threads": self.threads,
            "unit": "GPU-seconds" if self.device == "gpu" else "CPU-seconds",
            "candidates": sum(s.cost.candidates for s in self.shots),
            "seconds": self.seconds, "core_hours": core_h, "gpu_hours": gpu_h,
            "cost": core_h * self.prices.core_hour + gpu_h * self.prices.gpu_hour,
            "prices": asdict(self.prices), "probe_s": self.probe_s,
            "worker_start_s": self.start_s, "shots": [s.to_dict() for s in self.shots],
            "farm": self.farm_dict(), "notes": self.notes,
        }


def _cuda_devices(asked: str) -> int:
    """GPUs torch sees here; 0 without asking torch (seconds to import) when the spec asks
    for the CPU or this machine has no GPU driver (NVIDIA's, or ROCm's /dev/kfd): what lets a
    cached estimate answer at once."""
    if asked == "cpu" or not (Path("/proc/driver/nvidia/gpus").is_dir()
                              or Path("/dev/kfd").exists()):
        return 0
    try:
        import torch

        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    except Exception:
        return 0


def compile_spec(spec: GenSpec, settings: Settings, work: Path) -> tuple[dict[str, Any],
                                                                         list[Any], list[str]]:
    """The spec resolved against the local catalogue and this machine (raises InputError
    with the field and what to do): (resolved, its tasks, its warnings)."""
    from wanhe.ai import catalog
    from wanhe.ai.capacity import detect
    from wanhe.jobtypes.base import IntakeContext, JobFolder
    from wanhe.jobtypes.registry import job_type
    from wanhe.runs.local import LOCAL_PROJECT
    from wanhe.store.store import Store

    store = Store(settings.db_url)
    try:
        project = store.ensure_project(LOCAL_PROJECT)
        gpus = _cuda_devices(spec.device)
        context = IntakeContext(models=lambda n: catalog.find_model(store, n, project.id),
                                capacity=lambda: detect(gpus), local_paths=True)
        kind = job_type("gen")
        kind.check(spec)
        inspected = kind.inspect(context, None, spec)
    finally:
        store.dispose()
    folder = JobFolder(input=work, output=work, work=work / ".work")
    compiled = kind.compile(spec, inspected, None, folder)
    return compiled.spec, compiled.tasks, list(inspected.warnings)


def probe_payload(spec: GenSpec, tasks: list[Any], shot: int) -> dict[str, Any]:
    """The payload of the shot's first gen task (what a worker would run first)."""
    return next(t.payload for t in tasks if t.kind == "gen" and t.payload["shot"] == shot)


def _probe_steps(payload: dict[str, Any], steps: int) -> tuple[int, int]:
    """(few, more) steps to probe with: an img2img shot runs steps × strength of them, so
    each count is raised to run at least 1 (resp. a few) real step(s)."""
    strength = float(payload.get("strength") or 1.0) if payload.get("image") else 1.0
    few = math.ceil(1 / strength) if strength < 1 else 1
    more = min(steps, math.ceil(PROBE_STEPS / strength) if strength < 1 else PROBE_STEPS)
    return few, max(few, more)


def _probe_key(payload: dict[str, Any], device: str, threads: int,
               steps: tuple[int, int]) -> str:
    model = payload["model"]
    basis = {"v": PROBE_VERSION, "model": model["sha256"], "class": model.get("pipeline_class"),
             "device": device, "threads": threads, "task": model["task"],
             "size": [payload["width"], payload["height"]], "frames": payload.get("frames"),
             "cfg": float(payload["guidance"]) > 1.0, "image": bool(payload.get("image")),
             "strength": payload.get("strength") if payload.get("image") else None,
             "steps": list(steps)}
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()


def _read_probe(path: Path) -> GenProbe | None:
    try:
        data = json.loads(path.read_text())
        data["steps_probed"] = tuple(data["steps_probed"])
        return GenProbe(**data)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none yet, or unreadable: probe again


def _start_key(device: str) -> str:
    import sys
    from importlib.metadata import version

    basis = {"v": PROBE_VERSION, "device": device, "python": sys.executable,
             "libraries": [version(n) for n in ("torch", "diffusers", "transformers")]}
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()


def _worker_start(device: str, cache_dir: Path, on_probe: Any) -> tuple[float, bool]:
    """(seconds, cached): :func:`probe_worker_start`, cached per device and versions."""
    path = start_cache(device, cache_dir)
    try:
        return float(json.loads(path.read_text())["start_s"]), True
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if on_probe is not None:
        on_probe("timing a worker's start (its imports, in a fresh interpreter) …")
    seconds = probe_worker_start(device)
    write_probe(path, {"start_s": seconds})
    return seconds, False


@dataclass(frozen=True)
class ProbeNeed:
    """A probe the estimate needs and has not cached: where its answer goes, what it runs."""

    cache: Path
    model: str
    size: str
    payload: dict[str, Any]
    steps: tuple[int, int]


def _shot_history(spec: GenSpec, resolved: dict[str, Any], si: int, device: str,
                  history: Any) -> GenHistory | None:
    from wanhe.ai.compile import warm_key

    shot = spec.shots[si]
    model = resolved["models"][shot.model]
    video = model["task"] != "text-to-image"
    return None if history is None else history(
        warm_key(model), device=device, width=shot.width, height=shot.height,
        frames=shot.frames if video else None, task=model["task"])


def probes_needed(spec: GenSpec, resolved: dict[str, Any], tasks: list[Any], *, threads: int,
                  cache_dir: Path, history: Any) -> list[ProbeNeed]:
    """The probes an estimate of the compiled `spec` would run: each shot whose model has no
    history on its shape and whose probe is not cached (one per cache file)."""
    device = str(resolved["device"])
    needs: dict[Path, ProbeNeed] = {}
    for si, shot in enumerate(spec.shots):
        if _shot_history(spec, resolved, si, device, history) is not None:
            continue
        payload = probe_payload(spec, tasks, si)
        steps = _probe_steps(payload, shot.steps)
        cache = cache_dir / f"gen-{_probe_key(payload, device, threads, steps)}.json"
        if cache not in needs and _read_probe(cache) is None:
            needs[cache] = ProbeNeed(cache, shot.model, shot.size, payload, steps)
    return list(needs.values())


def start_cache(device: str, cache_dir: Path) -> Path:
    """Where a worker's start (:func:`wanhe.ai.probe.probe_worker_start`) is cached."""
    return cache_dir / f"gen-start-{_start_key(device)}.json"


def write_probe(path: Path, data: dict[str, Any]) -> None:
    from wanhe.imaging.atomic import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as out:
        out.write_text(json.dumps(data))


def estimate_gen(spec: GenSpec, *, settings: Settings, prices: Prices, name: str = "",
                 use_history: bool = True, on_probe: Any = None, farm: GenFarm | None = None,
                 deadline_s: float | None = None) -> GenEstimate:
    """The estimate of `spec` (raises InputError for a spec the catalogue or this machine
    refuses, ModelLoadError for a model that does not load), probed in this process.
    `on_probe(text)`: told before each probe that runs. `farm`, `deadline_s`: the wall time
    on that farm and the fewest GPUs or machines that finish within the deadline
    (`GenEstimate.on_farm`)."""
    from wanhe.ai import pipelines

    with tempfile.TemporaryDirectory(prefix="wanhe-estimate-gen-") as tmp:
        resolved, tasks, warnings = compile_spec(spec, settings, Path(tmp))
    device = str(resolved["device"])
    threads = spec.threads or os.cpu_count() or 1
    cache_dir = settings.home / "probes"
    history = _history_lookup(settings) if use_history else None
    needs = probes_needed(spec, resolved, tasks, threads=threads, cache_dir=cache_dir,
                          history=history)
    if needs:
        prober = Prober(device, threads)
        torch_threads = None
        if device == "cpu":
            import torch

            torch_threads = torch.get_num_threads()
            torch.set_num_threads(threads)
        pipelines.offline()
        try:
            for need in needs:
                if on_probe is not None:
                    on_probe(f"probing {need.model} on the {device.upper()} at {need.size}: "
                             f"load, then candidates of {need.steps[0]} and {need.steps[1]} "
                             "step(s) …")
                try:
                    probe = prober.probe(need.payload, need.steps)
                except pipelines.ModelLoadError:
                    raise
                except Exception as exc:  # what a gen task would fail with: one line
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    raise RuntimeError(
                        f"the probe of {need.model} at {need.size} failed "
                        f"({type(exc).__name__}: {first[:300]})") from None
                write_probe(need.cache, asdict(probe))
        finally:
            prober.close()
            if torch_threads is not None:
                import torch

                torch.set_num_threads(torch_threads)
    return estimate_compiled(spec, resolved, tasks, warnings, prices=prices, name=name,
                             threads=threads, cache_dir=cache_dir, history=history,
                             on_probe=on_probe, farm=farm, deadline_s=deadline_s,
                             probed={n.cache for n in needs})


def estimate_compiled(spec: GenSpec, resolved: dict[str, Any], tasks: list[Any],
                      warnings: list[str], *, prices: Prices, name: str, threads: int,
                      cache_dir: Path, history: Any, probed: set[Path],
                      on_probe: Any = None, start_s: float | None = None,
                      farm: GenFarm | None = None,
                      deadline_s: float | None = None) -> GenEstimate:
    """The estimate of a compiled spec whose probes are all cached (`probed`: those made for
    this estimate, whose cost it reports) or whose models have history. `start_s`: the
    worker's start, measured for this estimate (else cached, or timed here)."""
    from wanhe.ai.memory import device_need

    device = str(resolved["device"])
    shots: list[ShotEstimate] = []
    loaded_models: set[str] = set()
    for si, shot in enumerate(spec.shots):
        model = resolved["models"][shot.model]
        video = model["task"] != "text-to-image"
        found = _shot_history(spec, resolved, si, device, history)
        probe, cached = None, False
        if found is None:
            payload = probe_payload(spec, tasks, si)
            steps = _probe_steps(payload, shot.steps)
            cache = cache_dir / f"gen-{_probe_key(payload, device, threads, steps)}.json"
            probe = _read_probe(cache)
            if probe is None:
                raise RuntimeError(f"the probe of {shot.model} at {shot.size} left no answer")
            cached = cache not in probed
        cold = shot.model not in loaded_models
        loaded_models.add(shot.model)
        cost = shot_cost(shot.candidates, shot.steps, probe=probe, history=found, cold=cold)
        batch = min(spec.batch, shot.candidates)
        shots.append(ShotEstimate(
            name=spec.shot_name(si), model=shot.model, task=model["task"],
            size=shot.size, frames=shot.frames if video else None,
            model_memory=int(model["gpu_memory"]),
            task_memory=device_need(int(model["gpu_memory"]), model["task"], shot.width,
                                    shot.height, batch, shot.frames),
            cost=cost, probe=probe, cached=cached, history=found))
    start_cached = True
    if not any(s.cost.source == "probe" for s in shots):
        start_s = 0.0
    elif start_s is not None:
        write_probe(start_cache(device, cache_dir), {"start_s": start_s})
        start_cached = False
    else:
        start_s, start_cached = _worker_start(device, cache_dir, on_probe)
    notes = list(warnings)
    if spec.score:
        notes.append("each shot's scoring task is light and not counted")
    if any(s.cost.source == "probe" for s in shots):
        notes.append("one worker is assumed: it starts once and loads each model once (the "
                     "cold cost); a farm of N workers that all load it pays it up to N times")
    work = [WorkTask(spec.shots[t.payload["shot"]].model,
                     len(t.payload["candidates"]) * shots[t.payload["shot"]].cost.per_candidate_s)
            for t in tasks if t.kind == "gen"]
    colds = {s.model: s.probe.cold_s for s in shots if s.probe is not None
             and s.cost.source == "probe"}
    return GenEstimate(spec=name, device=device, threads=threads, shots=shots, prices=prices,
                       notes=notes, start_s=start_s, start_cached=start_cached, work=work,
                       cold=colds, farm=farm, deadline_s=deadline_s)


def _history_lookup(settings: Settings) -> Any:
    """model_history over the local database, opened once per lookup."""
    from wanhe.ai.history import model_history
    from wanhe.store.store import Store

    def lookup(key: str, **shape: Any) -> GenHistory | None:
        store = Store(settings.db_url)
        try:
            return model_history(store, key, **shape)
        finally:
            store.dispose()

    return lookup
