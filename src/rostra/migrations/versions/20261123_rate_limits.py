"""rate limits: per-account overrides of the plan table

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 17:28:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rostra.core.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_overrides",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("per_hour", sa.Integer(), nullable=True),
        sa.Column("per_minute", sa.Integer(), nullable=True),
        sa.Column("overage", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_at", rostra.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", rostra.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_rate_limit_overrides_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_rate_limit_overrides")),
    )
    with op.batch_alter_table("rate_limit_overrides", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rate_limit_overrides_created_at"), ["created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("rate_limit_overrides", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rate_limit_overrides_created_at"))
    op.drop_table("rate_limit_overrides")
