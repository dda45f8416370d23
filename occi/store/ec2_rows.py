"""The EC2 rows beside the service's entities, in SQL: key pairs, tags, and each instance's
record (reservation, key name, launch time, and the tombstone of a terminated one). One
project's rows inside one store transaction; occi.service.ec2_records authorizes and scopes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from occi.store.base import StoreTx
from occi.store.ec2_sql import ec2_instances, ec2_keypairs, ec2_tags
from occi.store.sql import SqlTx


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class KeyPair:
    id: str
    name: str
    fingerprint: str
    key_type: str
    public_key: str
    created_at: datetime


@dataclass(frozen=True)
class InstanceRecord:
    entity_id: str
    reservation_id: str
    key_name: str | None
    launch_time: datetime
    terminated_at: datetime | None = None
    #: the instance as last described, for its tombstone
    snapshot: dict[str, Any] | None = None


class Records:
    """The EC2 rows of one project inside one store transaction."""

    def __init__(self, conn: Connection, project: str):
        self.conn = conn
        self.project = project

    @classmethod
    def of(cls, tx: StoreTx, project: str) -> Records:
        """The project's rows in `tx`, a transaction of the SQL store (the only store there is)."""
        assert isinstance(tx, SqlTx), "the EC2 rows need the SQL store"
        return cls(tx.conn, project)

    # ------------------------------------------------------------------ key pairs
    def add_keypair(self, pair: KeyPair) -> bool:
        """Store the pair; False when the project has one of that name already."""
        try:
            with self.conn.begin_nested():
                self.conn.execute(
                    ec2_keypairs.insert().values(
                        id=pair.id,
                        project_id=self.project,
                        name=pair.name,
                        fingerprint=pair.fingerprint,
                        key_type=pair.key_type,
                        public_key=pair.public_key,
                        created_at=pair.created_at,
                    )
                )
        except IntegrityError:
            return False
        return True

    def keypairs(self) -> list[KeyPair]:
        t = ec2_keypairs
        rows = self.conn.execute(
            sa.select(t).where(t.c.project_id == self.project).order_by(t.c.name)
        )
        return [
            KeyPair(
                r.id,
                r.name,
                r.fingerprint,
                r.key_type,
                r.public_key,
                _aware(r.created_at) or datetime.now(UTC),
            )
            for r in rows
        ]

    def delete_keypair(self, pair_id: str) -> None:
        t = ec2_keypairs
        self.conn.execute(t.delete().where(t.c.project_id == self.project, t.c.id == pair_id))
        self.delete_tags([pair_id], None)

    # ------------------------------------------------------------------ tags
    def set_tags(self, resource_ids: Iterable[str], tags: list[tuple[str, str]]) -> None:
        t = ec2_tags
        for rid in resource_ids:
            for key, value in tags:
                where = (t.c.project_id == self.project, t.c.resource_id == rid, t.c.key == key)
                if not self.conn.execute(t.update().where(*where).values(value=value)).rowcount:
                    self.conn.execute(
                        t.insert().values(
                            project_id=self.project, resource_id=rid, key=key, value=value
                        )
                    )

    def delete_tags(
        self, resource_ids: Iterable[str], tags: list[tuple[str, str | None]] | None
    ) -> None:
        """Remove the tags (a key with a value only when it has that value), or every tag of
        the resources when `tags` is None or empty."""
        t = ec2_tags
        ids = list(resource_ids)
        base = (t.c.project_id == self.project, t.c.resource_id.in_(ids))
        if not tags:
            self.conn.execute(t.delete().where(*base))
            return
        for key, value in tags:
            where = [*base, t.c.key == key]
            if value is not None:
                where.append(t.c.value == value)
            self.conn.execute(t.delete().where(*where))

    def tags(self, resource_ids: Iterable[str] | None = None) -> dict[str, dict[str, str]]:
        """resource id -> its tags (every tagged resource of the project when None)."""
        t = ec2_tags
        q = sa.select(t.c.resource_id, t.c.key, t.c.value).where(t.c.project_id == self.project)
        if resource_ids is not None:
            q = q.where(t.c.resource_id.in_(list(resource_ids)))
        out: dict[str, dict[str, str]] = {}
        for r in self.conn.execute(q.order_by(t.c.resource_id, t.c.key)):
            out.setdefault(r.resource_id, {})[r.key] = r.value
        return out

    # ------------------------------------------------------------------ instances
    def record_instance(self, rec: InstanceRecord) -> None:
        self.conn.execute(
            ec2_instances.insert().values(
                entity_id=rec.entity_id,
                project_id=self.project,
                reservation_id=rec.reservation_id,
                key_name=rec.key_name,
                launch_time=rec.launch_time,
            )
        )

    def instances(self) -> dict[str, InstanceRecord]:
        """The project's instance records by entity id (tombstones included)."""
        t = ec2_instances
        out = {}
        for r in self.conn.execute(sa.select(t).where(t.c.project_id == self.project)):
            out[r.entity_id] = InstanceRecord(
                r.entity_id,
                r.reservation_id,
                r.key_name,
                _aware(r.launch_time) or datetime.now(UTC),
                _aware(r.terminated_at),
                json.loads(r.snapshot) if r.snapshot else None,
            )
        return out

    def terminate(self, entity_id: str, snapshot: dict[str, Any], fallback: InstanceRecord) -> None:
        """Keep the instance's tombstone (its last description, terminated now)."""
        t = ec2_instances
        now = datetime.now(UTC)
        values = {"terminated_at": now, "snapshot": json.dumps(snapshot, default=str)}
        where = (t.c.project_id == self.project, t.c.entity_id == entity_id)
        if not self.conn.execute(t.update().where(*where).values(**values)).rowcount:
            self.record_instance(fallback)
            self.conn.execute(t.update().where(*where).values(**values))

    def forget(self, entity_ids: Iterable[str]) -> None:
        """Drop the records of instances deleted through OCCI (no tombstone: EC2 never
        terminated them)."""
        t = ec2_instances
        ids = list(entity_ids)
        self.conn.execute(
            t.delete().where(
                t.c.project_id == self.project, t.c.entity_id.in_(ids), t.c.terminated_at.is_(None)
            )
        )

    def purge(self, before: datetime) -> None:
        """Forget tombstones older than `before`, with their tags."""
        t = ec2_instances
        old = t.c.terminated_at < before
        gone = [
            r.snapshot
            for r in self.conn.execute(
                sa.select(t.c.snapshot).where(t.c.project_id == self.project, old)
            )
        ]
        if not gone:
            return
        ids = [json.loads(s).get("instanceId") for s in gone if s]
        self.conn.execute(t.delete().where(t.c.project_id == self.project, old))
        self.delete_tags([i for i in ids if i], None)
