from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, JsonValue, StringConstraints

from rostra.core.schemas import InputModel, ResourceModel, Timestamp
from rostra.projects.schemas import PatchModel

DataSetName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Values = list[JsonValue]
Metadata = dict[str, JsonValue]


class DataSetCreate(InputModel):
    """Seed 001's body ``{"name", "values"}`` works as is."""

    name: DataSetName
    values: Values
    metadata: Metadata = Field(default_factory=dict)
    project_id: int | None = None
    owner_id: int | None = None


class DataSetReplace(InputModel):
    """``PUT``: every writable field. ``project_id`` is fixed once the data set exists (sending
    the current value is fine) and ``owner_id`` left out keeps the owner."""

    name: DataSetName
    values: Values
    metadata: Metadata = Field(default_factory=dict)
    project_id: int | None = None
    owner_id: int | None = None


class DataSetUpdate(PatchModel):
    """``PATCH``: ``values`` is replaced as a whole; ``metadata`` merges key by key (RFC 7396:
    a key sent as null is removed)."""

    not_nullable = frozenset({"name", "values", "metadata", "owner_id"})

    name: DataSetName | None = None
    values: Values | None = None
    metadata: Metadata | None = None
    project_id: int | None = None
    owner_id: int | None = None


class DataSetOut(ResourceModel):
    id: int
    name: str
    values: list[Any]
    metadata: dict[str, Any]
    project_id: int | None
    owner_id: int
    created_at: Timestamp
    updated_at: Timestamp
