"""Request and response bodies of /webhooks and their deliveries.

A secret is shown once: in the answer to ``POST /webhooks`` and to ``rotate-secret``. Every
other answer shows only ``secret_last4``.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import BaseModel, Field, StringConstraints, field_validator

from rostra.core.schemas import MAX_ID, READ_ONLY_FIELDS, InputModel, ResourceModel, Timestamp
from rostra.events.catalog import EVENT_TYPES
from rostra.lib.webhooks.signing import InvalidSecret, secret_key
from rostra.projects.schemas import PatchModel

ALL_EVENTS: Final = "*"
MAX_ATTEMPTS_LIMIT: Final = 20

SEED_003_EVENT_TYPES: Final = frozenset(
    {"course.completed", "exercise.submitted", "achievement.unlocked", "payment.completed"}
)
"""Seed 003's own event names. Rostra never emits them, but an endpoint may subscribe to them
so that a client written against seed 003 registers its webhook unchanged."""

SUBSCRIBABLE_TYPES: Final = frozenset(EVENT_TYPES) | SEED_003_EVENT_TYPES

WebhookUrl = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
Description = Annotated[str, StringConstraints(max_length=500)]
MaxAttempts = Annotated[int, Field(ge=1, le=MAX_ATTEMPTS_LIMIT)]
EventTypes = Annotated[list[str], Field(min_length=1, max_length=100)]
Secret = Annotated[str, StringConstraints(max_length=256)]
RowId = Annotated[int, Field(ge=1, le=MAX_ID)]

WEBHOOK_READ_ONLY_FIELDS = READ_ONLY_FIELDS | {
    "secret_last4",
    "previous_secret_expires_at",
    "disabled_reason",
    "failing_since",
}
"""What ``WebhookOut`` shows but no client sets: ignored when sent back, like ``id``."""


def _event_types(types: list[str]) -> list[str]:
    """Known types only, each once, in the order sent; ``*`` anywhere means every type."""
    for name in types:
        if name != ALL_EVENTS and name not in SUBSCRIBABLE_TYPES:
            raise ValueError(f"Unknown event type '{name}'; GET /events/types lists them")
    if ALL_EVENTS in types:
        return [ALL_EVENTS]
    return list(dict.fromkeys(types))


def _optional_event_types(types: list[str] | None) -> list[str] | None:
    return None if types is None else _event_types(types)


def _secret(secret: str | None) -> str | None:
    """A whsec_ secret must be base64 of at least 16 bytes; any other needs 16 characters."""
    if secret is not None:
        try:
            secret_key(secret)
        except InvalidSecret as exc:
            raise ValueError(str(exc)) from None
    return secret


class WebhookCreate(InputModel):
    """Seed 003's body ``{"url", "events", "secret"}`` works as is."""

    read_only_fields = WEBHOOK_READ_ONLY_FIELDS

    url: WebhookUrl
    events: EventTypes
    secret: Secret | None = Field(
        default=None, description="Left out: a whsec_ secret is generated and shown once"
    )
    description: Description = ""
    active: bool = True
    max_attempts: MaxAttempts = 8
    project_id: RowId | None = Field(
        default=None, description="Only this project's events (one you may see)"
    )
    owner_id: RowId | None = Field(default=None, description="Administrators only")

    _check_events = field_validator("events")(_event_types)
    _check_secret = field_validator("secret")(_secret)


class WebhookUpdate(PatchModel):
    """``PATCH``: the fields sent change. ``active: true`` also clears ``disabled_reason`` and
    ``failing_since``. ``project_id`` and ``owner_id`` may be sent back unchanged."""

    read_only_fields = WEBHOOK_READ_ONLY_FIELDS
    not_nullable = frozenset({"url", "events", "secret", "description", "active", "max_attempts"})

    url: WebhookUrl | None = None
    events: EventTypes | None = None
    secret: Secret | None = None
    description: Description | None = None
    active: bool | None = None
    max_attempts: MaxAttempts | None = None
    project_id: RowId | None = None
    owner_id: RowId | None = None

    _check_events = field_validator("events")(_optional_event_types)
    _check_secret = field_validator("secret")(_secret)


class WebhookOut(ResourceModel):
    id: int
    url: str
    description: str
    events: list[str]
    active: bool
    disabled_reason: str | None = Field(
        description="Why the server disabled the endpoint; cleared by PATCH active=true"
    )
    failing_since: Timestamp | None = Field(
        description="First failure of the current unbroken run of failures"
    )
    max_attempts: int
    project_id: int | None
    owner_id: int
    secret_last4: str = Field(description="The last four characters of the signing secret")
    previous_secret_expires_at: Timestamp | None = Field(
        description="After rotate-secret: until then the previous secret signs too"
    )
    created_at: Timestamp
    updated_at: Timestamp


class WebhookWithSecret(WebhookOut):
    """The answer to create and rotate-secret: the only time the secret is shown."""

    secret: str


class AttemptOut(BaseModel):
    attempt: int
    started_at: Timestamp
    status_code: int | None
    duration_ms: int
    error: str | None


class DeliveryOut(ResourceModel):
    id: int
    webhook_id: int
    event_id: str = Field(description="evt_...: the id in the delivered body")
    event_type: str
    message_id: str = Field(description="The webhook-id header: the same on every retry")
    status: str = Field(description="pending, succeeded or failed")
    attempts: int
    last_status_code: int | None
    last_duration_ms: int | None
    last_error: str | None
    next_retry_at: Timestamp | None = Field(description="When a pending delivery is next tried")
    created_at: Timestamp
    delivered_at: Timestamp | None


class DeliveryDetail(DeliveryOut):
    payload: dict[str, Any] = Field(description="The exact body sent, as JSON")
    attempt_log: list[AttemptOut] = Field(description="Every HTTP try, oldest first")
