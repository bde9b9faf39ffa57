"""Settings: where the database and storage live, how to reach Ray, service address.

Read from `WANHE_*` environment variables (pydantic-settings); CLI flags override them.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(location: str) -> bool:
    """Whether a storage location is an fsspec URL (`s3://…`, chained `simplecache::s3://…`)
    rather than a plain path."""
    return bool(_URL_RE.match(location)) or "::" in location


def default_home() -> Path:
    return Path.home() / ".wanhe"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WANHE_", extra="ignore")

    home: Path = Field(default_factory=default_home)
    db: str | None = None  # SQLAlchemy URL; default: SQLite at <home>/wanhe.db
    storage: str | None = None  # a local path or an fsspec URL; default: <home>/storage
    work: Path | None = None  # local/NFS work area; default: the storage folder, or <home>/work
    ray_address: str | None = None  # None: start Ray in-process
    host: str = "127.0.0.1"
    port: int = 8640
    server: str = "http://127.0.0.1:8640"
    # the farm's address as people reach it (job links in what it publishes to Kitsu);
    # default http://HOST:PORT
    public_url: str | None = None
    token: str | None = None
    blender: str | None = None  # a user's own `blender` binary; default: the bpy wheel
    # Workers' named tools, e.g. WANHE_TOOLS='{"ffmpeg": "/opt/ffmpeg/bin/ffmpeg"}'; a tool
    # not named here is looked up on each worker's PATH (`WorkerInfo.tool`).
    tools: dict[str, str] = Field(default_factory=dict)
    max_upload_bytes: int = 20 * 1024**3
    # elastic mode (--ray-address with an autoscaler): the most the farm asks Ray for at once
    max_cores: float | None = Field(default=None, gt=0)
    max_gpus: float | None = Field(default=None, ge=0)

    def overridden(self, **flags: object) -> Settings:
        """These settings with the command-line flags that were given (None or "": not given)."""
        return self.model_copy(update={k: v for k, v in flags.items() if v not in (None, "")})

    def worker_tools(self) -> dict[str, str]:
        """The tools a worker is given by name: `tools`, with `blender` when one is set."""
        return {**self.tools, **({"blender": self.blender} if self.blender else {})}

    @property
    def db_url(self) -> str:
        if self.db:
            return self.db
        return f"sqlite:///{self.home / 'wanhe.db'}"

    @property
    def storage_location(self) -> str:
        """Durable storage (blobs, finished outputs): a local path or an fsspec URL."""
        if not self.storage:
            return str(self.home / "storage")
        return self.storage if is_url(self.storage) else str(Path(self.storage).expanduser())

    @property
    def work_root(self) -> Path:
        """The local (or cluster-shared) folder tasks read and write: the storage folder itself
        when storage is a plain path, else <home>/work, unless `work` names another."""
        if self.work:
            return self.work.expanduser()
        if is_url(self.storage_location):
            return self.home / "work"
        return Path(self.storage_location)

    @property
    def storage_root(self) -> Path:
        """The local folder `wanhe render` keeps its tiles and logs in: the work area."""
        return self.work_root
