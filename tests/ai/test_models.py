"""Model inspection: diffusers folders and single checkpoints, bad paths, sizes (no torch)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from wanhe.ai.models import (
    ModelError,
    check_name,
    content_hash,
    inspect_model,
    parse_memory,
    task_of,
)


def fake_folder(root: Path, cls: str = "StableDiffusionPipeline") -> Path:
    root.mkdir(parents=True)
    (root / "model_index.json").write_text(json.dumps(
        {"_class_name": cls, "unet": ["diffusers", "UNet2DConditionModel"],
         "safety_checker": [None, None]}))
    (root / "unet").mkdir()
    (root / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"x" * 1000)
    return root


def safetensors_file(path: Path, keys: list[str]) -> Path:
    header = {k: {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]}
              for i, k in enumerate(keys)}
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * (4 * len(keys)))
    return path


def test_a_diffusers_folder_is_inspected(tmp_path: Path) -> None:
    facts = inspect_model(fake_folder(tmp_path / "m"))
    assert facts.format == "diffusers" and facts.pipeline_class == "StableDiffusionPipeline"
    assert facts.task == "text-to-image" and facts.tested
    assert facts.size_bytes > 1000 and len(facts.sha256) == 64 and facts.gpu_memory > 1000
    assert inspect_model(tmp_path / "m", gpu_memory=123).gpu_memory == 123


def test_the_hash_follows_content_not_place(tmp_path: Path) -> None:
    a, b = fake_folder(tmp_path / "a"), fake_folder(tmp_path / "b")
    assert content_hash(a) == content_hash(b)
    (b / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"y" * 1000)
    assert content_hash(a) != content_hash(b)


@pytest.mark.parametrize(("setup", "needle"), [
    ("missing", "does not exist"),
    ("empty", "no model_index.json"),
    ("no-component", "lacks the 'unet' folder"),
    ("bad-json", "not valid JSON"),
    ("pickle", "neither a diffusers model folder nor a .safetensors"),
    ("corrupt", "not a valid .safetensors checkpoint"),
    ("unknown-ckpt", "pass --pipeline"),
])
def test_what_is_not_a_model_says_so(tmp_path: Path, setup: str, needle: str) -> None:
    path = tmp_path / "m"
    if setup == "empty":
        path.mkdir()
    elif setup == "no-component":
        fake_folder(path)
        (path / "unet" / "diffusion_pytorch_model.safetensors").unlink()
        (path / "unet").rmdir()
    elif setup == "bad-json":
        fake_folder(path)
        (path / "model_index.json").write_text("{nope")
    elif setup == "pickle":
        path = tmp_path / "m.ckpt"
        path.write_bytes(b"\x80\x04")
    elif setup == "corrupt":
        path = tmp_path / "m.safetensors"
        path.write_bytes(b"\xff" * 64)
    elif setup == "unknown-ckpt":
        path = safetensors_file(tmp_path / "m.safetensors", ["foo.weight"])
    with pytest.raises(ModelError, match=needle):
        inspect_model(path)


def test_checkpoints_name_their_pipeline(tmp_path: Path) -> None:
    sd = safetensors_file(tmp_path / "sd.safetensors", ["model.diffusion_model.x"])
    xl = safetensors_file(tmp_path / "xl.safetensors",
                          ["model.diffusion_model.x", "conditioner.embedders.1.model.y"])
    assert inspect_model(sd).pipeline_class == "StableDiffusionPipeline"
    assert inspect_model(xl).pipeline_class == "StableDiffusionXLPipeline"
    assert inspect_model(sd).format == "checkpoint"


def test_tasks_names_and_sizes() -> None:
    assert task_of("StableVideoDiffusionPipeline") == "image-to-video"
    assert task_of("WanPipeline") == "text-to-video"
    assert task_of("SomeNewVideoPipeline") == "text-to-video"
    assert parse_memory("24GB") == 24 << 30 and parse_memory("512 MiB") == 512 << 20
    with pytest.raises(ModelError):
        parse_memory("lots")
    with pytest.raises(ModelError, match="letters, digits"):
        check_name("../etc")
