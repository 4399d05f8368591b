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
from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from rostra.lib.ratelimit.plans import PlanLimits, default_plan_table, parse_plan_table
from rostra.lib.webhooks.schedule import DEFAULT_DELAYS_SECONDS

MIN_SECRET_KEY_LENGTH = 32
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./rostra.db"
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
_DRIVER_FOR_SCHEME = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}

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
    secret_key: SecretStr | None = Field(default=None, validate_default=True)
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

    rate_limit_enabled: bool = True
    """Count requests against the plan limits; false lets every request through uncounted."""
    rate_limit_plans: Annotated[dict[str, PlanLimits], NoDecode] = Field(
        default_factory=default_plan_table
    )
    """The plan table as JSON; a plan or field left out keeps its default, null is unlimited."""
    rate_limit_fail_closed: bool = False
    """When Redis cannot be asked, answer 503 instead of letting requests through uncounted."""
    rate_limit_key_prefix: str = Field(default="rostra:rl:", min_length=1, max_length=100)
    """Prefix of the rate-limit keys in Redis (deployments sharing one Redis use different ones)."""
    rate_limit_overrides_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    """How long per-account limit overrides are kept in memory before the database is re-read."""
    redis_timeout_seconds: float = Field(default=0.5, gt=0, le=30)
    """Longest wait for Redis (connecting, or one rate-limit check) before it counts as down."""
    redis_max_connections: int = Field(default=64, ge=1, le=10_000)
    """Connections per process in the Redis pool; requests beyond wait for a free one."""

    webhooks_allow_private: bool = False
    """Allow webhook URLs that resolve to loopback or private addresses (development, tests);
    the cloud metadata address stays refused."""
    webhooks_worker_enabled: bool = True
    """Run the delivery worker inside ``rostra serve``; false leaves it to ``rostra worker``."""
    webhooks_poll_seconds: float = Field(default=0.5, gt=0, le=60)
    """How often a worker looks for due deliveries when nothing in its process wakes it."""
    webhooks_concurrency: int = Field(default=100, ge=1, le=10_000)
    """Deliveries one worker process sends at once, to all endpoints together."""
    webhooks_endpoint_concurrency: int = Field(default=10, ge=1, le=1_000)
    """Deliveries one worker process sends at once to one endpoint."""
    webhooks_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    """Time one delivery attempt has in all: connecting, sending, and the answer."""
    webhooks_lease_seconds: float = Field(default=60.0, gt=0, le=3600)
    """How long a claimed delivery is reserved for the worker sending it (a worker killed
    mid-send leaves it to the next one after this); longer than the timeout."""
    webhooks_disable_after_days: float = Field(default=5.0, gt=0, le=365)
    """An endpoint whose every attempt has failed for this long is disabled."""
    webhooks_retry_delays_seconds: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_DELAYS_SECONDS), min_length=1, max_length=50
    )
    """Comma-separated waits before the 2nd, 3rd, ... attempt (the last repeats), before jitter."""

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Minimum level of the JSON log lines."""

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        """Plain ``sqlite://`` and ``postgresql://`` (or ``postgres://``) URLs, as other tools
        write them, get the async driver this server uses."""
        scheme, separator, rest = value.partition("://")
        scheme = _DRIVER_FOR_SCHEME.get(scheme.lower(), scheme)
        if not separator or scheme not in _DRIVER_FOR_SCHEME.values():
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        url = f"{scheme}://{rest}"
        try:
            port = make_url(url).port
        except (ArgumentError, ValueError):
            raise ValueError("is not a valid database URL") from None
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"has port {port}, which no server listens on")
        return url

    @field_validator("redis_url")
    @classmethod
    def _known_redis(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(_REDIS_SCHEMES):
            raise ValueError(f"must start with {', '.join(_REDIS_SCHEMES)}")
        return value

    @field_validator("secret_key")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None:
            if info.data.get("environment") == "production":
                raise ValueError("must be set when ROSTRA_ENVIRONMENT is production")
            return None
        if len(value.get_secret_value()) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(f"must be at least {MIN_SECRET_KEY_LENGTH} characters")
        return value

    @field_validator("rate_limit_plans", mode="before")
    @classmethod
    def _plan_table(cls, value: object) -> dict[str, PlanLimits]:
        return parse_plan_table(value)

    @field_validator("webhooks_retry_delays_seconds", mode="before")
    @classmethod
    def _split_delays(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("webhooks_retry_delays_seconds")
    @classmethod
    def _non_negative_delays(cls, value: list[float]) -> list[float]:
        if any(delay < 0 for delay in value):
            raise ValueError("delays must not be negative")
        return value

    @field_validator("webhooks_lease_seconds")
    @classmethod
    def _lease_outlives_a_send(cls, value: float, info: ValidationInfo) -> float:
        timeout = info.data.get("webhooks_timeout_seconds")
        if timeout is not None and value <= timeout:
            raise ValueError("must be longer than ROSTRA_WEBHOOKS_TIMEOUT_SECONDS")
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
        path = self.database_url.partition(":///")[2].partition("?")[0]
        return None if path in ("", ":memory:") else Path(path)

    def signing_key(self) -> str:
        """The configured secret key, else the one kept beside the database (made on first use)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        return _kept_secret(self.sqlite_path())


def setting_env_name(field: str) -> str:
    return f"ROSTRA_{field.upper()}"


class SecretKeyUnavailable(RuntimeError):
    """The generated secret key can be neither read nor written (set ``ROSTRA_SECRET_KEY``)."""


def kept_secret_path(database_file: Path | None) -> Path:
    """Where the generated key lives: beside the SQLite file, else in the working directory."""
    if database_file is None:
        return Path("rostra.secret")
    return database_file.with_name(database_file.name + ".secret")


@lru_cache(maxsize=8)
def _kept_secret(database_file: Path | None) -> str:
    """Read the generated secret, or create it on first use (with a warning)."""
    path = kept_secret_path(database_file)
    try:
        return _read_or_create_secret(path)
    except OSError as exc:
        raise SecretKeyUnavailable(
            f"ROSTRA_SECRET_KEY is unset and the generated key at {path} is unusable: "
            f"{exc.strerror or exc}"
        ) from exc


def _read_or_create_secret(path: Path) -> str:
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
        raise SecretKeyUnavailable(f"{path} is empty: delete it or set ROSTRA_SECRET_KEY") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    log.warning("secret_key_generated", path=str(path), hint="set ROSTRA_SECRET_KEY")
    return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
