"""`GET /api/events`: server-sent events of task and job state changes (the dashboard's feed).

Auth by the Authorization header like every call (the dashboard reads the stream with fetch,
not EventSource, so no token sits in a URL); a project token only receives its own project's
events. `Last-Event-ID` resumes after a reconnect.

A stream lives no longer than its token: every `TOKEN_RECHECK_S` it asks the database whether
the token still works, and when it was revoked or expired the stream sends one `revoked`
event and ends (a reconnect then gets 401).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from wanhe.api.auth import Principal, principal
from wanhe.api.deps import get_service
from wanhe.api.service import Service

HEARTBEAT_S = 15.0
TOKEN_RECHECK_S = 2.0
_EVENT_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits only: str.isdigit() takes "²" too


def resume_after(header: str, last_seq: int) -> int:
    """The sequence number a `Last-Event-ID` header resumes after (the newest when empty);
    anything but our own ids is a 422 naming the header."""
    if header == "":
        return last_seq
    if not _EVENT_ID.fullmatch(header):
        raise HTTPException(422, [{
            "loc": ["header", "last-event-id"], "type": "value_error",
            "msg": f"Last-Event-ID {header[:40]!r} is not an event id (ASCII digits, as this "
                   "stream's `id:` lines send them); leave it out to start from now",
        }])
    return int(header)

router = APIRouter(tags=["events"])


@router.get(
    "/api/events",
    summary="Server-sent events: `task` and `job` state changes",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def events(
    request: Request,
    who: Principal = Depends(principal),
    service: Service = Depends(get_service),
    timeout: float | None = Query(
        default=None, gt=0, le=86400, description="close the stream after this many seconds"
    ),
) -> StreamingResponse:
    hub = service.events
    last_id = request.headers.get("last-event-id", "")
    start = resume_after(last_id, hub.last_seq)

    async def stream() -> AsyncIterator[str]:
        seq = start
        began = last_beat = last_check = time.monotonic()
        yield "retry: 2000\n\n"
        while True:
            now = time.monotonic()
            if timeout is not None and now - began >= timeout:
                return
            if await request.is_disconnected():
                return
            if now - last_check >= TOKEN_RECHECK_S:
                last_check = now
                if not await asyncio.to_thread(service.store.token_active, who.token_id):
                    yield ("event: revoked\ndata: {\"detail\": \"the token was revoked or "
                           "expired\"}\n\n")
                    return
            batch = hub.since(seq)
            for event in batch:
                seq = event.seq
                if event.project_id is None or who.may_see(event.project_id):
                    yield event.sse()
            if not batch:
                if now - last_beat >= HEARTBEAT_S:
                    last_beat = now
                    yield ": ping\n\n"
                await asyncio.sleep(0.2)

    return StreamingResponse(
        stream(), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
