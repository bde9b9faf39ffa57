"""The farm's REST API over plain HTTP (urllib): what the add-on needs, one line per failure;
also the transport the shared packer uploads through.

Runs inside an artist's Blender, whose Python has none of wanhe's dependencies: standard
library only. Every failure is a `FarmError` whose message is one line a Blender report can
show as it is (server unreachable, token refused, not found, refused values, server faults).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import IO, Any

from .shared import errors, refusal

USER_AGENT = "wanhe-blender-addon"


# Something the artist can act on, in one line: the add-on's name for the shared base, so
# that packing's PackError is a FarmError too (every report catches FarmError).
FarmError = errors.TransferError


class TokenRefused(FarmError):
    """401: the token is wrong, revoked, or missing."""


class Unreachable(FarmError):
    """No answer from the server (not running, wrong URL, network)."""


# what a refusal of the token tells the artist to do (the CLI names its variable instead)
TOKEN_FIX = "paste a valid one in the add-on's preferences"


class Farm:
    """One farm: its URL and a project token. Thread-safe (no shared connection)."""

    def __init__(self, server: str, token: str, *, timeout: float = 30.0) -> None:
        server = server.strip().rstrip("/")
        if not server:
            raise FarmError("no server URL — set it in the add-on's preferences")
        if not server.startswith(("http://", "https://")):
            raise FarmError(f"server URL {server!r} must start with http:// or https://")
        if not token.strip():
            raise FarmError("no API token — paste the project's token in the add-on's "
                            "preferences (`wanhe project create` prints one)")
        self.server = server
        self.token = token.strip()
        self.timeout = timeout

    def url(self, path: str) -> str:
        return self.server + path

    def dashboard_url(self, job_id: int) -> str:
        return f"{self.server}/#/jobs/{int(job_id)}"

    # ------------------------------------------------------------------ requests

    def open(
        self, method: str, path: str, *, body: bytes | IO[bytes] | None = None,
        headers: dict[str, str] | None = None, timeout: float | None = None,
    ) -> Any:
        """The open response (the caller reads and closes it); FarmError on any failure."""
        request = urllib.request.Request(self.url(path), data=body, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("User-Agent", USER_AGENT)
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            return urllib.request.urlopen(request, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as exc:
            data = exc.read()
            exc.close()
            message = refusal.describe_refusal(exc.code, data, token_fix=TOKEN_FIX)
            raise (TokenRefused if exc.code == 401 else FarmError)(message) from None
        except TimeoutError:
            raise Unreachable(f"the farm at {self.server} did not answer in time") from None
        except urllib.error.URLError as exc:
            reason = refusal.one_line(str(exc.reason), 80)
            raise Unreachable(
                f"cannot reach the farm at {self.server} ({reason}) — is "
                "`wanhe serve` running, and is the URL in the preferences right?"
            ) from None
        except (ConnectionError, OSError) as exc:
            raise Unreachable(
                f"cannot reach the farm at {self.server} ({refusal.one_line(str(exc), 80)})"
            ) from None

    def call(self, method: str, path: str, payload: Any = None, **query: Any) -> Any:
        """A JSON request and its JSON answer."""
        if query:
            clean = {k: v for k, v in query.items() if v is not None}
            path = f"{path}?{urllib.parse.urlencode(clean)}"
        body = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        with self.open(method, path, body=body, headers=headers) as response:
            data = response.read()
        try:
            return json.loads(data) if data else None
        except ValueError:
            raise FarmError(f"the farm at {self.server} did not answer JSON on {path} — is "
                            "this a wanhe server?") from None

    def get(self, path: str, **query: Any) -> Any:
        return self.call("GET", path, **query)

    def post(self, path: str, payload: Any = None) -> Any:
        return self.call("POST", path, payload if payload is not None else {})

    def post_json(self, path: str, payload: dict[str, Any]) -> Any:
        return self.post(path, payload)

    def send(self, method: str, path: str, body: bytes | IO[bytes], *, content_type: str,
             size: int) -> None:
        """An upload's request (the `Transport` of wanhe.transfer.pack)."""
        with self.open(method, path, body=body, timeout=600,
                       headers={"Content-Type": content_type, "Content-Length": str(size)}):
            pass

    def stream(self, path: str, *, start: int = 0, block: int = 1 << 20) -> Iterator[bytes]:
        """A file's bytes from offset `start` (an HTTP Range request when start > 0); raises
        FarmError if the server ignores the range."""
        headers = {"Range": f"bytes={start}-"} if start > 0 else {}
        with self.open("GET", path, headers=headers, timeout=max(self.timeout, 120)) as response:
            if start > 0 and response.status != 206:
                raise FarmError(f"the farm did not resume {path} (answered {response.status})")
            while True:
                chunk = response.read(block)
                if not chunk:
                    return
                yield chunk

    # ------------------------------------------------------------------ what the add-on asks

    def me(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.get("/api/me")
        return answer

    def project(self, name: str) -> dict[str, Any] | None:
        for row in self.get("/api/projects"):
            if row.get("name") == name:
                found: dict[str, Any] = row
                return found
        return None

    def free_capacity(self) -> tuple[float, float, int]:
        """(free cores, free GPUs, worker slots) from /api/workers."""
        data = self.get("/api/workers")
        cores = gpus = 0.0
        slots = 0
        for slot in data.get("workers", []):
            if slot.get("light"):
                continue
            slots += 1
            if slot.get("task") is None:
                cores += float(slot.get("cpus") or 0)
                gpus += float(slot.get("gpus") or 0)
        return cores, gpus, slots

    def job_type(self, kind: str = "blender_render") -> dict[str, Any] | None:
        for row in self.get("/api/job-types"):
            if row.get("kind") == kind:
                found: dict[str, Any] = row
                return found
        return None

    def jobs(self, limit: int = 20) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = self.get("/api/jobs", limit=limit)
        return answer

    def job(self, job_id: int) -> dict[str, Any]:
        answer: dict[str, Any] = self.get(f"/api/jobs/{int(job_id)}")
        return answer

    def control(self, job_id: int, verb: str) -> dict[str, Any]:
        if verb not in ("cancel", "pause", "resume", "retry"):
            raise FarmError(f"unknown job action {verb!r}")
        answer: dict[str, Any] = self.post(f"/api/jobs/{int(job_id)}/{verb}")
        return answer

    def checksums(self, job_id: int) -> dict[str, str]:
        """Output path -> SHA-256, from the farm."""
        data = self.get(f"/api/jobs/{int(job_id)}/checksums")
        return {row["path"]: row["sha256"] for row in data.get("files", [])}
