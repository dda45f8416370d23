"""The store's first schema: entities, their mixin and attribute indexes, user mixins.

Revision ID: 0001
Revises:
Create Date: 2025-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "entities",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String, nullable=False),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("location", sa.String, nullable=False),
        sa.Column("title", sa.Text, nullable=True),
        sa.Column("summary", sa.Text, nullable=True),
        sa.Column("attributes", sa.Text, nullable=False),
        sa.Column("mixins", sa.Text, nullable=False),
        sa.Column("source_id", sa.String, nullable=True),
        sa.Column("source", sa.String, nullable=True),
        sa.Column("target", sa.String, nullable=True),
        sa.Column("source_kind", sa.String, nullable=True),
        sa.Column("target_kind", sa.String, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("id", name="uq_entities_id"),
        sa.UniqueConstraint("location", name="uq_entities_location"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_entities_kind_seq", "entities", ["kind", "seq"])
    op.create_index("ix_entities_source_id", "entities", ["source_id"])
    op.create_index("ix_entities_target", "entities", ["target"])

    op.create_table(
        "entity_mixins",
        sa.Column("entity_seq", sa.Integer, primary_key=True),
        sa.Column("mixin_id", sa.String, primary_key=True),
        sa.ForeignKeyConstraint(
            ["entity_seq"], ["entities.seq"], ondelete="CASCADE", name="fk_entity_mixins_entity"
        ),
    )
    op.create_index("ix_entity_mixins_mixin_id", "entity_mixins", ["mixin_id", "entity_seq"])

    op.create_table(
        "entity_attributes",
        sa.Column("entity_seq", sa.Integer, primary_key=True),
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("value_key", sa.String, nullable=False),
        sa.ForeignKeyConstraint(
            ["entity_seq"],
            ["entities.seq"],
            ondelete="CASCADE",
            name="fk_entity_attributes_entity",
        ),
    )
    op.create_index(
        "ix_entity_attributes_name_value", "entity_attributes", ["name", "value_key", "entity_seq"]
    )

    op.create_table(
        "user_mixins",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("scheme", sa.String, nullable=False),
        sa.Column("term", sa.String, nullable=False),
        sa.Column("title", sa.Text, nullable=True),
        sa.Column("location", sa.String, nullable=True),
        sa.Column("depends", sa.Text, nullable=False),
        sa.Column("applies", sa.Text, nullable=False),
        sa.Column("attributes", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("location", name="uq_user_mixins_location"),
    )


def downgrade() -> None:
    op.drop_table("user_mixins")
    op.drop_index("ix_entity_attributes_name_value", table_name="entity_attributes")
    op.drop_table("entity_attributes")
    op.drop_index("ix_entity_mixins_mixin_id", table_name="entity_mixins")
    op.drop_table("entity_mixins")
    op.drop_index("ix_entities_target", table_name="entities")
    op.drop_index("ix_entities_source_id", table_name="entities")
    op.drop_index("ix_entities_kind_seq", table_name="entities")
    op.drop_table("entities")
