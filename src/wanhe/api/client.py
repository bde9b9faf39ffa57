"""A thin HTTP client of the farm API for the CLI: one clear line for every kind of failure."""

from __future__ import annotations

from typing import Any

import httpx


class ApiError(Exception):
    """Something the user can act on: unreachable server, bad token, unknown id, bad value."""


def describe_error(response: httpx.Response) -> str:
    try:
        detail: Any = response.json().get("detail")
    except Exception:
        detail = response.text[:300]
    if response.status_code == 401:
        return "token rejected — check WANHE_TOKEN (or --token)"
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
    if response.status_code == 404:
        return f"not found: {detail}"
    if response.status_code == 422:
        return f"invalid request — {detail}"
    return f"the server answered {response.status_code}: {detail}"


class Client:
    def __init__(self, server: str, token: str | None, *, timeout: float = 120.0) -> None:
        if not token:
            raise ApiError("no token — pass --token or set WANHE_TOKEN (wanhe project create "
                           "prints one)")
        self.server = server.rstrip("/")
        self.http = httpx.Client(
            base_url=self.server, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise ApiError(
                f"cannot reach the wanhe server at {self.server} — is `wanhe serve` running? "
                "(set --server or WANHE_SERVER)"
            ) from None
        except httpx.TimeoutException:
            raise ApiError(f"the wanhe server at {self.server} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise ApiError(f"talking to {self.server} failed: {exc}") from None
        if response.status_code >= 400:
            raise ApiError(describe_error(response))
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()
