"""Prometheus metrics at `/metrics`: queue depth, running tasks, dispatch latency, core-seconds.

They are the farm operators': every project's usage is in them, so only an admin token may
scrape them (a project token gets 403; it reads its own usage from `/api/report`).

Gauges are read from the database at scrape time (it is the source of truth); the dispatch
latency histogram takes the dispatcher's new measurements at each scrape. `wanhe.api.app` makes
the app's `Metrics` (kept in `app.state.metrics`); the service itself knows nothing of it.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from wanhe.api.auth import Principal, admin
from wanhe.api.service import Service

router = APIRouter(tags=["metrics"])


class FarmCollector(Collector):
    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        store = self.service.store
        counts = store.farm_task_counts()
        yield GaugeMetricFamily(
            "wanhe_queue_depth", "tasks ready to run, waiting for a worker",
            value=counts.get("ready", 0),
        )
        yield GaugeMetricFamily(
            "wanhe_running_tasks", "tasks running now", value=counts.get("running", 0)
        )
        waiting = GaugeMetricFamily(
            "wanhe_tasks", "tasks of unfinished jobs by state", labels=["state"]
        )
        for state, count in sorted(counts.items()):
            waiting.add_metric([state], count)
        yield waiting
        names = {p.id: p.name for p in store.projects()}
        used = store.used_core_seconds()
        core = CounterMetricFamily(
            "wanhe_core_seconds", "core-seconds metered (every attempt)", labels=["project"]
        )
        for pid, name in sorted(names.items()):
            core.add_metric([name], used.get(pid, 0.0))
        yield core
        dispatcher = self.service.dispatcher
        yield GaugeMetricFamily(
            "wanhe_worker_slots", "worker slots the dispatcher holds",
            value=0 if dispatcher is None else len(dispatcher.slots),
        )


class Metrics:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.registry.register(FarmCollector(service))
        self.latency = Histogram(
            "wanhe_dispatch_latency_seconds", "time from a task being ready to it starting",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=self.registry,
        )

    def render(self) -> bytes:
        dispatcher = self.service.dispatcher
        if dispatcher is not None:
            seen = dispatcher.dispatch_latencies
            n = len(seen)
            for value in seen[:n]:
                self.latency.observe(value)
            del seen[:n]
        return generate_latest(self.registry)


def get_metrics(request: Request) -> Metrics:
    collector: Metrics = request.app.state.metrics
    return collector


@router.get("/metrics", response_class=Response, include_in_schema=True)
def metrics(
    _: Principal = Depends(admin), collector: Metrics = Depends(get_metrics)
) -> Response:
    """Prometheus metrics of the whole farm (every project's usage): admin tokens only."""
    return Response(collector.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
