"""The inventory's tables: zones > clusters > hosts, on the store's metadata (migration 0007).

Where an entity lives is kept on its own row (`entities.zone_id`, `cluster_id`, `host_id`, the
cores and memory it reserved, the backend's private `platform_ref`), so a create stores its
placement in the INSERT it makes anyway, and a host's use is kept on the host's row, changed by
one guarded UPDATE (`used + asked <= capacity x overcommit`), which is what keeps two servers on
one PostgreSQL from overbooking a host. Touches only the database.
"""

from __future__ import annotations

import sqlalchemy as sa

from occi.store.sql import metadata

#: host.state: what the platform says (is the host answering)
HOST_STATES = ("up", "down", "disconnected")
#: host.admin_state: what an administrator decided
#: (`prepare-for-maintenance`: its computes are being moved away, migration 0008)
ADMIN_STATES = (
    "enabled",
    "disabled",
    "prepare-for-maintenance",
    "maintenance",
    "error-in-maintenance",
)

#: where the placement of a cloud starts: a zone is offered to users as a mixin
zones = sa.Table(
    "zones",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("name", name="uq_zones_name"),
)

#: hosts of one platform, driven by one backend with one set of connection settings
clusters = sa.Table(
    "clusters",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column(
        "zone_id",
        sa.String,
        sa.ForeignKey("zones.id", ondelete="RESTRICT", name="fk_clusters_zone"),
        nullable=False,
    ),
    sa.Column("backend", sa.String, nullable=False),
    #: the backend's connection settings as JSON, encrypted (occi.inventory.secrets)
    sa.Column("settings", sa.Text, nullable=False),
    sa.Column("cpu_overcommit", sa.Float, nullable=False, server_default="1"),
    sa.Column("memory_overcommit", sa.Float, nullable=False, server_default="1"),
    #: JSON list of strings
    sa.Column("tags", sa.Text, nullable=False, server_default="[]"),
    #: `admin` (made with occi-server clusters create) or `settings` (the one-cluster
    #: shorthand, made and kept in line with OCCI_BACKEND at each start)
    sa.Column("origin", sa.String, nullable=False, server_default="admin"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("name", name="uq_clusters_name"),
    sa.Index("ix_clusters_zone", "zone_id"),
)

hosts = sa.Table(
    "hosts",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column(
        "cluster_id",
        sa.String,
        sa.ForeignKey("clusters.id", ondelete="RESTRICT", name="fk_hosts_cluster"),
        nullable=False,
    ),
    #: the platform's address of the host: a libvirt URI, a vCenter host name, a Xen host uuid
    sa.Column("uri", sa.String, nullable=True),
    sa.Column("cores", sa.Integer, nullable=False),
    sa.Column("memory_mb", sa.BigInteger, nullable=False),
    sa.Column("cpu_mhz", sa.Integer, nullable=False, server_default="0"),
    #: reserved by the entities placed here (entities.reserved_*), kept by guarded UPDATEs
    sa.Column("used_cores", sa.Integer, nullable=False, server_default="0"),
    sa.Column("used_memory_mb", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("vms", sa.Integer, nullable=False, server_default="0"),
    sa.Column("state", sa.String, nullable=False, server_default="up"),
    sa.Column("admin_state", sa.String, nullable=False, server_default="enabled"),
    sa.Column("state_message", sa.Text, nullable=True),
    sa.Column("tags", sa.Text, nullable=False, server_default="[]"),
    #: time.time() of the last answer from the platform (host monitoring)
    sa.Column("last_seen", sa.Float, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("name", name="uq_hosts_name"),
    sa.CheckConstraint(f"state IN {HOST_STATES!r}", name="ck_hosts_state"),
    sa.CheckConstraint(f"admin_state IN {ADMIN_STATES!r}", name="ck_hosts_admin_state"),
    sa.Index("ix_hosts_cluster", "cluster_id"),
)
