"""The image executor: short in-process image work on finished renders — assemble tiles and
sample chunks, denoise, previews, the job's preview video and contact sheet.

These tasks reserve no cores (they run beside the renders on a light slot) and are metered
with this process's own rusage. Outputs are written under temporary names and renamed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wanhe.engine.executors.base import Executor, TaskContext, TaskResult, jsonable, measured
from wanhe.engine.executors.registry import register_executor
from wanhe.model import TaskKind


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


def run_video(payload: dict[str, Any]) -> TaskResult:
    from wanhe.engine.frame_checks import run_video as encode

    return measured(lambda: encode(payload))


_RUNNERS = {
    TaskKind.ASSEMBLE.value: run_assemble,
    TaskKind.DENOISE.value: run_denoise,
    TaskKind.PREVIEW.value: run_preview,
    TaskKind.VIDEO.value: run_video,
}


@register_executor
class ImageExecutor(Executor):
    kinds = frozenset(_RUNNERS)

    def run(self, kind: str, payload: dict[str, Any], ctx: TaskContext) -> TaskResult:
        return _RUNNERS[kind](payload)
