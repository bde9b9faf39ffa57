"""The generation probe: what one model's candidates cost on this process's device, measured
(`wanhe estimate SPEC` runs it in its own process, a farm on a worker as a `gen_probe` task).

The model is loaded (timed: its load), one candidate of `few` steps is run (the cold call:
its first-call warm-up), then the same again and one of `more` steps, warm (each timed twice
on a CPU, the lesser counts: other tenants only add), fitted to `fixed + per_step · steps`
(:mod:`wanhe.estimate.ai`). Nothing is written. Apart from it, :func:`probe_worker_start`
times what a worker imports before its first candidate, in a fresh interpreter.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from wanhe.estimate.ai import GenProbe, fit_steps

__all__ = ["ProbeStopped", "Prober", "probe_worker_start"]

WARM_REPEATS = 2  # on a CPU, each warm call is timed this often (the least counts)


class ProbeStopped(Exception):
    """The probe was told to stop (its `stop()` said so at a denoising step)."""


class _Clock:
    """Seconds of what the estimate bills: the process's CPU on a CPU run (every torch
    thread), the wall on a GPU run (the GPU's time, after its queue is drained)."""

    def __init__(self, device: str) -> None:
        self.device = device

    def now(self) -> float:
        if self.device == "gpu":
            import torch

            torch.cuda.synchronize()
            return time.perf_counter()
        return time.process_time()


class Prober:
    """Runs probes in this process, keeping each model loaded for the next shot's probe."""

    def __init__(self, device: str, threads: int, stop: Callable[[], bool] | None = None
                 ) -> None:
        self.device = device
        self.threads = threads
        self.stop = stop  # asked at every denoising step: True ends the probe (ProbeStopped)
        self.clock = _Clock(device)
        self.loaded: dict[str, tuple[Any, float]] = {}  # warm key -> (Loaded, load seconds)

    def close(self) -> None:
        """Drop the models this prober loaded (a worker's memory is the farm's)."""
        import gc

        self.loaded.clear()
        gc.collect()
        if self.device == "gpu":
            import torch

            torch.cuda.empty_cache()

    def probe(self, payload: dict[str, Any], steps: tuple[int, int]) -> GenProbe:
        from wanhe.ai import pipelines

        key = str(payload["warm_key"])
        spent = 0.0
        _import_worker_libraries()  # their cost is the worker's start, timed apart
        if key not in self.loaded:
            started = self.clock.now()
            pipe = pipelines.load(payload["model"], "cuda" if self.device == "gpu" else "cpu")
            load_s = self.clock.now() - started
            spent += load_s
            self.loaded[key] = (pipelines.Loaded(key, pipe, self.device, 0), load_s)
        loaded, load_s = self.loaded[key]
        seed = int(payload["candidates"][0]["seed"])
        few, more = steps

        def on_step(_step: int) -> None:
            if self.stop is not None and self.stop():
                raise ProbeStopped()

        def timed(count: int, repeats: int = 1) -> float:
            """The least of `repeats` calls: other tenants of a shared machine only ever add
            (torch's CPU threads spin while they wait for a core)."""
            nonlocal spent
            took = math.inf
            for _ in range(repeats):
                started = self.clock.now()
                pipelines.call(loaded, {**payload, "steps": count}, [seed], on_step)
                once = self.clock.now() - started
                spent += once
                took = min(took, once)
            return took

        repeats = WARM_REPEATS if self.device == "cpu" else 1
        first = timed(few)
        warm = [(few, timed(few, repeats))]
        if more > few:
            warm.append((more, timed(more, repeats)))
        fixed, per_step = fit_steps(warm)
        return GenProbe(device=self.device, threads=self.threads, load_s=load_s,
                        first_s=first + per_step * (1 - few), fixed_s=fixed,
                        per_step_s=per_step, probe_s=spent, steps_probed=(few, more))


WORKER_START = ("import torch, diffusers, transformers\n"
                "import wanhe.ai.pipelines, wanhe.ai.recipe")
WORKER_BASE = "import wanhe.engine.worker, wanhe.engine.executors.diffusion"


def _import_worker_libraries() -> None:
    import diffusers  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401

    import wanhe.ai.recipe  # noqa: F401


def probe_worker_start(device: str) -> float:
    """What a worker pays before its first candidate beside the model's load: importing
    torch, diffusers, transformers and wanhe's pipelines, timed in a fresh interpreter less
    one that imports only what a worker holds anyway (its engine and the diffusion
    executor). CPU seconds on a CPU (every thread), wall seconds on a GPU (the GPU is
    billed for the worker's wall). The least of two tries: other tenants only add."""

    def cost(code: str) -> float:
        best = math.inf
        for _ in range(2):
            before = os.times()
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, timeout=300,
                           capture_output=True)
            after = os.times()
            took = (time.perf_counter() - started if device == "gpu" else
                    after.children_user + after.children_system
                    - before.children_user - before.children_system)
            best = min(best, took)
        return best

    return max(cost(f"{WORKER_BASE}\n{WORKER_START}") - cost(WORKER_BASE), 0.0)
