"""What the farm's workers offer a model: how many GPUs, the largest GPU's memory, the
largest worker's RAM (for CPU runs). Used at submit to refuse a model no worker can hold.

GPU memory comes from, in order: `WANHE_GPU_MEMORY_GB` (the farm's largest GPU, set by the
operator), the Ray custom resource `gpu_memory_gb` a node declares (`ray start --resources
'{"gpu_memory_gb": 80}'`: memory of each of its GPUs), or CUDA in this process.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from wanhe.ai.models import GIB, human_bytes


@dataclass(frozen=True, slots=True)
class Capacity:
    gpus: int
    gpu_memory: int | None  # the largest GPU's, bytes; None: unknown
    cpu_memory: int  # the largest worker's RAM, bytes

    def refuse(self, need: int, model: str, device: str) -> str | None:
        """Why a model needing `need` bytes cannot run here (None: it can)."""
        if device == "gpu":
            if self.gpu_memory is None or need <= self.gpu_memory:
                return None
            return (f"model {model!r} needs {human_bytes(need)} of GPU memory; the largest GPU "
                    f"worker has {human_bytes(self.gpu_memory)} — use a smaller model, or "
                    "re-register it with a smaller --gpu-memory if the estimate is wrong")
        if need <= self.cpu_memory:
            return None
        return (f"model {model!r} needs {human_bytes(need)} of memory; this farm has no GPU "
                f"and its largest worker has {human_bytes(self.cpu_memory)} of RAM — add a GPU "
                "worker with enough memory")


    def refuse_size(self, need: int, what: str, device: str) -> str | None:
        """Why a task needing `need` bytes of its device's memory (`what` it is, e.g. "shot
        0 (model 'sd' at 8192x8192, 1 image(s))") cannot run here (None: it can)."""
        have = self.gpu_memory if device == "gpu" else self.cpu_memory
        if have is None or need <= have:
            return None
        kind = "GPU memory" if device == "gpu" else "memory"
        largest = "the largest GPU worker" if device == "gpu" else "the largest worker"
        return (f"{what} needs {human_bytes(need)} of {kind}; {largest} has "
                f"{human_bytes(have)} — lower the size or the batch, or add a bigger machine")


def _ray_gpu_memory() -> int | None:
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    best = None
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        res = node.get("Resources", {})
        if res.get("GPU") and res.get("gpu_memory_gb"):
            best = max(best or 0, int(float(res["gpu_memory_gb"]) * GIB))
    return best


def _ray_cpu_memory() -> int | None:
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    values = [int(n.get("Resources", {}).get("memory", 0)) for n in ray.nodes()
              if n.get("Alive")]
    return max(values, default=0) or None


def _cuda_memory() -> int | None:
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available():
            return int(max(torch.cuda.get_device_properties(i).total_memory
                           for i in range(torch.cuda.device_count())))
    except Exception:
        return None
    return None


def detect(gpus: int) -> Capacity:
    import psutil

    env = os.environ.get("WANHE_GPU_MEMORY_GB")
    gpu_memory = int(float(env) * GIB) if env else (_ray_gpu_memory() or _cuda_memory())
    cpu_memory = _ray_cpu_memory() or int(psutil.virtual_memory().total)
    return Capacity(gpus=gpus, gpu_memory=gpu_memory if gpus else None, cpu_memory=cpu_memory)
