"""Users: creation, reading, changes and deletion, with the contract's privilege rules."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rostra.core.cache import forget_user_after_commit
from rostra.core.db import SessionWrites, take_write_turn, utcnow
from rostra.core.errors import Conflict, Forbidden, Invalid, NotFound
from rostra.core.security import Principal
from rostra.events import catalog
from rostra.events import service as events
from rostra.lib.passwords import BoundedPasswordHasher
from rostra.users.models import User
from rostra.users.schemas import Profile, UserCreate, UserOut, UserReplace, UserUpdate

PRIVILEGED_FIELDS = ("role", "plan")
PROFILE_FIELDS = ("first_name", "last_name", "timezone", "language")
USERNAME_CHOICE_LOCK = 0x726F7374_75736572
"""PostgreSQL advisory lock held while a username is made from an email (any fixed number)."""

UserDeletionGuard = Callable[[AsyncSession, User, User | None, Principal | None], Awaitable[None]]
"""Called with (session, user, transfer_to, actor) before a user is deleted, by a domain above
this one that holds rows of theirs (projects, data sets): it raises to refuse (409), or hands
the rows to ``transfer_to``. ``create_app`` registers them with ``add_deletion_guard``."""
_deletion_guards: list[UserDeletionGuard] = []


def add_deletion_guard(guard: UserDeletionGuard) -> None:
    if guard not in _deletion_guards:
        _deletion_guards.append(guard)


def may_see_email(viewer: Principal | None, user_id: int) -> bool:
    return viewer is not None and (viewer.user_id == user_id or viewer.is_admin)


def to_out(user: User, *, viewer: Principal | None) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        email=user.email if may_see_email(viewer, user.id) else None,
        name=user.name,
        role=user.role,
        plan=user.plan,
        created_at=user.created_at,
        updated_at=user.updated_at,
        last_login=user.last_login,
        profile=Profile.model_validate(user),
        livemode=viewer.livemode if viewer is not None else True,
    )


async def _record(
    session: AsyncSession, event_type: str, user: User, actor: Principal | None
) -> None:
    """The event shows the user as they see themself (with their email); only they and
    administrators see events about them."""
    view = to_out(user, viewer=None).model_copy(
        update={"email": user.email, "livemode": actor.livemode if actor else True}
    )
    await events.record(
        SessionWrites(session), event_type=event_type, data=view, owner_id=user.id, actor=actor
    )


async def get_user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user with id {user_id}")
    return user


async def get_user_for_change(session: AsyncSession, user_id: int) -> User:
    """The user, locked until the transaction ends, so concurrent writers take turns and an
    If-Match check sees the row its write will change (no lost update)."""
    await take_write_turn(session, User)
    user = await session.get(User, user_id, with_for_update=True, populate_existing=True)
    if user is None:
        raise NotFound(f"No user with id {user_id}")
    return user


async def find_by_login(session: AsyncSession, login: str) -> User | None:
    """The user whose username or email is ``login`` (any case)."""
    column = User.email if "@" in login else func.lower(User.username)
    result = await session.scalars(select(User).where(column == login.lower()))
    return result.first()


def _check_privileged(actor: Principal | None, changes: dict[str, Any], user: User | None) -> None:
    """Role and plan are set by admins only; anyone may send back the value the user has."""
    if actor is not None and actor.is_admin:
        return
    for field in PRIVILEGED_FIELDS:
        value = changes.get(field)
        if value is not None and (user is None or getattr(user, field) != value):
            raise Forbidden(
                f"Only administrators may set '{field}'",
                details=[{"field": field, "message": "Only administrators may set this field"}],
            )


async def _taken(
    session: AsyncSession, *, username: str | None, email: str | None, except_id: int | None = None
) -> list[dict[str, str]]:
    clashes = []
    checks = [
        ("username", func.lower(User.username), username.lower() if username else None),
        ("email", User.email, email),
    ]
    for field, column, value in checks:
        if value is None:
            continue
        query = select(exists().where(column == value, User.id != (except_id or 0)))
        if await session.scalar(query):
            clashes.append({"field": field, "message": f"This {field} is already taken"})
    return clashes


async def _choose_usernames_in_turn(session: AsyncSession) -> None:
    """Requests that make a username from an email take turns until they commit, so two
    concurrent ones never both pick the same free name (the loser would get a 409 for a name it
    never asked for)."""
    await take_write_turn(session, User)
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(USERNAME_CHOICE_LOCK)))


async def username_from_email(session: AsyncSession, email: str) -> str:
    """``john.doe@example.com`` gives ``john.doe``, or ``john.doe2`` ... when that is taken."""
    base = re.sub(r"[^A-Za-z0-9_.\-]", "_", email.split("@", 1)[0]).strip("._-")[:56] or "user"
    candidate, suffix = base, 1
    while await _taken(session, username=candidate, email=None):
        suffix += 1
        candidate = f"{base}{suffix}"
    return candidate


async def _flush_unique(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent request took the name between check and insert
        raise Conflict("The username or email is already taken") from exc


async def create_user(
    session: AsyncSession,
    *,
    data: UserCreate,
    hasher: BoundedPasswordHasher,
    actor: Principal | None,
    event_type: str = catalog.USER_CREATED,
) -> User:
    """``event_type``: ``user.registered`` for a sign-up, else ``user.created``."""
    _check_privileged(actor, data.model_dump(include=set(PRIVILEGED_FIELDS)), None)
    email = data.email.lower()
    if data.username is None:
        await _choose_usernames_in_turn(session)
    clashes = await _taken(session, username=data.username, email=email)
    if clashes:
        raise Conflict("A user with this username or email already exists", details=clashes)
    profile = data.profile.model_dump(exclude_unset=True) if data.profile else {}
    user = User(
        username=data.username or await username_from_email(session, email),
        email=email,
        name=data.name,
        role=data.role or "member",
        plan=data.plan or "free",
        password_hash=await hasher.hash(data.password) if data.password else None,
        **profile,
    )
    session.add(user)
    await _flush_unique(session)
    await _record(session, event_type, user, actor)
    return user


async def _apply(
    session: AsyncSession,
    user: User,
    changes: dict[str, Any],
    *,
    hasher: BoundedPasswordHasher,
    actor: Principal,
) -> User:
    _check_privileged(actor, changes, user)
    if "email" in changes and changes["email"] is not None:
        changes["email"] = changes["email"].lower()
    clashes = await _taken(
        session,
        username=changes.get("username") if changes.get("username") != user.username else None,
        email=changes.get("email") if changes.get("email") != user.email else None,
        except_id=user.id,
    )
    if clashes:
        raise Conflict("A user with this username or email already exists", details=clashes)
    profile = changes.pop("profile", None) or {}
    password = changes.pop("password", None)
    for field, value in changes.items():
        if field in PRIVILEGED_FIELDS and value is None:
            continue  # a PUT that leaves out role or plan keeps them
        setattr(user, field, value)
    for field, value in profile.items():
        setattr(user, field, value)
    if password is not None:
        user.password_hash = await hasher.hash(password)
    user.updated_at = utcnow()
    await _flush_unique(session)
    await _record(session, catalog.USER_UPDATED, user, actor)
    forget_user_after_commit(session, user.id)
    return user


async def update_user(
    session: AsyncSession,
    *,
    user: User,
    data: UserUpdate,
    hasher: BoundedPasswordHasher,
    actor: Principal,
) -> User:
    return await _apply(
        session, user, data.model_dump(exclude_unset=True), hasher=hasher, actor=actor
    )


async def replace_user(
    session: AsyncSession,
    *,
    user: User,
    data: UserReplace,
    hasher: BoundedPasswordHasher,
    actor: Principal,
) -> User:
    changes = data.model_dump()
    changes["profile"] = {field: changes["profile"].get(field) for field in PROFILE_FIELDS}
    return await _apply(session, user, changes, hasher=hasher, actor=actor)


async def delete_user(
    session: AsyncSession,
    *,
    user: User,
    transfer_to: int | None = None,
    actor: Principal | None = None,
) -> None:
    """``transfer_to`` names the user who takes over what this one owns (``?transfer_to=``)."""
    heir = None
    if transfer_to is not None:
        if transfer_to == user.id:
            raise Invalid.field("transfer_to", "Must name another user")
        heir = await session.get(User, transfer_to)
        if heir is None:
            message = f"No user with id {transfer_to}"
            raise NotFound(message, details=[{"field": "transfer_to", "message": message}])
    for guard in _deletion_guards:
        await guard(session, user, heir, actor)
    await _record(session, catalog.USER_DELETED, user, actor)
    await session.delete(user)
    await session.flush()
    forget_user_after_commit(session, user.id)


async def record_login(session: AsyncSession, *, user: User) -> None:
    user.last_login = utcnow()
    await session.flush()
    forget_user_after_commit(session, user.id)


def check_may_change(actor: Principal, user_id: int) -> None:
    """Users change themselves; admins change anyone."""
    if actor.user_id != user_id and not actor.is_admin:
        raise Forbidden("You may only change your own account")
