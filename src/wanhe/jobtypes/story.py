"""The story reel job type: a storyboard file (YAML) compiled into voices, dubs, lip sync,
renders, clips, tracks and the reel (see `wanhe.story.plan`).

The job's main file is the storyboard; the files it names (images, .blend scenes, Piper
voices) come with it, relative to its folder. Every check that can fail — the file's syntax
and schema, characters, languages, visual sources, voices, rigs, the reel's length — runs at
inspection, before the job is stored.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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
from wanhe.jobtypes.registry import find_job_type, register_job_type
from wanhe.lifecycle import RetryRules

KIND = "story"


class StoryOptions(BaseModel):
    """What a story submission takes besides its storyboard file."""

    model_config = ConfigDict(extra="forbid")
    max_attempts: int = Field(default=3, ge=1, le=100)


def cache_root(folder: JobFolder, project_id: int | None = None) -> Path:
    """The story cache a job's voices, lip syncs and shot renders are kept in by content:
    `<work root>/cache/story/project-<id>` on the farm (a job's work folder is
    `<work root>/jobs/<id>/work`). One per project, so no project can learn by timing what
    another's film says, nor have a file it made reused by another project's job."""
    root = folder.work.parent.parent.parent / "cache" / "story"
    return root if project_id is None else root / f"project-{project_id}"


@contextlib.contextmanager
def _scene_box(ctx: IntakeContext, inputs: Path | None) -> Iterator[Callable[[], Any] | None]:
    """What the storyboard's Blender shots are read in at submit: on a sandboxing farm the
    submitting project's sandbox (`wanhe.sandbox.tool.inspection_box`: its OS user, a mount
    namespace showing only the submission's files and a scratch folder, a cgroup), made when
    the first Blender shot asks and closed after the check; else (None) a plain child."""
    if inputs is None or not ctx.project:
        yield None
        return
    from wanhe.blender.shapekeys import Boxed, boxed_runner
    from wanhe.sandbox.tool import inspection_box, wait_in
    from wanhe.story.load import StoryError

    scratch = inputs.parent / "inspect-story"
    opened: list[Any] = []

    def scene_box() -> Boxed | None:
        if not opened:
            try:
                opened.append(inspection_box(inputs, scratch, str(ctx.project), ctx.project_id))
            except (OSError, ValueError) as exc:  # CgroupError, MountError
                raise StoryError(f"cannot make the sandbox to read the Blender shots in: "
                                 f"{exc}") from None
        box = opened[0]
        if box is None:  # the sandbox is off here
            return None
        return Boxed(boxed_runner(lambda argv, timeout_s: wait_in(
            box, argv, timeout_s=timeout_s, cwd=scratch, what="reading the scene"),
            "the scene check"), scratch)

    try:
        yield scene_box
    finally:
        if opened and opened[0] is not None:
            opened[0].close()
        shutil.rmtree(scratch, ignore_errors=True)


@register_job_type
class StoryJob(JobType):
    kind = KIND
    title = "story reel"
    options_model = StoryOptions
    main_file = "required"
    main_suffixes = (".yaml", ".yml")
    panels = ("reel",)

    def inspect(self, ctx: IntakeContext, main: Path | None, options: BaseModel) -> Inspected:
        from wanhe.story.checks import check_storyboard
        from wanhe.story.load import StoryError, load_storyboard

        assert main is not None
        try:
            board = load_storyboard(main)
            capacity = ctx.capacity() if ctx.capacity is not None else None
            inputs = None if ctx.local_paths else ctx.inputs
            with _scene_box(ctx, inputs) as scene_box:
                facts = check_storyboard(board, main.parent, models=ctx.models,
                                         gpus=capacity.gpus if capacity is not None else 0,
                                         inputs=inputs, scene_box=scene_box,
                                         gen_available=find_job_type("gen") is not None)
        except StoryError as exc:
            raise InputError("main", str(exc)) from None
        return Inspected({"board": board, "facts": facts, "confined": inputs is not None,
                          "project_id": ctx.project_id})

    def compile(
        self, options: BaseModel, inspected: Inspected, main: Path | None, folder: JobFolder
    ) -> CompiledJob:
        from wanhe.story.plan import Layout, compile_with_cache, deliverables, fingerprint

        assert main is not None and isinstance(options, StoryOptions)
        board, facts = inspected.facts["board"], inspected.facts["facts"]
        layout = Layout(folder.output, folder.work,
                        cache_root(folder, inspected.facts.get("project_id")))
        tasks = compile_with_cache(board, main.parent, facts, layout)
        if inspected.facts.get("confined"):  # a farm job: its tasks open only its own files
            confine_tasks(tasks, folder)
        spec = {
            "storyboard": str(main), "board": board.model_dump(mode="json"), "facts": facts,
            "output": str(folder.output), "work": str(folder.work),
            "cache": str(layout.cache), "max_attempts": options.max_attempts,
            "deliverables": deliverables(layout, board),
        }
        return CompiledJob(spec, fingerprint(board, facts), tasks)

    def retry_rules(self, spec: dict[str, Any]) -> RetryRules:
        return RetryRules(max_attempts=int(spec.get("max_attempts", 3)))

    def task_label(self, task: TaskView) -> str:
        parts = task.key.split("/")
        if task.kind in ("voice", "dub") and len(parts) == 3:
            return f"{task.kind} of line {parts[1]} ({parts[2]})"
        if task.kind == "render" and len(parts) == 3:
            return f"shot {parts[1]} frame {parts[2]}"
        if task.kind in ("lipsync", "clip") and len(parts) == 2:
            return f"{task.kind} of shot {parts[1]}"
        if task.kind == "track" and len(parts) == 2:
            return f"the {parts[1]} dialogue track"
        if task.kind == "reel":
            return "the reel"
        return f"task {task.key}"

    def deliverables(self, spec: dict[str, Any]) -> list[str]:
        return list(spec.get("deliverables", []))
