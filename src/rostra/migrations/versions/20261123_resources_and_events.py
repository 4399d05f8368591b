"""resources and events

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 17:31:58.335504
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rostra.core.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", rostra.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("public_id", name=op.f("uq_events_public_id")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_created_at_id", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_events_owner_id_id", ["owner_id", "id"], unique=False)
        batch_op.create_index("ix_events_project_id_id", ["project_id", "id"], unique=False)
        batch_op.create_index("ix_events_type_id", ["type", "id"], unique=False)

    op.create_table(
        "projects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("visibility", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("created_at", rostra.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", rostra.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_projects_owner_id_users"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
    )
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.create_index("ix_projects_created_at_id", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_projects_name_id", ["name", "id"], unique=False)
        batch_op.create_index(
            "ix_projects_owner_id_created_at_id", ["owner_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_projects_status_created_at_id", ["status", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_projects_updated_at_id", ["updated_at", "id"], unique=False)
        batch_op.create_index(
            "ix_projects_visibility_created_at_id", ["visibility", "created_at", "id"], unique=False
        )

    op.create_table(
        "components",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("lifecycle", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("links", sa.JSON(), nullable=False),
        sa.Column("created_at", rostra.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", rostra.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_components_owner_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_components_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_components")),
        sa.UniqueConstraint("project_id", "name", name="uq_components_project_id_name"),
    )
    with op.batch_alter_table("components", schema=None) as batch_op:
        batch_op.create_index("ix_components_created_at_id", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_components_name_id", ["name", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_components_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index("ix_components_updated_at_id", ["updated_at", "id"], unique=False)

    op.create_table(
        "data_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("created_at", rostra.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", rostra.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_data_sets_owner_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_data_sets_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_sets")),
    )
    with op.batch_alter_table("data_sets", schema=None) as batch_op:
        batch_op.create_index("ix_data_sets_created_at_id", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_data_sets_name_id", ["name", "id"], unique=False)
        batch_op.create_index(
            "ix_data_sets_owner_id_created_at_id", ["owner_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_data_sets_project_id_created_at_id",
            ["project_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index("ix_data_sets_updated_at_id", ["updated_at", "id"], unique=False)

    op.create_table(
        "project_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", rostra.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", rostra.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_members_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_project_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_members")),
        sa.UniqueConstraint("project_id", "user_id", name="uq_project_members_project_id_user_id"),
    )
    with op.batch_alter_table("project_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_project_members_user_id"), ["user_id"], unique=False)

    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("component_id", sa.Integer(), nullable=True),
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("ref", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("started_at", rostra.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", rostra.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", rostra.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["component_id"],
            ["components.id"],
            name=op.f("fk_deployments_component_id_components"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_deployments_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_deployments_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
    )
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deployments_component_id"), ["component_id"], unique=False
        )
        batch_op.create_index("ix_deployments_created_at_id", ["created_at", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deployments_created_by"), ["created_by"], unique=False)
        batch_op.create_index(
            "ix_deployments_project_id_created_at_id",
            ["project_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_deployments_status_created_at_id", ["status", "created_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_index("ix_deployments_status_created_at_id")
        batch_op.drop_index("ix_deployments_project_id_created_at_id")
        batch_op.drop_index(batch_op.f("ix_deployments_created_by"))
        batch_op.drop_index("ix_deployments_created_at_id")
        batch_op.drop_index(batch_op.f("ix_deployments_component_id"))

    op.drop_table("deployments")
    with op.batch_alter_table("project_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_project_members_user_id"))

    op.drop_table("project_members")
    with op.batch_alter_table("data_sets", schema=None) as batch_op:
        batch_op.drop_index("ix_data_sets_updated_at_id")
        batch_op.drop_index("ix_data_sets_project_id_created_at_id")
        batch_op.drop_index("ix_data_sets_owner_id_created_at_id")
        batch_op.drop_index("ix_data_sets_name_id")
        batch_op.drop_index("ix_data_sets_created_at_id")

    op.drop_table("data_sets")
    with op.batch_alter_table("components", schema=None) as batch_op:
        batch_op.drop_index("ix_components_updated_at_id")
        batch_op.drop_index(batch_op.f("ix_components_owner_id"))
        batch_op.drop_index("ix_components_name_id")
        batch_op.drop_index("ix_components_created_at_id")

    op.drop_table("components")
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_index("ix_projects_visibility_created_at_id")
        batch_op.drop_index("ix_projects_updated_at_id")
        batch_op.drop_index("ix_projects_status_created_at_id")
        batch_op.drop_index("ix_projects_owner_id_created_at_id")
        batch_op.drop_index("ix_projects_name_id")
        batch_op.drop_index("ix_projects_created_at_id")

    op.drop_table("projects")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_type_id")
        batch_op.drop_index("ix_events_project_id_id")
        batch_op.drop_index("ix_events_owner_id_id")
        batch_op.drop_index("ix_events_created_at_id")

    op.drop_table("events")
