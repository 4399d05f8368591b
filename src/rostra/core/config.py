"""Settings, read from ``ROSTRA_*`` environment variables and an optional ``.env`` file.

The names are fixed by the contract (section 12), so the settings are one flat model: every
field's env var is ``ROSTRA_`` plus the field name in capitals. Every field has a working
default, so ``rostra serve`` runs with none set.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import time
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import structlog
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIN_SECRET_KEY_LENGTH = 32
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./rostra.db"

log = structlog.get_logger(__name__)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ROSTRA_", env_file=".env", extra="ignore", frozen=True
    )

    environment: Literal["development", "production", "test"] = "development"
    """Shown by /status; production refuses a generated secret key."""
    database_url: str = DEFAULT_DATABASE_URL
    """SQLAlchemy URL: sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db."""
    database_pool_size: int = Field(default=10, ge=1, le=500)
    """Connections per process in the PostgreSQL pool."""
    redis_url: str | None = None
    """Unset: in-process rate limits and caches. Set: shared through Redis."""
    secret_key: SecretStr | None = None
    """Signs tokens and cursors; generated once and kept beside the database when unset."""

    access_token_ttl_seconds: int = Field(default=900, ge=30, le=86_400)
    """Lifetime of a login access token (JWT)."""
    refresh_token_ttl_seconds: int = Field(default=30 * 86_400, ge=300)
    """Lifetime of a refresh token; a session ends when its refresh token is unused this long."""
    refresh_grace_seconds: int = Field(default=10, ge=0, le=120)
    """A refresh token presented again this soon after its rotation gets the same new pair."""
    registration_open: bool = True
    """Allow public sign-up at POST /auth/register."""
    password_hash_concurrency: int = Field(default=2, ge=1, le=64)
    """At most this many argon2 hashes run at once (each takes ~64 MiB)."""
    password_hash_queue: int = Field(default=64, ge=0, le=10_000)
    """Logins waiting for a hash slot beyond this many are refused with 503."""
    auth_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    """How long a verified credential is trusted in memory before the database is asked again."""
    api_key_last_used_resolution_seconds: int = Field(default=60, ge=0)
    """last_used_at is written at most once per this many seconds per key."""

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Request bodies over this size are refused with 413."""
    health_cache_seconds: float = Field(default=1.0, ge=0, le=60)
    """How long one round of health checks answers /health (a probe flood never floods the DB)."""

    metrics_public: bool = False
    """Serve /metrics to anyone; otherwise admins or the metrics token only."""
    metrics_token: SecretStr | None = None
    """A bearer token that may read /metrics (for a Prometheus scraper)."""
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Comma-separated addresses or networks whose X-Forwarded-For is believed."""

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Minimum level of the JSON log lines."""

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("secret_key")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(f"must be at least {MIN_SECRET_KEY_LENGTH} characters")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            for item in value:
                ipaddress.ip_network(str(item), strict=False)
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        """The database file, or None for PostgreSQL and in-memory SQLite."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[1].split("?", 1)[0]
        return None if path in ("", ":memory:") else Path(path)

    def signing_key(self) -> str:
        """The configured secret key, else the one kept beside the database (made on first use)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        return _kept_secret(self.sqlite_path())


def setting_env_name(field: str) -> str:
    return f"ROSTRA_{field.upper()}"


@lru_cache(maxsize=8)
def _kept_secret(database_file: Path | None) -> str:
    """Read or create the generated secret beside the SQLite file (or in the working directory)."""
    path = (
        database_file.with_name(database_file.name + ".secret")
        if database_file is not None
        else Path("rostra.secret")
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        # O_EXCL: when several processes start at once, exactly one writes the key.
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        for _ in range(50):
            existing = path.read_text().strip()
            if existing:
                return existing
            time.sleep(0.01)
        raise RuntimeError(f"{path} is empty") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    log.warning("secret_key_generated", path=str(path), hint="set ROSTRA_SECRET_KEY")
    return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
