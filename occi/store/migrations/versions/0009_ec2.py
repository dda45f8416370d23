"""The EC2 Query API: access keys (secret encrypted with the server's key), key pairs, tags, and
what EC2 remembers of an instance (key name, launch time, the tombstone of a terminated one).
Every row belongs to a project and goes with it (ON DELETE CASCADE); access keys go with
their user too.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _owner(table: str, column: str, target: str) -> sa.Column[str]:
    return sa.Column(
        column,
        sa.String,
        sa.ForeignKey(target, ondelete="CASCADE", name=f"fk_{table}_{column.removesuffix('_id')}"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "ec2_credentials",
        sa.Column("access_key", sa.String, primary_key=True),
        _owner("ec2_credentials", "user_id", "users.id"),
        _owner("ec2_credentials", "project_id", "projects.id"),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_ec2_credentials_user", "ec2_credentials", ["user_id"])
    op.create_table(
        "ec2_keypairs",
        sa.Column("id", sa.String, primary_key=True),
        _owner("ec2_keypairs", "project_id", "projects.id"),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("fingerprint", sa.String, nullable=False),
        sa.Column("key_type", sa.String, nullable=False),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("project_id", "name", name="uq_ec2_keypairs_name"),
    )
    op.create_table(
        "ec2_tags",
        sa.Column(
            "project_id",
            sa.String,
            sa.ForeignKey("projects.id", ondelete="CASCADE", name="fk_ec2_tags_project"),
            primary_key=True,
        ),
        sa.Column("resource_id", sa.String, primary_key=True),
        sa.Column("key", sa.String, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "ec2_instances",
        sa.Column("entity_id", sa.String, primary_key=True),
        _owner("ec2_instances", "project_id", "projects.id"),
        sa.Column("reservation_id", sa.String, nullable=False),
        sa.Column("key_name", sa.String, nullable=True),
        sa.Column("launch_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("terminated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("snapshot", sa.Text, nullable=True),
    )
    op.create_index("ix_ec2_instances_project", "ec2_instances", ["project_id"])


def downgrade() -> None:
    for table in ("ec2_instances", "ec2_tags", "ec2_keypairs", "ec2_credentials"):
        op.drop_table(table)
