"""The AI generation job type (`gen`): shots of seeded candidates from diffusion models.

    gen  shot000/c000 … shot000/c003 ─► score shot000/score     (one graph per shot)

One task per candidate (or per `batch` of candidates), each asking for one GPU — or, on a farm
without GPUs, the CPU (slower; the job says so). The task's warm key is its model, so workers
that hold the model get its tasks (scheduler affinity) and keep it loaded. A scoring task per
shot ranks the candidates. Pure: models are resolved from the catalogue by inspection.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pydantic import BaseModel, ValidationError

from wanhe.ai.memory import device_need, host_need, images_per_task
from wanhe.ai.models import IMAGE_TO_VIDEO, PROMPT_SCORING, TEXT_TO_IMAGE, human_bytes
from wanhe.ai.spec import GenSpec, Shot
from wanhe.jobtypes.base import (
    CompiledJob,
    InputError,
    Inspected,
    IntakeContext,
    JobFolder,
    JobType,
    TaskView,
    confine_tasks,
)
from wanhe.jobtypes.registry import register_job_type
from wanhe.lifecycle import RetryRules
from wanhe.model import Resources, TaskSpec

KIND = "gen"
GEN_TASK = "gen"
SCORE_TASK = "gen_score"


def warm_key(model: dict[str, Any]) -> str:
    return f"model:{model['name']}@{model['sha256'][:16]}"


def _is_video(task: str) -> bool:
    return task != TEXT_TO_IMAGE


def candidate_path(output: str, shot_name: str, index: int, seed: int, video: bool) -> str:
    return f"{output}/{shot_name}/c{index:03d}_seed{seed}.{'mp4' if video else 'png'}"


def resolve(spec: GenSpec, models: dict[str, dict[str, Any]], gpus: int) -> dict[str, Any]:
    """The stored spec: the user's spec, each model's record and the device the tasks use."""
    device = spec.device
    if device == "auto":
        device = "gpu" if gpus > 0 else "cpu"
    note = "" if device == "gpu" else (
        "running on the CPU: this farm has no GPU worker (slower)" if gpus == 0
        else "running on the CPU as asked (device=cpu)")
    return {"gen": spec.model_dump(mode="json"), "models": models, "device": device,
            "device_note": note}


def compile_gen_job(resolved: dict[str, Any], output: str) -> list[TaskSpec]:
    """The task graph: candidates (in batches) then one score task per shot."""
    spec = GenSpec.model_validate(resolved["gen"])
    device = resolved["device"]
    graph: list[TaskSpec] = []
    for si, shot in enumerate(spec.shots):
        model = resolved["models"][shot.model]
        video = _is_video(model["task"])
        name = spec.shot_name(si)
        keys: list[str] = []
        entries: list[dict[str, Any]] = []
        for ci in range(shot.candidates):
            index = shot.first_index + ci
            seed = shot.seed_of(spec.seed, si, ci)
            entries.append({"index": index, "seed": seed,
                            "output": candidate_path(output, name, index, seed, video)})
        for bi in range(0, len(entries), spec.batch):
            batch = entries[bi : bi + spec.batch]
            key = (f"{name}/c{batch[0]['index']:03d}" if len(batch) == 1
                   else f"{name}/b{batch[0]['index']:03d}-{batch[-1]['index']:03d}")
            payload: dict[str, Any] = {
                "model": {k: model[k] for k in ("name", "path", "format", "pipeline_class",
                                                "task", "sha256", "gpu_memory")},
                "warm_key": warm_key(model),
                "device": device, "threads": spec.threads,
                "shot": si, "shot_name": name, "job_seed": spec.seed,
                "prompt": shot.prompt, "negative": shot.negative,
                "width": shot.width, "height": shot.height, "steps": shot.steps,
                "guidance": shot.guidance, "image": shot.image, "strength": shot.strength,
                "frames": shot.frames, "fps": shot.fps,
                "candidates": batch,
            }
            memory = host_need(model, device, model["task"], shot.width, shot.height,
                               len(batch), shot.frames)
            resources = (Resources(cpus=1.0, memory=memory, gpus=1.0) if device == "gpu"
                         else Resources(cpus=float(spec.threads or 1), memory=memory))
            graph.append(TaskSpec(key, GEN_TASK, payload, chunk=batch[0]["index"],
                                  resources=resources, affinity=payload["warm_key"]))
            keys.append(key)
        if spec.score:
            clip = resolved["models"].get(spec.clip_model) if spec.clip_model else None
            graph.append(TaskSpec(
                f"{name}/score", SCORE_TASK,
                {"shot": si, "shot_name": name, "prompt": shot.prompt, "video": video,
                 "candidates": entries, "output": f"{output}/{name}/scores.json",
                 "clip": None if clip is None else {k: clip[k] for k in ("name", "path",
                                                                         "sha256")}},
                deps=keys, resources=Resources(cpus=0.0),
            ))
    return graph


def check_shots(spec: GenSpec, lookup: Any) -> dict[str, dict[str, Any]]:
    """Every shot's model is known and fits what the shot asks; raise InputError."""
    models: dict[str, dict[str, Any]] = {}
    for si, shot in enumerate(spec.shots):
        where = f"options.shots.{si}"
        model = models.get(shot.model) or (lookup(shot.model) if lookup else None)
        if model is None:
            raise InputError(f"{where}.model", f"unknown model {shot.model!r} — register it "
                             "with `wanhe models add NAME PATH` (wanhe models list shows them)")
        models[shot.model] = model
        if model["task"] == PROMPT_SCORING:
            raise InputError(f"{where}.model", f"model {shot.model!r} scores prompts; it "
                             "makes no images — name it in clip_model instead")
        _check_shot(shot, model, where)
    if spec.clip_model:
        clip = lookup(spec.clip_model) if lookup else None
        if clip is None or clip["task"] != PROMPT_SCORING:
            raise InputError("options.clip_model", f"{spec.clip_model!r} is not a registered "
                             "CLIP-type model (wanhe models add NAME CLIP_FOLDER)")
        models[spec.clip_model] = clip
    return models


def _check_shot(shot: Shot, model: dict[str, Any], where: str) -> None:
    task = model["task"]
    if task != IMAGE_TO_VIDEO and not shot.prompt.strip():
        raise InputError(f"{where}.prompt", f"model {shot.model!r} ({task}) needs a prompt")
    if task == IMAGE_TO_VIDEO and not shot.image:
        raise InputError(f"{where}.image", f"model {shot.model!r} makes video from an image: "
                         "give the first frame (--image still.png)")
    most = _most_steps(model)
    if most is not None and shot.steps > most:
        raise InputError(f"{where}.steps", f"steps {shot.steps} is more than model "
                         f"{shot.model!r} takes (its scheduler's limit) — ask for at most "
                         f"{most}")


def _most_steps(model: dict[str, Any]) -> int | None:
    """What a diffusers folder's scheduler allows (None when it says nothing)."""
    from wanhe.ai.pipelines import most_steps

    config = Path(str(model.get("path", ""))) / "scheduler" / "scheduler_config.json"
    try:
        return most_steps(SimpleNamespace(**json.loads(config.read_text())))
    except (OSError, ValueError, TypeError):
        return None


def _check_own_image(inputs: Path, image: str, field: str, shot: str) -> None:
    """A farm job's init image is one of its uploaded files: resolved inside its inputs."""
    from wanhe.storage import OutsideJob, job_input

    try:
        found = job_input(inputs, image, inputs, f"shot {shot!r} image",
                          "name it by its path among the job's uploaded files (wanhe gen "
                          "--image uploads it)")
    except OutsideJob as exc:
        raise InputError(field, str(exc)) from None
    if not found.is_file():
        raise InputError(field, f"shot {shot!r} image {image!r} is not among the job's "
                         "uploaded files — send it with the job")


@register_job_type
class GenerateJob(JobType):
    kind = KIND
    title = "AI generation"
    options_model = GenSpec
    main_file = "none"
    panels = ("candidates",)

    def parse_options(self, raw: dict[str, Any]) -> BaseModel:
        try:
            return GenSpec.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in ("options", *first.get("loc", ())))
            msg = str(first.get("msg", exc)).removeprefix("Value error, ")
            raise InputError(where, msg) from None

    def inspect(self, ctx: IntakeContext, main: Path | None, options: BaseModel) -> Inspected:
        assert isinstance(options, GenSpec)
        models = check_shots(options, ctx.models)
        capacity = ctx.capacity() if ctx.capacity is not None else None
        gpus = capacity.gpus if capacity is not None else 0
        device = options.device if options.device != "auto" else ("gpu" if gpus else "cpu")
        if device == "gpu" and capacity is not None and gpus == 0:
            raise InputError("options.device", "device=gpu but this farm has no GPU worker — "
                             "leave device as auto to run on the CPU")
        for si, shot in enumerate(options.shots):
            model = models[shot.model]
            why = None if capacity is None else capacity.refuse(
                int(model["gpu_memory"]), shot.model, device)
            if why:
                raise InputError(f"options.shots.{si}.model", why)
            batch = min(options.batch, shot.candidates)
            need = device_need(int(model["gpu_memory"]), model["task"], shot.width,
                               shot.height, batch, shot.frames)
            why = None if capacity is None else capacity.refuse_size(
                need, f"shot {si} (model {shot.model!r} at {shot.size}, "
                      f"{images_per_task(model['task'], batch, shot.frames)} "
                      "image(s) at once)", device)
            if why:
                raise InputError(f"options.shots.{si}.size", why)
            if shot.image and ctx.inputs is not None and not ctx.local_paths:
                _check_own_image(ctx.inputs, shot.image, f"options.shots.{si}.image",
                                 options.shot_name(si))
            elif shot.image and Path(shot.image).is_absolute() and not ctx.local_paths:
                raise InputError(f"options.shots.{si}.image", "name the image by its path "
                                 "among the job's uploaded files, not an absolute path")
            if shot.image and ctx.local_paths and not Path(shot.image).is_file():
                raise InputError(f"options.shots.{si}.image",
                                 f"image {shot.image} does not exist")
        resolved = resolve(options, models, gpus)
        warnings = [resolved["device_note"]] if resolved["device_note"] else []
        if ctx.inputs is not None and not ctx.local_paths:
            resolved["confined"] = True  # a farm job: its tasks open only its own files
        return Inspected(resolved, warnings)

    def compile(
        self, options: BaseModel, inspected: Inspected, main: Path | None, folder: JobFolder
    ) -> CompiledJob:
        resolved = dict(inspected.facts)
        resolved["output"] = str(folder.output)
        gen = GenSpec.model_validate(resolved["gen"])
        for shot in gen.shots:  # an uploaded image lies in the job's input folder
            if shot.image and not Path(shot.image).is_absolute():
                shot.image = str(folder.input / shot.image)
        resolved["gen"] = gen.model_dump(mode="json")
        tasks = compile_gen_job(resolved, str(folder.output))
        if resolved.pop("confined", False):
            confine_tasks(tasks, folder)
        fingerprint = hashlib.sha256(
            json.dumps({k: resolved[k] for k in ("gen", "models", "device")},
                       sort_keys=True).encode()).hexdigest()
        return CompiledJob(resolved, fingerprint, tasks)

    def retry_rules(self, spec: dict[str, Any]) -> RetryRules:
        attempts = int(spec.get("gen", {}).get("max_attempts", 2))
        return RetryRules(max_attempts=attempts)

    def task_label(self, task: TaskView) -> str:
        shot, _, part = task.key.partition("/")
        if task.kind == SCORE_TASK:
            return f"{shot} scoring"
        if part.startswith("c"):
            return f"{shot} candidate {int(part[1:])}"
        return f"{shot} candidates {part[1:]}"

    def deliverables(self, spec: dict[str, Any]) -> list[str]:
        files: list[str] = []
        for task in compile_gen_job(spec, spec.get("output", "")):
            if task.kind == GEN_TASK:
                files += [c["output"] for c in task.payload["candidates"]]
            else:
                files.append(task.payload["output"])
        return files


def describe_memory(model: dict[str, Any]) -> str:
    return human_bytes(int(model["gpu_memory"]))
