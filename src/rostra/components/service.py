"""Components: seeing one takes seeing its project; changing one takes changing its project."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rostra.components.models import Component
from rostra.components.schemas import (
    ComponentCreate,
    ComponentOut,
    ComponentReplace,
    ComponentUpdate,
)
from rostra.core.db import SessionWrites, take_write_turn, utcnow
from rostra.core.errors import Conflict, Forbidden, Invalid, NotFound
from rostra.core.security import Principal
from rostra.events import catalog
from rostra.events import service as events
from rostra.projects import service as projects
from rostra.projects.models import Project
from rostra.projects.service import ProjectAccess


def to_out(component: Component, *, livemode: bool = True) -> ComponentOut:
    return ComponentOut(
        id=component.id,
        project_id=component.project_id,
        name=component.name,
        type=component.type,
        lifecycle=component.lifecycle,
        description=component.description,
        owner_id=component.owner_id,
        tags=component.tags,
        links=component.links,
        created_at=component.created_at,
        updated_at=component.updated_at,
        livemode=livemode,
    )


async def get_component(
    session: AsyncSession,
    component_id: int,
    principal: Principal | None,
    *,
    for_change: bool = False,
) -> tuple[Component, ProjectAccess]:
    """The component and its project if ``principal`` may see them, else 404; ``for_change``
    locks the component's row until the transaction ends."""
    missing = NotFound(f"No component with id {component_id}")
    if for_change:
        await take_write_turn(session, Component)
    component = await session.get(
        Component, component_id, with_for_update=for_change, populate_existing=for_change
    )
    if component is None:
        raise missing
    try:
        access = await projects.get_project(session, component.project_id, principal)
    except NotFound:
        raise missing from None
    return component, access


def _check_owner(actor: Principal, requested: int | None, current: int | None) -> None:
    """Only administrators give a component to someone else (or take it from its owner)."""
    if requested != current and not actor.is_admin:
        raise Forbidden(
            "Only administrators may set 'owner_id' to someone else",
            details=[{"field": "owner_id", "message": "Only administrators may set this field"}],
        )


async def _check_name_free(
    session: AsyncSession, project_id: int, name: str, except_id: int | None = None
) -> None:
    taken = await session.scalar(
        select(
            exists().where(
                Component.project_id == project_id,
                Component.name == name,
                Component.id != (except_id or 0),
            )
        )
    )
    if taken:
        raise Conflict(
            f"This project already has a component named {name!r}",
            details=[{"field": "name", "message": "Already taken in this project"}],
        )


async def _flush_unique(session: AsyncSession, name: str) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent request took the name between check and insert
        raise Conflict(f"This project already has a component named {name!r}") from exc


def _check_same_project(sent: int | None, component: Component) -> None:
    if sent is not None and sent != component.project_id:
        raise Invalid.field("project_id", "A component cannot move to another project")


async def _record(
    session: AsyncSession,
    event_type: str,
    component: Component,
    project: Project,
    actor: Principal,
) -> None:
    await events.record(
        SessionWrites(session),
        event_type=event_type,
        data=to_out(component, livemode=actor.livemode),
        owner_id=project.owner_id,
        project_id=project.id,
        actor=actor,
    )


async def create_component(
    session: AsyncSession, *, access: ProjectAccess, data: ComponentCreate, actor: Principal
) -> Component:
    project = access.project
    if data.project_id is not None and data.project_id != project.id:
        raise Invalid.field("project_id", "Does not match the project in the path")
    default_owner = events.actor_id_of(actor)
    owner_id = data.owner_id if data.owner_id is not None else default_owner
    _check_owner(actor, owner_id, default_owner)
    if owner_id is not None:
        await projects.existing_user(session, owner_id, field="owner_id")
    await _check_name_free(session, project.id, data.name)
    now = utcnow()
    component = Component(
        project_id=project.id,
        name=data.name,
        type=data.type,
        lifecycle=data.lifecycle,
        description=data.description,
        owner_id=owner_id,
        tags=data.tags,
        links=[link.model_dump() for link in data.links],
        created_at=now,
        updated_at=now,
    )
    session.add(component)
    await _flush_unique(session, data.name)
    await _record(session, catalog.COMPONENT_CREATED, component, project, actor)
    return component


async def _apply(
    session: AsyncSession,
    *,
    component: Component,
    project: Project,
    changes: dict[str, Any],
    actor: Principal,
) -> Component:
    _check_same_project(changes.pop("project_id", None), component)
    if "owner_id" in changes:
        _check_owner(actor, changes["owner_id"], component.owner_id)
        if changes["owner_id"] is not None:
            await projects.existing_user(session, changes["owner_id"], field="owner_id")
    if "name" in changes and changes["name"] != component.name:
        await _check_name_free(session, project.id, changes["name"], except_id=component.id)
    for field, value in changes.items():
        setattr(component, field, value)
    component.updated_at = utcnow()
    await _flush_unique(session, component.name)
    await _record(session, catalog.COMPONENT_UPDATED, component, project, actor)
    return component


async def update_component(
    session: AsyncSession,
    *,
    component: Component,
    project: Project,
    data: ComponentUpdate,
    actor: Principal,
) -> Component:
    """``PATCH``: the fields sent change (``tags`` and ``links`` are replaced as a whole)."""
    changes = data.model_dump(exclude_unset=True)
    return await _apply(session, component=component, project=project, changes=changes, actor=actor)


async def replace_component(
    session: AsyncSession,
    *,
    component: Component,
    project: Project,
    data: ComponentReplace,
    actor: Principal,
) -> Component:
    changes = data.model_dump()
    if "owner_id" not in data.model_fields_set:
        changes.pop("owner_id")  # left out of a PUT, the owner stays (as a project's does)
    return await _apply(session, component=component, project=project, changes=changes, actor=actor)


async def delete_component(
    session: AsyncSession, *, component: Component, project: Project, actor: Principal
) -> None:
    """Its deployments stay, no longer naming it (``component_id`` becomes null)."""
    await _record(session, catalog.COMPONENT_DELETED, component, project, actor)
    await session.delete(component)
    await session.flush()
