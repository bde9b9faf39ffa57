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

from wanhe.ai.compile import GEN_TASK, SCORE_TASK, compile_gen_job, resolve
from wanhe.ai.memory import device_need, images_per_task
from wanhe.ai.models import IMAGE_TO_VIDEO, PROMPT_SCORING, human_bytes
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

KIND = "gen"


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
