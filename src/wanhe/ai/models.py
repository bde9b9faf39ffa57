"""What a model on disk is: a diffusers folder (written by `save_pretrained`) or a single
`.safetensors` checkpoint, its pipeline class, what it does, its size, a content hash and the
GPU memory it needs. Pure inspection of files: no torch, no diffusers import, no network.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from wanhe.model import human_bytes as human_bytes  # the AI modules name it from here

GIB = 1 << 30
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")

TEXT_TO_IMAGE = "text-to-image"
IMAGE_TO_VIDEO = "image-to-video"
TEXT_TO_VIDEO = "text-to-video"
PROMPT_SCORING = "prompt-scoring"  # a CLIP-type model that scores prompt adherence

#: Pipelines wanhe runs and tests (tiny random ones in tests/ai), by what they do.
TESTED = {
    "StableDiffusionPipeline": TEXT_TO_IMAGE,
    "StableDiffusionXLPipeline": TEXT_TO_IMAGE,
    "StableVideoDiffusionPipeline": IMAGE_TO_VIDEO,
    "WanPipeline": TEXT_TO_VIDEO,
}
#: Pipelines that should run the same way (same call signature) but are not tested here.
KNOWN = {
    "StableDiffusion3Pipeline": TEXT_TO_IMAGE,
    "FluxPipeline": TEXT_TO_IMAGE,
    "PixArtAlphaPipeline": TEXT_TO_IMAGE,
    "PixArtSigmaPipeline": TEXT_TO_IMAGE,
    "SanaPipeline": TEXT_TO_IMAGE,
    "CogVideoXPipeline": TEXT_TO_VIDEO,
    "LTXPipeline": TEXT_TO_VIDEO,
    "HunyuanVideoPipeline": TEXT_TO_VIDEO,
    "MochiPipeline": TEXT_TO_VIDEO,
    "WanImageToVideoPipeline": IMAGE_TO_VIDEO,
    "CogVideoXImageToVideoPipeline": IMAGE_TO_VIDEO,
    "LTXImageToVideoPipeline": IMAGE_TO_VIDEO,
}


class ModelError(ValueError):
    """The path is not a model wanhe can use; the message says what to do."""


@dataclass(frozen=True, slots=True)
class ModelFacts:
    path: str
    format: str  # "diffusers" or "checkpoint"
    pipeline_class: str
    task: str
    size_bytes: int
    sha256: str
    gpu_memory: int  # bytes
    tested: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise ModelError(
            f"model name {name!r} must be 1-100 letters, digits, '.', '_' or '-' "
            "(starting with a letter or digit), e.g. sdxl-base"
        )
    return name


def task_of(pipeline_class: str) -> str:
    known = TESTED.get(pipeline_class) or KNOWN.get(pipeline_class)
    if known:
        return known
    if "ImageToVideo" in pipeline_class or "Img2Vid" in pipeline_class:
        return IMAGE_TO_VIDEO
    if "Video" in pipeline_class:
        return TEXT_TO_VIDEO
    return TEXT_TO_IMAGE


def estimate_gpu_memory(weight_bytes: int, task: str) -> int:
    """Weights as stored, plus a fifth for buffers, plus working memory for activations
    (more for video). A first guess: `wanhe models add --gpu-memory` overrides it."""
    working = 2 * GIB if task == TEXT_TO_IMAGE else 6 * GIB
    if weight_bytes < 64 << 20:  # a tiny test model: its activations are tiny too
        working = 256 << 20
    return int(weight_bytes * 1.2) + working


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(folder).parts))


def content_hash(path: Path) -> str:
    """SHA-256 over every file (relative name and bytes, in name order): same content, same
    hash, wherever the folder lies."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else _files(path)
    for file in files:
        name = file.name if path.is_file() else file.relative_to(path).as_posix()
        digest.update(name.encode() + b"\0")
        with file.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def _diffusers_folder(folder: Path) -> tuple[str, int, int]:
    index_file = folder / "model_index.json"
    try:
        index = json.loads(index_file.read_text())
    except ValueError as exc:
        raise ModelError(f"{index_file} is not valid JSON ({exc}) — write the model again "
                         "with save_pretrained") from None
    cls = index.get("_class_name") if isinstance(index, dict) else None
    if not isinstance(cls, str) or not cls:
        raise ModelError(f"{index_file} names no pipeline class (_class_name)")
    for component, value in index.items():
        if component.startswith("_") or not isinstance(value, list) or value[0] is None:
            continue
        if not (folder / component).is_dir():
            raise ModelError(f"{folder} lacks the {component!r} folder that model_index.json "
                             "names — copy the whole model folder")
    files = _files(folder)
    weights = sum(p.stat().st_size for p in files if p.suffix in WEIGHT_SUFFIXES)
    if weights == 0:
        raise ModelError(f"{folder} has no weight files (.safetensors/.bin) — copy the whole "
                         "model folder")
    return cls, weights, sum(p.stat().st_size for p in files)


def _checkpoint_keys(path: Path) -> list[str]:
    """The tensor names in a .safetensors file's header (read without loading tensors)."""
    try:
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) != 8:
                raise ValueError("file too short")
            (length,) = struct.unpack("<Q", head)
            if length <= 1 or length > 100 << 20 or length + 8 > path.stat().st_size:
                raise ValueError("bad header length")
            header = json.loads(f.read(length))
        if not isinstance(header, dict):
            raise ValueError("header is not a table")
        return [k for k in header if k != "__metadata__"]
    except (ValueError, OSError, struct.error) as exc:
        raise ModelError(f"{path} is not a valid .safetensors checkpoint ({exc}) — it may be "
                         "truncated or corrupt: copy it again") from None


def _checkpoint_class(keys: list[str]) -> str | None:
    if any(k.startswith("conditioner.embedders.1.") for k in keys):
        return "StableDiffusionXLPipeline"
    if any(k.startswith("model.diffusion_model.") for k in keys):
        return "StableDiffusionPipeline"
    return None


def _is_clip(folder: Path) -> bool:
    """A transformers CLIP folder (config.json with model_type clip, and a processor)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("model_type") == "clip"


def inspect_model(path: Path, *, pipeline_class: str | None = None,
                  gpu_memory: int | None = None) -> ModelFacts:
    """Inspect `path`; raise ModelError (one line, with the fix) when it is no model."""
    path = path.expanduser()
    if not path.exists():
        raise ModelError(f"{path} does not exist — pass a diffusers model folder or a "
                         ".safetensors checkpoint")
    path = path.resolve()
    if path.is_dir() and not (path / "model_index.json").is_file() and _is_clip(path):
        files = _files(path)
        weights = sum(p.stat().st_size for p in files if p.suffix in WEIGHT_SUFFIXES)
        size = sum(p.stat().st_size for p in files)
        need = gpu_memory if gpu_memory is not None else int(weights * 1.2) + (256 << 20)
        return ModelFacts(str(path), "transformers", "CLIPModel", PROMPT_SCORING, size,
                          content_hash(path), need, True)
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelError(f"{path} is not a diffusers model folder (no model_index.json) "
                             "— save it with pipeline.save_pretrained(folder), or pass a "
                             ".safetensors checkpoint")
        found, weights, size = _diffusers_folder(path)
        fmt = "diffusers"
        cls = pipeline_class or found
    elif path.suffix == ".safetensors":
        keys = _checkpoint_keys(path)
        cls = pipeline_class or _checkpoint_class(keys) or ""
        if not cls:
            raise ModelError(f"cannot tell which pipeline {path.name} is for — pass "
                             "--pipeline, e.g. StableDiffusionXLPipeline")
        size = weights = path.stat().st_size
        fmt = "checkpoint"
    else:
        raise ModelError(f"{path} is neither a diffusers model folder nor a .safetensors "
                         "checkpoint (.ckpt/.bin pickles are refused: they can run code)")
    task = task_of(cls)
    need = gpu_memory if gpu_memory is not None else estimate_gpu_memory(weights, task)
    return ModelFacts(str(path), fmt, cls, task, size, content_hash(path), need,
                      cls in TESTED)


def parse_memory(text: str) -> int:
    """'24GB', '24 GiB', '512MB', '1e9' → bytes."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmgt]i?b?)?\s*", text.lower())
    if not match:
        raise ModelError(f"memory {text!r} is not a size — write e.g. 24GB or 512MB")
    value = float(match.group(1))
    unit = (match.group(2) or "b")[0]
    scale = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[unit]
    return int(value * scale)


