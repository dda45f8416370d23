"""The inventory's rows (zones, clusters, hosts) read and written inside a store transaction.

`InventoryTx(tx)` works on the connection of an occi.store.sql transaction, as the identity
store does, on the tables of occi.store.inventory_sql. It checks nothing a caller says (the
service validates); it turns the database's refusals into occi.errors: NotFound for an unknown
name, Conflict for a taken name or a deletion something still depends on, naming what is in the
way. Settings are stored as given (already encrypted by the caller).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from occi.errors import Conflict, NotFound
from occi.store.inventory_sql import clusters, hosts, zones
from occi.store.sql import SqlTx, entities

#: how many of the entities in the way a refused deletion names
NAMED = 5


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    """SQLite gives back naive datetimes: they were stored in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Zone:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class Cluster:
    id: str
    name: str
    zone_id: str
    zone_name: str
    backend: str
    #: the encrypted settings document (occi.inventory.secrets)
    settings: str
    cpu_overcommit: float
    memory_overcommit: float
    tags: tuple[str, ...]
    origin: str
    created_at: datetime


@dataclass(frozen=True)
class Host:
    id: str
    name: str
    cluster_id: str
    cluster_name: str
    zone_name: str
    uri: str | None
    cores: int
    memory_mb: int
    cpu_mhz: int
    used_cores: int
    used_memory_mb: int
    cpu_overcommit: float
    memory_overcommit: float
    state: str
    admin_state: str
    state_message: str | None
    tags: tuple[str, ...]
    last_seen: float | None
    created_at: datetime


def _zone(r: Row[Any]) -> Zone:
    return Zone(r.id, r.name, _aware(r.created_at))


def _cluster(r: Row[Any]) -> Cluster:
    return Cluster(
        id=r.id,
        name=r.name,
        zone_id=r.zone_id,
        zone_name=r.zone_name,
        backend=r.backend,
        settings=r.settings,
        cpu_overcommit=float(r.cpu_overcommit),
        memory_overcommit=float(r.memory_overcommit),
        tags=tuple(json.loads(r.tags or "[]")),
        origin=r.origin,
        created_at=_aware(r.created_at),
    )


def _host(r: Row[Any]) -> Host:
    return Host(
        id=r.id,
        name=r.name,
        cluster_id=r.cluster_id,
        cluster_name=r.cluster_name,
        zone_name=r.zone_name,
        uri=r.uri,
        cores=int(r.cores),
        memory_mb=int(r.memory_mb),
        cpu_mhz=int(r.cpu_mhz),
        used_cores=int(r.used_cores),
        used_memory_mb=int(r.used_memory_mb),
        cpu_overcommit=float(r.cpu_overcommit),
        memory_overcommit=float(r.memory_overcommit),
        state=r.state,
        admin_state=r.admin_state,
        state_message=r.state_message,
        tags=tuple(json.loads(r.tags or "[]")),
        last_seen=r.last_seen,
        created_at=_aware(r.created_at),
    )


_CLUSTERS = sa.select(clusters, zones.c.name.label("zone_name")).join(
    zones, zones.c.id == clusters.c.zone_id
)
_HOSTS = (
    sa.select(
        hosts,
        clusters.c.name.label("cluster_name"),
        clusters.c.cpu_overcommit,
        clusters.c.memory_overcommit,
        zones.c.name.label("zone_name"),
    )
    .join(clusters, clusters.c.id == hosts.c.cluster_id)
    .join(zones, zones.c.id == clusters.c.zone_id)
)


class InventoryTx:
    """The inventory inside one store transaction (`tx`, an occi.store.sql transaction)."""

    def __init__(self, tx: SqlTx):
        self.tx = tx
        self.conn = tx.conn

    # ------------------------------------------------------------------ writes, shared
    def _insert(self, table: sa.Table, what: str, values: dict[str, Any]) -> str:
        """Insert a row with a new id; Conflict naming `what` when its name is taken."""
        values = {"id": str(uuid.uuid4()), "created_at": _now(), **values}
        try:
            with self.conn.begin_nested():
                self.conn.execute(table.insert().values(**values))
        except IntegrityError:
            raise Conflict(f"{what} {values['name']} exists already", code="name_taken") from None
        return str(values["id"])

    def _update(self, table: sa.Table, what: str, row_id: str, values: dict[str, Any]) -> None:
        if not values:
            return
        try:
            with self.conn.begin_nested():
                self.conn.execute(table.update().where(table.c.id == row_id).values(**values))
        except IntegrityError:
            raise Conflict(
                f"{what} {values.get('name')} exists already", code="name_taken"
            ) from None

    # ------------------------------------------------------------------ zones
    def zones(self) -> list[Zone]:
        rows = self.conn.execute(sa.select(zones).order_by(zones.c.name)).all()
        return [_zone(r) for r in rows]

    def zone(self, name: str) -> Zone:
        row = self.conn.execute(sa.select(zones).where(zones.c.name == name)).first()
        if row is None:
            raise NotFound(f"no zone is named {name}")
        return _zone(row)

    def find_zone(self, name: str) -> Zone | None:
        row = self.conn.execute(sa.select(zones).where(zones.c.name == name)).first()
        return None if row is None else _zone(row)

    def add_zone(self, name: str) -> Zone:
        self._insert(zones, "a zone", {"name": name})
        return self.zone(name)

    def rename_zone(self, zone: Zone, name: str) -> Zone:
        self._update(zones, "a zone", zone.id, {"name": name})
        return self.zone(name)

    def delete_zone(self, zone: Zone) -> None:
        names = self.conn.execute(
            sa.select(clusters.c.name)
            .where(clusters.c.zone_id == zone.id)
            .order_by(clusters.c.name)
        ).scalars()
        held = list(names)
        if held:
            raise Conflict(
                f"zone {zone.name} still holds {_some('cluster', held)}: delete them first",
                code="in_use",
            )
        self.conn.execute(zones.delete().where(zones.c.id == zone.id))

    def cluster_counts(self) -> dict[str, int]:
        """Clusters per zone id."""
        stmt = sa.select(clusters.c.zone_id, sa.func.count()).group_by(clusters.c.zone_id)
        return {zid: int(n) for zid, n in self.conn.execute(stmt).all()}

    # ------------------------------------------------------------------ clusters
    def clusters(self, zone_id: str | None = None) -> list[Cluster]:
        stmt = _CLUSTERS.order_by(clusters.c.name)
        if zone_id is not None:
            stmt = stmt.where(clusters.c.zone_id == zone_id)
        return [_cluster(r) for r in self.conn.execute(stmt).all()]

    def find_cluster(self, name: str) -> Cluster | None:
        row = self.conn.execute(_CLUSTERS.where(clusters.c.name == name)).first()
        return None if row is None else _cluster(row)

    def cluster(self, name: str) -> Cluster:
        found = self.find_cluster(name)
        if found is None:
            raise NotFound(f"no cluster is named {name}")
        return found

    def has_admin_cluster(self) -> bool:
        stmt = sa.select(clusters.c.id).where(clusters.c.origin == "admin").limit(1)
        return self.conn.execute(stmt).first() is not None

    def add_cluster(self, values: dict[str, Any]) -> Cluster:
        self._insert(clusters, "a cluster", _encode(values))
        return self.cluster(values["name"])

    def update_cluster(self, cluster: Cluster, values: dict[str, Any]) -> Cluster:
        self._update(clusters, "a cluster", cluster.id, _encode(values))
        return self.cluster(values.get("name", cluster.name))

    def delete_cluster(self, cluster: Cluster) -> None:
        held = list(
            self.conn.execute(
                sa.select(hosts.c.name)
                .where(hosts.c.cluster_id == cluster.id)
                .order_by(hosts.c.name)
            ).scalars()
        )
        if held:
            raise Conflict(
                f"cluster {cluster.name} still holds {_some('host', held)}: delete them first",
                code="in_use",
            )
        placed = self._placed(entities.c.cluster_id == cluster.id)
        if placed:
            raise Conflict(
                f"cluster {cluster.name} still holds {_some('entity', placed)}: delete them first",
                code="in_use",
            )
        self.conn.execute(clusters.delete().where(clusters.c.id == cluster.id))

    def host_counts(self) -> dict[str, int]:
        """Hosts per cluster id."""
        stmt = sa.select(hosts.c.cluster_id, sa.func.count()).group_by(hosts.c.cluster_id)
        return {cid: int(n) for cid, n in self.conn.execute(stmt).all()}

    # ------------------------------------------------------------------ hosts
    def hosts(self, cluster_id: str | None = None) -> list[Host]:
        stmt = _HOSTS.order_by(hosts.c.name)
        if cluster_id is not None:
            stmt = stmt.where(hosts.c.cluster_id == cluster_id)
        return [_host(r) for r in self.conn.execute(stmt).all()]

    def find_host(self, name: str) -> Host | None:
        row = self.conn.execute(_HOSTS.where(hosts.c.name == name)).first()
        return None if row is None else _host(row)

    def host(self, name: str) -> Host:
        found = self.find_host(name)
        if found is None:
            raise NotFound(f"no host is named {name}")
        return found

    def add_host(self, values: dict[str, Any]) -> Host:
        self._insert(hosts, "a host", _encode(values))
        return self.host(values["name"])

    def update_host(self, host: Host, values: dict[str, Any]) -> Host:
        self._update(hosts, "a host", host.id, _encode(values))
        return self.host(values.get("name", host.name))

    def set_admin_state(
        self, host: Host, state: str, allowed: tuple[str, ...], message: str | None
    ) -> bool:
        """One guarded UPDATE: False when the host's admin state is no longer one of `allowed`
        (another administrator changed it meanwhile)."""
        result = self.conn.execute(
            hosts.update()
            .where(hosts.c.id == host.id, hosts.c.admin_state.in_(allowed))
            .values(admin_state=state, state_message=message)
        )
        return bool(result.rowcount)

    def delete_host(self, host: Host) -> None:
        placed = self._placed(entities.c.host_id == host.id)
        if placed:
            raise Conflict(
                f"host {host.name} still holds {_some('entity', placed)}: move or delete them "
                "first",
                code="in_use",
            )
        self.conn.execute(hosts.delete().where(hosts.c.id == host.id))

    def vm_counts(self) -> dict[str, int]:
        """Entities placed on each host id."""
        stmt = (
            sa.select(entities.c.host_id, sa.func.count())
            .where(entities.c.host_id.is_not(None))
            .group_by(entities.c.host_id)
        )
        return {hid: int(n) for hid, n in self.conn.execute(stmt).all()}

    def _placed(self, where: sa.ColumnElement[bool]) -> list[str]:
        """Locations of (up to NAMED + 1) entities matching `where`."""
        stmt = sa.select(entities.c.location).where(where).order_by(entities.c.location)
        return list(self.conn.execute(stmt.limit(NAMED + 1)).scalars())

    # ------------------------------------------------------------------ unplaced entities
    def place_unplaced(self, zone_id: str, cluster_id: str) -> int:
        """Put resources with no zone (rows from before migration 0007) in a zone and cluster,
        with no host and no reservation. Links live where their source lives."""
        result = self.conn.execute(
            entities.update()
            .where(entities.c.cluster_id.is_(None), entities.c.target.is_(None))
            .values(zone_id=zone_id, cluster_id=cluster_id)
        )
        return int(result.rowcount or 0)


def _encode(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    if "tags" in out:
        out["tags"] = json.dumps(list(out["tags"]))
    return out


def _some(what: str, names: list[str]) -> str:
    """'2 hosts (h1, h2)', naming at most NAMED."""
    shown = ", ".join(names[:NAMED]) + (", ..." if len(names) > NAMED else "")
    plural = "entities" if what == "entity" else f"{what}s"
    count = f"{len(names)}" if len(names) <= NAMED else f"more than {NAMED}"
    return f"{count} {what if len(names) == 1 else plural} ({shown})"
