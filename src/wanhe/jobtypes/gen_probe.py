"""The estimate probe job (`gen_probe`): the farm's probe of a generation spec's models, made
by `POST /api/estimate` (never submitted by a user: its payloads name models' files, which
only the farm's own catalogue may do) so that a model is loaded on a worker, not in the API.

    gen_probe  probe/0 … probe/N-1     (one per model and shot shape without history)

Each task asks what the gen task it stands for asks (its GPU or cores, its memory); its output
is the probe (`wanhe.engine.executors.gen_probe`). A probe that fails is not retried: the
estimate says why at once.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from wanhe.jobtypes._probe import EstimateProbeJob
from wanhe.jobtypes.base import TaskView
from wanhe.jobtypes.registry import register_job_type
from wanhe.model import Resources, TaskSpec

KIND = "gen_probe"


class ProbeOptions(BaseModel):
    """One entry per probe: the gen task's payload (`gen`) and resources, the step counts to
    probe, the threads of a CPU probe, whether to time the worker's start too."""

    probes: list[dict[str, Any]] = Field(min_length=1, max_length=64)


def probe_tasks(probes: list[dict[str, Any]]) -> list[TaskSpec]:
    return [
        TaskSpec(f"probe/{i}", KIND,
                 {"gen": p["gen"], "steps": list(p["steps"]), "threads": p["threads"],
                  "start": bool(p.get("start"))},
                 resources=Resources(cpus=float(p["cpus"]), memory=int(p["memory"]),
                                     gpus=float(p["gpus"])))
        for i, p in enumerate(probes)
    ]


@register_job_type
class GenProbeJob(EstimateProbeJob):
    kind = KIND
    title = "estimate probe"
    options_model = ProbeOptions
    estimate_kind = "gen"

    def summary(self, spec: dict[str, Any]) -> str:
        return f"{spec.get('probes', 0)} model probe(s) for an estimate"

    def task_label(self, task: TaskView) -> str:
        return f"estimate probe {task.key.removeprefix('probe/')}"
