"""Deployments: created pending, then moved forward only, each move an event.

A move is one conditional UPDATE (``WHERE status = <the status read>``), so two racing moves
from the same state cannot both win: the loser gets 409 like any other bad move.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from rostra.components.models import Component
from rostra.core.db import SessionWrites, utcnow
from rostra.core.errors import Conflict, Invalid, NotFound
from rostra.core.security import Principal
from rostra.deployments.models import Deployment
from rostra.deployments.schemas import (
    NEXT_STATUSES,
    DeploymentCreate,
    DeploymentOut,
    DeploymentStatus,
)
from rostra.events import catalog
from rostra.events import service as events
from rostra.projects import service as projects
from rostra.projects.models import Project
from rostra.projects.service import ProjectAccess

MOVE_EVENTS = {
    DeploymentStatus.STARTED: catalog.DEPLOYMENT_STARTED,
    DeploymentStatus.COMPLETED: catalog.DEPLOYMENT_COMPLETED,
    DeploymentStatus.FAILED: catalog.DEPLOYMENT_FAILED,
    DeploymentStatus.CANCELLED: catalog.DEPLOYMENT_CANCELLED,
}


def to_out(deployment: Deployment, *, livemode: bool = True) -> DeploymentOut:
    return DeploymentOut(
        id=deployment.id,
        project_id=deployment.project_id,
        component_id=deployment.component_id,
        environment=deployment.environment,
        ref=deployment.ref,
        status=deployment.status,
        created_by=deployment.created_by,
        started_at=deployment.started_at,
        finished_at=deployment.finished_at,
        created_at=deployment.created_at,
        livemode=livemode,
    )


async def get_deployment(
    session: AsyncSession, deployment_id: int, principal: Principal | None
) -> tuple[Deployment, ProjectAccess]:
    missing = NotFound(f"No deployment with id {deployment_id}")
    deployment = await session.get(Deployment, deployment_id)
    if deployment is None:
        raise missing
    try:
        access = await projects.get_project(session, deployment.project_id, principal)
    except NotFound:
        raise missing from None
    return deployment, access


async def _record(
    session: AsyncSession,
    event_type: str,
    deployment: Deployment,
    project: Project,
    actor: Principal,
) -> None:
    await events.record(
        SessionWrites(session),
        event_type=event_type,
        data=to_out(deployment, livemode=actor.livemode),
        owner_id=project.owner_id,
        project_id=project.id,
        actor=actor,
    )


async def create_deployment(
    session: AsyncSession, *, access: ProjectAccess, data: DeploymentCreate, actor: Principal
) -> Deployment:
    project = access.project
    if data.project_id is not None and data.project_id != project.id:
        raise Invalid.field("project_id", "Does not match the project in the path")
    if data.component_id is not None:
        component = await session.get(Component, data.component_id)
        if component is None or component.project_id != project.id:
            message = f"This project has no component with id {data.component_id}"
            raise NotFound(message, details=[{"field": "component_id", "message": message}])
    deployment = Deployment(
        project_id=project.id,
        component_id=data.component_id,
        environment=data.environment,
        ref=data.ref,
        status=DeploymentStatus.PENDING,
        created_by=events.actor_id_of(actor),
        created_at=utcnow(),
    )
    session.add(deployment)
    await session.flush()
    await _record(session, catalog.DEPLOYMENT_CREATED, deployment, project, actor)
    return deployment


async def move(
    session: AsyncSession,
    *,
    deployment: Deployment,
    project: Project,
    status: DeploymentStatus,
    actor: Principal,
) -> Deployment:
    """Move to ``status`` if that is a step forward from where it is; else 409."""
    current = DeploymentStatus(deployment.status)
    if status not in NEXT_STATUSES.get(current, frozenset()):
        allowed = ", ".join(sorted(NEXT_STATUSES.get(current, ()))) or "none: it is final"
        raise Conflict(
            f"A {current} deployment cannot move to {status} (allowed: {allowed})",
            details=[{"field": "status", "message": f"Cannot move from {current} to {status}"}],
        )
    now = utcnow()
    values: dict[str, Any] = {"status": status}
    if status == DeploymentStatus.STARTED:
        values["started_at"] = now
    else:
        values["finished_at"] = now
    moved = (
        await session.execute(
            update(Deployment)
            .where(Deployment.id == deployment.id, Deployment.status == current)
            .values(**values)
            .returning(Deployment.id)
        )
    ).first()
    if moved is None:
        raise Conflict("The deployment moved meanwhile; read it again")
    await _record(session, MOVE_EVENTS[status], deployment, project, actor)
    return deployment
