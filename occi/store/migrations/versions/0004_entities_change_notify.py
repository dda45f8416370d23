"""PostgreSQL announces every change to the entities table (NOTIFY occi_entities).

Each server process keeps the rows of recent one-entity reads in memory and drops them all when
this notification arrives, from whichever server, tool or session made the change. A
statement-level trigger: one notification per changing statement (PostgreSQL folds repeats
within a transaction), delivered at commit, none for rolled-back work. SQLite has no cache and
no trigger.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

CHANNEL = "occi_entities"  # occi.store.sql.ENTITIES_CHANNEL
TRIGGER = "occi_entities_changed"  # occi.store.sql.ENTITIES_TRIGGER


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"""
        CREATE OR REPLACE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', '');
            RETURN NULL;
        END
        $$""")
    op.execute(f"""
        CREATE TRIGGER {TRIGGER}
        AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON entities
        FOR EACH STATEMENT EXECUTE FUNCTION {TRIGGER}()""")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON entities")
    op.execute(f"DROP FUNCTION IF EXISTS {TRIGGER}()")
