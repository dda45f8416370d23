"""Audit events, and user mixins that belong to their project.

`events`: one row per write a client asked for (time, user, project, request id, operation,
entity, result), kept for a configurable number of days.

`user_mixins`: a mixin's identifier and location were unique over the whole cloud, so one
project's definition showed through to another as a conflict. They are now unique within
their project: the key is (project_id, id) and the location is unique per project.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_name", sa.String, nullable=True),
        sa.Column("project_id", sa.String, nullable=True),
        sa.Column("request_id", sa.String, nullable=True),
        sa.Column("operation", sa.String, nullable=False),
        sa.Column("entity", sa.String, nullable=True),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("result", sa.Text, nullable=True),
    )
    op.create_index("ix_events_at", "events", ["at"])
    op.create_index("ix_events_project_at", "events", ["project_id", "at"])
    _rebuild_user_mixins(
        sa.PrimaryKeyConstraint("project_id", "id", name="pk_user_mixins"),
        sa.UniqueConstraint("project_id", "location", name="uq_user_mixins_project_location"),
    )


def _rebuild_user_mixins(*constraints: sa.Constraint) -> None:
    """Copy user_mixins into a table with these key constraints, in place of the old one (a
    primary key cannot change in place on SQLite; the same steps serve PostgreSQL)."""
    op.create_table(
        "user_mixins_new",
        sa.Column("id", sa.String, nullable=False),
        sa.Column("scheme", sa.String, nullable=False),
        sa.Column("term", sa.String, nullable=False),
        sa.Column("title", sa.Text, nullable=True),
        sa.Column("location", sa.String, nullable=True),
        sa.Column("depends", sa.Text, nullable=False),
        sa.Column("applies", sa.Text, nullable=False),
        sa.Column("attributes", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("project_id", sa.String, nullable=False, server_default="default"),
        *constraints,
    )
    columns = "id, scheme, term, title, location, depends, applies, attributes, created_at, "
    columns += "project_id"
    op.execute(f"INSERT INTO user_mixins_new ({columns}) SELECT {columns} FROM user_mixins")
    op.drop_table("user_mixins")
    op.rename_table("user_mixins_new", "user_mixins")


def downgrade() -> None:
    _rebuild_user_mixins(
        sa.PrimaryKeyConstraint("id", name="user_mixins_pkey"),
        sa.UniqueConstraint("location", name="uq_user_mixins_location"),
    )
    op.drop_index("ix_events_project_at", table_name="events")
    op.drop_index("ix_events_at", table_name="events")
    op.drop_table("events")
