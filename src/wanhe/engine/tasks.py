"""What a worker does for each task kind: typed inputs in, files and a usage record out.

Runs inside a farm worker (a Ray actor), but needs no Ray: each function can be called and tested
alone. Every output is written under a temporary name and renamed into place.
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wanhe.model import TaskKind

LogSink = Callable[[str], None]
ProgressSink = Callable[[float], None]


class TaskFailed(RuntimeError):
    """The task could not do its work; the message says why (shown to the user)."""


@dataclass(slots=True)
class TaskResult:
    wall_s: float
    cpu_s: float
    peak_rss: int
    output: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _self_peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_render(
    payload: dict[str, Any], blender: Any, log: LogSink, progress: ProgressSink
) -> TaskResult:
    """Render one tile / chunk / frame in the warm Blender process; rename the EXR into place."""
    from wanhe.blender.errors import BlenderCrashed, BlenderTimeout
    from wanhe.blender.protocol import RenderRequest

    final = Path(payload["output"])
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.with_name(f".{final.stem}.tmp-{os.getpid()}.exr")
    fields = {
        k: v for k, v in payload.items() if k not in ("timeout_s", "silence_s", "output", "partial")
    }
    request = RenderRequest(output=str(temp), **fields)
    started = time.monotonic()
    try:
        reply = blender.render(
            request,
            timeout_s=payload.get("timeout_s"),
            silence_s=payload.get("silence_s"),
            on_log=log,
            on_progress=progress,
        )
    except (BlenderTimeout, BlenderCrashed) as exc:
        temp.unlink(missing_ok=True)
        raise TaskFailed(str(exc)) from exc
    if not reply.ok:
        temp.unlink(missing_ok=True)
        raise TaskFailed(reply.error or "Blender reported a failure without a message")
    if not temp.exists():
        raise TaskFailed(f"Blender said it rendered frame {payload['frame']} but wrote no file")
    os.replace(temp, final)
    output: dict[str, Any] = {"exr": str(final), "width": reply.width, "height": reply.height}
    if payload.get("partial"):  # a sample chunk: preview the frame at the samples done so far
        from wanhe.imaging.partial_preview import write_partial_preview

        try:
            output["partial"] = write_partial_preview(payload["partial"])
        except Exception as exc:  # a preview must never fail the render
            log(f"[wanhe] partial preview not written: {exc}")
    return TaskResult(
        wall_s=time.monotonic() - started,
        cpu_s=reply.cpu_s,
        peak_rss=reply.peak_rss_bytes,
        output=output,
    )


def _measured(work: Callable[[], dict[str, Any]]) -> TaskResult:
    """Run in-process image work and meter it with this process's own rusage."""
    started, cpu0 = time.monotonic(), _self_cpu()
    output = work()
    return TaskResult(time.monotonic() - started, _self_cpu() - cpu0, _self_peak(), output)


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

    return _measured(work)


def run_denoise(payload: dict[str, Any]) -> TaskResult:
    from wanhe.imaging.denoise import denoise_frame

    def work() -> dict[str, Any]:
        out = Path(payload["output"])
        out.parent.mkdir(parents=True, exist_ok=True)
        stats = denoise_frame(Path(payload["input"]), out)
        return {"exr": str(out), "denoise": _jsonable(stats)}

    return _measured(work)


def run_preview(payload: dict[str, Any]) -> TaskResult:
    from wanhe.imaging.preview import write_preview_png

    def work() -> dict[str, Any]:
        out = Path(payload["output"])
        out.parent.mkdir(parents=True, exist_ok=True)
        write_preview_png(Path(payload["input"]), out)
        if payload.get("partial"):  # the progressive preview has served its purpose
            Path(payload["partial"]).unlink(missing_ok=True)
        return {"png": str(out)}

    return _measured(work)


def run_noop(payload: dict[str, Any]) -> TaskResult:
    seconds = float(payload.get("sleep_s", 0.0))
    if seconds:
        time.sleep(seconds)
    return TaskResult(seconds, 0.0, 0, {})


def _jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "__dataclass_fields__"):
        return json.loads(json.dumps(asdict(value), default=str))
    return value


def run_task(
    kind: TaskKind, payload: dict[str, Any], blender: Any, log: LogSink, progress: ProgressSink
) -> TaskResult:
    """Dispatch on the task kind."""
    if kind is TaskKind.RENDER:
        return run_render(payload, blender, log, progress)
    if kind is TaskKind.ASSEMBLE:
        return run_assemble(payload)
    if kind is TaskKind.DENOISE:
        return run_denoise(payload)
    if kind is TaskKind.PREVIEW:
        return run_preview(payload)
    if kind is TaskKind.QC:
        from wanhe.engine.frame_checks import run_qc

        checked = _measured(lambda: run_qc(payload, blender, log))
        checked.cpu_s += float(checked.output["qc"].get("rerender_cpu_s", 0.0))  # Blender's
        return checked
    if kind is TaskKind.VIDEO:
        from wanhe.engine.frame_checks import run_video

        return _measured(lambda: run_video(payload))
    if kind is TaskKind.NOOP:
        return run_noop(payload)
    raise TaskFailed(f"this worker does not know task kind {kind!r}")
