"""The image executor: short in-process image work on finished renders — assemble tiles and
sample chunks, denoise, previews, the job's preview video and contact sheet.

These tasks reserve no cores (they run beside the renders on a light slot) and are metered
with this process's own rusage. Outputs are written under temporary names and renamed.
"""

from __future__ import annotations

from typing import Any

from wanhe.engine.executors.base import Executor, TaskContext, TaskResult, measured
from wanhe.engine.executors.registry import register_executor
from wanhe.engine.frame_checks import run_video as encode
from wanhe.engine.frame_steps import run_assemble, run_denoise, run_preview
from wanhe.model import TaskKind


def run_video(payload: dict[str, Any]) -> TaskResult:
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
