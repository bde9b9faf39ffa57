"""A thin HTTP client of the farm API for the CLI: one clear line for every kind of failure."""

from __future__ import annotations

from typing import IO, Any

import httpx

from wanhe.transfer.errors import TransferError
from wanhe.transfer.refusal import describe_refusal


class ApiError(TransferError):
    """Something the user can act on: unreachable server, bad token, unknown id, bad value."""


def describe_error(response: httpx.Response) -> str:
    """The farm's refusal in one line, in the add-on's words too (wanhe.transfer.refusal)."""
    return describe_refusal(response.status_code, response.content,
                            token_fix="check WANHE_TOKEN (or --token)")


class Client:
    """The farm's API for the CLI; also the `wanhe.transfer.pack.Transport` uploads go
    through."""

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

    def post_json(self, path: str, payload: dict[str, Any]) -> Any:
        return self.json("POST", path, json=payload)

    def send(self, method: str, path: str, body: bytes | IO[bytes], *, content_type: str,
             size: int) -> None:
        self.request(method, path, content=body,
                     headers={"Content-Type": content_type, "Content-Length": str(size)})
