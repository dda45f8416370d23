"""The backends of a cloud: one backend instance per cluster, and a cached map of the inventory.

`Pool.snapshot()` is the inventory as names and addresses (zones, clusters, hosts: no use
figures), read in ONE statement and kept until the categories version moves (zones are offered
as mixins, so a change of the inventory bumps that version; `Pool.invalidate()` forces a
reload) or a placement names a host it does not know. Reads of entities therefore need no join
to name an entity's host: `Pool.backend_for(entity)` fills `entity.placement.host_name` and
`host_uri` from it.

A cluster's backend is built lazily from its row (the backend's name through occi.plugins and
its settings, decrypted by the `settings_of` the server gives) and closed when the row changes. The cluster of
origin `settings` (the one-cluster shorthand) is driven by the process's own backend, the one
the app was built with, and so is an entity without a cluster.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from backends.base import Backend
from occi.model import Entity
from occi.plugins import load_backend
from occi.store.base import Store, StoreTx
from occi.store.inventory_sql import clusters, hosts, zones

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Zone:
    id: str
    name: str


@dataclass(frozen=True)
class Cluster:
    id: str
    name: str
    zone_id: str
    backend: str
    #: the stored (encrypted) settings, as in the row: compared to notice a change
    settings: str
    origin: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Host:
    id: str
    name: str
    cluster_id: str
    uri: str | None


@dataclass
class Snapshot:
    """The inventory's names and addresses at one moment (no use figures)."""

    version: int | None = None
    zones: dict[str, Zone] = field(default_factory=dict)
    clusters: dict[str, Cluster] = field(default_factory=dict)
    hosts: dict[str, Host] = field(default_factory=dict)

    def zone_named(self, name: str) -> Zone | None:
        return next((z for z in self.zones.values() if z.name == name), None)

    def zones_by_name(self) -> list[Zone]:
        return sorted(self.zones.values(), key=lambda z: z.name)

    def clusters_of(self, zone_id: str) -> list[Cluster]:
        return sorted(
            (c for c in self.clusters.values() if c.zone_id == zone_id), key=lambda c: c.name
        )


def _tags(raw: str | None) -> tuple[str, ...]:
    try:
        value = json.loads(raw or "[]")
    except ValueError:
        return ()
    return tuple(str(t) for t in value) if isinstance(value, list) else ()


def plain_settings(cluster: Cluster) -> dict[str, Any]:
    """A cluster's settings read as plain JSON: a pool made without a key (tests of the pool
    alone); servers pass the inventory's decryption (occi.inventory.secrets.Cipher)."""
    try:
        value = json.loads(cluster.settings or "{}")
    except ValueError:
        log.warning("cluster %s: settings are not readable JSON; using none", cluster.name)
        return {}
    return value if isinstance(value, dict) else {}


_NULL = sa.null()
#: the whole inventory's names in one statement: kind, id, name, parent, uri/backend, settings,
#: origin, tags
_SNAPSHOT = sa.union_all(
    sa.select(
        sa.literal("z").label("what"),
        zones.c.id,
        zones.c.name,
        sa.cast(_NULL, sa.String).label("parent"),
        sa.cast(_NULL, sa.String).label("address"),
        sa.cast(_NULL, sa.Text).label("settings"),
        sa.cast(_NULL, sa.String).label("origin"),
        sa.cast(_NULL, sa.Text).label("tags"),
    ),
    sa.select(
        sa.literal("c"),
        clusters.c.id,
        clusters.c.name,
        clusters.c.zone_id,
        clusters.c.backend,
        clusters.c.settings,
        clusters.c.origin,
        clusters.c.tags,
    ),
    sa.select(
        sa.literal("h"),
        hosts.c.id,
        hosts.c.name,
        hosts.c.cluster_id,
        hosts.c.uri,
        sa.cast(_NULL, sa.Text),
        sa.cast(_NULL, sa.String),
        hosts.c.tags,
    ),
)


def read_snapshot(tx: StoreTx) -> Snapshot:
    snap = Snapshot()
    conn = getattr(tx, "conn", None)
    if conn is None:  # a store without the inventory's tables
        return snap
    for what, id_, name, parent, address, settings, origin, tags in conn.execute(_SNAPSHOT):
        if what == "z":
            snap.zones[id_] = Zone(id_, name)
        elif what == "c":
            snap.clusters[id_] = Cluster(
                id_, name, parent, address, settings or "", origin or "admin", _tags(tags)
            )
        else:
            snap.hosts[id_] = Host(id_, name, parent, address)
    return snap


class Pool:
    """The inventory map and the backend of each cluster, one per server process."""

    def __init__(
        self,
        store: Store,
        backend: Backend,
        settings_of: Callable[[Cluster], dict[str, Any]] = plain_settings,
    ):
        self.store = store
        #: a cluster's backend settings from its stored (encrypted) ones
        self.settings_of = settings_of
        #: the process's own backend: the `settings` cluster's and an unplaced entity's
        self.backend = backend
        self._snapshot: Snapshot | None = None
        self._backends: dict[str, tuple[Cluster, Backend]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the map
    def snapshot(self, tx: StoreTx | None = None) -> Snapshot:
        """The inventory as last read (read now when never read)."""
        snap = self._snapshot
        if snap is None:
            snap = self.reload(tx)
        return snap

    def reload(self, tx: StoreTx | None = None, version: int | None = None) -> Snapshot:
        """Read the inventory again (one statement); backends of changed clusters are closed."""
        if tx is None:
            with self.store.begin(readonly=True) as t:
                return self.reload(t, version)
        snap = read_snapshot(tx)
        snap.version = version
        self._snapshot = snap
        self._close_changed(snap)
        return snap

    def invalidate(self) -> None:
        """Forget the map: the next use reads it again (the inventory changed)."""
        self._snapshot = None

    def host(self, host_id: str) -> Host | None:
        snap = self.snapshot()
        found = snap.hosts.get(host_id)
        if found is None:  # placed on a host added since the map was read
            found = self.reload().hosts.get(host_id)
        return found

    def cluster(self, cluster_id: str) -> Cluster | None:
        snap = self.snapshot()
        found = snap.clusters.get(cluster_id)
        if found is None:
            found = self.reload().clusters.get(cluster_id)
        return found

    # ------------------------------------------------------------------ backends
    def backend_for(self, entity: Entity | None) -> Backend:
        """The backend of the entity's cluster, with `entity.placement.host_name` and
        `host_uri` filled in; the process's own backend for an entity without a cluster."""
        placement = entity.placement if entity is not None else None
        if placement is None or placement.cluster_id is None:
            return self.backend
        if placement.host_id is not None and placement.host_uri is None:
            host = self.host(placement.host_id)
            if host is not None:
                placement.host_name, placement.host_uri = host.name, host.uri
        return self.cluster_backend(placement.cluster_id)

    def cluster_backend(self, cluster_id: str) -> Backend:
        cluster = self.cluster(cluster_id)
        if cluster is None or cluster.origin == "settings":
            return self.backend
        with self._lock:
            known = self._backends.get(cluster_id)
            if known is not None and known[0] == cluster:
                return known[1]
            if known is not None:
                self._close(known[1], cluster.name)
            made = load_backend(cluster.backend, self.settings_of(cluster))
            self._backends[cluster_id] = (cluster, made)
            return made

    def _close_changed(self, snap: Snapshot) -> None:
        with self._lock:
            for cluster_id, (cluster, backend) in list(self._backends.items()):
                if snap.clusters.get(cluster_id) != cluster:
                    del self._backends[cluster_id]
                    self._close(backend, cluster.name)

    @staticmethod
    def _close(backend: Backend, name: str) -> None:
        try:
            backend.close()
        except Exception as exc:  # a platform connection that fails to close: it is dropped
            log.warning("closing the backend of cluster %s: %s", name, exc)

    def close(self) -> None:
        """Close every cluster's backend (not the process's own)."""
        with self._lock:
            for cluster, backend in self._backends.values():
                self._close(backend, cluster.name)
            self._backends.clear()
