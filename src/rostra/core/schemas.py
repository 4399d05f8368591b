"""Base schemas: what every request body refuses or ignores, how times are written, and what
an id in a path may be."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from fastapi import Path
from pydantic import BaseModel, ConfigDict, PlainSerializer, model_validator


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[datetime, PlainSerializer(_rfc3339, return_type=str, when_used="json")]
"""A UTC time written as RFC 3339 with ``Z`` and whole seconds, as the contract shows them."""

MAX_ID = 2**31 - 1
"""The largest id an INTEGER primary key holds (PostgreSQL's int4)."""

IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="The resource's id")]
"""An id in a path: one no table can hold is a 400 naming the parameter, never a database
error (a 20-digit id would otherwise overflow the driver)."""

READ_ONLY_FIELDS = frozenset({"id", "created_at", "updated_at", "last_login", "livemode"})


class InputModel(BaseModel):
    """A request body: unknown fields are a 400; read-only fields a resource shows are ignored,
    so a client may send back an object it read."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    read_only_fields: ClassVar[frozenset[str]] = READ_ONLY_FIELDS

    @model_validator(mode="before")
    @classmethod
    def _drop_read_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in cls.read_only_fields}
        return data


class ResourceModel(BaseModel):
    """An object the API returns."""

    model_config = ConfigDict(from_attributes=True)
    livemode: bool = True
