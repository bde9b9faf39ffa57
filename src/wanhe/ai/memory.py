"""How much memory one generation task needs: its model, plus what one batch at its size holds.

The model's part is its registered need (`wanhe models add`: weights as stored, a fifth for
buffers, working memory; or what the studio said with --gpu-memory). The size's part is an
estimate of the activations a diffusers pipeline holds per output pixel, in float32 (the dtype
wanhe runs, `ai.recipe`):

- the VAE decoder's last blocks run at full resolution with 128 channels; a ResNet block
  there holds its input, the normalised map and the convolution's output at once:
  3 × 128 × 4 B = 1536 B per pixel;
- the denoiser runs on latents at 1/8 of each side (1/64 of the pixels), with up to 320
  channels, doubled by classifier-free guidance, about 4 maps alive: 320 × 2 × 4 × 4 B / 64
  ≈ 80 B per pixel (attention runs as PyTorch's memory-efficient SDPA: linear in pixels).

So 1616 B per output pixel, times the candidates of a batch, times the frames of a video
(decoded in one chunk). 512×512 adds 0.4 GiB per image; 8192×8192 adds 101 GiB, which no
worker has: such a shot is refused at submit instead of growing until the kernel or Ray's
memory monitor kills the worker. It is an estimate from the shapes, not a measurement: the
cgroup limit the sandbox sets from it is the backstop.
"""

from __future__ import annotations

from wanhe.ai.models import TEXT_TO_IMAGE

DECODER_BYTES_PER_PIXEL = 3 * 128 * 4
DENOISER_BYTES_PER_PIXEL = 320 * 2 * 4 * 4 // 64
BYTES_PER_PIXEL = DECODER_BYTES_PER_PIXEL + DENOISER_BYTES_PER_PIXEL  # 1616
HOST_OVERHEAD = 256 << 20  # the Python process, torch and the pipeline's objects


def images_per_task(task: str, batch: int, frames: int) -> int:
    """Output images one task holds at once: its batch, times the frames of a video."""
    return batch * (1 if task == TEXT_TO_IMAGE else frames)


def activation_bytes(width: int, height: int, images: int) -> int:
    """Working memory for `images` outputs of width × height (see the module doc)."""
    return width * height * images * BYTES_PER_PIXEL


def device_need(model_need: int, task: str, width: int, height: int, batch: int,
                frames: int) -> int:
    """Memory of the device that runs the pipeline (the GPU, or RAM on a CPU run)."""
    images = images_per_task(task, batch, frames)
    return model_need + activation_bytes(width, height, images)


def host_need(model: dict[str, object], device: str, task: str, width: int, height: int,
              batch: int, frames: int) -> int:
    """RAM a task reserves on its worker's node: everything on a CPU run; on a GPU run the
    weights (loaded into RAM before they move to the GPU) and the decoded outputs."""
    need = int(str(model.get("gpu_memory") or 0))
    if device == "cpu":
        return HOST_OVERHEAD + device_need(need, task, width, height, batch, frames)
    weights = int(str(model.get("size_bytes") or need))
    outputs = width * height * images_per_task(task, batch, frames) * 3 * 4
    return HOST_OVERHEAD + weights + outputs
