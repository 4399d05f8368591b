"""Writing events beside the change that caused them, and reading them back.

``record`` writes in the transaction of the change: the event commits or rolls back with it, so
the log never shows a change that did not happen, nor misses one that did.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Select, bindparam, insert, or_, true
from sqlalchemy.sql.elements import ColumnElement

from rostra.core.db import utcnow
from rostra.core.security import Principal
from rostra.core.writes import Writes
from rostra.events.catalog import EVENT_TYPES
from rostra.events.models import Event
from rostra.events.schemas import EventOut
from rostra.lib.secrets import random_token

EVENT_ID_PREFIX = "evt_"
_COLUMNS = (
    "public_id",
    "type",
    "owner_id",
    "project_id",
    "actor_id",
    "livemode",
    "data",
    "created_at",
)

MemberProjects = Callable[[int], Select[Any]]
"""Given a user id, a select of the ids of the projects they are a member of."""


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as ``record`` wrote it, the row's fields: no session holds it."""

    id: int
    public_id: str
    type: str
    owner_id: int | None
    project_id: int | None
    actor_id: int | None
    livemode: bool
    data: dict[str, Any]
    created_at: datetime


EventSubscriber = Callable[[Writes, RecordedEvent], Awaitable[None]]
"""Called with (writes, event) right after ``record`` writes an event, in its transaction:
a domain above this one (webhooks) adds its own rows for the event, which then commit or roll
back with it. ``api.py`` registers them with ``add_subscriber``."""
_subscribers: list[EventSubscriber] = []

_INSERT = insert(Event).values({name: bindparam(name) for name in _COLUMNS}).returning(Event.id)


def add_subscriber(subscriber: EventSubscriber) -> None:
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)


def actor_id_of(actor: Principal | None) -> int | None:
    """The acting user, or None for the CLI operator and anonymous sign-ups."""
    if actor is None or actor.credential == "operator":
        return None
    return actor.user_id


async def record(
    writes: Writes,
    *,
    event_type: str,
    data: BaseModel | dict[str, Any],
    owner_id: int | None,
    project_id: int | None = None,
    actor: Principal | None = None,
) -> RecordedEvent:
    """Write an event for ``data`` (the resource as the API shows it: a model, or the dict of
    its JSON) in the transaction of ``writes``.

    The event is written at once, not left to a flush: the subscribers (the webhooks fan-out)
    refer to it by its id."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    values: dict[str, Any] = {
        "public_id": EVENT_ID_PREFIX + random_token(24),
        "type": event_type,
        "owner_id": owner_id,
        "project_id": project_id,
        "actor_id": actor_id_of(actor),
        "livemode": actor.livemode if actor is not None else True,
        "data": data if isinstance(data, dict) else data.model_dump(mode="json"),
        "created_at": utcnow(),
    }
    written = await writes.run(_INSERT, values)
    event = RecordedEvent(id=written.rows[0].id, **values)
    for subscriber in _subscribers:
        await subscriber(writes, event)
    return event


def to_out(event: Event | RecordedEvent) -> EventOut:
    return EventOut(
        id=event.public_id,
        event=event.type,
        timestamp=event.created_at,
        data=event.data,
        livemode=event.livemode,
    )


def visible_to(principal: Principal, member_projects: MemberProjects) -> ColumnElement[bool]:
    """Events about the caller and their own things, and about projects they are a member of.

    Administrators see every event; callers narrow with filters.
    """
    if principal.is_admin:
        return true()
    return or_(
        Event.owner_id == principal.user_id,
        Event.project_id.in_(member_projects(principal.user_id)),
    )
