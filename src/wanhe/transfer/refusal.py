"""A farm's 4xx/5xx answer as one line, the same words in the CLI and the add-on; only how
to fix a refused token differs (`token_fix`: an environment variable, or a preference)."""

from __future__ import annotations

import json
from typing import Any


def one_line(text: str, limit: int = 300) -> str:
    """`text` with its white space folded, cut to `limit` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _detail(body: bytes) -> str:
    """FastAPI's `detail` (a string, or a list of validation errors) as one line."""
    try:
        detail: Any = json.loads(body.decode("utf-8", "replace")).get("detail")
    except (ValueError, AttributeError):
        detail = body.decode("utf-8", "replace")[:300]
    if isinstance(detail, list):
        parts = []
        for err in detail:
            if isinstance(err, dict):
                loc = [str(p) for p in err.get("loc", []) if p not in ("body", "query", "path")]
                where = ".".join(loc)
                parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
            else:
                parts.append(str(err))
        detail = "; ".join(parts)
    return one_line(str(detail or ""))


def describe_refusal(status: int, body: bytes, *, token_fix: str) -> str:
    """The farm's refusal (`status`, the answer's `body`) as one line; a 401 says
    `token_fix`, where this client takes its token from."""
    if status == 401:
        return f"the farm refused the token — {token_fix}"
    detail = _detail(body)
    if status == 403:
        return f"not allowed: {detail}"
    if status == 404:
        return f"not found: {detail}"
    if status == 409:
        return detail
    if status == 413:
        return f"too large for the farm: {detail}"
    if status == 422:
        return f"the farm refused the values: {detail}"
    return f"the farm answered {status}: {detail}"
