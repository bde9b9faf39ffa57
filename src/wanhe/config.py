"""Settings: where the database and storage live, how to reach Ray, service address.

Read from `WANHE_*` environment variables (pydantic-settings); CLI flags override them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    return Path.home() / ".wanhe"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WANHE_", extra="ignore")

    home: Path = Field(default_factory=default_home)
    db: str | None = None  # SQLAlchemy URL; default: SQLite at <home>/wanhe.db
    storage: str | None = None  # local path (or fsspec URL); default: <home>/storage
    ray_address: str | None = None  # None: start Ray in-process
    host: str = "127.0.0.1"
    port: int = 8640
    server: str = "http://127.0.0.1:8640"
    token: str | None = None
    blender: str | None = None  # a user's own `blender` binary; default: the bpy wheel
    max_upload_bytes: int = 20 * 1024**3

    def overridden(self, **flags: object) -> Settings:
        """These settings with the command-line flags that were given (None or "": not given)."""
        return self.model_copy(update={k: v for k, v in flags.items() if v not in (None, "")})

    @property
    def db_url(self) -> str:
        if self.db:
            return self.db
        return f"sqlite:///{self.home / 'wanhe.db'}"

    @property
    def storage_root(self) -> Path:
        return Path(self.storage) if self.storage else self.home / "storage"
