from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from rostra.core.db import Base, UTCDateTime, utcnow


class Event(Base):
    """One change, as the API showed the resource after it (before it, for a deletion).

    ``id`` only grows (AUTOINCREMENT on SQLite, a sequence on PostgreSQL): a delivery worker
    follows the log by it. ``owner_id`` and ``project_id`` say who may see the event; they are
    plain columns, not foreign keys, because the log outlives the rows it describes.
    """

    __tablename__ = "events"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[int | None] = mapped_column(Integer)
    project_id: Mapped[int | None] = mapped_column(Integer)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    livemode: Mapped[bool] = mapped_column(Boolean, default=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


Index("ix_events_created_at_id", Event.created_at, Event.id)
Index("ix_events_owner_id_id", Event.owner_id, Event.id)
Index("ix_events_project_id_id", Event.project_id, Event.id)
Index("ix_events_type_id", Event.type, Event.id)
