"""Webhook endpoints, the deliveries fanned out to them, and the manual verbs on deliveries.

An endpoint is its owner's alone (administrators see every one): anyone else's id is a 404
on every verb. Its URL is checked against the SSRF guard when it is set, and again by the
worker before every send. Deliveries are rows the worker claims; every verb here that makes
one due (fan-out, ``test``, ``redeliver``) wakes the worker once its transaction commits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Final

import orjson
from sqlalchemy import Integer, Select, bindparam, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from rostra.core.db import notify_after_commit, take_write_turn, utcnow
from rostra.core.errors import Conflict, Invalid, NotFound
from rostra.core.security import Principal
from rostra.core.writes import Writes
from rostra.events import catalog
from rostra.events import service as events
from rostra.events.schemas import EventOut
from rostra.lib.secrets import random_token
from rostra.lib.webhooks.addresses import UnresolvableHost, UnsafeAddress, check_url
from rostra.lib.webhooks.signing import generate_secret
from rostra.projects import service as projects
from rostra.projects.models import ProjectMember
from rostra.users.models import User
from rostra.webhooks.models import (
    DELIVERIES_DUE,
    PENDING,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from rostra.webhooks.schemas import (
    ALL_EVENTS,
    AttemptOut,
    DeliveryDetail,
    DeliveryOut,
    WebhookCreate,
    WebhookOut,
    WebhookUpdate,
    WebhookWithSecret,
)

MESSAGE_ID_PREFIX: Final = "msg_"
ROTATION_GRACE: Final = timedelta(hours=24)
"""How long the previous secret keeps signing after ``rotate-secret``."""


def to_out(endpoint: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(
        id=endpoint.id,
        url=endpoint.url,
        description=endpoint.description,
        events=list(endpoint.events),
        active=endpoint.active,
        disabled_reason=endpoint.disabled_reason,
        failing_since=endpoint.failing_since,
        max_attempts=endpoint.max_attempts,
        project_id=endpoint.project_id,
        owner_id=endpoint.owner_id,
        secret_last4=endpoint.secret[-4:],
        previous_secret_expires_at=_rotation_end(endpoint),
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
        livemode=endpoint.livemode,
    )


def with_secret(endpoint: WebhookEndpoint) -> WebhookWithSecret:
    return WebhookWithSecret(**to_out(endpoint).model_dump(), secret=endpoint.secret)


def _rotation_end(endpoint: WebhookEndpoint) -> datetime | None:
    """When the previous secret stops signing, or None when there is none (or no longer)."""
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret is None or expires is None or expires <= utcnow():
        return None
    return expires


async def check_target(url: str, *, allow_private: bool) -> None:
    """The SSRF guard at registration: a URL whose host resolves to a refused address is a
    400 on ``url``. A host that does not resolve (yet) is accepted: DNS failures pass, and
    the worker checks the address again before every send."""
    try:
        await check_url(url, allow_private=allow_private)
    except UnresolvableHost:
        return
    except UnsafeAddress as exc:
        raise Invalid.field("url", exc.reason[:1].upper() + exc.reason[1:]) from None


def visible_query(principal: Principal) -> Select[Any]:
    query = select(WebhookEndpoint)
    if principal.is_admin:
        return query
    return query.where(WebhookEndpoint.owner_id == principal.user_id)


async def get_endpoint(
    session: AsyncSession, endpoint_id: int, principal: Principal, *, for_change: bool = False
) -> WebhookEndpoint:
    """The endpoint if it is the caller's (or the caller is an administrator), else 404;
    ``for_change`` locks its row until the transaction ends."""
    if for_change:
        await take_write_turn(session, WebhookEndpoint)
    endpoint = await session.get(
        WebhookEndpoint, endpoint_id, with_for_update=for_change, populate_existing=for_change
    )
    if endpoint is None or not (principal.is_admin or endpoint.owner_id == principal.user_id):
        raise NotFound(f"No webhook with id {endpoint_id}")
    return endpoint


async def create_endpoint(
    session: AsyncSession, *, data: WebhookCreate, actor: Principal, allow_private: bool
) -> WebhookEndpoint:
    projects.check_owner_field(actor, data.owner_id, actor.user_id)
    owner_id = data.owner_id if data.owner_id is not None else actor.user_id
    await projects.existing_user(session, owner_id, field="owner_id")
    if data.project_id is not None:
        await projects.get_project(session, data.project_id, actor, field="project_id")
    await check_target(data.url, allow_private=allow_private)
    now = utcnow()
    endpoint = WebhookEndpoint(
        owner_id=owner_id,
        project_id=data.project_id,
        url=data.url,
        description=data.description,
        events=data.events,
        secret=data.secret if data.secret is not None else generate_secret(),
        active=data.active,
        max_attempts=data.max_attempts,
        livemode=actor.livemode,
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def update_endpoint(
    session: AsyncSession,
    *,
    endpoint: WebhookEndpoint,
    data: WebhookUpdate,
    actor: Principal,
) -> WebhookEndpoint:
    """``PATCH``. A new ``url`` must have passed ``check_target`` already, before the row was
    locked (resolving a host can take seconds; SQLite has one write lock for everyone). A new
    ``secret`` replaces the old one at once (``rotate-secret`` keeps both signing a while)."""
    changes = data.model_dump(exclude_unset=True)
    if "project_id" in changes and changes.pop("project_id") != endpoint.project_id:
        raise Invalid.field("project_id", "A webhook cannot move to another project")
    owner_id = changes.pop("owner_id", None)
    projects.check_owner_field(actor, owner_id, endpoint.owner_id)
    if owner_id is not None and owner_id != endpoint.owner_id:
        endpoint.owner_id = (await projects.existing_user(session, owner_id, field="owner_id")).id
    if "secret" in changes and changes["secret"] != endpoint.secret:
        endpoint.previous_secret = None
        endpoint.previous_secret_expires_at = None
    if changes.get("active") is True:
        endpoint.disabled_reason = None
        endpoint.failing_since = None
        if not endpoint.active:  # its backlog of due deliveries goes out now
            notify_after_commit(session, DELIVERIES_DUE)
    for field, value in changes.items():
        setattr(endpoint, field, value)
    endpoint.updated_at = utcnow()
    await session.flush()
    return endpoint


async def delete_endpoint(session: AsyncSession, *, endpoint: WebhookEndpoint) -> None:
    """Its deliveries and their attempts go with it (foreign-key cascade)."""
    await session.delete(endpoint)
    await session.flush()


async def rotate_secret(session: AsyncSession, *, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """A new generated secret; the current one keeps signing beside it for 24 hours (a second
    rotation within them drops the oldest)."""
    now = utcnow()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + ROTATION_GRACE
    endpoint.secret = generate_secret()
    endpoint.updated_at = now
    await session.flush()
    return endpoint


def new_message_id() -> str:
    return MESSAGE_ID_PREFIX + random_token(32)


def _payload(body: EventOut) -> str:
    """The body every attempt of the delivery sends, byte for byte: compact JSON with the
    contract's fields first, in its order (``id``, ``event``, ``timestamp``, ``data``), then
    ``livemode``."""
    fields = body.model_dump(mode="json")
    fields["livemode"] = fields.pop("livemode")
    return orjson.dumps(fields).decode()


async def send_test(session: AsyncSession, *, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A ``ping`` for this endpoint only; it is no event of the log (``event_id`` is None).
    A disabled endpoint is refused: the worker sends nothing to it, so the ping would wait."""
    if not endpoint.active:
        raise Conflict(
            "This webhook is disabled; PATCH it with active=true before testing it",
            details=[{"field": "active", "message": "The webhook is disabled"}],
        )
    now = utcnow()
    ping = EventOut(
        id=events.EVENT_ID_PREFIX + random_token(24),
        event=catalog.PING,
        timestamp=now,
        data=to_out(endpoint).model_dump(mode="json"),
        livemode=endpoint.livemode,
    )
    delivery = WebhookDelivery(
        endpoint_id=endpoint.id,
        event_id=None,
        event_type=catalog.PING,
        message_id=new_message_id(),
        payload=_payload(ping),
        status=PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(delivery)
    await session.flush()
    notify_after_commit(session, DELIVERIES_DUE)
    return delivery


def deliveries_query(endpoint_id: int) -> Select[Any]:
    return select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)


async def get_delivery(
    session: AsyncSession,
    *,
    endpoint: WebhookEndpoint,
    delivery_id: int,
    for_change: bool = False,
) -> WebhookDelivery:
    if for_change:
        await take_write_turn(session, WebhookDelivery)
    query = deliveries_query(endpoint.id).where(WebhookDelivery.id == delivery_id)
    if for_change:
        query = query.with_for_update().execution_options(populate_existing=True)
    delivery: WebhookDelivery | None = await session.scalar(query)
    if delivery is None:
        raise NotFound(f"No delivery with id {delivery_id} for webhook {endpoint.id}")
    return delivery


async def redeliver(session: AsyncSession, *, delivery: WebhookDelivery) -> WebhookDelivery:
    """The same delivery (same ``message_id``, same body) due again now, whatever its status.

    Its attempt count is kept, so a delivery that had used all its attempts gets one more.
    """
    delivery.status = PENDING
    delivery.next_attempt_at = utcnow()
    delivery.delivered_at = None
    await session.flush()
    notify_after_commit(session, DELIVERIES_DUE)
    return delivery


async def attempts_of(session: AsyncSession, delivery_id: int) -> Sequence[WebhookAttempt]:
    query = (
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id == delivery_id)
        .order_by(WebhookAttempt.attempt, WebhookAttempt.id)
    )
    return (await session.scalars(query)).all()


def delivery_out(delivery: WebhookDelivery, *, livemode: bool) -> DeliveryOut:
    return DeliveryOut(**_delivery_fields(delivery), livemode=livemode)


def delivery_detail(
    delivery: WebhookDelivery, attempts: Sequence[WebhookAttempt], *, livemode: bool
) -> DeliveryDetail:
    return DeliveryDetail(
        **_delivery_fields(delivery),
        livemode=livemode,
        payload=orjson.loads(delivery.payload),
        attempt_log=[AttemptOut.model_validate(a, from_attributes=True) for a in attempts],
    )


_LEADING_EVENT_ID = re.compile(r'\{"id":"(evt_[0-9A-Za-z]+)"')


def _event_public_id(payload: str) -> str:
    """The ``evt_...`` id of a frozen body. ``_payload`` writes it first, so a list of large
    bodies reads only their first bytes; any other body is parsed whole."""
    match = _LEADING_EVENT_ID.match(payload)
    if match is not None:
        return match.group(1)
    event_id: str = orjson.loads(payload)["id"]
    return event_id


def _delivery_fields(delivery: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "webhook_id": delivery.endpoint_id,
        "event_id": _event_public_id(delivery.payload),
        "event_type": delivery.event_type,
        "message_id": delivery.message_id,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "last_duration_ms": delivery.last_duration_ms,
        "last_error": delivery.last_error,
        "next_retry_at": delivery.next_attempt_at if delivery.status == PENDING else None,
        "created_at": delivery.created_at,
        "delivered_at": delivery.delivered_at,
    }


@lru_cache(maxsize=4)
def _subscribers_of(*, owned: bool, in_project: bool) -> Select[int, list[str]]:
    """The endpoints that may receive an event of this shape (with an owner, of a project):
    active, of the event's mode, scoped to its project (or to none), and whose owner may see
    it by the rule of ``GET /events`` (``events.service.visible_to``): their own events,
    events of projects they are a member of, and every event for administrators. Built once
    per shape, the event's values bound when it runs."""
    project_scope: ColumnElement[bool] = WebhookEndpoint.project_id.is_(None)
    may_see: list[ColumnElement[bool]] = [User.role == "admin"]
    if owned:
        may_see.append(WebhookEndpoint.owner_id == bindparam("owner_id"))
    if in_project:
        project_id = bindparam("project_id", type_=Integer)
        project_scope = or_(project_scope, WebhookEndpoint.project_id == project_id)
        members = select(ProjectMember.user_id).where(ProjectMember.project_id == project_id)
        may_see.append(WebhookEndpoint.owner_id.in_(members))
    return (
        select(WebhookEndpoint.id, WebhookEndpoint.events)
        .join(User, User.id == WebhookEndpoint.owner_id)
        .where(
            WebhookEndpoint.active.is_(True),
            WebhookEndpoint.livemode == bindparam("livemode"),
            project_scope,
            or_(*may_see),
        )
        .order_by(WebhookEndpoint.id)
        # PostgreSQL: an endpoint deleted meanwhile is skipped, and one being deleted waits for
        # this commit, rather than this change failing on the deliveries' foreign key.
        .with_for_update(key_share=True, of=WebhookEndpoint)
    )


_INSERT_DELIVERY = insert(WebhookDelivery).values(
    {
        name: bindparam(name)
        for name in (
            "endpoint_id",
            "event_id",
            "event_type",
            "message_id",
            "payload",
            "status",
            "attempts",
            "next_attempt_at",
            "created_at",
        )
    }
)


def _subscribed(events_of_endpoint: list[str], event_type: str) -> bool:
    return ALL_EVENTS in events_of_endpoint or event_type in events_of_endpoint


async def fan_out(writes: Writes, event: events.RecordedEvent) -> None:
    """The events domain's subscriber: one pending delivery, due now, for every endpoint that
    may receive the event (``_subscribers_of``) and subscribes to its type. Runs inside the
    transaction that wrote the event, so the deliveries commit or roll back with the change."""
    if event.type == catalog.PING:
        return
    query = _subscribers_of(
        owned=event.owner_id is not None, in_project=event.project_id is not None
    )
    found = await writes.run(
        query,
        {"owner_id": event.owner_id, "project_id": event.project_id, "livemode": event.livemode},
    )
    endpoint_ids = [row.id for row in found.rows if _subscribed(row.events, event.type)]
    if not endpoint_ids:
        return
    payload = _payload(events.to_out(event))
    now = utcnow()
    for endpoint_id in endpoint_ids:
        await writes.run(
            _INSERT_DELIVERY,
            {
                "endpoint_id": endpoint_id,
                "event_id": event.id,
                "event_type": event.type,
                "message_id": new_message_id(),
                "payload": payload,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            },
        )
    writes.notify_after_commit(DELIVERIES_DUE)
