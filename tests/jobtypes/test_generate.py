"""The gen job type: shots compile to candidate tasks (one GPU each, or the CPU) plus one
scoring task per shot; models are checked at submit. Pure: no torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from wanhe.ai.capacity import Capacity
from wanhe.ai.models import GIB
from wanhe.ai.spec import GenSpec
from wanhe.jobtypes.base import InputError, IntakeContext, JobFolder
from wanhe.jobtypes.registry import job_type

MODELS: dict[str, dict[str, Any]] = {
    "sd": {"name": "sd", "path": "/m/sd", "format": "diffusers",
           "pipeline_class": "StableDiffusionPipeline", "task": "text-to-image",
           "sha256": "a" * 64, "gpu_memory": 8 * GIB},
    "svd": {"name": "svd", "path": "/m/svd", "format": "diffusers",
            "pipeline_class": "StableVideoDiffusionPipeline", "task": "image-to-video",
            "sha256": "b" * 64, "gpu_memory": 100 * GIB},
}


def ctx(gpus: int = 2, gpu_memory: int | None = 80 * GIB) -> IntakeContext:
    return IntakeContext(models=MODELS.get,
                         capacity=lambda: Capacity(gpus, gpu_memory, 64 * GIB))


def compile_spec(raw: dict[str, Any], context: IntakeContext) -> Any:
    kind = job_type("gen")
    options = kind.parse_options(raw)
    inspected = kind.inspect(context, None, options)
    folder = JobFolder(Path("/in"), Path("/out"), Path("/work"))
    return kind.compile(options, inspected, None, folder), inspected


def test_a_spec_compiles_to_candidates_and_a_score_per_shot() -> None:
    raw = {"seed": 10, "shots": [{"model": "sd", "prompt": "fox", "candidates": 3},
                                 {"model": "sd", "prompt": "car", "candidates": 2,
                                  "name": "car"}]}
    compiled, inspected = compile_spec(raw, ctx())
    keys = [t.key for t in compiled.tasks]
    assert keys == ["shot000/c000", "shot000/c001", "shot000/c002", "shot000/score",
                    "car/c000", "car/c001", "car/score"]
    gen = [t for t in compiled.tasks if t.kind == "gen"]
    assert all(t.resources.gpus == 1 and t.affinity == gen[0].affinity for t in gen)
    assert [t.payload["candidates"][0]["seed"] for t in gen] == [10, 11, 12, 1010, 1011]
    assert compiled.tasks[3].deps == keys[:3] and compiled.tasks[3].resources.cpus == 0
    assert not inspected.warnings and compiled.spec["device"] == "gpu"
    files = job_type("gen").deliverables(compiled.spec)
    assert "/out/car/c001_seed1011.png" in files and "/out/car/scores.json" in files


def test_a_farm_without_gpus_runs_on_the_cpu_and_says_so() -> None:
    compiled, inspected = compile_spec(
        {"batch": 2, "shots": [{"model": "sd", "prompt": "fox", "candidates": 3}]},
        ctx(gpus=0))
    gen = [t for t in compiled.tasks if t.kind == "gen"]
    assert [len(t.payload["candidates"]) for t in gen] == [2, 1]
    assert all(t.resources.gpus == 0 for t in gen)
    assert "no GPU" in inspected.warnings[0]


@pytest.mark.parametrize(("raw", "field", "needle"), [
    ({"shots": [{"model": "nope", "prompt": "x"}]}, "options.shots.0.model",
     "unknown model 'nope'"),
    ({"shots": [{"model": "svd", "image": "a.png"}]}, "options.shots.0.model",
     "needs 100.0 GiB of GPU memory; the largest GPU worker has 80.0 GiB"),
    ({"shots": [{"model": "sd"}]}, "options.shots.0.prompt", "needs a prompt"),
    ({"shots": [{"model": "sd", "prompt": "x", "image": "/etc/passwd"}]},
     "options.shots.0.image", "not an absolute path"),
    ({"shots": [{"model": "sd", "prompt": "x", "size": "100x64"}]}, "options.shots.0.size",
     "not a multiple of 8"),
    ({"shots": []}, "options.shots", "0 prompts"),
])
def test_bad_submissions_name_the_field(raw: dict[str, Any], field: str, needle: str) -> None:
    with pytest.raises(InputError) as caught:
        compile_spec(raw, ctx())
    assert caught.value.field == field and needle in caught.value.message


def test_image_to_video_needs_an_image_and_cpu_memory_is_checked() -> None:
    with pytest.raises(InputError, match="give the first frame"):
        compile_spec({"shots": [{"model": "svd"}]}, ctx(gpu_memory=None))
    with pytest.raises(InputError, match="this farm has no GPU and its largest worker"):
        compile_spec({"shots": [{"model": "svd", "image": "a.png"}]}, ctx(gpus=0))


def test_labels() -> None:
    from wanhe.jobtypes.base import TaskView

    kind = job_type("gen")
    assert kind.task_label(TaskView("car/c003", "gen")) == "car candidate 3"
    assert kind.task_label(TaskView("car/score", "gen_score")) == "car scoring"
    assert GenSpec.model_validate({"shots": [{"model": "m", "prompt": "p"}]}).batch == 1


def test_a_shot_too_big_for_every_worker_is_refused_naming_the_number() -> None:
    small_farm = IntakeContext(models=MODELS.get,
                               capacity=lambda: Capacity(0, None, 8 * GIB))
    with pytest.raises(InputError) as refused:
        compile_spec({"shots": [{"model": "sd", "prompt": "fox", "size": "8192x8192"}]},
                     small_farm)
    assert refused.value.field == "options.shots.0.size"
    message = refused.value.message
    assert message.startswith("shot 0 (model 'sd' at 8192x8192, 1 image(s) at once) needs ")
    assert "GiB of memory; the largest worker has 8.0 GiB — lower the size" in message
    # a GPU farm checks the GPU's memory, with the model's need included
    with pytest.raises(InputError, match=r"of GPU memory; the largest GPU worker has 80\.0"):
        compile_spec({"shots": [{"model": "sd", "prompt": "fox", "size": "8192x8192"}]},
                     ctx())


def test_gen_tasks_reserve_memory_by_size_and_batch() -> None:
    def memory(size: str, batch: int) -> int:
        compiled, _ = compile_spec({"batch": batch, "shots": [
            {"model": "sd", "prompt": "fox", "size": size, "candidates": batch}]}, ctx(gpus=0))
        gen = [t for t in compiled.tasks if t.kind == "gen"]
        return int(gen[0].resources.memory)

    assert memory("512x512", 1) > 8 * GIB  # the model's need and more
    assert memory("1024x1024", 1) > memory("512x512", 1)
    assert memory("512x512", 4) > memory("512x512", 2) > memory("512x512", 1)
