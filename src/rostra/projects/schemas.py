from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationInfo, field_validator

from rostra.core.schemas import InputModel, ResourceModel, Timestamp


class Visibility(StrEnum):
    PRIVATE = "private"
    INTERNAL = "internal"
    PUBLIC = "public"


class ProjectStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    DRAFT = "draft"


class ProjectRole(StrEnum):
    OWNER = "owner"
    MAINTAINER = "maintainer"
    VIEWER = "viewer"


ProjectName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=10_000)]


class PatchModel(InputModel):
    """A ``PATCH`` body: a field left out stays as it is; ``null`` is refused for the fields
    listed in ``not_nullable`` (clearing them would leave the resource invalid)."""

    not_nullable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name in cls.not_nullable:
            raise ValueError("Cannot be null")
        return value


class SettingsIn(PatchModel):
    """Project settings; in a ``PATCH`` only the keys sent change."""

    not_nullable = frozenset({"auto_deploy", "notifications"})

    auto_deploy: bool | None = None
    notifications: bool | None = None


class ProjectSettings(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    auto_deploy: bool = False
    notifications: bool = True


class ProjectCreate(InputModel):
    name: ProjectName
    description: Description | None = None
    visibility: Visibility = Visibility.PRIVATE
    status: ProjectStatus = ProjectStatus.ACTIVE
    settings: SettingsIn | None = None
    owner_id: int | None = None


class ProjectUpdate(PatchModel):
    not_nullable = frozenset({"name", "visibility", "status", "settings", "owner_id"})

    name: ProjectName | None = None
    description: Description | None = None
    visibility: Visibility | None = None
    status: ProjectStatus | None = None
    settings: SettingsIn | None = None
    owner_id: int | None = None


class ProjectReplace(InputModel):
    """``PUT``: every writable field; those left out go back to their defaults. ``owner_id``
    left out keeps the owner."""

    name: ProjectName
    description: Description | None = None
    visibility: Visibility = Visibility.PRIVATE
    status: ProjectStatus = ProjectStatus.ACTIVE
    settings: SettingsIn | None = None
    owner_id: int | None = None


class ProjectOut(ResourceModel):
    id: int
    name: str
    description: str | None
    visibility: Visibility
    status: ProjectStatus
    settings: ProjectSettings
    owner_id: int
    created_at: Timestamp
    updated_at: Timestamp


class MemberCreate(InputModel):
    user_id: int
    role: ProjectRole = ProjectRole.VIEWER


class MemberUpdate(InputModel):
    # The path names the member; a client sending back a member it read may include these.
    read_only_fields = InputModel.read_only_fields | {"user_id", "username", "project_id"}

    role: ProjectRole


class MemberOut(ResourceModel):
    project_id: int
    user_id: int
    username: str
    role: ProjectRole
    created_at: Timestamp
    updated_at: Timestamp
