"""Webhook endpoints, their deliveries (one event for one endpoint) and each HTTP attempt.

A delivery row is the unit of "never lost": it is inserted in the transaction that wrote its
event, and a worker leases it (``next_attempt_at`` pushed past the send) before sending, so a
worker that dies mid-send leaves it due again with the same ``message_id``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from rostra.core.db import Base, UTCDateTime, utcnow

DELIVERIES_DUE: Final = "webhook_deliveries"
"""The after-commit notification topic: new or re-queued deliveries are due now."""

PENDING: Final = "pending"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
DEFAULT_MAX_ATTEMPTS: Final = 8

_BigId = BigInteger().with_variant(Integer(), "sqlite")


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(500), default="")
    events: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(256))
    """The current signing secret exactly as shown to the user (``whsec_...`` or their own)."""
    previous_secret: Mapped[str | None] = mapped_column(String(256))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    max_attempts: Mapped[int] = mapped_column(Integer, default=DEFAULT_MAX_ATTEMPTS)
    livemode: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class WebhookDelivery(Base):
    """One message: one event (or a ping) for one endpoint, with its frozen body."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        _BigId, ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_id: Mapped[int | None] = mapped_column(_BigId)
    """``events.id``, or None for a ping (a plain column, as the event log's own references are)."""
    event_type: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(40), unique=True)
    """``msg_...``: the ``webhook-id`` header, the same on every retry and redelivery."""
    payload: Mapped[str] = mapped_column(Text)
    """The exact JSON body, serialised once at fan-out so every retry sends identical bytes."""
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_duration_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookAttempt(Base):
    """One HTTP try of a delivery, for the deliveries view."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        _BigId, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    """1-based."""
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))


Index(
    "ix_webhook_deliveries_status_next_attempt_at",
    WebhookDelivery.status,
    WebhookDelivery.next_attempt_at,
)
Index("ix_webhook_deliveries_endpoint_id_id", WebhookDelivery.endpoint_id, WebhookDelivery.id)
