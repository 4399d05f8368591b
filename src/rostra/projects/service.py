"""Projects and their members: who may see a project, who may change it, and the changes.

Seeing: ``public`` projects are read by anyone, ``internal`` ones by any signed-in user,
``private`` ones by their members; administrators see everything. A project the caller may
not see is a 404 on every verb; one they see but may not change is a 403. Changing a project
or its components and deployments takes the ``owner`` or ``maintainer`` role; managing
members and deleting the project takes ``owner``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from operator import attrgetter
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    ColumnElement,
    Exists,
    Select,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
    true,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from rostra.core.db import Base, Database, SessionWrites, take_write_turn, utcnow
from rostra.core.errors import Conflict, Forbidden, NotFound
from rostra.core.http import etag_of
from rostra.core.listing import CountQuery
from rostra.core.security import Principal
from rostra.core.writes import Writes
from rostra.events import catalog
from rostra.events import service as events
from rostra.projects.models import Project, ProjectMember
from rostra.projects.schemas import (
    MemberCreate,
    MemberOut,
    ProjectCreate,
    ProjectOut,
    ProjectReplace,
    ProjectRole,
    ProjectSettings,
    ProjectUpdate,
    SettingsIn,
    Visibility,
)
from rostra.users.models import User

CHANGERS = frozenset({ProjectRole.OWNER, ProjectRole.MAINTAINER})


@dataclass(frozen=True)
class ProjectAccess:
    """A project the caller may see, with the role they hold in it."""

    project: Project
    role: ProjectRole | None
    admin: bool

    @property
    def may_change(self) -> bool:
        return self.admin or self.role in CHANGERS

    @property
    def may_manage(self) -> bool:
        return self.admin or self.role == ProjectRole.OWNER

    def require_change(self) -> None:
        if not self.may_change:
            raise Forbidden("Only the project's owners and maintainers may change it")

    def require_manage(self) -> None:
        if not self.may_manage:
            raise Forbidden("Only the project's owners may do this")


def livemode_of(principal: Principal | None) -> bool:
    return principal.livemode if principal is not None else True


def to_out(project: Project, *, livemode: bool = True) -> ProjectOut:
    return ProjectOut(
        id=project.id,
        name=project.name,
        description=project.description,
        visibility=project.visibility,
        status=project.status,
        settings=ProjectSettings.model_validate(project.settings),
        owner_id=project.owner_id,
        created_at=project.created_at,
        updated_at=project.updated_at,
        livemode=livemode,
    )


def member_out(member: ProjectMember, *, livemode: bool = True) -> MemberOut:
    return MemberOut(
        project_id=member.project_id,
        user_id=member.user_id,
        username=member.user.username,
        role=member.role,
        created_at=member.created_at,
        updated_at=member.updated_at,
        livemode=livemode,
    )


def member_project_ids(user_id: int) -> Select[Any]:
    """The ids of the projects ``user_id`` is a member of (any role)."""
    return select(ProjectMember.project_id).where(ProjectMember.user_id == user_id)


def rows_in_visible_projects(
    model: type[Base], project_column: Any, principal: Principal | None
) -> Select[Any]:
    """Rows of ``model`` (components, deployments) belonging to projects ``principal`` may see."""
    return (
        select(model).join(Project, Project.id == project_column).where(visible_clause(principal))
    )


PROJECTS = Project.__table__.c
"""The table's own columns: a list built of these is a Core statement, which SQLAlchemy runs
without the ORM's per-statement set-up and returns as plain rows."""
_MEMBERS = ProjectMember.__table__.c
PROJECT_COLUMNS = (
    PROJECTS.id,
    PROJECTS.name,
    PROJECTS.description,
    PROJECTS.visibility,
    PROJECTS.status,
    PROJECTS.settings,
    PROJECTS.owner_id,
    PROJECTS.created_at,
    PROJECTS.updated_at,
)
"""What ``to_out`` and ``project_json`` read."""
_SETTINGS_DEFAULTS = ProjectSettings().model_dump()
_UTC_TIMES = orjson.OPT_UTC_Z | orjson.OPT_OMIT_MICROSECONDS
"""orjson writes a UTC time as ``core.schemas.Timestamp`` does (whole seconds, ``Z``)."""
_SEEN_BY_ANYONE = PROJECTS.visibility == Visibility.PUBLIC
# Two comparisons rather than IN (...): SQLAlchemy expands an IN list's parameters again on
# every execution.
_SEEN_SIGNED_IN = or_(
    PROJECTS.visibility == Visibility.PUBLIC, PROJECTS.visibility == Visibility.INTERNAL
)
_SHAPES_PER_PROCESS = 1024
"""Signed-in callers whose list statements are kept built (SQL shapes, no data: never stale)."""


_PROJECT_FIELDS = attrgetter(*(column.key for column in PROJECT_COLUMNS))
_SETTINGS_KEYS = tuple(_SETTINGS_DEFAULTS)


def project_json(project: Project | Sequence[Any], *, livemode: bool) -> bytes:
    """``to_out(project)`` as JSON, byte for byte, without building the model: a list of 20
    costs a fifth of what validating and serializing 20 ``ProjectOut`` does. ``project`` is an
    entity or a row that begins with ``PROJECT_COLUMNS`` (a row's values are taken in one step,
    not field by field). Times are UTC (``UTCDateTime``) written as ``Timestamp`` writes them;
    a test holds the two equal."""
    values = _PROJECT_FIELDS(project) if isinstance(project, Project) else project
    return orjson.dumps(_project_fields(values, livemode), option=_UTC_TIMES)


class RenderedProject(NamedTuple):
    """A project as the API shows it at one revision (``project_json`` and its ETag), and
    what a list's cursor may point at."""

    id: int
    name: str
    created_at: datetime
    updated_at: datetime
    json: bytes
    etag: str


PROJECT_KEY = (PROJECTS.id, PROJECTS.revision)
"""What a read of projects selects: which projects, at which revision (``rendered_projects``
finds the rest)."""
_PROJECTS_BY_ID = select(*PROJECT_COLUMNS, PROJECTS.revision).where(
    PROJECTS.id.in_(bindparam("ids", expanding=True))
)


async def rendered_projects(
    db: Database, keys: Sequence[Sequence[Any]], *, livemode: bool
) -> list[RenderedProject]:
    """The projects of ``keys`` (rows that begin with ``PROJECT_KEY``), each rendered once per
    revision and process (``core.cache.RevisionCache``); those not yet rendered are read in one
    statement.

    Reading a project's nine columns into Python values and writing them out again was most of
    a list page's own cost. A project written to between the read of its key and that of its
    row is shown as it is now; one deleted in between is left out.
    """
    cache = db.caches.by_revision("projects" if livemode else "projects:test")
    wanted = [(key[0], key[1]) for key in keys]
    found: list[RenderedProject | None] = list(map(cache.get, wanted))
    if None not in found:
        return found  # type: ignore[return-value]
    missing = [key[0] for key, item in zip(wanted, found, strict=True) if item is None]
    rows = {row.id: row for row in await db.read(_PROJECTS_BY_ID, {"ids": missing})}
    for index, (key, item) in enumerate(zip(wanted, found, strict=True)):
        row = rows.get(key[0]) if item is None else None
        if row is not None:
            json = project_json(row, livemode=livemode)
            found[index] = rendered = RenderedProject(
                row.id, row.name, row.created_at, row.updated_at, json, etag_of(json)
            )
            cache.put((row.id, row.revision), rendered, len(json))
    return [item for item in found if item is not None]


def projects_json(items: Sequence[RenderedProject]) -> bytes:
    """The JSON array of a page's ``rendered_projects``: ``paginate``'s ``render_items``."""
    return b"[" + b",".join([item.json for item in items]) + b"]"


def _project_fields(values: Sequence[Any], livemode: bool) -> dict[str, Any]:
    id_, name, description, visibility, status, settings, owner_id, created, updated = values[
        : len(PROJECT_COLUMNS)
    ]
    # Stored settings are written with every key, in the model's order: then they are already
    # what the model shows (the merge with the defaults below was a tenth of a list's rows).
    if type(settings) is not dict or tuple(settings) != _SETTINGS_KEYS:
        settings = settings or {}
        settings = {key: settings.get(key, v) for key, v in _SETTINGS_DEFAULTS.items()}
    return {
        "livemode": livemode,
        "id": id_,
        "name": name,
        "description": description,
        "visibility": visibility,
        "status": status,
        "settings": settings,
        "owner_id": owner_id,
        "created_at": created,
        "updated_at": updated,
    }


def visible_projects(principal: Principal | None) -> Select[Any]:
    """The rows (``PROJECT_KEY``) of the projects ``principal`` may see."""
    if principal is None:
        return _ANONYMOUS_LIST
    if principal.is_admin:
        return _ADMIN_LIST
    return _member_list(principal.user_id)


def _membership(user_id: int) -> Exists:
    return exists().where(_MEMBERS.project_id == PROJECTS.id, _MEMBERS.user_id == user_id)


def visible_clause(principal: Principal | None) -> ColumnElement[bool]:
    """A WHERE clause over ``Project``: the projects ``principal`` may see.

    Shaped as a test of one row, so a sorted page walks the sort column's index and stops at
    ``limit``: the membership is a correlated ``EXISTS`` (one probe of the unique index), after
    the owner test that settles most rows without it (the owner is always a member too). An
    ``id IN (the caller's memberships)`` instead makes both databases collect and sort every
    visible row first: 5 s on PostgreSQL, 0.7 s on SQLite for a million (bench/scale.py).
    """
    if principal is None:
        return _SEEN_BY_ANYONE
    if principal.is_admin:
        return true()
    return _member_clause(principal.user_id)


@lru_cache(maxsize=_SHAPES_PER_PROCESS)
def _member_clause(user_id: int) -> ColumnElement[bool]:
    # Built once per caller: constructing the expression costs more than running it.
    return or_(_SEEN_SIGNED_IN, PROJECTS.owner_id == user_id, _membership(user_id))


@lru_cache(maxsize=_SHAPES_PER_PROCESS)
def _member_list(user_id: int) -> Select[Any]:
    return select(*PROJECT_KEY).where(_member_clause(user_id))


_ANONYMOUS_LIST = select(*PROJECT_KEY).where(_SEEN_BY_ANYONE)
_ADMIN_LIST = select(*PROJECT_KEY)
_ADMIN_TOTAL = select(func.count()).select_from(Project.__table__)
_ANONYMOUS_TOTAL = _ADMIN_TOTAL.where(_SEEN_BY_ANYONE)


def count_visible(principal: Principal | None) -> CountQuery:
    """``total`` of a project list: the rows the filters leave, less the hidden ones.

    Counting the visible rows themselves tests every one of them (1.2 ms for 10,000 on SQLite);
    the rows hidden from a signed-in user are the private ones of other owners that they are
    no member of, two ranges of ``ix_projects_visibility_owner_id`` that skip the caller's own
    projects, and a table without a WHERE clause is counted from its smallest index alone.
    """

    def count(where: Sequence[ColumnElement[bool]]) -> Select[Any]:
        if principal is None or principal.is_admin:
            if not where:
                return _ANONYMOUS_TOTAL if principal is None else _ADMIN_TOTAL
            return _ADMIN_TOTAL.where(visible_clause(principal), *where)
        if not where:
            return _member_total(principal.user_id)
        return _member_total_query(principal.user_id, tuple(where))

    return count


@lru_cache(maxsize=_SHAPES_PER_PROCESS)
def _member_total(user_id: int) -> Select[Any]:
    return _member_total_query(user_id, ())


def _member_total_query(user_id: int, where: tuple[ColumnElement[bool], ...]) -> Select[Any]:
    rows = select(func.count()).select_from(Project.__table__).where(*where)
    # PRIVATE is every visibility but the two _member_clause lets through.
    hidden = (PROJECTS.visibility == Visibility.PRIVATE, ~_membership(user_id))
    hidden_below = rows.where(PROJECTS.owner_id < user_id, *hidden)
    hidden_above = rows.where(PROJECTS.owner_id > user_id, *hidden)
    return select(
        rows.correlate(None).scalar_subquery()
        - hidden_below.correlate(None).scalar_subquery()
        - hidden_above.correlate(None).scalar_subquery()
    )


def _may_see(project: Any, role: ProjectRole | None, principal: Principal | None) -> bool:
    if project.visibility == Visibility.PUBLIC or role is not None:
        return True
    if principal is None:
        return False
    return principal.is_admin or project.visibility == Visibility.INTERNAL


async def role_of(session: AsyncSession, project_id: int, user_id: int) -> ProjectRole | None:
    role = await session.scalar(
        select(ProjectMember.role).where(
            ProjectMember.project_id == project_id, ProjectMember.user_id == user_id
        )
    )
    return ProjectRole(role) if role is not None else None


def not_found(project_id: int, field: str | None = None) -> NotFound:
    message = f"No project with id {project_id}"
    details = [{"field": field, "message": message}] if field else None
    return NotFound(message, details=details)


async def get_project(
    session: AsyncSession,
    project_id: int,
    principal: Principal | None,
    *,
    field: str | None = None,
    for_change: bool = False,
) -> ProjectAccess:
    """The project if ``principal`` may see it, else 404 (``field`` names a body field that
    referred to it). ``for_change`` locks the row until the transaction ends, so the If-Match
    check and the write see the same version. A read takes one query: the project and the
    caller's role in it together."""
    if for_change:
        await take_write_turn(session, Project)
        project = await session.get(
            Project, project_id, with_for_update=True, populate_existing=True
        )
        role = None
        if project is not None and principal is not None:
            role = await role_of(session, project.id, principal.user_id)
    else:
        project, role = await _project_and_role(session, project_id, principal)
    if project is None or not _may_see(project, role, principal):
        raise not_found(project_id, field)
    return ProjectAccess(project, role, principal is not None and principal.is_admin)


_VIEWER_ROLE = (
    select(_MEMBERS.role)
    .where(_MEMBERS.project_id == PROJECTS.id, _MEMBERS.user_id == bindparam("viewer_id"))
    .scalar_subquery()
)
_PROJECT_AND_ROLE = select(Project, _VIEWER_ROLE).where(PROJECTS.id == bindparam("project_id"))
"""A project and the viewer's role in it, built once: a read is one statement."""


async def _project_and_role(
    session: AsyncSession, project_id: int, principal: Principal | None
) -> tuple[Project | None, ProjectRole | None]:
    if principal is None:
        return await session.get(Project, project_id), None
    found = (
        await session.execute(
            _PROJECT_AND_ROLE, {"project_id": project_id, "viewer_id": principal.user_id}
        )
    ).first()
    if found is None:
        return None, None
    project, held = found
    return project, ProjectRole(held) if held is not None else None


_PROJECT_KEY_AND_ROLE = select(*PROJECT_KEY, PROJECTS.visibility, _VIEWER_ROLE).where(
    PROJECTS.id == bindparam("project_id")
)
"""What ``_may_see`` needs of a project, with its key, for reads outside a session."""


async def read_project(
    db: Database, project_id: int, principal: Principal | None
) -> RenderedProject:
    """The project if ``principal`` may see it, else 404: a read of its key outside any
    transaction, then its rendering (``rendered_projects``), for answering a GET
    (``get_project`` for everything else)."""
    viewer_id = principal.user_id if principal is not None else None
    found = await db.read(
        _PROJECT_KEY_AND_ROLE, {"project_id": project_id, "viewer_id": viewer_id}, prepared=True
    )
    if not found:
        raise not_found(project_id)
    key = found[0]
    role = ProjectRole(key[-1]) if key[-1] is not None else None
    if not _may_see(key, role, principal):
        raise not_found(project_id)
    rendered = await rendered_projects(db, found, livemode=livemode_of(principal))
    if not rendered:  # deleted a moment ago
        raise not_found(project_id)
    return rendered[0]


def not_found_user(user_id: int, field: str = "owner_id") -> NotFound:
    message = f"No user with id {user_id}"
    return NotFound(message, details=[{"field": field, "message": message}])


async def existing_user(session: AsyncSession, user_id: int, *, field: str) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise not_found_user(user_id, field)
    return user


def check_owner_field(actor: Principal, requested: int | None, current: int) -> None:
    """``owner_id`` is set by administrators only; anyone may send back the current value."""
    if requested is None or requested == current or actor.is_admin:
        return
    raise Forbidden(
        "Only administrators may set 'owner_id'",
        details=[{"field": "owner_id", "message": "Only administrators may set this field"}],
    )


def _settings(current: dict[str, Any] | None, sent: SettingsIn | None) -> dict[str, Any]:
    merged = dict(current or ProjectSettings().model_dump())
    if sent is not None:
        merged.update(sent.model_dump(exclude_unset=True))
    return ProjectSettings.model_validate(merged).model_dump()


async def _record(
    session: AsyncSession, event_type: str, project: Project, actor: Principal | None
) -> None:
    await events.record(
        SessionWrites(session),
        event_type=event_type,
        data=to_out(project, livemode=livemode_of(actor)),
        owner_id=project.owner_id,
        project_id=project.id,
        actor=actor,
    )


async def _set_role(
    session: AsyncSession, project: Project, user: User, role: ProjectRole
) -> ProjectMember:
    member = await session.scalar(
        select(ProjectMember).where(
            ProjectMember.project_id == project.id, ProjectMember.user_id == user.id
        )
    )
    if member is None:
        member = ProjectMember(project_id=project.id, user_id=user.id, role=role)
        session.add(member)
    else:
        member.role = role
        member.updated_at = utcnow()
    member.user = user
    return member


async def _change_owner(session: AsyncSession, project: Project, new_owner: User) -> None:
    """The new owner gets the owner role; the previous one stays on as a maintainer."""
    previous = await session.get(User, project.owner_id)
    if previous is not None and previous.id != new_owner.id:
        await _set_role(session, project, previous, ProjectRole.MAINTAINER)
    project.owner_id = new_owner.id
    await _set_role(session, project, new_owner, ProjectRole.OWNER)


_INSERT_PROJECT = (
    insert(Project)
    .values({column.key: bindparam(column.key) for column in PROJECT_COLUMNS[1:]})
    .returning(*PROJECT_COLUMNS)
)
_INSERT_OWNER = insert(ProjectMember).values(
    {
        name: bindparam(name)
        for name in ("project_id", "user_id", "role", "created_at", "updated_at")
    }
)
_USER_EXISTS = select(User.id).where(User.id == bindparam("user_id"))


async def create_project(db: Database, *, data: ProjectCreate, actor: Principal) -> Any:
    """The new project as a row of ``PROJECT_COLUMNS``, its owner's membership and its event,
    in one transaction of its own (``Database.transaction``): the hottest write, kept off the
    session's unit of work. ``new_project_owner``, then ``insert_project`` in a transaction."""
    owner_id = await new_project_owner(db, data=data, actor=actor)
    async with db.transaction() as writes:
        return await insert_project(writes, data=data, owner_id=owner_id, actor=actor)


async def new_project_owner(db: Database, *, data: ProjectCreate, actor: Principal) -> int:
    """Who will own the project ``data`` describes, once ``actor`` may make it theirs."""
    check_owner_field(actor, data.owner_id, actor.user_id)
    owner_id = data.owner_id if data.owner_id is not None else actor.user_id
    # A caller creating for themselves was just authenticated: the foreign key suffices.
    others = owner_id != actor.user_id or actor.credential == "operator"
    if others and not await db.read(_USER_EXISTS, {"user_id": owner_id}, prepared=True):
        raise not_found_user(owner_id)
    return owner_id


async def insert_project(
    writes: Writes, *, data: ProjectCreate, owner_id: int, actor: Principal
) -> Any:
    """The project, its owner's membership and its event, in the transaction of ``writes``."""
    now = utcnow()
    try:
        written = await writes.run(
            _INSERT_PROJECT,
            {
                "name": data.name,
                "description": data.description,
                "visibility": data.visibility,
                "status": data.status,
                "settings": _settings(None, data.settings),
                "owner_id": owner_id,
                "created_at": now,
                "updated_at": now,
            },
        )
    except IntegrityError as exc:  # the owner's account was deleted a moment ago
        raise not_found_user(owner_id) from exc
    project = written.rows[0]
    await writes.run(
        _INSERT_OWNER,
        {
            "project_id": project.id,
            "user_id": owner_id,
            "role": ProjectRole.OWNER,
            "created_at": now,
            "updated_at": now,
        },
    )
    await events.record(
        writes,
        event_type=catalog.PROJECT_CREATED,
        data=orjson.loads(project_json(project, livemode=livemode_of(actor))),
        owner_id=owner_id,
        project_id=project.id,
        actor=actor,
    )
    return project


async def _apply(
    session: AsyncSession,
    *,
    project: Project,
    changes: dict[str, Any],
    settings: dict[str, Any],
    owner_id: int | None,
    actor: Principal,
) -> Project:
    check_owner_field(actor, owner_id, project.owner_id)
    if owner_id is not None and owner_id != project.owner_id:
        await _change_owner(
            session, project, await existing_user(session, owner_id, field="owner_id")
        )
    for field, value in changes.items():
        setattr(project, field, value)
    project.settings = settings
    project.updated_at = utcnow()
    await session.flush()
    await _record(session, catalog.PROJECT_UPDATED, project, actor)
    return project


async def update_project(
    session: AsyncSession, *, project: Project, data: ProjectUpdate, actor: Principal
) -> Project:
    """``PATCH``: the fields sent change; ``settings`` merges key by key."""
    changes = data.model_dump(exclude_unset=True, exclude={"settings", "owner_id"})
    return await _apply(
        session,
        project=project,
        changes=changes,
        settings=_settings(project.settings, data.settings),
        owner_id=data.owner_id,
        actor=actor,
    )


async def replace_project(
    session: AsyncSession, *, project: Project, data: ProjectReplace, actor: Principal
) -> Project:
    """``PUT``: every writable field; ``settings`` left out (or keys of it) go to defaults."""
    changes = data.model_dump(exclude={"settings", "owner_id"})
    return await _apply(
        session,
        project=project,
        changes=changes,
        settings=_settings(None, data.settings),
        owner_id=data.owner_id,
        actor=actor,
    )


async def delete_project(session: AsyncSession, *, project: Project, actor: Principal) -> None:
    """Its members, components, deployments and data sets go with it (foreign-key cascade)."""
    await _record(session, catalog.PROJECT_DELETED, project, actor)
    await session.delete(project)
    await session.flush()


def members_query(project_id: int) -> Select[Any]:
    return (
        select(ProjectMember)
        .where(ProjectMember.project_id == project_id)
        .options(selectinload(ProjectMember.user))
    )


async def get_member(
    session: AsyncSession, *, project: Project, user_id: int, for_change: bool = False
) -> ProjectMember:
    query = members_query(project.id).where(ProjectMember.user_id == user_id)
    if for_change:
        await take_write_turn(session, ProjectMember)
        query = query.with_for_update().execution_options(populate_existing=True)
    member: ProjectMember | None = await session.scalar(query)
    if member is None:
        raise NotFound(f"User {user_id} is not a member of project {project.id}")
    return member


async def _record_member(
    session: AsyncSession,
    event_type: str,
    project: Project,
    member: ProjectMember,
    actor: Principal,
) -> None:
    await events.record(
        SessionWrites(session),
        event_type=event_type,
        data=member_out(member, livemode=livemode_of(actor)),
        owner_id=project.owner_id,
        project_id=project.id,
        actor=actor,
    )


async def add_member(
    session: AsyncSession, *, project: Project, data: MemberCreate, actor: Principal
) -> ProjectMember:
    user = await existing_user(session, data.user_id, field="user_id")
    if await role_of(session, project.id, user.id) is not None:
        raise Conflict(
            f"User {user.id} is already a member of this project; PATCH their role instead",
            details=[{"field": "user_id", "message": "Already a member"}],
        )
    now = utcnow()
    member = ProjectMember(
        project_id=project.id, user_id=user.id, role=data.role, created_at=now, updated_at=now
    )
    member.user = user
    session.add(member)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent request added them first
        raise Conflict(f"User {user.id} is already a member of this project") from exc
    await _record_member(session, catalog.MEMBER_ADDED, project, member, actor)
    return member


def _keep_owner(project: Project, member: ProjectMember) -> None:
    if member.user_id == project.owner_id:
        raise Conflict(
            "The project's owner keeps the owner role; an administrator can change 'owner_id' first"
        )


async def change_member(
    session: AsyncSession,
    *,
    project: Project,
    member: ProjectMember,
    role: ProjectRole,
    actor: Principal,
) -> ProjectMember:
    if role != member.role:
        _keep_owner(project, member)
        member.role = role
    member.updated_at = utcnow()
    await session.flush()
    await _record_member(session, catalog.MEMBER_UPDATED, project, member, actor)
    return member


async def remove_member(
    session: AsyncSession, *, project: Project, member: ProjectMember, actor: Principal
) -> None:
    _keep_owner(project, member)
    await _record_member(session, catalog.MEMBER_REMOVED, project, member, actor)
    await session.delete(member)
    await session.flush()


async def owned_projects(session: AsyncSession, user_id: int) -> Sequence[Project]:
    return (await session.scalars(select(Project).where(Project.owner_id == user_id))).all()


async def count_owned(session: AsyncSession, user_id: int) -> int:
    query = select(func.count()).select_from(Project).where(Project.owner_id == user_id)
    return int(await session.scalar(query) or 0)


async def hand_over_projects(
    session: AsyncSession, user: User, transfer_to: User | None, actor: Principal | None
) -> None:
    """The users domain's deletion guard: a user who owns projects is deleted only once they
    go to ``transfer_to`` (``DELETE /users/{id}?transfer_to=...``); otherwise 409."""
    owned = await count_owned(session, user.id)
    if owned == 0:
        return
    if transfer_to is None:
        raise Conflict(
            f"This user still owns {owned} project(s): pass ?transfer_to=<user_id> to hand "
            "them to another user",
            details=[{"field": "transfer_to", "message": "Required: the user owns projects"}],
        )
    for project in await owned_projects(session, user.id):
        await _change_owner(session, project, transfer_to)
        project.updated_at = utcnow()
        await session.flush()
        await _record(session, catalog.PROJECT_UPDATED, project, actor)
