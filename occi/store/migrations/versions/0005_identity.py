"""Identity: projects, users, role assignments, API tokens and quotas; every entity, job and
user mixin now belongs to a project.

The migration creates the project `default` (id and name `default`) and the new `project_id`
columns default to it, so existing rows belong to it and inserts that name no project land in
it without another statement. The global `admin` role is a role assignment with no project.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

DEFAULT_PROJECT = "default"  # occi.store.sql.DEFAULT_PROJECT
OWNED = ("entities", "jobs", "user_mixins")


def upgrade() -> None:
    projects = op.create_table(
        "projects",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("name", name="uq_projects_name"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("password_hash", sa.String, nullable=True),
        sa.Column("oidc_issuer", sa.String, nullable=True),
        sa.Column("oidc_subject", sa.String, nullable=True),
        sa.Column("x509_dn", sa.String, nullable=True),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("name", name="uq_users_name"),
        sa.UniqueConstraint("oidc_issuer", "oidc_subject", name="uq_users_oidc"),
        sa.UniqueConstraint("x509_dn", name="uq_users_x509_dn"),
    )
    op.create_table(
        "role_assignments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String, nullable=False),
        sa.Column("project_id", sa.String, nullable=True),
        sa.Column("role", sa.String, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], ondelete="CASCADE", name="fk_role_assignments_user"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], ondelete="CASCADE", name="fk_role_assignments_project"
        ),
        sa.CheckConstraint(
            "(role = 'admin' AND project_id IS NULL) OR "
            "(role IN ('member', 'reader') AND project_id IS NOT NULL)",
            name="ck_role_assignments_scope",
        ),
        sa.UniqueConstraint("user_id", "project_id", "role", name="uq_role_assignments"),
    )
    op.create_index(
        "uq_role_assignments_global",
        "role_assignments",
        ["user_id", "role"],
        unique=True,
        sqlite_where=sa.text("project_id IS NULL"),
        postgresql_where=sa.text("project_id IS NULL"),
    )
    op.create_index("ix_role_assignments_project", "role_assignments", ["project_id"])
    op.create_table(
        "tokens",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("user_id", sa.String, nullable=False),
        sa.Column("project_id", sa.String, nullable=True),
        sa.Column("hash", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], ondelete="CASCADE", name="fk_tokens_user"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], ondelete="CASCADE", name="fk_tokens_project"
        ),
    )
    op.create_index("ix_tokens_user", "tokens", ["user_id"])
    op.create_table(
        "quotas",
        sa.Column("project_id", sa.String, primary_key=True),
        sa.Column("resource", sa.String, primary_key=True),
        sa.Column("limit", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], ondelete="CASCADE", name="fk_quotas_project"
        ),
    )
    op.bulk_insert(
        projects,
        [{"id": DEFAULT_PROJECT, "name": DEFAULT_PROJECT, "created_at": datetime.now(UTC)}],
    )
    # a constant default: existing rows take it without a rewrite (SQLite, PostgreSQL 11+)
    for table in OWNED:
        op.add_column(
            table,
            sa.Column("project_id", sa.String, nullable=False, server_default=DEFAULT_PROJECT),
        )
    op.create_index("ix_entities_project_kind_seq", "entities", ["project_id", "kind", "seq"])


def downgrade() -> None:
    op.drop_index("ix_entities_project_kind_seq", table_name="entities")
    for table in OWNED:
        op.drop_column(table, "project_id")
    op.drop_table("quotas")
    op.drop_table("tokens")
    op.drop_table("role_assignments")
    op.drop_table("users")
    op.drop_table("projects")
