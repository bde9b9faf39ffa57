"""The storyboard estimate's probe as a farm task (`story_probe`): `POST /api/estimate` of a
storyboard sends its probes here, so that no voice is synthesized, no clip encoded and no
Blender run in the API process.

The payload names the storyboard in the job's input folder. The task runs `wanhe estimate
STORY --json` (`wanhe.runs.estimate_story`: each speaking voice's synthesis rate, each
Blender shot's scene probe, the encoding probe) in a child process of its own session, with
this worker's Blender and probe cache: a cancel (the request's time limit) kills it and all
it started. Its output is that JSON (the parts, and each task's seconds: `task_costs`), from
which the API schedules the job on the farm asked about. The attempt is metered (the
child's CPU, from `os.wait4`) and billed as any task: a probe is farm work.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from wanhe.engine.executors.base import Executor, TaskContext, TaskResult
from wanhe.engine.executors.registry import register_executor
from wanhe.lifecycle import TaskCancelled, TaskFailed

POLL_S = 0.2


@register_executor
class StoryProbeExecutor(Executor):
    kinds = frozenset({"story_probe"})

    def run(self, kind: str, payload: dict[str, Any], ctx: TaskContext) -> TaskResult:
        try:
            storyboard = Path(str(payload["storyboard"]))
        except (KeyError, TypeError) as exc:
            raise TaskFailed(f"a story_probe task needs its storyboard ({exc})") from None
        argv = [sys.executable, "-m", "wanhe.cli", "estimate", str(storyboard), "--json"]
        if self.worker.blender:
            argv += ["--blender", str(self.worker.blender)]
        started = time.monotonic()
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
            status, usage = self._wait(proc, ctx)
            wall = time.monotonic() - started
            cpu = usage.ru_utime + usage.ru_stime
            peak = usage.ru_maxrss * 1024
            out.seek(0)
            err.seek(0)
            text, errors = out.read().decode(errors="replace"), err.read().decode(
                errors="replace")
        if status is None:
            raise TaskCancelled("cancelled", wall_s=wall, cpu_s=cpu, peak_rss=peak)
        if status != 0:
            lines = [ln for ln in errors.strip().splitlines() if ln.strip()]
            raise TaskFailed(f"the probe failed: {lines[-1][:300] if lines else status}",
                             wall_s=wall, cpu_s=cpu, peak_rss=peak)
        try:
            output = json.loads(text)
        except ValueError:
            raise TaskFailed("the probe printed no estimate", wall_s=wall, cpu_s=cpu,
                             peak_rss=peak) from None
        return TaskResult(wall, cpu, peak, output)

    @staticmethod
    def _wait(proc: subprocess.Popen[bytes], ctx: TaskContext) -> tuple[int | None, Any]:
        """(its exit status, or None when cancelled; its and its children's usage)."""
        cancelled = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                return (None if cancelled else proc.returncode), usage
            if ctx.cancelled.is_set() and not cancelled:
                cancelled = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # the probe and all it started
            time.sleep(POLL_S)
