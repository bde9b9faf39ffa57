# mypy: disable-error-code="no-untyped-call"
"""Running diffusion pipelines from local folders: load (offline), call with seeded CPU
generators, write PNG/MP4 outputs with their recipe.

Only the arguments a pipeline's `__call__` accepts are passed, so text-to-image (Stable
Diffusion, SDXL, …), image-to-video (Stable Video Diffusion) and text-to-video (Wan, …)
pipelines share one path. Everything here imports torch lazily.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from wanhe.ai.models import IMAGE_TO_VIDEO, TEXT_TO_IMAGE
from wanhe.ai.recipe import RECIPE_KEY, parameters_text
from wanhe.imaging.atomic import atomic_write


class ModelLoadError(RuntimeError):
    """A registered model's files do not load (corrupt, truncated, wrong format)."""


class OutOfMemory(RuntimeError):
    """The device ran out of memory for this batch."""


def offline() -> None:
    """Nothing may reach a model hub at run time."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@dataclass(slots=True)
class Loaded:
    key: str
    pipe: Any
    device: str
    need: int
    variants: dict[str, Any] = field(default_factory=dict)

    def img2img(self) -> Any:
        if "img2img" not in self.variants:
            from diffusers import AutoPipelineForImage2Image

            variant = AutoPipelineForImage2Image.from_pipe(self.pipe)
            variant.set_progress_bar_config(disable=True)  # (it drew tqdm over --json output)
            self.variants["img2img"] = variant
        return self.variants["img2img"]


def load(model: dict[str, Any], device: str) -> Any:
    """The pipeline of a registered model, on `device` ("cuda" or "cpu"), offline."""
    offline()
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()

    try:
        if model["format"] == "checkpoint":
            cls = getattr(diffusers, model["pipeline_class"])
            pipe = cls.from_single_file(model["path"], local_files_only=True)
        else:
            pipe = diffusers.DiffusionPipeline.from_pretrained(model["path"],
                                                               local_files_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(
            f"model {model['name']!r} at {model['path']} does not load ({type(exc).__name__}: "
            f"{first[:300]}) — its files may be corrupt or incomplete: copy them again and "
            "re-register it (wanhe models add --replace)") from None
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def _accepts(fn: Callable[..., Any]) -> set[str]:
    return set(inspect.signature(fn).parameters)


def _own_file(path: str, payload: dict[str, Any]) -> str:
    """The init image checked again as the task runs (resolve, then check): on the farm it
    must be the job's own (`job_root`), refused by rule before it is opened."""
    from wanhe.lifecycle import TaskFailed
    from wanhe.storage import OutsideJob, within_job

    try:
        return str(within_job(path, payload.get("job_root")))
    except OutsideJob as exc:
        raise TaskFailed(str(exc)) from None


def image_digest(payload: dict[str, Any]) -> str:
    """The SHA-256 of the init image's bytes (the job's own file, checked as `call` reads
    it)."""
    from wanhe.storage import sha256_file

    return sha256_file(Path(_own_file(payload["image"], payload)))


def _load_image(path: str, width: int, height: int) -> Any:
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB").resize((width, height))


def latent_preview(latents: Any, task: str) -> NDArray[np.uint8]:
    """A cheap look at one candidate's current latents: three channels (of the first frame
    for videos), each stretched to 0..255, 8× nearest-neighbour. Not a decode: a glance."""
    x = latents.detach().float().cpu().numpy()
    if task == IMAGE_TO_VIDEO:  # (frames, channels, h, w)
        x = x[0]
    elif task != TEXT_TO_IMAGE and x.ndim == 4:  # (channels, frames, h, w)
        x = x[:, 0]
    x = x[:3] if x.shape[0] >= 3 else np.repeat(x[:1], 3, axis=0)
    lo = x.min(axis=(1, 2), keepdims=True)
    hi = x.max(axis=(1, 2), keepdims=True)
    img = ((x - lo) / np.maximum(hi - lo, 1e-6) * 255).astype(np.uint8).transpose(1, 2, 0)
    return np.ascontiguousarray(img.repeat(8, axis=0).repeat(8, axis=1))


def write_preview(path: Path, pixels: NDArray[np.uint8]) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")


def preview_path(output: str) -> Path:
    """Where a candidate's latent preview is kept while it is made (a hidden name: never
    published as an output)."""
    out = Path(output)
    return out.with_name(f".preview_{out.stem}.png")


def most_steps(scheduler_config: Any) -> int | None:
    """The most inference steps a scheduler can take: its training timesteps less the offset
    added to each (more ran off the end of its noise table: an IndexError mid-task)."""
    train = getattr(scheduler_config, "num_train_timesteps", None)
    if train is None:
        return None
    return int(train) - int(getattr(scheduler_config, "steps_offset", 0) or 0)


def _check_steps(pipe: Any, steps: int) -> None:
    from wanhe.lifecycle import TaskFailed

    scheduler = getattr(pipe, "scheduler", None)
    most = most_steps(scheduler.config) if scheduler is not None else None
    if most is not None and steps > most:
        raise TaskFailed(f"steps: {steps} is more than this model's scheduler takes ({most}) "
                         f"— ask for at most {most}")


def call(loaded: Loaded, payload: dict[str, Any], seeds: list[int],
         on_step: Callable[[int], None],
         previews: list[str] | None = None) -> NDArray[np.float32]:
    """Run the pipeline for `seeds` (one CPU generator each): an array of shape
    (n, H, W, 3) for images or (n, F, H, W, 3) for videos, floats in 0..1."""
    import torch

    task = payload["model"]["task"]
    pipe = loaded.pipe
    image = None
    if payload.get("image"):
        image = _load_image(_own_file(payload["image"], payload), payload["width"],
                            payload["height"])
        if task == TEXT_TO_IMAGE:
            pipe = loaded.img2img()
    _check_steps(pipe, int(payload["steps"]))
    n = len(seeds)
    generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]
    accepted = _accepts(pipe.__call__)
    args: dict[str, Any] = {
        "width": payload["width"], "height": payload["height"],
        "num_inference_steps": payload["steps"], "generator": generators,
        "output_type": "np",
    }
    if task == IMAGE_TO_VIDEO:
        args["image"] = [image] * n if n > 1 else image
        args["max_guidance_scale"] = max(1.0, float(payload["guidance"]))
        args["num_frames"] = payload["frames"]
        args["fps"] = payload["fps"]
        args["decode_chunk_size"] = payload["frames"]
        args["num_videos_per_prompt"] = 1
    else:
        args["prompt"] = [payload["prompt"]] * n
        if payload.get("negative") or "negative_prompt" in accepted:
            args["negative_prompt"] = [payload["negative"]] * n
        args["guidance_scale"] = float(payload["guidance"])
        if task != TEXT_TO_IMAGE:
            args["num_frames"] = payload["frames"]
        if image is not None:
            args["image"] = image
            args["strength"] = payload["strength"]
            args.pop("width", None)
            args.pop("height", None)

    every = max(1, int(payload["steps"]) // 4)

    def step_end(_pipe: Any, step: int, _timestep: Any, kwargs: dict[str, Any]) -> Any:
        on_step(step + 1)
        latents = kwargs.get("latents")
        if previews and latents is not None and (step + 1) % every == 0:
            try:
                for i, out in enumerate(previews[: len(latents)]):
                    write_preview(preview_path(out), latent_preview(latents[i], task))
            except Exception:  # a preview never fails the candidate
                pass
        return kwargs

    if "callback_on_step_end" in accepted:
        args["callback_on_step_end"] = step_end
        args["callback_on_step_end_tensor_inputs"] = ["latents"]
    args = {k: v for k, v in args.items() if k in accepted}
    try:
        with torch.inference_mode():
            result = pipe(**args)
    except torch.OutOfMemoryError as exc:
        raise OutOfMemory(str(exc).splitlines()[0]) from None
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower():
            raise OutOfMemory(str(exc).splitlines()[0]) from None
        raise
    out = result.images if task == TEXT_TO_IMAGE else result.frames
    return np.asarray(out, dtype=np.float32)


def to_uint8(array: NDArray[Any]) -> NDArray[np.uint8]:
    """As diffusers' numpy_to_pil: round(x × 255)."""
    return (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)


def write_png(path: Path, pixels: NDArray[np.uint8], recipe: dict[str, Any]) -> None:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text(RECIPE_KEY, json.dumps(recipe, sort_keys=True))
    info.add_text("parameters", parameters_text(recipe))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG", pnginfo=info)


def write_mp4(path: Path, frames: NDArray[np.uint8], fps: int, recipe: dict[str, Any]) -> None:
    """H.264 High profile, yuv420p (what QuickTime, Premiere and browsers play; 4:4:4 they do
    not), crf 12, `+faststart`, with the recipe in the container's metadata."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames.shape[1:3]
    with atomic_write(path) as tmp:
        container: Any = av.open(str(tmp), mode="w", format="mp4",
                                 options={"movflags": "+faststart"})
        try:
            container.metadata["comment"] = json.dumps(recipe, sort_keys=True)
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height = width + width % 2, height + height % 2
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "12", "preset": "veryfast", "profile": "high"}
            for i, frame in enumerate(frames):
                if width % 2 or height % 2:
                    frame = np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), "rgb24")
                vf.pts = i
                for packet in stream.encode(vf):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        finally:
            container.close()


def read_pixels(path: Path) -> NDArray[np.uint8]:
    """Decoded pixels of a PNG (H, W, 3) or an MP4 (F, H, W, 3), told apart by their bytes
    (not the name: `gen again -o FILE` may have any suffix)."""
    with path.open("rb") as head:
        is_png = head.read(8) == b"\x89PNG\r\n\x1a\n"
    if is_png:
        from PIL import Image

        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def write_output(path: Path, array: NDArray[Any], task: str, fps: int,
                 recipe: dict[str, Any]) -> None:
    pixels = to_uint8(array)
    if task == TEXT_TO_IMAGE:
        write_png(path, pixels, recipe)
    else:
        write_mp4(path, pixels, fps, recipe)
