from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, field_validator

from rostra.core.schemas import InputModel, ResourceModel, Timestamp
from rostra.projects.schemas import Description, PatchModel


class ComponentType(StrEnum):
    SERVICE = "service"
    LIBRARY = "library"
    WEBSITE = "website"
    API = "api"
    OTHER = "other"


class Lifecycle(StrEnum):
    EXPERIMENTAL = "experimental"
    PRODUCTION = "production"
    DEPRECATED = "deprecated"


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("Must be an http:// or https:// URL")
    return value


ComponentName = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\s/][^/]*$")
]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^\S+$")]
Tags = Annotated[list[Tag], Field(max_length=50)]


LinkTitle = Annotated[str, StringConstraints(min_length=1, max_length=200)]
LinkUrl = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_http_url)]


class LinkIn(InputModel):
    title: LinkTitle
    url: LinkUrl


class Link(BaseModel):
    title: str
    url: str


Links = Annotated[list[LinkIn], Field(max_length=50)]


def _unique_tags(tags: list[str] | None) -> list[str] | None:
    return list(dict.fromkeys(tags)) if tags is not None else None


class ComponentFields(InputModel):
    """What ``POST`` and ``PUT`` share; ``project_id`` is fixed once the component exists."""

    project_id: int | None = None
    name: ComponentName
    type: ComponentType = ComponentType.SERVICE
    lifecycle: Lifecycle = Lifecycle.EXPERIMENTAL
    description: Description | None = None
    owner_id: int | None = None
    tags: Tags = Field(default_factory=list)
    links: Links = Field(default_factory=list)

    _tags = field_validator("tags")(_unique_tags)


class ComponentCreate(ComponentFields):
    """``POST /components`` (``project_id`` required) or ``POST /projects/{id}/components``."""


class ComponentReplace(ComponentFields):
    """``PUT``: every writable field; those left out go back to their defaults."""


class ComponentUpdate(PatchModel):
    not_nullable = frozenset({"project_id", "name", "type", "lifecycle", "tags", "links"})

    project_id: int | None = None
    name: ComponentName | None = None
    type: ComponentType | None = None
    lifecycle: Lifecycle | None = None
    description: Description | None = None
    owner_id: int | None = None
    tags: Tags | None = None
    links: Links | None = None

    _tags = field_validator("tags")(_unique_tags)


class ComponentOut(ResourceModel):
    id: int
    project_id: int
    name: str
    type: ComponentType
    lifecycle: Lifecycle
    description: str | None
    owner_id: int | None
    tags: list[str]
    links: list[Link]
    created_at: Timestamp
    updated_at: Timestamp
