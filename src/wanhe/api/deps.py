"""FastAPI dependencies shared by the routers: the app's `Service` from `request.app.state`.

A leaf among the api modules: it imports `service` and nothing that imports it back, so the
routers, `auth` and `metrics` can all depend on it without an import cycle.
"""

from __future__ import annotations

from fastapi import Request

from wanhe.api.service import Service


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service
