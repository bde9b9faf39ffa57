"""The diffusion executor on tiny random pipelines (CPU): warm models, LRU eviction, a corrupt
model that fails cleanly and leaves the worker usable, out of memory then a smaller batch,
recipes embedded in the outputs that regenerate them bit-identically."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from wanhe.ai.models import inspect_model
from wanhe.ai.recipe import read_recipe
from wanhe.engine.executors.base import TaskContext, WorkerInfo
from wanhe.engine.executors.diffusion import DiffusionExecutor
from wanhe.lifecycle import TaskFailed, TaskOutOfMemory


def model_record(name: str, path: Path) -> dict[str, Any]:
    facts = inspect_model(path)
    return {"name": name, **{k: v for k, v in facts.to_dict().items()
                             if k in ("path", "format", "pipeline_class", "task", "sha256",
                                      "gpu_memory")}}


def payload(model: dict[str, Any], out: Path, seeds: list[int], **extra: Any) -> dict[str, Any]:
    return {
        "model": model, "warm_key": f"model:{model['name']}@{model['sha256'][:16]}",
        "device": "cpu", "threads": 1, "shot": 0, "shot_name": "s", "job_seed": 0,
        "prompt": "a red fox", "negative": "", "width": 32, "height": 32, "steps": 2,
        "guidance": 5.0, "image": None, "strength": 0.75, "frames": 3, "fps": 8,
        "candidates": [{"index": i, "seed": s, "output": str(out / f"c{i}_{s}.png")}
                       for i, s in enumerate(seeds)],
        **extra,
    }


@pytest.fixture(scope="module")
def models(tiny_sd: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("exec-models")
    other = shutil.copytree(tiny_sd, root / "sd-copy")
    broken = shutil.copytree(tiny_sd, root / "sd-broken")
    return {"a": model_record("a", tiny_sd), "b": model_record("b", other),
            "broken": model_record("broken", broken), "broken_path": broken}


def test_models_stay_warm_and_the_least_recently_used_goes(
    models: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANHE_GEN_MAX_MODELS", "1")
    ex = DiffusionExecutor(WorkerInfo())
    progress: list[float] = []
    ctx = TaskContext(progress=progress.append)
    first = ex.run("gen", payload(models["a"], tmp_path, [1, 2]), ctx)
    ex.run("gen", payload(models["a"], tmp_path, [3]), TaskContext())
    assert ex.loads == 1 and first.output["loaded"] == [ex.warm_key(payload(models["a"],
                                                                          tmp_path, [1]))]
    assert progress[-1] == 1.0 and len(progress) > 2
    ex.run("gen", payload(models["b"], tmp_path, [4]), TaskContext())
    assert ex.loads == 2 and ex.evictions == 1 and len(ex.loaded_keys() or []) == 1
    recipe = read_recipe(tmp_path / "c0_1.png")
    assert recipe["seed"] == 1 and recipe["model"]["sha256"] == models["a"]["sha256"]
    assert recipe["versions"]["torch"] and recipe["model"]["pipeline_class"]
    ex.close()


def test_a_corrupt_model_fails_cleanly_and_the_worker_goes_on(
    models: dict[str, Any], tmp_path: Path
) -> None:
    weights = next((models["broken_path"] / "unet").glob("*.safetensors"))
    weights.write_bytes(b"\x00garbage" * 10)
    ex = DiffusionExecutor(WorkerInfo())
    with pytest.raises(TaskFailed, match=r"does not load .* copy them again"):
        ex.run("gen", payload(models["broken"], tmp_path, [1]), TaskContext())
    assert ex.loaded_keys() == []
    ok = ex.run("gen", payload(models["a"], tmp_path, [1]), TaskContext())
    assert ok.output["candidates"][0]["seed"] == 1


def test_out_of_memory_then_a_smaller_batch(models: dict[str, Any], tmp_path: Path) -> None:
    """The device's memory limit is simulated (`test_oom_over_batch`: no GPU here); the
    executor's typed outcome and the retry's halved batch are real."""
    ex = DiffusionExecutor(WorkerInfo())
    job = payload(models["a"], tmp_path, [5, 6], test_oom_over_batch=1)
    with pytest.raises(TaskOutOfMemory, match="out of memory generating 2 candidate"):
        ex.run("gen", job, TaskContext(attempt=1))
    done = ex.run("gen", job, TaskContext(attempt=2))
    assert [c["recipe"]["batch"] for c in done.output["candidates"]] == [1, 1]


def test_a_recipe_regenerates_its_candidate_bit_identically(
    models: dict[str, Any], tmp_path: Path
) -> None:
    from wanhe.ai.again import regenerate

    ex = DiffusionExecutor(WorkerInfo())
    ex.run("gen", payload(models["a"], tmp_path, [42]), TaskContext())
    again = regenerate(tmp_path / "c0_42.png", model=models["a"])
    assert again.identical and again.max_difference == 0 and not again.note
    other = dict(models["a"], sha256="0" * 64)
    with pytest.raises(ValueError, match="the same result needs the same model files"):
        regenerate(tmp_path / "c0_42.png", model=other)


def test_latent_previews_while_a_candidate_is_made(models: dict[str, Any], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from wanhe.ai import pipelines

    seen: list[Path] = []
    write = pipelines.write_preview
    monkeypatch.setattr(pipelines, "write_preview",
                        lambda path, pixels: (seen.append(path), write(path, pixels)))
    DiffusionExecutor(WorkerInfo()).run("gen", payload(models["a"], tmp_path, [3]),
                                        TaskContext())
    assert seen and seen[0].name == ".preview_c0_3.png" and not seen[0].exists()
    for task, shape in (("text-to-image", (4, 4, 4)), ("image-to-video", (3, 4, 4, 4)),
                        ("text-to-video", (16, 2, 4, 4))):
        assert pipelines.latent_preview(torch.randn(shape), task).shape == (32, 32, 3)


def test_cancel_stops_generation_at_the_next_step(
    models: dict[str, Any], tmp_path: Path
) -> None:
    from wanhe.lifecycle import TaskCancelled

    ex = DiffusionExecutor(WorkerInfo())
    progress: list[float] = []

    def report(fraction: float) -> None:  # the user cancels as soon as the first step is done
        progress.append(fraction)
        ex.cancel()

    ctx = TaskContext(progress=report)
    with pytest.raises(TaskCancelled):
        ex.run("gen", payload(models["a"], tmp_path, [1], steps=500), ctx)
    assert len(progress) == 1 and progress[0] < 0.01  # one step of 500, then it stopped
    assert not list(tmp_path.glob("c0_1.png"))  # no output from a cancelled attempt
    ex.close()
