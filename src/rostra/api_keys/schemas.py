from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from rostra.core.schemas import InputModel, ResourceModel, Timestamp
from rostra.core.security import is_known_scope


class ApiKeyCreate(InputModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] = "API key"
    scopes: list[str] | None = Field(
        default=None,
        description="read, write, admin, or per resource such as projects:read; "
        "default: every right the creating credential has",
    )
    mode: Literal["live", "test"] = "live"
    expires_at: datetime | None = None

    @field_validator("scopes")
    @classmethod
    def _known_scopes(cls, scopes: list[str] | None) -> list[str] | None:
        if scopes is None:
            return None
        unknown = [scope for scope in scopes if not is_known_scope(scope)]
        if unknown:
            raise ValueError(f"Unknown scope(s): {', '.join(unknown)}")
        if not scopes:
            raise ValueError("Give at least one scope")
        return sorted(set(scopes))

    @field_validator("expires_at")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if value <= datetime.now(UTC):
            raise ValueError("Must be in the future")
        return value


class ApiKeyOut(ResourceModel):
    id: int
    user_id: int
    name: str
    prefix: str = Field(description="The first characters of the secret, to recognise it by")
    scopes: list[str]
    expires_at: Timestamp | None
    last_used_at: Timestamp | None
    revoked_at: Timestamp | None
    created_at: Timestamp


class ApiKeyCreated(ApiKeyOut):
    secret: str = Field(description="Shown this once; store it now")
