from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from rostra.core.db import Base, UTCDateTime, utcnow


class DataSet(Base):
    __tablename__ = "data_sets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    values: Mapped[list[Any]] = mapped_column(JSON)
    # ``metadata`` is taken on declarative classes; the column keeps the API's name.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


Index("ix_data_sets_created_at_id", DataSet.created_at, DataSet.id)
Index("ix_data_sets_updated_at_id", DataSet.updated_at, DataSet.id)
Index("ix_data_sets_name_id", DataSet.name, DataSet.id)
Index("ix_data_sets_owner_id_created_at_id", DataSet.owner_id, DataSet.created_at, DataSet.id)
Index("ix_data_sets_project_id_created_at_id", DataSet.project_id, DataSet.created_at, DataSet.id)
