"""Host maintenance that moves computes away: the admin state `prepare-for-maintenance`.

A host an administrator puts in maintenance first goes to `prepare-for-maintenance` (as in
CloudStack's PrepareForMaintenance) while its computes move to other hosts of its cluster (one
`migrate` job each, occi.inventory.maintenance), then to `maintenance`, or to
`error-in-maintenance` when some could not move. Only the check constraint on the admin state
changes; on SQLite the table is copied (batch mode), on PostgreSQL altered in place.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BEFORE = ("enabled", "disabled", "maintenance", "error-in-maintenance")
AFTER = ("enabled", "disabled", "prepare-for-maintenance", "maintenance", "error-in-maintenance")


def _allow(states: tuple[str, ...]) -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.drop_constraint("ck_hosts_admin_state", type_="check")
        batch.create_check_constraint("ck_hosts_admin_state", f"admin_state IN {states!r}")


def upgrade() -> None:
    _allow(AFTER)


def downgrade() -> None:
    # a host still preparing has its moves cut short: it is in maintenance with what stayed
    op.execute(
        "UPDATE hosts SET admin_state = 'error-in-maintenance' "
        "WHERE admin_state = 'prepare-for-maintenance'"
    )
    _allow(BEFORE)
