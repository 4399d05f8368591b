"""list indexes: the hidden rows a project list's total subtracts

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 19:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.create_index(
            "ix_projects_visibility_owner_id", ["visibility", "owner_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_index("ix_projects_visibility_owner_id")
