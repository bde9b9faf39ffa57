"""The FastAPI application: `create_app(settings)` wires the service, routes and dashboard."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from wanhe.api import (
    events,
    metrics,
    routes_blobs,
    routes_farm,
    routes_jobs,
    routes_kitsu,
    routes_outputs,
    routes_projects,
    views,
)
from wanhe.api.schemas import Health
from wanhe.api.service import Inspectors, Service
from wanhe.config import Settings
from wanhe.storage import StorageUnavailable

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def create_app(
    settings: Settings,
    *,
    start_dispatcher: bool = True,
    workers: int | None = None,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    inspectors: Inspectors | None = None,
) -> FastAPI:
    """The farm service. With `start_dispatcher`, Ray connects and the dispatcher loop runs on
    a background thread for the app's lifetime (FastAPI lifespan)."""
    service = Service(
        settings, start_dispatcher=start_dispatcher, workers=workers, num_cpus=num_cpus,
        num_gpus=num_gpus, inspectors=inspectors, describe_job=views.job_event,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.close()

    app = FastAPI(
        title="wanhe",
        summary="万核 — a render farm for Blender: jobs, projects, budgets, usage",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.metrics = metrics.Metrics(service)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            err = {k: v for k, v in err.items() if k in ("loc", "msg", "type")}
            errors.append(err)
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(StorageUnavailable)
    async def _storage_down(_: Request, exc: StorageUnavailable) -> JSONResponse:
        # The farm's storage, not the request, is at fault: 503 says "try again", and the
        # message names the storage and what to check.
        return JSONResponse({"detail": str(exc)}, status_code=503,
                            headers={"Retry-After": "10"})

    @app.get("/health", response_model=Health, tags=["service"])
    def health() -> Health:
        return Health(ok=True)

    for module in (routes_projects, routes_blobs, routes_jobs, routes_farm, events, metrics,
                   routes_kitsu):
        app.include_router(module.router)
    app.include_router(routes_outputs.router)  # output checksums (the Blender add-on's downloads)
    from wanhe.api import routes_gen  # AI generation: models, results, picks

    app.include_router(routes_gen.router)
    from wanhe.api import routes_estimate  # POST /api/estimate: a render's probe on the farm

    app.include_router(routes_estimate.router)

    if (STATIC / "index.html").is_file():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

        @app.get("/", include_in_schema=False)
        def dashboard() -> Response:
            return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    return app
