from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import StringConstraints

from rostra.core.schemas import InputModel, ResourceModel, Timestamp
from rostra.projects.schemas import PatchModel


class DeploymentStatus(StrEnum):
    PENDING = "pending"
    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


NEXT_STATUSES: dict[DeploymentStatus, frozenset[DeploymentStatus]] = {
    DeploymentStatus.PENDING: frozenset({DeploymentStatus.STARTED, DeploymentStatus.CANCELLED}),
    DeploymentStatus.STARTED: frozenset(
        {DeploymentStatus.COMPLETED, DeploymentStatus.FAILED, DeploymentStatus.CANCELLED}
    ),
}
"""The only moves there are: forward. Completed, failed and cancelled are final."""

Environment = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][\w.\-]*$")
]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class DeploymentCreate(InputModel):
    environment: Environment
    ref: Ref
    component_id: int | None = None
    project_id: int | None = None


class DeploymentUpdate(PatchModel):
    """Only ``status`` changes. What a deployment was made with is fixed: a client sending back
    a deployment it read may include those fields, and they are ignored."""

    read_only_fields = InputModel.read_only_fields | {
        "project_id",
        "component_id",
        "environment",
        "ref",
        "created_by",
        "started_at",
        "finished_at",
    }
    not_nullable = frozenset({"status"})

    status: DeploymentStatus | None = None


class DeploymentOut(ResourceModel):
    id: int
    project_id: int
    component_id: int | None
    environment: str
    ref: str
    status: DeploymentStatus
    created_by: int | None
    started_at: Timestamp | None
    finished_at: Timestamp | None
    created_at: Timestamp
