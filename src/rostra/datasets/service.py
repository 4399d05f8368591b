"""Data sets: a personal one is its owner's alone; one in a project follows the project
(read by whoever sees the project, changed by its owners and maintainers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from rostra.core.db import SessionWrites, take_write_turn, utcnow
from rostra.core.errors import Forbidden, Invalid, NotFound
from rostra.core.security import Principal
from rostra.datasets.models import DataSet
from rostra.datasets.schemas import DataSetCreate, DataSetOut, DataSetReplace, DataSetUpdate
from rostra.events import catalog
from rostra.events import service as events
from rostra.projects import service as projects
from rostra.projects.models import Project
from rostra.users.models import User


@dataclass(frozen=True)
class DataSetAccess:
    data_set: DataSet
    may_change: bool

    def require_change(self) -> None:
        if not self.may_change:
            raise Forbidden("Only the project's owners and maintainers may change this data set")


def to_out(data_set: DataSet, *, livemode: bool = True) -> DataSetOut:
    return DataSetOut(
        id=data_set.id,
        name=data_set.name,
        values=data_set.values,
        metadata=data_set.meta,
        project_id=data_set.project_id,
        owner_id=data_set.owner_id,
        created_at=data_set.created_at,
        updated_at=data_set.updated_at,
        livemode=livemode,
    )


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7396 JSON merge patch: objects merge key by key, null removes a key."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        elif isinstance(value, dict):
            merged[key] = merge_patch({}, value)
        else:
            merged[key] = value
    return merged


def visible_query(principal: Principal | None) -> Select[Any]:
    """The caller's personal data sets and those of the projects they may see."""
    query = select(DataSet).outerjoin(Project, Project.id == DataSet.project_id)
    project_clause = and_(DataSet.project_id.is_not(None), projects.visible_clause(principal))
    if principal is None:
        return query.where(project_clause)
    if principal.is_admin:
        return query
    personal = and_(DataSet.project_id.is_(None), DataSet.owner_id == principal.user_id)
    return query.where(or_(personal, project_clause))


async def get_data_set(
    session: AsyncSession,
    data_set_id: int,
    principal: Principal | None,
    *,
    for_change: bool = False,
) -> DataSetAccess:
    """The data set if ``principal`` may see it, else 404; ``for_change`` locks its row until
    the transaction ends."""
    missing = NotFound(f"No data set with id {data_set_id}")
    if for_change:
        await take_write_turn(session, DataSet)
    data_set = await session.get(
        DataSet, data_set_id, with_for_update=for_change, populate_existing=for_change
    )
    if data_set is None:
        raise missing
    if data_set.project_id is None:
        if principal is None or not (principal.is_admin or principal.user_id == data_set.owner_id):
            raise missing
        return DataSetAccess(data_set, may_change=True)
    try:
        access = await projects.get_project(session, data_set.project_id, principal)
    except NotFound:
        raise missing from None
    return DataSetAccess(data_set, may_change=access.may_change)


async def _record(
    session: AsyncSession, event_type: str, data_set: DataSet, actor: Principal | None
) -> None:
    await events.record(
        SessionWrites(session),
        event_type=event_type,
        data=to_out(data_set, livemode=projects.livemode_of(actor)),
        owner_id=data_set.owner_id,
        project_id=data_set.project_id,
        actor=actor,
    )


async def create_data_set(
    session: AsyncSession, *, data: DataSetCreate, actor: Principal
) -> DataSet:
    if data.project_id is not None:
        access = await projects.get_project(session, data.project_id, actor, field="project_id")
        access.require_change()
    owner_id = data.owner_id if data.owner_id is not None else actor.user_id
    projects.check_owner_field(actor, owner_id, actor.user_id)
    await projects.existing_user(session, owner_id, field="owner_id")
    now = utcnow()
    data_set = DataSet(
        name=data.name,
        values=data.values,
        meta=data.metadata,
        project_id=data.project_id,
        owner_id=owner_id,
        created_at=now,
        updated_at=now,
    )
    session.add(data_set)
    await session.flush()
    await _record(session, catalog.DATA_CREATED, data_set, actor)
    return data_set


async def _apply(
    session: AsyncSession, *, data_set: DataSet, changes: dict[str, Any], actor: Principal
) -> DataSet:
    if "project_id" in changes and changes.pop("project_id") != data_set.project_id:
        raise Invalid.field("project_id", "A data set cannot move into or out of a project")
    owner_id = changes.pop("owner_id", None)
    projects.check_owner_field(actor, owner_id, data_set.owner_id)
    if owner_id is not None and owner_id != data_set.owner_id:
        data_set.owner_id = (await projects.existing_user(session, owner_id, field="owner_id")).id
    if "metadata" in changes:
        data_set.meta = changes.pop("metadata")
    for field, value in changes.items():
        setattr(data_set, field, value)
    data_set.updated_at = utcnow()
    await session.flush()
    await _record(session, catalog.DATA_UPDATED, data_set, actor)
    return data_set


async def update_data_set(
    session: AsyncSession, *, data_set: DataSet, data: DataSetUpdate, actor: Principal
) -> DataSet:
    changes = data.model_dump(exclude_unset=True)
    if "metadata" in changes:
        changes["metadata"] = merge_patch(data_set.meta, changes["metadata"])
    return await _apply(session, data_set=data_set, changes=changes, actor=actor)


async def replace_data_set(
    session: AsyncSession, *, data_set: DataSet, data: DataSetReplace, actor: Principal
) -> DataSet:
    changes = data.model_dump()
    for fixed_unless_sent in ("project_id", "owner_id"):
        if fixed_unless_sent not in data.model_fields_set:
            del changes[fixed_unless_sent]
    return await _apply(session, data_set=data_set, changes=changes, actor=actor)


async def delete_data_set(
    session: AsyncSession, *, data_set: DataSet, actor: Principal | None
) -> None:
    await _record(session, catalog.DATA_DELETED, data_set, actor)
    await session.delete(data_set)
    await session.flush()


async def hand_over_data_sets(
    session: AsyncSession, user: User, transfer_to: User | None, actor: Principal | None
) -> None:
    """The users domain's deletion guard. The user's data sets go to ``transfer_to`` when one
    is named; otherwise those in a project go to the project's owner (the project keeps its
    data) and personal ones are deleted with the user."""
    owned = (await session.scalars(select(DataSet).where(DataSet.owner_id == user.id))).all()
    for data_set in owned:
        heir: int | None = transfer_to.id if transfer_to is not None else None
        if heir is None and data_set.project_id is not None:
            project = await session.get(Project, data_set.project_id)
            if project is not None and project.owner_id != user.id:
                heir = project.owner_id
        if heir is None:
            await delete_data_set(session, data_set=data_set, actor=actor)
            continue
        data_set.owner_id = heir
        data_set.updated_at = utcnow()
        await session.flush()
        await _record(session, catalog.DATA_UPDATED, data_set, actor)
