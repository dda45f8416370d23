"""Partial indexes for link source and target (only links have them).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_entities_source_id", table_name="entities")
    op.drop_index("ix_entities_target", table_name="entities")
    for name, column in (
        ("ix_entities_link_source", "source_id"),
        ("ix_entities_link_target", "target"),
    ):
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(name, "entities", [column], sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    op.drop_index("ix_entities_link_source", table_name="entities")
    op.drop_index("ix_entities_link_target", table_name="entities")
    op.create_index("ix_entities_source_id", "entities", ["source_id"])
    op.create_index("ix_entities_target", "entities", ["target"])
