"""A project's quota limits and what it uses, in SQL, inside a store transaction.

`SqlUsageTx` works on the connection of an occi.store.sql transaction (as the job queue does):
the project's own limits (table `quotas`), a lock that serialises the quota checks of one
project, and its usage summed in one statement over the entities of the counted kinds (the
attributes are a JSON text column: json_extract on SQLite, ->> on PostgreSQL). What the limits
mean and when a request is refused is occi.service.quotas's business.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from occi.store.base import UsageTx

#: pg_advisory_xact_lock(key1, key2) namespace of the quota lock of a project without a row in
#: `projects` ("QUOT" in ASCII); a project's row lock is taken when it has one
QUOTA_LOCK_NAMESPACE = 0x51554F54


class SqlUsageTx(UsageTx):
    def __init__(
        self,
        conn: Connection,
        entities: sa.Table,
        projects: sa.Table,
        quotas: sa.Table,
        without_limits: set[str] | None = None,
    ):
        self.conn = conn
        #: projects this transaction saw have no limit of their own (see SqlTx.insert)
        self.without_limits = without_limits or set()
        self._pg = conn.dialect.name == "postgresql"
        self.entities, self.projects, self.quotas = entities, projects, quotas

    def limits(self, project_id: str) -> dict[str, int]:
        if project_id in self.without_limits:
            return {}
        q = self.quotas
        rows = self.conn.execute(
            sa.select(q.c.resource, q.c["limit"]).where(q.c.project_id == project_id)
        )
        return {r.resource: int(r._mapping["limit"]) for r in rows}

    def lock(self, project_id: str) -> None:
        """Hold the project's quota lock until the transaction ends. SQLite needs none: every
        write transaction already holds the database's write lock (BEGIN IMMEDIATE). On
        PostgreSQL (READ COMMITTED) the project's row, locked FOR NO KEY UPDATE: a second check
        in the same project waits here, and its next statement sees what the first committed
        (rows that reference the project, which take KEY SHARE, are not held up)."""
        if not self._pg:
            return
        p = self.projects
        found = self.conn.execute(
            sa.select(p.c.id).where(p.c.id == project_id).with_for_update(key_share=True)
        ).first()
        if found is None:
            digest = hashlib.sha256(project_id.encode()).digest()
            key = int.from_bytes(digest[:4], "big", signed=True)
            self.conn.execute(sa.select(sa.func.pg_advisory_xact_lock(QUOTA_LOCK_NAMESPACE, key)))

    def _number(self, name: str) -> sa.ColumnElement[Any]:
        """The numeric attribute `name` of an entity (0 when absent)."""
        attrs = self.entities.c.attributes
        if self._pg:
            value: sa.ColumnElement[Any] = sa.cast(attrs, postgresql.JSONB).op("->>")(
                sa.literal(name, sa.String)
            )
        else:
            value = sa.func.json_extract(attrs, f'$."{name}"')
        return sa.func.coalesce(sa.cast(value, sa.Float), 0.0)

    def usage(
        self,
        project_id: str,
        counts: Mapping[str, Sequence[str]],
        sums: Mapping[str, tuple[Sequence[str], str]],
    ) -> dict[str, float]:
        e = self.entities
        kinds = sorted(
            {k for ks in counts.values() for k in ks} | {k for ks, _ in sums.values() for k in ks}
        )
        if not kinds:
            return {}
        columns: list[sa.ColumnElement[Any]] = []
        names: list[str] = []
        for resource, of in counts.items():
            names.append(resource)
            columns.append(sa.func.sum(sa.case((e.c.kind.in_(list(of)), 1), else_=0)))
        for resource, (of, attribute) in sums.items():
            names.append(resource)
            columns.append(
                sa.func.sum(sa.case((e.c.kind.in_(list(of)), self._number(attribute)), else_=0))
            )
        row = self.conn.execute(
            sa.select(*columns).where(e.c.project_id == project_id, e.c.kind.in_(kinds))
        ).one()
        return {n: float(v or 0) for n, v in zip(names, row, strict=True)}
