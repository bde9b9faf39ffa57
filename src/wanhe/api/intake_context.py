"""What a submission's inspection sees on the farm (`IntakeContext`): the service's, plus the
submitter's view of the model catalogue and the farm's capacity. Used by a job's submit
(`wanhe.api.intake`) and by the estimate of a generation spec (`wanhe.api.estimate_gen`)."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

from wanhe.api.auth import Principal
from wanhe.api.service import Service
from wanhe.jobtypes.base import IntakeContext


def intake_context(service: Service, who: Principal) -> IntakeContext:
    """What inspection sees, for every kind: the service's, plus the submitter's view of the
    model catalogue and the farm's capacity (asked only by a job type that uses them)."""

    def models(name: str) -> dict[str, Any] | None:
        from wanhe.ai import catalog

        return catalog.find_model(service.store, name, who.project_id)

    def capacity() -> Any:
        from wanhe.ai.capacity import detect

        return detect(_farm_gpus(service))

    return replace(service.intake, models=models, capacity=capacity)


def _farm_gpus(service: Service) -> int:
    """GPUs the farm has: Ray's count when Ray is up here, else the dispatcher's slots'."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        from wanhe.engine import cluster

        return int(cluster.total_gpus())
    dispatcher = service.dispatcher
    return int(sum(s.gpus for s in dispatcher.slots)) if dispatcher is not None else 0
