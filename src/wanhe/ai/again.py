"""`wanhe gen again FILE`: re-create a candidate from the recipe embedded in it, on the CPU,
and compare it with the file, pixel for pixel."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wanhe.ai.models import content_hash
from wanhe.ai.recipe import read_recipe


@dataclass(slots=True)
class Again:
    original: Path
    output: Path
    identical: bool
    max_difference: int
    recipe: dict[str, Any]
    note: str


def regenerate(path: Path, *, model: dict[str, Any] | None, output: Path | None = None) -> Again:
    """Run the recipe of `path` again. `model`: the catalogue's record of the recipe's model
    (None: use the path in the recipe); its content hash must match the recipe's."""
    import torch

    from wanhe.ai import pipelines
    from wanhe.ai.recipe import make_recipe

    recipe = read_recipe(path)
    wanted = recipe["model"]
    record = dict(model) if model is not None else {
        "name": wanted["name"], "path": wanted["path"], "format": wanted["format"],
        "pipeline_class": wanted["pipeline_class"], "task": wanted["task"],
        "sha256": wanted["sha256"], "gpu_memory": 0}
    if not Path(record["path"]).exists():
        raise ValueError(f"model {wanted['name']!r} is not at {record['path']} — register it "
                         "(wanhe models add) or pass --model-path")
    if record["sha256"] != wanted["sha256"] or content_hash(Path(record["path"])) != \
            wanted["sha256"]:
        raise ValueError(f"the files of model {wanted['name']!r} differ from the ones that made "
                         f"{path.name} (content hash {wanted['sha256'][:12]}…) — the same "
                         "result needs the same model files")
    notes = []
    if recipe.get("device") != "cpu":
        notes.append(f"made on {recipe.get('device')}; re-made on the CPU: expect small "
                     "differences (results differ between devices)")
    if int(recipe.get("batch") or 1) > 1:
        notes.append(f"made in a batch of {recipe['batch']}; re-made alone: batched and single "
                     "results can differ by rounding")
    image_sha256 = None
    if recipe.get("image"):
        init = Path(recipe["image"])
        if not init.is_file():
            raise ValueError(f"the init image {init} that made {path.name} is not there — "
                             "put it back at that path to make the candidate again")
        from wanhe.storage import sha256_file

        image_sha256 = sha256_file(init)
        if recipe.get("image_sha256") and recipe["image_sha256"] != image_sha256:
            notes.append(f"the init image {init.name} changed since (sha256 "
                         f"{recipe['image_sha256'][:12]}… then, {image_sha256[:12]}… now)")
    note = "; ".join(notes)
    threads = int(recipe.get("torch_threads") or 0)
    if threads:
        torch.set_num_threads(threads)
    out = output or path.with_name(f"{path.stem}.again{path.suffix}")
    payload = {
        "model": record, "shot": recipe["shot"], "shot_name": recipe["shot_name"],
        "job_seed": recipe["job_seed"], "prompt": recipe["prompt"],
        "negative": recipe["negative"], "width": recipe["width"], "height": recipe["height"],
        "steps": recipe["steps"], "guidance": recipe["guidance"], "image": recipe.get("image"),
        "image_sha256": image_sha256,
        "strength": recipe.get("strength"), "frames": recipe.get("frames"),
        "fps": recipe.get("fps"),
    }
    pipe = pipelines.load(record, "cpu")
    loaded = pipelines.Loaded("again", pipe, "cpu", 0)
    array = pipelines.call(loaded, payload, [int(recipe["seed"])], lambda _step: None)
    fresh = make_recipe(payload, recipe["index"], recipe["seed"], device="cpu",
                        threads=threads, pipeline_class=type(pipe).__name__, batch=1)
    pipelines.write_output(out, array[0], record["task"], int(recipe.get("fps") or 8), fresh)
    before = pipelines.read_pixels(path).astype(np.int16)
    after = pipelines.read_pixels(out).astype(np.int16)
    same_shape = before.shape == after.shape
    diff = int(np.abs(before - after).max()) if same_shape else 255
    return Again(path, out, same_shape and diff == 0, diff, recipe, note)
