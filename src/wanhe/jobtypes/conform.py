"""The conform job type: frames or clips in, one deliverable movie out (ffmpeg).

A studio's last step before review or delivery: a finished render's frames (an image
sequence, `render/frame_####.png`) or a list of clips, conformed into ProRes 422 HQ (.mov)
or H.264 (.mp4) at a frame rate and size, optionally cut to a frame range, with the frame
number burnt in and an audio track laid under it. One task (`conform`) runs ffmpeg on a
worker that holds the `ffmpeg` tool (`wanhe.engine.executors.conform`).

Everything about the kind lives here and in its executor: its options (the JSON Schema that
`GET /api/job-types` publishes and `wanhe submit --kind conform --options FILE` checks), which
files a submission carries, the checks (every frame of the range present), the task payload
(typed, checked where it is built and where it runs), its labels and its dashboard panel.
See docs/conform.md.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from wanhe.jobtypes.base import (
    CompiledJob,
    InputError,
    Inspected,
    IntakeContext,
    JobFolder,
    JobType,
    TaskView,
    confine_tasks,
)
from wanhe.jobtypes.registry import register_job_type
from wanhe.lifecycle import RetryRules
from wanhe.model import Resources, TaskSpec
from wanhe.plan.frames import format_frames, parse_frames
from wanhe.storage import UnsafePath, job_input

KIND = "conform"
TASK_KIND = "conform"
CONTAINERS = {"prores_hq": ".mov", "h264": ".mp4"}
_HASHES = re.compile(r"#+")
_PRINTF = re.compile(r"%0?(\d*)d")


class ConformOptions(BaseModel):
    """What a conform submission takes (no main file: the options name the inputs)."""

    model_config = ConfigDict(extra="forbid")

    frames: str | None = Field(default=None, max_length=500, description=(
        "an image sequence: a path with # for the frame digits (render/frame_####.png) or "
        "printf's %04d, relative to the options file"))
    clips: list[str] = Field(default_factory=list, max_length=1000, description=(
        "movie files to join in order (relative to the options file); instead of frames"))
    codec: Literal["prores_hq", "h264"] = Field(default="h264", description=(
        "prores_hq: ProRes 422 HQ in a .mov; h264: H.264 in an .mp4"))
    fps: float = Field(default=24.0, gt=0, le=240, description="the movie's frame rate")
    width: int | None = Field(default=None, ge=16, le=8192, description=(
        "the movie's width in pixels (height follows the picture unless given)"))
    height: int | None = Field(default=None, ge=16, le=8192)
    scale: float | None = Field(default=None, gt=0, le=8, description=(
        "scale the picture by this factor (instead of width/height)"))
    frame_range: str | None = Field(default=None, max_length=100, description=(
        "frames of the sequence to use, e.g. 1001-1100; clips: the movie's frames, from 1"))
    burn_in: bool = Field(default=False, description="draw each frame's number on it")
    audio: str | None = Field(default=None, max_length=500, description=(
        "a sound file laid under the picture (cut to the picture's length)"))
    name: str = Field(default="conform", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
                      description="the deliverable's file name, without its suffix")
    threads: int = Field(default=1, ge=1, le=64, description=(
        "cores the task reserves and ffmpeg uses (a farm worker must have as many)"))
    max_attempts: int = Field(default=3, ge=1, le=100)
    timeout_s: float | None = Field(default=None, gt=0, description="seconds at most")

    @model_validator(mode="after")
    def _one_source(self) -> ConformOptions:
        if (self.frames is None) == (not self.clips):
            raise ValueError("give either frames (an image sequence) or clips, not both "
                             "and not neither")
        if self.scale is not None and (self.width or self.height):
            raise ValueError("give scale or width/height, not both")
        if self.frames is not None and not (_HASHES.search(self.frames)
                                            or _PRINTF.search(self.frames)):
            raise ValueError(f"frames {self.frames!r} has no frame number: write # for each "
                             "digit, e.g. render/frame_####.png")
        if self.frame_range is not None:
            parse_frames(self.frame_range)  # its own message names what is wrong
        return self


class ImageSequence(BaseModel):
    """An image sequence as ffmpeg reads it: a printf pattern, its first frame, how many."""

    model_config = ConfigDict(extra="forbid")
    pattern: str
    start: int
    count: int = Field(ge=1)


class ConformPayload(BaseModel):
    """A `conform` task's payload: built by `ConformJob.compile`, checked again by the
    executor before ffmpeg starts."""

    model_config = ConfigDict(extra="forbid")
    sequence: ImageSequence | None = None
    clips: list[str] = Field(default_factory=list)
    first_frame: int = 1  # the number burnt on the movie's first frame
    frames: int | None = None  # clips: the movie's frames to keep (from `first_frame`)
    codec: Literal["prores_hq", "h264"]
    fps: float
    width: int | None = None
    height: int | None = None
    scale: float | None = None
    burn_in: bool = False
    audio: str | None = None
    threads: int = 1
    output: str  # the deliverable (absolute)
    work: str  # where it is written before it is renamed into place
    timeout_s: float | None = None
    job_root: str | None = None


def _printf(pattern: str) -> tuple[str, re.Pattern[str]]:
    """`frame_####.png` -> (`frame_%04d.png`, a regex whose group 1 is the number)."""
    hashes = _HASHES.search(pattern)
    if hashes is not None:
        width = len(hashes.group(0))
        head, tail = pattern[:hashes.start()], pattern[hashes.end():]
        return (head.replace("%", "%%") + f"%0{width}d" + tail.replace("%", "%%"),
                re.compile(re.escape(head) + rf"(\d{{{width},}})" + re.escape(tail) + "$"))
    printf = _PRINTF.search(pattern)
    assert printf is not None
    digits = printf.group(1) or "1"
    head, tail = pattern[:printf.start()], pattern[printf.end():]
    return pattern, re.compile(re.escape(head) + rf"(\d{{{digits},}})" + re.escape(tail) + "$")


def _resolve(ctx: IntakeContext, named: str, what: str) -> Path:
    """A file the options name: inside the job's inputs on the farm, anywhere of the user's
    own on a local run (relative to the options file's folder)."""
    base = ctx.inputs or Path.cwd()
    if ctx.local_paths or ctx.inputs is None:
        return (base / Path(named).expanduser()).absolute()
    try:
        return job_input(base, named, ctx.inputs, what, "send it with the job (a path "
                         "relative to the options file)")
    except UnsafePath as exc:
        raise InputError(f"options.{what}", str(exc)) from None


def _kept(path: Path, ctx: IntakeContext) -> str:
    """How the job keeps a file it read at inspection: relative to the inputs' folder (on the
    farm they are inspected in a staging copy and run from the job's own input folder), or
    absolute where a local run names a file outside it."""
    base = (ctx.inputs or Path.cwd()).absolute()
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _stat(path: Path) -> list[Any]:
    info = path.stat()
    return [path.name, info.st_size, info.st_mtime_ns]


@register_job_type
class ConformJob(JobType):
    kind = KIND
    title = "conform"
    options_model = ConformOptions
    main_file = "none"
    panels = ("deliverable",)

    def input_files(self, options: BaseModel, base: Path) -> list[Path]:
        assert isinstance(options, ConformOptions)
        ctx = IntakeContext(inputs=base, local_paths=True)
        found = [p for _n, p in self._sequence_files(ctx, options)] if options.frames else []
        found += [_resolve(ctx, c, "clips") for c in options.clips]
        if options.audio:
            found.append(_resolve(ctx, options.audio, "audio"))
        return found

    def _sequence_files(self, ctx: IntakeContext,
                        options: ConformOptions) -> list[tuple[int, Path]]:
        assert options.frames is not None
        pattern = _resolve(ctx, options.frames, "frames")
        _, number = _printf(pattern.name)
        folder = pattern.parent
        if not folder.is_dir():
            raise InputError("options.frames", f"no folder {options.frames.rsplit('/', 1)[0]!r}"
                             " for the frames — check the path (relative to the options file)")
        found = sorted((int(m.group(1)), folder / m.group(0)) for m in
                       (number.match(p.name) for p in folder.iterdir()) if m is not None)
        if options.frame_range is not None:
            wanted = set(parse_frames(options.frame_range))
            missing = sorted(wanted - {n for n, _ in found})
            if missing:
                raise InputError("options.frame_range", f"frame(s) {format_frames(missing)} of "
                                 f"{options.frame_range} are not in {options.frames} — render "
                                 "them, or conform a range that has them")
            found = [(n, p) for n, p in found if n in wanted]
        if not found:
            raise InputError("options.frames", f"no frames match {options.frames!r} — check "
                             "the pattern (# for each digit of the frame number)")
        numbers = [n for n, _ in found]
        gaps = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
        if gaps:
            raise InputError("options.frames", f"frame(s) {format_frames(gaps)} are missing "
                             f"from {options.frames} — render them, or give a frame_range "
                             "without them")
        return found

    def inspect(self, ctx: IntakeContext, main: Path | None, options: BaseModel) -> Inspected:
        assert isinstance(options, ConformOptions)
        facts: dict[str, Any] = {}
        if options.frames is not None:
            found = self._sequence_files(ctx, options)
            printf, _ = _printf(_resolve(ctx, options.frames, "frames").name)
            facts["sequence"] = {"pattern": _kept(found[0][1].parent / printf, ctx),
                                 "start": found[0][0], "count": len(found)}
            facts["files"] = [_stat(p) for _, p in found]
        else:
            clips = [_resolve(ctx, c, "clips") for c in options.clips]
            for named, path in zip(options.clips, clips, strict=True):
                if not path.is_file():
                    raise InputError("options.clips", f"clip {named!r} does not exist — check "
                                     "the path (relative to the options file)")
            facts["clips"] = [_kept(p, ctx) for p in clips]
            facts["files"] = [_stat(p) for p in clips]
        if options.audio is not None:
            audio = _resolve(ctx, options.audio, "audio")
            if not audio.is_file():
                raise InputError("options.audio", f"audio {options.audio!r} does not exist — "
                                 "check the path (relative to the options file)")
            facts["audio"] = _kept(audio, ctx)
            facts["files"].append(_stat(audio))
        facts["confined"] = not ctx.local_paths and ctx.inputs is not None
        return Inspected(facts)

    def compile(
        self, options: BaseModel, inspected: Inspected, main: Path | None, folder: JobFolder
    ) -> CompiledJob:
        assert isinstance(options, ConformOptions)
        facts = inspected.facts
        output = folder.output / f"{options.name}{CONTAINERS[options.codec]}"
        first, frames = 1, None
        if options.frame_range is not None and "clips" in facts:
            numbers = parse_frames(options.frame_range)
            first, frames = numbers[0], numbers[-1] - numbers[0] + 1
        sequence = facts.get("sequence")

        def placed(kept: str) -> str:  # where the job's task finds it (see `_kept`)
            return str(folder.input / kept)

        payload = ConformPayload(
            sequence=ImageSequence(**{**sequence, "pattern": placed(sequence["pattern"])})
            if sequence else None,
            clips=[placed(c) for c in facts.get("clips", [])],
            first_frame=sequence["start"] if sequence else first,
            frames=frames, codec=options.codec, fps=options.fps, width=options.width,
            height=options.height, scale=options.scale, burn_in=options.burn_in,
            audio=placed(facts["audio"]) if facts.get("audio") else None,
            threads=options.threads, output=str(output),
            work=str(folder.work), timeout_s=options.timeout_s,
        )
        tasks = [TaskSpec(f"conform/{options.name}", TASK_KIND,
                          payload.model_dump(mode="json", exclude_none=True),
                          resources=Resources(cpus=options.threads))]
        if facts.get("confined"):  # a farm job: ffmpeg opens only the job's own files
            confine_tasks(tasks, folder)
        spec = {
            "options": options.model_dump(mode="json"), "deliverable": str(output),
            "frames": sequence["count"] if sequence else frames,
            "max_attempts": options.max_attempts, "output": str(folder.output),
        }
        digest = hashlib.sha256(json.dumps(
            [KIND, options.model_dump(mode="json"), facts["files"]]).encode()).hexdigest()
        return CompiledJob(spec, digest, tasks)

    def retry_rules(self, spec: dict[str, Any]) -> RetryRules:
        return RetryRules(max_attempts=int(spec.get("max_attempts", 3)))

    def task_label(self, task: TaskView) -> str:
        return f"the conform to {task.key.split('/', 1)[-1]}"

    def deliverables(self, spec: dict[str, Any]) -> list[str]:
        return [str(spec["deliverable"])] if spec.get("deliverable") else []

    def summary(self, spec: dict[str, Any]) -> str:
        options = spec.get("options", {})
        size = (f"{options.get('width') or '?'}x{options.get('height') or '?'}"
                if options.get("width") or options.get("height") else
                f"x{options['scale']:g}" if options.get("scale") else "source size")
        return (f"{options.get('codec', '?')} {options.get('fps', '?'):g} fps, {size}"
                + (f", {spec['frames']} frames" if spec.get("frames") else "")
                + (", burn-in" if options.get("burn_in") else "")
                + (", audio" if options.get("audio") else ""))
