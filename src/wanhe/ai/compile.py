"""A generation spec compiled into tasks: one `gen` task per candidate (or per batch of
candidates), then one scoring task per shot. Pure: models are the catalogue's records. The gen
job type (`wanhe.jobtypes.generate`) and a storyboard's AI shots (`wanhe.story.plan`) both
compile through here."""

from __future__ import annotations

from typing import Any

from wanhe.ai.memory import host_need
from wanhe.ai.models import TEXT_TO_IMAGE
from wanhe.ai.payloads import Candidate, ClipModelRecord, GenTask, ModelRecord, ScoreTask
from wanhe.ai.spec import GenSpec
from wanhe.model import Resources, TaskSpec

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
            payload = GenTask(
                model=ModelRecord(**{k: model[k] for k in (
                    "name", "path", "format", "pipeline_class", "task", "sha256",
                    "gpu_memory")}),
                warm_key=warm_key(model), device=device, threads=spec.threads,
                shot=si, shot_name=name, job_seed=spec.seed, prompt=shot.prompt,
                negative=shot.negative, width=shot.width, height=shot.height,
                steps=shot.steps, guidance=shot.guidance, image=shot.image,
                strength=shot.strength, frames=shot.frames, fps=shot.fps,
                candidates=[Candidate(**c) for c in batch],
            ).stored()
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
                f"{name}/score", SCORE_TASK, ScoreTask(
                    shot=si, shot_name=name, prompt=shot.prompt, video=video,
                    candidates=[Candidate(**c) for c in entries],
                    output=f"{output}/{name}/scores.json",
                    clip=None if clip is None else ClipModelRecord(
                        name=clip["name"], path=clip["path"], sha256=clip["sha256"]),
                ).stored(), deps=keys, resources=Resources(cpus=0.0),
            ))
    return graph
