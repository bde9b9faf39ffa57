"""The Blender executor: renders tiles, sample chunks and frames in one warm Blender process
with the scene kept loaded, and runs the QC task (whose re-render needs that Blender).

The QC task reserves a render slot's cores (the job type asks for them), so a re-render is
reserved and billed as what it uses. Every output is written under a temporary name and
renamed into place.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from wanhe.engine.executors.base import Executor, TaskContext, TaskResult, measured
from wanhe.engine.executors.registry import register_executor
from wanhe.lifecycle import (
    AttemptError,
    TaskCancelled,
    TaskFailed,
    TaskOutOfMemory,
    TaskSilent,
    TaskTimedOut,
)
from wanhe.model import TaskKind


def attempt_error(exc: Exception) -> AttemptError:
    """The typed outcome of a Blender subprocess that timed out, went silent or died."""
    from wanhe.blender.errors import BlenderCrashed, BlenderTimeout

    usage: dict[str, Any] = {}
    if isinstance(exc, BlenderTimeout | BlenderCrashed):
        usage = {"cpu_s": exc.cpu_s, "peak_rss": exc.peak_rss_bytes, "wall_s": exc.wall_s}
    if isinstance(exc, BlenderTimeout):
        return (TaskSilent if exc.silent else TaskTimedOut)(str(exc), **usage)
    if isinstance(exc, BlenderCrashed) and exc.returncode == -signal.SIGKILL:
        return TaskOutOfMemory(
            f"{exc} — killed by SIGKILL from outside wanhe, as the kernel's out-of-memory "
            "killer does: give the task more memory or render smaller tiles", **usage)
    return TaskFailed(str(exc), **usage)


def render_device(asked: str | None, gpu_ids: tuple[str, ...]) -> str:
    """The Cycles device of an attempt: a task asking for a GPU renders on one, one asking
    for `any` renders on the GPU its worker holds (a GPU slot) or else the CPU."""
    if asked == "gpu" or (asked == "any" and gpu_ids):
        return "GPU"
    return "CPU"


def run_render(
    payload: dict[str, Any], blender: Any, ctx: TaskContext, gpu_ids: tuple[str, ...] = ()
) -> TaskResult:
    """Render one tile / chunk / frame in the warm Blender process; rename the EXR into place."""
    from wanhe.blender.errors import BlenderCrashed, BlenderTimeout
    from wanhe.blender.protocol import RenderRequest

    final = Path(payload["output"])
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.with_name(f".{final.stem}.tmp-{os.getpid()}.exr")
    fields = {
        k: v for k, v in payload.items()
        if k not in ("timeout_s", "silence_s", "output", "partial", "device")
    }
    fields["device"] = render_device(payload.get("device"), gpu_ids)
    request = RenderRequest(output=str(temp), **fields)
    started = time.monotonic()
    try:
        reply = blender.render(
            request,
            timeout_s=payload.get("timeout_s"),
            silence_s=payload.get("silence_s"),
            on_log=ctx.log,
            on_progress=ctx.progress,
        )
    except (BlenderTimeout, BlenderCrashed) as exc:
        temp.unlink(missing_ok=True)
        raise attempt_error(exc) from exc
    if not reply.ok:
        temp.unlink(missing_ok=True)
        raise TaskFailed(reply.error or "Blender reported a failure without a message",
                         cpu_s=reply.cpu_s, peak_rss=reply.peak_rss_bytes)
    if not temp.exists():
        raise TaskFailed(f"Blender said it rendered frame {payload['frame']} but wrote no file")
    os.replace(temp, final)
    output: dict[str, Any] = {"exr": str(final), "width": reply.width, "height": reply.height,
                              "device": reply.device, "backend": reply.backend}
    if payload.get("partial"):  # a sample chunk: preview the frame at the samples done so far
        from wanhe.imaging.partial_preview import write_partial_preview

        try:
            output["partial"] = write_partial_preview(payload["partial"])
        except Exception as exc:  # a preview must never fail the render
            ctx.log(f"[wanhe] partial preview not written: {exc}")
    return TaskResult(
        wall_s=time.monotonic() - started,
        cpu_s=reply.cpu_s,
        peak_rss=reply.peak_rss_bytes,
        output=output,
    )


@register_executor
class BlenderExecutor(Executor):
    kinds = frozenset({TaskKind.RENDER.value, TaskKind.QC.value})

    _blender: Any = None
    _closed = False

    def process(self) -> Any:
        """This worker's Blender, started on first use (also used to inspect a scene before
        the first task: the scene it loads stays loaded for the renders)."""
        if self._closed:
            raise TaskCancelled(f"worker {self.worker.name} was shut down")
        if self._blender is None:
            from wanhe.blender.runner import BlenderProcess

            self._blender = BlenderProcess(self.worker.blender)
        return self._blender

    def warm_key(self, payload: dict[str, Any]) -> str | None:
        scene = payload.get("scene") or (payload.get("rerender") or {}).get("scene")
        return str(scene) if scene else None

    def warm(self, key: str) -> None:
        self.process().warm(key)  # opens the scene and keeps it loaded

    def run(self, kind: str, payload: dict[str, Any], ctx: TaskContext) -> TaskResult:
        if kind == TaskKind.RENDER.value:
            return run_render(payload, self.process(), ctx, self.worker.gpu_ids)
        from wanhe.engine.frame_checks import run_qc

        plan = payload.get("rerender")
        if plan and plan.get("renders"):
            # a re-render renders the whole frame again on this worker's device kind
            renders = [{**r, "device": render_device(r.get("device"), self.worker.gpu_ids).lower()}
                       for r in plan["renders"]]
            payload = {**payload, "rerender": {**plan, "renders": renders}}
        try:
            checked = measured(lambda: run_qc(payload, self.process(), ctx.log))
        except AttemptError:
            raise
        except Exception as exc:
            from wanhe.blender.errors import BlenderError

            if isinstance(exc, BlenderError):
                raise attempt_error(exc) from exc
            raise
        checked.cpu_s += float(checked.output["qc"].get("rerender_cpu_s", 0.0))  # Blender's
        return checked

    def cancel(self) -> None:
        if self._blender is not None:
            self._blender.kill()  # the whole process tree; a fresh one starts for the next

    def close(self) -> None:
        self._closed = True
        if self._blender is not None:
            self._blender.close()
            self._blender = None
