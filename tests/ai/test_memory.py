"""A generation task's memory need grows with its size, batch and frames, from the model's
registered need: 8192x8192 needs more than any common machine, 512x512 about 0.4 GiB more
than the model."""

from __future__ import annotations

from wanhe.ai.memory import BYTES_PER_PIXEL, activation_bytes, device_need, host_need
from wanhe.ai.models import GIB

MODEL = {"gpu_memory": 2 * GIB, "size_bytes": GIB, "task": "text-to-image"}


def test_activations_are_linear_in_pixels_and_images() -> None:
    assert activation_bytes(512, 512, 1) == 512 * 512 * BYTES_PER_PIXEL
    assert activation_bytes(1024, 1024, 2) == 8 * activation_bytes(512, 512, 1)
    assert 0.35 * GIB < activation_bytes(512, 512, 1) < 0.45 * GIB
    assert activation_bytes(8192, 8192, 1) > 90 * GIB  # the 8192x8192 job: refused


def test_device_need_is_the_model_plus_one_batch() -> None:
    one = device_need(2 * GIB, "text-to-image", 512, 512, 1, 25)
    assert one == 2 * GIB + activation_bytes(512, 512, 1)
    # frames count only for video
    assert device_need(2 * GIB, "text-to-image", 512, 512, 1, 99) == one
    video = device_need(2 * GIB, "image-to-video", 512, 512, 1, 25)
    assert video == 2 * GIB + activation_bytes(512, 512, 25)


def test_a_cpu_task_reserves_everything_a_gpu_task_its_weights_and_outputs() -> None:
    cpu = host_need(MODEL, "cpu", "text-to-image", 1024, 1024, 2, 1)
    gpu = host_need(MODEL, "gpu", "text-to-image", 1024, 1024, 2, 1)
    assert cpu > device_need(2 * GIB, "text-to-image", 1024, 1024, 2, 1)
    assert GIB < gpu < cpu
