"""A candidate's recipe: everything that made it (model name and hash, pipeline class, library
versions, every parameter, the seed), embedded in the file it describes — a PNG text chunk
(`wanhe.recipe`, plus a human-readable `parameters`) or the MP4's `comment` metadata — and
kept in the database with the task's output.
"""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

RECIPE_KEY = "wanhe.recipe"
RECIPE_VERSION = 1


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("wanhe", "torch", "diffusers", "transformers", "safetensors", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def make_recipe(payload: dict[str, Any], index: int, seed: int, *, device: str,
                threads: int, pipeline_class: str, batch: int) -> dict[str, Any]:
    model = payload["model"]
    return {
        "recipe": RECIPE_VERSION,
        "model": {"name": model["name"], "sha256": model["sha256"],
                  "pipeline_class": pipeline_class, "format": model["format"],
                  "task": model["task"], "path": model["path"]},
        "shot": payload["shot"], "shot_name": payload["shot_name"], "index": index,
        "seed": seed, "job_seed": payload["job_seed"],
        "prompt": payload["prompt"], "negative": payload["negative"],
        "width": payload["width"], "height": payload["height"], "steps": payload["steps"],
        "guidance": payload["guidance"], "image": payload.get("image"),
        "image_sha256": payload.get("image_sha256"), "strength": payload.get("strength"),
        "frames": payload.get("frames"), "fps": payload.get("fps"),
        "device": device, "dtype": "float32", "torch_threads": threads, "batch": batch,
        "noise": "torch.Generator(device='cpu').manual_seed(seed)",
        "versions": library_versions(),
    }


def parameters_text(recipe: dict[str, Any]) -> str:
    return (f"{recipe['prompt']}\nNegative prompt: {recipe['negative']}\nSteps: "
            f"{recipe['steps']}, CFG scale: {recipe['guidance']}, Seed: {recipe['seed']}, "
            f"Size: {recipe['width']}x{recipe['height']}, Model: {recipe['model']['name']}, "
            f"Model hash: {recipe['model']['sha256'][:10]}")


def read_recipe(path: Path) -> dict[str, Any]:
    """The recipe embedded in a PNG or MP4 that wanhe made; ValueError when it has none."""
    if not path.is_file():
        raise ValueError(f"{path} does not exist")
    text: str | None = None
    if path.suffix.lower() == ".png":
        from PIL import Image

        try:
            with Image.open(path) as image:
                text = image.info.get(RECIPE_KEY)
        except OSError as exc:
            raise ValueError(f"{path} is not a readable PNG: {exc}") from None
    elif path.suffix.lower() in (".mp4", ".mov"):
        import av

        try:
            with av.open(str(path)) as container:
                text = container.metadata.get("comment")
        except Exception as exc:
            raise ValueError(f"{path} is not a readable video: {exc}") from None
    else:
        raise ValueError(f"{path} is not a PNG or MP4 made by wanhe gen")
    try:
        recipe = json.loads(text) if text else None
    except ValueError:
        recipe = None
    if not isinstance(recipe, dict) or "seed" not in recipe:
        raise ValueError(f"{path} carries no wanhe recipe (was it made by `wanhe gen`, and "
                         "not re-saved by another program?)")
    return recipe
