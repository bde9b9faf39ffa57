"""The steps that make a frame, run by their executors and again by a QC task that re-renders
a failing frame (`wanhe.engine.frame_checks`) or checks its seams (`seam_check`): render a
tile / chunk / frame in the warm Blender process, assemble tiles and sample chunks, denoise,
preview. Here, below the executors, so the checks need no executor (no import circle).

Outputs are written under temporary names and renamed into place.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any, Literal

from wanhe.engine.executors.base import TaskContext, TaskResult, jsonable, measured
from wanhe.lifecycle import (
    AttemptError,
    TaskFailed,
    TaskOutOfMemory,
    TaskSilent,
    TaskTimedOut,
)
from wanhe.payloads import PayloadError
from wanhe.render.payloads import RenderTask


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


def render_device(asked: str | None, gpu_ids: tuple[str, ...]) -> Literal["CPU", "GPU"]:
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

    try:
        task = RenderTask.read(payload)
    except PayloadError as exc:
        raise TaskFailed(str(exc)) from None
    final = Path(task.output)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.with_name(f".{final.stem}.tmp-{os.getpid()}.exr")
    device = render_device(task.device.value if task.device else None, gpu_ids)
    request = task.request(str(temp), device)
    started = time.monotonic()
    try:
        reply = blender.render(
            request,
            timeout_s=task.timeout_s,
            silence_s=task.silence_s,
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
        raise TaskFailed(f"Blender said it rendered frame {task.frame} but wrote no file")
    os.replace(temp, final)
    output: dict[str, Any] = {"exr": str(final), "width": reply.width, "height": reply.height,
                              "device": reply.device, "backend": reply.backend}
    if task.partial is not None:  # a sample chunk: preview the frame at the samples done so far
        from wanhe.imaging.partial_preview import write_partial_preview

        try:
            output["partial"] = write_partial_preview(task.partial.model_dump(mode="json"))
        except Exception as exc:  # a preview must never fail the render
            ctx.log(f"[wanhe] partial preview not written: {exc}")
    return TaskResult(
        wall_s=time.monotonic() - started,
        cpu_s=reply.cpu_s,
        peak_rss=reply.peak_rss_bytes,
        output=output,
    )


def run_assemble(payload: dict[str, Any]) -> TaskResult:
    from wanhe.imaging.assemble import TilePlacement, assemble_tiles, merge_sample_chunks

    def work() -> dict[str, Any]:
        placements: list[TilePlacement] = []
        for place in payload["placements"]:
            paths = [Path(p) for p in place["paths"]]
            source = paths[0]
            if len(paths) > 1:
                source = paths[0].with_name(paths[0].stem.split("_c")[0] + "_merged.exr")
                merge_sample_chunks(paths, list(place["samples"]), source)
            placements.append(
                TilePlacement(source, tuple(place["src"]), tuple(place["dst"]))  # type: ignore[arg-type]
            )
        out = Path(payload["output"])
        out.parent.mkdir(parents=True, exist_ok=True)
        assemble_tiles(placements, payload["width"], payload["height"], out)
        return {"exr": str(out)}

    return measured(work)


def run_denoise(payload: dict[str, Any]) -> TaskResult:
    from wanhe.imaging.denoise import denoise_frame

    def work() -> dict[str, Any]:
        out = Path(payload["output"])
        out.parent.mkdir(parents=True, exist_ok=True)
        stats = denoise_frame(Path(payload["input"]), out)
        return {"exr": str(out), "denoise": jsonable(stats)}

    return measured(work)


def run_preview(payload: dict[str, Any]) -> TaskResult:
    from wanhe.imaging.preview import write_preview_png

    def work() -> dict[str, Any]:
        out = Path(payload["output"])
        out.parent.mkdir(parents=True, exist_ok=True)
        write_preview_png(Path(payload["input"]), out)
        if payload.get("partial"):  # the progressive preview has served its purpose
            Path(payload["partial"]).unlink(missing_ok=True)
        return {"png": str(out)}

    return measured(work)
