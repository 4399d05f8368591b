from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from rostra.core.db import Base, UTCDateTime


class IdempotencyKey(Base):
    """One client key of one account: claimed while its request runs, then the stored answer.

    ``lookup`` is a keyed hash of the account and the key (the key itself is never stored) and
    ``response_body`` is sealed with a key derived from them, so the table alone reveals nothing
    of the answers. A row without ``response_status`` is a request still running.
    """

    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    lookup: Mapped[str] = mapped_column(String(64), unique=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    response_status: Mapped[int | None]
    response_headers: Mapped[list[Any] | None] = mapped_column(JSON)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
