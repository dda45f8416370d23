"""The EC2 front's tables, on the store's metadata (migration 0009): access keys, key pairs,
tags, and what EC2 remembers of an instance beyond its entity (key name, launch time, and the
tombstone that keeps a terminated instance visible for an hour). Touches only the database.
"""

from __future__ import annotations

import sqlalchemy as sa

from occi.store.sql import metadata


def _owner(table: str, column: str, target: str) -> sa.Column[str]:
    return sa.Column(
        column,
        sa.String,
        sa.ForeignKey(target, ondelete="CASCADE", name=f"fk_{table}_{column.removesuffix('_id')}"),
        nullable=False,
    )


#: EC2 access keys: each belongs to a user and acts in one project; the secret is encrypted
#: with the server's key (occi.inventory.secrets.Cipher), because SigV4 needs it back
ec2_credentials = sa.Table(
    "ec2_credentials",
    metadata,
    sa.Column("access_key", sa.String, primary_key=True),
    _owner("ec2_credentials", "user_id", "users.id"),
    _owner("ec2_credentials", "project_id", "projects.id"),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_ec2_credentials_user", "user_id"),
)

#: SSH key pairs of a project (EC2 only has them; OCCI gets the public key in ssh_key)
ec2_keypairs = sa.Table(
    "ec2_keypairs",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    _owner("ec2_keypairs", "project_id", "projects.id"),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("fingerprint", sa.String, nullable=False),
    sa.Column("key_type", sa.String, nullable=False),
    sa.Column("public_key", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("project_id", "name", name="uq_ec2_keypairs_name"),
)

#: tags on EC2 resources (instances, volumes, images, key pairs), by their EC2 id
ec2_tags = sa.Table(
    "ec2_tags",
    metadata,
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

#: what EC2 shows of an instance that its compute does not hold; `terminated_at` and
#: `snapshot` (the instance as last described, JSON) make the tombstone of a terminated one
ec2_instances = sa.Table(
    "ec2_instances",
    metadata,
    sa.Column("entity_id", sa.String, primary_key=True),
    _owner("ec2_instances", "project_id", "projects.id"),
    sa.Column("reservation_id", sa.String, nullable=False),
    sa.Column("key_name", sa.String, nullable=True),
    sa.Column("launch_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("terminated_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("snapshot", sa.Text, nullable=True),
    sa.Index("ix_ec2_instances_project", "project_id"),
)
