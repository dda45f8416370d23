"""The one-cluster shorthand: a server configured by OCCI_BACKEND and its options alone still
manages a cloud of one zone and one cluster.

`ensure(store, settings)`, at each start (occi.cli's serve, before gunicorn forks, and
occi.api.wsgi.build for tests): while no cluster made by an administrator (origin `admin`)
exists, it makes or keeps zone `default`, cluster `default` (origin `settings`: the backend,
its settings encrypted, the overcommit ratios of the shorthand_* settings) and its hosts, in
line with the settings of this start; a host no longer declared is deleted when nothing is
placed on it, else disabled with a message. The simulator's hosts are its `simulator_hosts`;
a backend that lists its cluster's hosts (`Backend.discover_hosts`: vSphere, XenServer)
gets those; any other backend gets one host `default` at its own address (libvirt_uri), sized
by the platform. Entities with no placement (rows from before migration 0007) are put in the default
zone and cluster, with no host and no reservation. Idempotent, and safe when several servers
start at once on one database: names are unique, and a start that loses a race does its
transaction again.

The shorthand cluster holds nothing a server does not have in its own settings, so servers
without a shared OCCI_SECRET_KEY still start side by side: settings this server's key cannot
decrypt are encrypted again under it (a warning says so), and whoever drives the cluster of
origin `settings` takes `cluster_settings(settings)` from its own settings rather than
decrypting the row. Clusters made by administrators need the shared key.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from occi.errors import Conflict
from occi.inventory.secrets import Cipher, SecretKeyError
from occi.inventory.store import InventoryTx
from occi.settings import Settings
from occi.store.base import Store

log = logging.getLogger(__name__)

ZONE = CLUSTER = "default"
ORIGIN = "settings"
ATTEMPTS = 5
#: the option of each backend naming its one host's platform address
ADDRESS_OPTIONS = {"libvirt": "libvirt_uri"}


@dataclass(frozen=True)
class Declared:
    name: str
    uri: str | None
    cores: int
    memory_mb: int
    cpu_mhz: int = 0
    message: str | None = None
    #: a stand-in for hosts the platform could not list this time (it did not answer): the
    #: hosts the cluster has already stay as they are
    keep_existing: bool = False


def declared_hosts(settings: Settings) -> list[Declared]:
    """The hosts the settings declare: the simulator's simulator_hosts, else the hosts the
    backend's platform lists, else one host at the backend's address sized by the platform
    (the server's own size when it cannot tell)."""
    options = settings.backend_settings()
    if settings.backend == "simulator":
        from backends.simulator.hosts import parse_hosts

        return [
            Declared(h.name, h.name, h.cores, h.memory_mb)
            for h in parse_hosts(options.get("simulator_hosts"))
        ]
    uri = options.get(ADDRESS_OPTIONS.get(settings.backend, ""), None) or None
    from backends.base import Backend, BackendFault
    from occi.plugins import load_backend

    reason = "the platform does not tell"
    discovering = False
    try:
        backend = load_backend(settings.backend, options)
        discovering = type(backend).discover_hosts is not Backend.discover_hosts
        try:
            listed = backend.discover_hosts()
            if listed:
                return [
                    Declared(
                        h.name, h.uri, h.capacity.cores, h.capacity.memory_mb, h.capacity.cpu_mhz
                    )
                    for h in listed
                ]
            found = backend.host_capacity(uri)
        finally:
            backend.close()
    except BackendFault as exc:
        found, reason = None, str(exc)
    except Exception as exc:  # a backend that cannot load here: its own start says why
        found, reason = None, f"{type(exc).__name__}: {exc}"
    if found is not None:
        return [Declared(CLUSTER, uri, found.cores, found.memory_mb, found.cpu_mhz)]
    cores = os.cpu_count() or 1
    memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20)
    log.warning("the size of the host at %s is not known (%s): taking this server's", uri, reason)
    message = f"size not read from the platform ({reason[:200]}): this server's own"
    return [Declared(CLUSTER, uri, cores, memory_mb, 0, message, keep_existing=discovering)]


def cluster_settings(settings: Settings) -> dict[str, str]:
    """The shorthand cluster's settings: the backend's own options and the database URL (where
    the simulator keeps its platform), as Settings.backend_settings() hands them to it."""
    prefix = f"{settings.backend}_"
    return {
        k: str(v)
        for k, v in settings.backend_settings().items()
        if k.startswith(prefix) or k == "database_url"
    }


def ensure(store: Store, settings: Settings) -> bool:
    """Make or re-sync the shorthand's zone, cluster and hosts; False when an administrator's
    clusters exist (the shorthand then stays as it was). Raises occi.inventory.secrets'
    SecretKeyError for a stored cluster the key cannot decrypt."""
    cipher = Cipher.from_settings(settings)
    hosts = declared_hosts(settings)
    for attempt in range(ATTEMPTS):
        try:
            return _ensure(store, settings, cipher, hosts)
        except Conflict:  # another server made the same row first: look again
            if attempt == ATTEMPTS - 1:
                raise
    return False  # not reached


def _ensure(store: Store, settings: Settings, cipher: Cipher, declared: list[Declared]) -> bool:
    with store.begin() as tx:
        inv = InventoryTx(tx)  # type: ignore[arg-type]
        if inv.has_admin_cluster():
            return False
        zone = inv.find_zone(ZONE) or inv.add_zone(ZONE)
        options = cluster_settings(settings)
        values: dict[str, Any] = {
            "backend": settings.backend,
            "cpu_overcommit": settings.shorthand_cpu_overcommit,
            "memory_overcommit": settings.shorthand_memory_overcommit,
        }
        cluster = inv.find_cluster(CLUSTER)
        if cluster is None:
            values.update(
                name=CLUSTER,
                zone_id=zone.id,
                settings=cipher.encrypt(options),
                tags=(),
                origin=ORIGIN,
            )
            cluster = inv.add_cluster(values)
            log.info(
                "one-cluster shorthand: zone %s, cluster %s (%s)", ZONE, CLUSTER, settings.backend
            )
        else:
            try:
                stored: dict[str, str] | None = cipher.decrypt(
                    cluster.settings, f"cluster {cluster.name}"
                )
            except SecretKeyError as exc:
                # made by a server with another key: what it holds comes from the settings,
                # which this server has too, so it is made again (see the module's docstring)
                log.warning("%s; the one-cluster shorthand's settings are encrypted again", exc)
                stored = None
            if stored != options:
                values["settings"] = cipher.encrypt(options)
            if cluster.zone_id != zone.id:
                values["zone_id"] = zone.id
            current = {
                "backend": cluster.backend,
                "cpu_overcommit": cluster.cpu_overcommit,
                "memory_overcommit": cluster.memory_overcommit,
            }
            changed = {k: v for k, v in values.items() if current.get(k, object()) != v}
            if changed:
                cluster = inv.update_cluster(cluster, changed)
                log.info("one-cluster shorthand: cluster %s follows the settings", CLUSTER)
        sync_hosts(inv, cluster.id, declared)
        placed = inv.place_unplaced(zone.id, cluster.id)
        if placed:
            log.info("one-cluster shorthand: %d entities placed in zone %s", placed, ZONE)
        return True


def sync_hosts(
    inv: InventoryTx,
    cluster_id: str,
    declared: list[Declared],
    gone: str = "no longer declared by the server's settings; its VMs stay until moved",
) -> None:
    """The cluster's hosts become the declared ones: new ones added, sizes and addresses
    updated, a host no longer declared deleted (disabled with the message `gone` while VMs
    are placed on it). A platform that did not answer (`keep_existing`) changes nothing of a
    cluster that has hosts."""
    existing = {h.name: h for h in inv.hosts(cluster_id)}
    if existing and declared and all(d.keep_existing for d in declared):
        log.warning("the platform's hosts could not be listed: the cluster keeps its hosts")
        return
    vms = inv.vm_counts()
    for d in declared:
        size: dict[str, Any] = {
            "uri": d.uri,
            "cores": d.cores,
            "memory_mb": d.memory_mb,
            "cpu_mhz": d.cpu_mhz,
            "state_message": d.message,
        }
        host = existing.pop(d.name, None)
        if host is None:
            inv.add_host({"name": d.name, "cluster_id": cluster_id, "tags": (), **size})
            continue
        current = {
            "uri": host.uri,
            "cores": host.cores,
            "memory_mb": host.memory_mb,
            "cpu_mhz": host.cpu_mhz,
            "state_message": host.state_message,
        }
        if host.admin_state != "enabled" and d.message is None:
            size.pop("state_message")  # an administrator's state keeps its message
            current.pop("state_message")
        if current != size:
            inv.update_host(host, size)
    for gone_host in existing.values():
        if vms.get(gone_host.id):
            inv.set_admin_state(gone_host, "disabled", ("enabled", "disabled"), gone)
        else:
            inv.delete_host(gone_host)
