from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, Field, StringConstraints

from rostra.core.schemas import READ_ONLY_FIELDS, InputModel, ResourceModel, Timestamp

MAX_LIMIT = 1_000_000_000

Limit = Annotated[int | None, Field(ge=0, le=MAX_LIMIT)]


class OverrideIn(InputModel):
    """An account's own limits, replacing its plan's; null is unlimited."""

    read_only_fields: ClassVar[frozenset[str]] = READ_ONLY_FIELDS | {"user_id"}

    per_hour: Limit
    per_minute: Limit
    overage: bool = False
    note: Annotated[str, StringConstraints(max_length=500)] | None = None


class OverrideOut(ResourceModel):
    user_id: int
    per_hour: int | None
    per_minute: int | None
    overage: bool
    note: str | None
    created_at: Timestamp
    updated_at: Timestamp


class WindowUsage(BaseModel):
    name: Literal["hour", "minute"]
    seconds: int
    limit: int | None
    used: int
    remaining: int | None
    reset: int
    """Unix seconds, as in X-RateLimit-Reset."""
    resets_at: Timestamp
    over_limit: Literal["refused", "overage"]
    overage: int
    """Requests admitted over the limit in this window (only where overage is allowed)."""


class OverageUsage(BaseModel):
    allowed: bool
    period: str
    """The UTC month the total belongs to, YYYY-MM."""
    requests: int


class UsageOut(ResourceModel):
    plan: str
    limits_from: Literal["plan", "override"]
    user_id: int | None
    client_ip: str | None
    """Anonymous callers are counted by address (IPv6 by /64)."""
    windows: list[WindowUsage]
    overage: OverageUsage
