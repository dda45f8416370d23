"""The inventory: zones > clusters > hosts, and where each entity lives.

`zones`, `clusters` (a backend and its encrypted connection settings, overcommit ratios, tags)
and `hosts` (capacity, use, state, administrative state). Entities gain their zone, cluster,
host, the cores and memory they reserved on the host, and the backend's private reference to
their platform object. Rows from before stay unplaced until the server's first start after the
upgrade puts them in the one-cluster shorthand (occi.inventory).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

HOST_STATES = ("up", "down", "disconnected")  # occi.store.inventory_sql
ADMIN_STATES = ("enabled", "disabled", "maintenance", "error-in-maintenance")
PLACEMENT = (
    ("zone_id", sa.String),
    ("cluster_id", sa.String),
    ("host_id", sa.String),
    ("reserved_cores", sa.Integer),
    ("reserved_memory_mb", sa.BigInteger),
    ("platform_ref", sa.Text),
)


def upgrade() -> None:
    op.create_table(
        "zones",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("name", name="uq_zones_name"),
    )
    op.create_table(
        "clusters",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column(
            "zone_id",
            sa.String,
            sa.ForeignKey("zones.id", ondelete="RESTRICT", name="fk_clusters_zone"),
            nullable=False,
        ),
        sa.Column("backend", sa.String, nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("cpu_overcommit", sa.Float, nullable=False, server_default="1"),
        sa.Column("memory_overcommit", sa.Float, nullable=False, server_default="1"),
        sa.Column("tags", sa.Text, nullable=False, server_default="[]"),
        sa.Column("origin", sa.String, nullable=False, server_default="admin"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("name", name="uq_clusters_name"),
    )
    op.create_index("ix_clusters_zone", "clusters", ["zone_id"])
    op.create_table(
        "hosts",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column(
            "cluster_id",
            sa.String,
            sa.ForeignKey("clusters.id", ondelete="RESTRICT", name="fk_hosts_cluster"),
            nullable=False,
        ),
        sa.Column("uri", sa.String, nullable=True),
        sa.Column("cores", sa.Integer, nullable=False),
        sa.Column("memory_mb", sa.BigInteger, nullable=False),
        sa.Column("cpu_mhz", sa.Integer, nullable=False, server_default="0"),
        sa.Column("used_cores", sa.Integer, nullable=False, server_default="0"),
        sa.Column("used_memory_mb", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("vms", sa.Integer, nullable=False, server_default="0"),
        sa.Column("state", sa.String, nullable=False, server_default="up"),
        sa.Column("admin_state", sa.String, nullable=False, server_default="enabled"),
        sa.Column("state_message", sa.Text, nullable=True),
        sa.Column("tags", sa.Text, nullable=False, server_default="[]"),
        sa.Column("last_seen", sa.Float, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("name", name="uq_hosts_name"),
        sa.CheckConstraint(f"state IN {HOST_STATES!r}", name="ck_hosts_state"),
        sa.CheckConstraint(f"admin_state IN {ADMIN_STATES!r}", name="ck_hosts_admin_state"),
    )
    op.create_index("ix_hosts_cluster", "hosts", ["cluster_id"])
    with op.batch_alter_table("entities") as batch:
        for name, type_ in PLACEMENT:
            batch.add_column(sa.Column(name, type_, nullable=True))
    op.create_index(
        "ix_entities_host",
        "entities",
        ["host_id"],
        sqlite_where=sa.text("host_id IS NOT NULL"),
        postgresql_where=sa.text("host_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_entities_host", table_name="entities")
    with op.batch_alter_table("entities") as batch:
        for name, _ in reversed(PLACEMENT):
            batch.drop_column(name)
    op.drop_index("ix_hosts_cluster", table_name="hosts")
    op.drop_table("hosts")
    op.drop_index("ix_clusters_zone", table_name="clusters")
    op.drop_table("clusters")
    op.drop_table("zones")
