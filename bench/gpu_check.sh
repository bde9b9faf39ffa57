#!/usr/bin/env bash
# Cycles on a GPU machine (CUDA or OptiX): render the demo frame as 2x2 tiles on the GPU twice
# and once whole on the CPU; check the GPU tiles are bit-exact among themselves (the same
# tiles rendered again give the same pixels, and the assembled frame equals a whole-frame GPU
# render), and report the GPU's speed-up over this machine's CPU.
#
#   bash bench/gpu_check.sh            # needs an NVIDIA GPU, the venv, PYTHONPATH=src
#
# This development machine has no GPU: run it where one is (see docs/deploy.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
OUT=${OUT:-out/gpu_check}
mkdir -p "$OUT"
if [ ! -e /dev/nvidia0 ]; then
  echo "gpu_check: no /dev/nvidia0 here: this machine has no NVIDIA GPU" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
[ -f "$OUT/demo.blend" ] || "$PY" examples/make_scenes.py demo "$OUT/demo.blend"
exec "$PY" - "$OUT" <<'PYEOF'
import sys, time
from pathlib import Path

import numpy as np

from wanhe.blender.protocol import RenderRequest, border_from_pixels
from wanhe.blender.runner import BlenderProcess
from wanhe.imaging.exr import read_layers

out = Path(sys.argv[1])
scene = str((out / "demo.blend").resolve())
COMBINED = "ViewLayer.Combined"


def render(b, name, device, border=None, size=None, samples=64):
    path = out / f"{name}.exr"
    t0 = time.monotonic()
    reply = b.render(RenderRequest(scene=scene, frame=1, output=str(path.resolve()),
                                   device=device, samples=samples, border=border,
                                   expected_size=size, seed=1, adaptive_sampling=False),
                       timeout_s=1800)
    wall = time.monotonic() - t0
    assert reply.ok, reply.error
    print(f"{name}: {device} {reply.backend} {reply.gpus} {wall:.2f} s")
    return read_layers(path).channels, wall


with BlenderProcess() as b:
    whole_gpu, _ = render(b, "whole_gpu_warmup", "GPU")  # driver and kernel load
    whole_gpu, gpu_s = render(b, "whole_gpu", "GPU")
    whole_cpu, cpu_s = render(b, "whole_cpu", "CPU")
    h, w = whole_gpu[COMBINED].shape[:2]
    for attempt in (1, 2):
        frame = np.zeros_like(whole_gpu[COMBINED])
        for ty in range(2):
            for tx in range(2):
                x0, x1 = tx * w // 2, (tx + 1) * w // 2
                y0, y1 = ty * h // 2, (ty + 1) * h // 2
                border = border_from_pixels(x0, x1, y0, y1, w, h)
                tile, _ = render(b, f"tile{attempt}_{tx}{ty}", "GPU", border, (x1 - x0, y1 - y0))
                # EXR rows run top-down; border y counts from the bottom
                frame[h - y1:h - y0, x0:x1] = tile[COMBINED]
        if attempt == 1:
            first = frame
        else:
            print("tiles re-rendered bit-exact:", np.array_equal(first, frame))
    print("assembled GPU tiles == whole GPU frame:", np.array_equal(first, whole_gpu[COMBINED]))
    diff = float(np.abs(whole_cpu[COMBINED] - whole_gpu[COMBINED]).max())
    print(f"CPU vs GPU max difference (why a frame never mixes them): {diff:.3g}")
    print(f"speed-up of the GPU over this machine's CPU: {cpu_s / gpu_s:.2f}x "
          f"(CPU {cpu_s:.2f} s, GPU {gpu_s:.2f} s, whole 640x360 frame, 64 samples)")
PYEOF
