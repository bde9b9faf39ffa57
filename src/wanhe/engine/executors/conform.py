"""The conform executor: one ffmpeg run per `conform` task (`wanhe.jobtypes.conform`).

ffmpeg is the worker's named tool `ffmpeg` (`WorkerInfo.tool`). It runs as a command
(`CommandExecutor`: its own process group, the job's sandbox on a farm, cancel and timeout
stop the tree, metered by wait4/cgroup), writes the movie into the job's work folder, and
only a finished movie is renamed to the deliverable's name: a failed or cancelled attempt
never leaves half a movie where the user looks. ffmpeg's `-progress` lines drive the task's
progress.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from wanhe.engine.executors.base import MissingTool, TaskContext, TaskResult
from wanhe.engine.executors.command import CommandExecutor
from wanhe.engine.executors.registry import register_executor
from wanhe.jobtypes.conform import TASK_KIND, ConformPayload
from wanhe.lifecycle import TaskFailed

_FRAME_LINE = re.compile(r"^frame=(\d+)\s*$")
# ProRes 422 HQ is prores_ks profile 3 in 10-bit 4:2:2; H.264 for delivery is 8-bit 4:2:0,
# its index at the front of the file so it plays while it downloads.
_VIDEO = {
    "prores_hq": ["-c:v", "prores_ks", "-profile:v", "3", "-vendor", "apl0",
                  "-pix_fmt", "yuv422p10le"],
    "h264": ["-c:v", "libx264", "-preset", "medium", "-crf", "18", "-pix_fmt", "yuv420p",
             "-movflags", "+faststart"],
}
_AUDIO = {"prores_hq": ["-c:a", "pcm_s24le"], "h264": ["-c:a", "aac", "-b:a", "192k"]}


def _size_filter(p: ConformPayload) -> str:
    """Scale to the asked size; both sides even (4:2:0 and 4:2:2 need it)."""
    if p.scale is not None:
        return f"scale=trunc(iw*{p.scale}/2)*2:trunc(ih*{p.scale}/2)*2"
    if p.width and p.height:
        return f"scale={p.width}:{p.height}"
    if p.width:
        return f"scale={p.width}:-2"
    if p.height:
        return f"scale=-2:{p.height}"
    return "scale=trunc(iw/2)*2:trunc(ih/2)*2"


def ffmpeg_args(ffmpeg: str, p: ConformPayload, output: Path) -> list[str]:
    """The ffmpeg command line that makes the deliverable `output` from the payload."""
    argv = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats",
            "-progress", "pipe:1", "-threads", str(p.threads)]
    chain: list[str] = []
    if p.sequence is not None:
        argv += ["-framerate", f"{p.fps:g}", "-start_number", str(p.sequence.start),
                 "-i", p.sequence.pattern]
        video = "[0:v]"
        inputs = 1
    else:
        for clip in p.clips:
            argv += ["-i", clip]
        inputs = len(p.clips)
        # each clip to one rate, size and pixel aspect, then joined end to end
        parts = [f"[{i}:v]fps={p.fps:g},{_size_filter(p)},setsar=1[v{i}]" for i in range(inputs)]
        joined = "".join(f"[v{i}]" for i in range(inputs))
        chain += [*parts, f"{joined}concat=n={inputs}:v=1:a=0[cat]"]
        video = "[cat]"
    # image2 reads on past the range while numbers follow: the sequence is trimmed to it
    # (not -frames:v, which would end the sound with the picture's last packet)
    steps = [] if p.sequence is None else [f"trim=end_frame={p.sequence.count}",
                                            _size_filter(p), "setsar=1"]
    if p.frames is not None:  # clips: the range of the joined movie
        steps.append(f"trim=start_frame={p.first_frame - 1}:end_frame="
                     f"{p.first_frame - 1 + p.frames},setpts=PTS-STARTPTS")
    if p.burn_in:
        first = p.first_frame
        steps.append("drawtext=text='%{eif\\:n+" + str(first) + "\\:d}':x=w*0.02:y=h*0.02:"
                     "fontsize=h*0.05:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=4")
    chain.append(f"{video}{','.join(steps) or 'null'}[out]")
    if p.audio is not None:  # every input before the first output option
        argv += ["-i", p.audio]
    argv += ["-filter_complex", ";".join(chain), "-map", "[out]", "-r", f"{p.fps:g}"]
    if p.audio is not None:
        argv += ["-map", f"{inputs}:a:0", *_AUDIO[p.codec]]
        # the sound cut to the picture: -t when the frame count is known
        count = p.sequence.count if p.sequence is not None else p.frames
        argv += ["-t", f"{count / p.fps:.6f}"] if count else ["-shortest"]
    else:
        argv += ["-an"]
    return [*argv, *_VIDEO[p.codec], str(output)]


def _progress_log(ctx: TaskContext, total: int | None) -> TaskContext:
    """The attempt's context with ffmpeg's `frame=N` progress lines turned into progress."""
    if not total:
        return ctx

    def log(line: str) -> None:
        found = _FRAME_LINE.match(line)
        if found is not None:
            ctx.progress(min(1.0, int(found.group(1)) / total))
        else:
            ctx.log(line)

    return replace(ctx, log=log)


@register_executor
class ConformExecutor(CommandExecutor):
    """Runs `conform` tasks with the worker's ffmpeg."""

    kinds = frozenset({TASK_KIND})
    tools = ("ffmpeg",)

    def run(self, kind: str, payload: dict[str, Any], ctx: TaskContext) -> TaskResult:
        try:
            p = ConformPayload.model_validate(payload)
        except ValidationError as exc:
            raise TaskFailed(f"conform task payload is not valid: {exc.errors()[0]['msg']} "
                             f"at {'.'.join(map(str, exc.errors()[0]['loc']))}") from None
        try:
            ffmpeg = self.worker.tool("ffmpeg")
        except MissingTool as exc:
            raise TaskFailed(str(exc)) from None
        final = Path(p.output)
        work = Path(p.work)
        work.mkdir(parents=True, exist_ok=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = work / f"{final.stem}.partial{final.suffix}"
        partial.unlink(missing_ok=True)
        command = {"argv": ffmpeg_args(ffmpeg, p, partial), "cwd": str(work),
                   "outputs": [str(partial)], "timeout_s": p.timeout_s, "job_root": p.job_root}
        total = p.sequence.count if p.sequence is not None else p.frames
        try:
            result = super().run("command", {k: v for k, v in command.items() if v is not None},
                                 _progress_log(ctx, total))
        except BaseException:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise
        os.replace(partial, final)
        result.output["deliverable"] = str(final)
        return result
