"""The diffusion executor: runs `gen` tasks (seeded candidates of one shot) with the models it
keeps loaded (warm key = the model), evicting the least recently used one when a new model
needs room.

Room is the device's memory (the GPU's, or for CPU runs half the machine's RAM, or
`WANHE_GEN_MEMORY_GB`), counted with each model's registered need, and at most
`WANHE_GEN_MAX_MODELS` models (default 4). A model that does not load fails the attempt with a
clear reason and leaves nothing half-loaded; the worker goes on. Out of device memory, the
attempt ends `out of memory` and its retry runs the batch in halves.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wanhe.ai.payloads import GenTask
from wanhe.engine.executors.base import (
    Executor,
    TaskContext,
    TaskResult,
    noted,
    self_peak_rss,
)
from wanhe.engine.executors.registry import register_executor
from wanhe.lifecycle import TaskCancelled, TaskFailed, TaskOutOfMemory
from wanhe.metering import METER
from wanhe.payloads import PayloadError


class _Stop(Exception):
    """Raised from the step callback to stop a cancelled attempt."""


def _device_memory(device: str) -> int:
    env = os.environ.get("WANHE_GEN_MEMORY_GB")
    if env:
        return int(float(env) * (1 << 30))
    if device == "cuda":
        import torch

        return int(torch.cuda.get_device_properties(0).total_memory * 0.9)
    import psutil

    return int(psutil.virtual_memory().total * 0.5)


@register_executor
class DiffusionExecutor(Executor):
    kinds = frozenset({"gen"})

    def __init__(self, worker: Any) -> None:
        super().__init__(worker)
        self._loaded: OrderedDict[str, Any] = OrderedDict()  # warm key -> ai.pipelines.Loaded
        self._cancel = threading.Event()
        self.loads = 0  # models loaded by this executor (the affinity test counts them)
        self.evictions = 0

    def warm_key(self, payload: dict[str, Any]) -> str | None:
        key = payload.get("warm_key")
        return None if key is None else str(key)

    def loaded_keys(self) -> list[str] | None:
        return list(self._loaded)

    def warm(self, key: str) -> None:
        return None  # the model's record comes with its first task

    def _device(self, payload: dict[str, Any]) -> str:
        if payload.get("device") == "gpu" and self.worker.gpu_ids:
            return "cuda"
        return "cpu"

    def _evict(self, key: str) -> None:
        self._loaded.pop(key, None)
        self.evictions += 1
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception:
            pass

    def _get(self, payload: dict[str, Any], device: str, ctx: TaskContext) -> Any:
        from wanhe.ai import pipelines

        key = str(payload["warm_key"])
        found = self._loaded.get(key)
        if found is not None and found.device == device:
            self._loaded.move_to_end(key)
            ctx.log(f"[wanhe] model {payload['model']['name']} is warm")
            return found
        if found is not None:
            self._evict(key)
        need = int(payload["model"].get("gpu_memory") or 0)
        room = _device_memory(device)
        cap = int(os.environ.get("WANHE_GEN_MAX_MODELS", "4"))
        while self._loaded and (
            sum(m.need for m in self._loaded.values()) + need > room or len(self._loaded) >= cap
        ):
            old = next(iter(self._loaded))
            ctx.log(f"[wanhe] unloading {old} (least recently used) to make room")
            self._evict(old)
        ctx.log(f"[wanhe] loading model {payload['model']['name']} on {device}")
        started = time.monotonic()
        pipe = pipelines.load(payload["model"], device)  # ModelLoadError: nothing kept
        self.loads += 1
        ctx.log(f"[wanhe] loaded in {time.monotonic() - started:.2f} s")
        loaded = pipelines.Loaded(key, pipe, device, need)
        self._loaded[key] = loaded
        return loaded

    def run(self, kind: str, payload: dict[str, Any], ctx: TaskContext) -> TaskResult:
        try:
            task = GenTask.read(payload)
        except PayloadError as exc:
            raise TaskFailed(str(exc)) from None
        started = time.monotonic()
        self._cancel = ctx.cancelled
        with METER.task() as share:  # in a local run, other workers' tasks share the process

            def spent() -> dict[str, Any]:
                return {"wall_s": time.monotonic() - started, "cpu_s": METER.read(share),
                        "peak_rss": self_peak_rss()}

            result = self._generate(task, payload, ctx, spent)
        result.cpu_s = share.cpu_s
        noted(share, result.output)
        return result

    def _generate(self, task: GenTask, payload: dict[str, Any], ctx: TaskContext,
                  spent: Callable[[], dict[str, Any]]) -> TaskResult:
        import torch

        from wanhe.ai import pipelines
        from wanhe.ai.recipe import make_recipe

        device = self._device(payload)
        self._contain(ctx)
        threads = task.threads or (os.cpu_count() or 1)
        if device == "cpu":
            torch.set_num_threads(threads)
        try:
            loaded = self._get(payload, device, ctx)
        except pipelines.ModelLoadError as exc:
            self._evict(task.warm_key)
            raise TaskFailed(str(exc), **spent()) from None
        if payload.get("image"):  # the init image's digest goes into every recipe, so that
            payload = {**payload, "image_sha256": pipelines.image_digest(payload)}  # `gen
            # again` can say when it changed
        candidates = task.candidates
        # a retry after running out of memory runs the batch in halves, then quarters, …
        size = max(1, len(candidates) >> max(0, ctx.attempt - 1))
        test_limit = task.test_oom_over_batch  # tests: a device that holds no more
        steps_total = task.steps * len(candidates)
        done_steps = 0
        outputs: list[dict[str, Any]] = []
        for at in range(0, len(candidates), size):
            group = candidates[at : at + size]

            def on_step(step: int, base: int = done_steps, width: int = len(group)) -> None:
                if ctx.cancelled.is_set():
                    raise _Stop()
                ctx.progress(min(1.0, (base + step * width) / steps_total))

            try:
                if test_limit is not None and len(group) > test_limit:
                    raise pipelines.OutOfMemory(
                        f"test device holds {test_limit} candidate(s) at once")
                array = pipelines.call(loaded, payload, [c.seed for c in group], on_step,
                                       previews=[c.output for c in group])
            except _Stop:
                raise TaskCancelled("cancelled", **spent()) from None
            except pipelines.OutOfMemory as exc:
                if device == "cuda":
                    torch.cuda.empty_cache()
                raise TaskOutOfMemory(
                    f"out of memory generating {len(group)} candidate(s) at "
                    f"{task.width}x{task.height} with {task.model.name}: "
                    f"{exc} — the retry runs smaller batches", **spent()) from None
            except Exception as exc:
                raise TaskFailed(f"{task.model.name} failed: {type(exc).__name__}: "
                                 f"{str(exc)[:300]}", **spent()) from None
            done_steps += task.steps * len(group)
            for cand, item in zip(group, array, strict=True):
                recipe = make_recipe(payload, cand.index, cand.seed, device=device,
                                     threads=threads if device == "cpu" else 0,
                                     pipeline_class=type(loaded.pipe).__name__, batch=1
                                     if len(group) == 1 else len(group))
                pipelines.write_output(Path(cand.output), item, task.model.task,
                                       task.fps or 8, recipe)
                pipelines.preview_path(cand.output).unlink(missing_ok=True)
                outputs.append({"index": cand.index, "seed": cand.seed,
                                "output": cand.output, "recipe": recipe})
        ctx.progress(1.0)
        usage = spent()
        return TaskResult(usage["wall_s"], usage["cpu_s"], usage["peak_rss"], {
            "candidates": outputs, "model": task.model.name, "device": device,
            "loads": self.loads, "loaded": list(self._loaded),
        })

    def _contain(self, ctx: TaskContext) -> None:
        """Diffusion runs in this worker process, not a sandboxed one (the model stays loaded
        between tasks): the process itself goes in a cgroup as large as the models it may
        keep (`_device_memory("cpu")`) or the task's request, whichever is larger, plus 1 GiB
        for the interpreter (wanhe.sandbox.box.contain_this_process)."""
        from wanhe.sandbox.box import contain_this_process, in_process_cgroup

        limit = max(ctx.memory_bytes, _device_memory("cpu")) + (1 << 30)
        try:
            contain_this_process(in_process_cgroup(self.worker.name), limit)
        except OSError as exc:  # CgroupError: the task runs, unconfined, and says so
            ctx.log(f"[wanhe] this worker could not be put in a cgroup: {exc}")

    def cancel(self) -> None:
        self._cancel.set()

    def close(self) -> None:
        self._loaded.clear()
        gc.collect()
