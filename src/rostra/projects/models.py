from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rostra.core.db import Base, UTCDateTime, new_revision, utcnow
from rostra.users.models import User


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    visibility: Mapped[str] = mapped_column(String(16), default="private")
    status: Mapped[str] = mapped_column(String(16), default="active")
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    # RESTRICT: a user who owns projects is deleted only after handing them over.
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # A new random number on every write (the ORM's onupdate): a list serves rows rendered at
    # their revision from memory (projects.service.rendered_projects).
    revision: Mapped[int] = mapped_column(
        BigInteger, default=new_revision, onupdate=new_revision, server_default="0"
    )


# Every sort key pairs with id (keyset cursors); every filter leads an index ending in the
# default sort, so a filtered first page is an index range scan.
Index("ix_projects_created_at_id", Project.created_at, Project.id)
Index("ix_projects_updated_at_id", Project.updated_at, Project.id)
Index("ix_projects_name_id", Project.name, Project.id)
Index("ix_projects_owner_id_created_at_id", Project.owner_id, Project.created_at, Project.id)
Index("ix_projects_visibility_created_at_id", Project.visibility, Project.created_at, Project.id)
Index("ix_projects_status_created_at_id", Project.status, Project.created_at, Project.id)
# The hidden rows a project list's total subtracts: other owners' private projects, in two
# ranges around the caller's own (projects.service.count_visible).
Index("ix_projects_visibility_owner_id", Project.visibility, Project.owner_id)


class ProjectMember(Base):
    """A user's role in a project. The owner has a row too (role ``owner``)."""

    __tablename__ = "project_members"
    __table_args__ = (
        UniqueConstraint("project_id", "user_id", name="uq_project_members_project_id_user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    user: Mapped[User] = relationship(lazy="raise")
