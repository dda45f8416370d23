"""Zones, clusters and hosts written straight into the inventory's tables, for tests of
placement that must not depend on the administration commands. No pytest here."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from occi.store.inventory_sql import clusters, hosts, zones


def _now() -> datetime:
    return datetime.now(UTC)


def add_zone(conn: sa.Connection, name: str) -> str:
    zone_id = str(uuid.uuid4())
    conn.execute(zones.insert().values(id=zone_id, name=name, created_at=_now()))
    return zone_id


def add_cluster(
    conn: sa.Connection,
    name: str,
    zone_id: str,
    *,
    backend: str = "simulator",
    settings: dict[str, Any] | str | None = None,
    origin: str = "settings",
    cpu_overcommit: float = 1.0,
    memory_overcommit: float = 1.0,
    tags: tuple[str, ...] = (),
) -> str:
    """A cluster; origin `settings` (the default here) runs on the app's own backend. The
    settings of an `admin` cluster are given encrypted (occi.inventory.secrets.Cipher)."""
    cluster_id = str(uuid.uuid4())
    conn.execute(
        clusters.insert().values(
            id=cluster_id,
            name=name,
            zone_id=zone_id,
            backend=backend,
            settings=settings if isinstance(settings, str) else json.dumps(settings or {}),
            origin=origin,
            cpu_overcommit=cpu_overcommit,
            memory_overcommit=memory_overcommit,
            tags=json.dumps(list(tags)),
            created_at=_now(),
        )
    )
    return cluster_id


def add_host(
    conn: sa.Connection,
    name: str,
    cluster_id: str,
    *,
    cores: int,
    memory_mb: int,
    uri: str | None = None,
    tags: tuple[str, ...] = (),
    state: str = "up",
    admin_state: str = "enabled",
) -> str:
    host_id = str(uuid.uuid4())
    conn.execute(
        hosts.insert().values(
            id=host_id,
            name=name,
            cluster_id=cluster_id,
            uri=uri,
            cores=cores,
            memory_mb=memory_mb,
            tags=json.dumps(list(tags)),
            state=state,
            admin_state=admin_state,
            created_at=_now(),
        )
    )
    return host_id


def host_use(conn: sa.Connection) -> dict[str, tuple[int, int, int]]:
    """Host name -> (used cores, used memory MB, VMs)."""
    rows = conn.execute(
        sa.select(hosts.c.name, hosts.c.used_cores, hosts.c.used_memory_mb, hosts.c.vms)
    )
    return {r.name: (r.used_cores, r.used_memory_mb, r.vms) for r in rows}


def announce(service: Any) -> None:
    """Tell the service the inventory changed (as the administration commands do: the zones
    are categories, so the categories version moves)."""
    with service.store.begin() as tx:
        tx.bump_categories_version()
    service.pool.invalidate()
    service._registry_checked = float("-inf")


def drop_shorthand(conn: sa.Connection) -> None:
    """Remove the one-cluster shorthand a started server makes (zone `default`), so a test's
    own zones are the only ones placement sees."""
    made = sa.select(clusters.c.id).where(clusters.c.origin == "settings")
    conn.execute(hosts.delete().where(hosts.c.cluster_id.in_(made)))
    zone_ids = [
        r.zone_id
        for r in conn.execute(sa.select(clusters.c.zone_id).where(clusters.c.origin == "settings"))
    ]
    conn.execute(clusters.delete().where(clusters.c.origin == "settings"))
    conn.execute(zones.delete().where(zones.c.id.in_(zone_ids)))
