"""The storyboard estimate's probe job (`story_probe`): the farm's probe of a storyboard's
voices, Blender shots and assembly, made by `POST /api/estimate` with `kind: story` (never
submitted by a user) so that no voice is synthesized and no Blender runs in the API process.

    story_probe  probe          (one task: the storyboard's every probe, on one CPU)

The job's input folder holds the storyboard and its files, as a story job's does; the task's
output is the estimate's parts and each task's seconds (`wanhe.engine.executors.story_probe`).
A probe that fails is not retried: the estimate says why at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from wanhe.jobtypes._probe import EstimateProbeJob
from wanhe.jobtypes.base import TaskView
from wanhe.jobtypes.registry import register_job_type
from wanhe.model import Resources, TaskSpec

KIND = "story_probe"


class StoryProbeOptions(BaseModel):
    """Nothing a user gives: the job is made whole by `POST /api/estimate`."""


def probe_task(storyboard: Path) -> TaskSpec:
    """The one task: the estimate of the storyboard in the job's input folder."""
    return TaskSpec("probe", KIND, {"storyboard": str(storyboard)},
                    resources=Resources(cpus=1.0))


@register_job_type
class StoryProbeJob(EstimateProbeJob):
    kind = KIND
    title = "storyboard estimate probe"
    options_model = StoryProbeOptions
    estimate_kind = "story"

    def summary(self, spec: dict[str, Any]) -> str:
        return "the probes of a storyboard's estimate"

    def task_label(self, task: TaskView) -> str:
        return "storyboard estimate probe"
