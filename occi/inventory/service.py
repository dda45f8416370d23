"""The administration of the inventory: zones, clusters and hosts, for admins only.

Every call takes a RequestContext first and refuses anyone but an administrator (or the
server's own work: the command line) with 403, so members never see a host. Input is checked
here, with bounds (names, numbers, overcommit ratios, tags, settings), and refused with a 400
saying what to send; a deletion something depends on is a 409 naming it. What comes back is a
plain JSON-able dict per object, the same for the command line and the HTTP admin API, with the
cluster's secret settings masked. Never imports falcon.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from occi import metrics
from occi.context import RequestContext
from occi.errors import BackendError, BadRequest, Conflict, Forbidden
from occi.inventory import maintenance
from occi.inventory.secrets import Cipher, masked
from occi.inventory.store import Cluster, Host, InventoryTx, Zone
from occi.settings import Settings
from occi.store.base import Store

log = logging.getLogger(__name__)

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,31}")
SETTING_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_TAGS = 16
MAX_SETTINGS = 32
MAX_SETTING_VALUE = 1024
MAX_URI = 1024
MAX_OVERCOMMIT = 64.0
#: bounds of a host's size
MAX_CORES = 100_000
MAX_MEMORY_GB = 1 << 20
MAX_CPU_MHZ = 1_000_000
_CONTROL = re.compile("[\x00-\x1f\x7f]")

#: what each host action may start from, and what it leads to
HOST_ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "enable": (("enabled", "disabled"), "enabled"),
    "disable": (("enabled", "disabled"), "disabled"),
    "maintenance": (
        ("enabled", "disabled", "maintenance", "error-in-maintenance"),
        "prepare-for-maintenance",
    ),
    "cancel-maintenance": (
        ("prepare-for-maintenance", "maintenance", "error-in-maintenance"),
        "enabled",
    ),
}


def _hint(state: str) -> str:
    """What to do when a host action does not apply to a host in `state`."""
    if state == "prepare-for-maintenance":
        return "its computes are moving away: wait for maintenance, or cancel-maintenance"
    if state in ("maintenance", "error-in-maintenance"):
        return "cancel-maintenance first"
    return "it is not in maintenance"


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------


def check_name(what: str, value: Any) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise BadRequest(
            f"invalid {what} name {_show(value)}: 1 to 63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def check_count(what: str, value: Any, high: int, low: int = 1) -> int:
    """A whole number in [low, high] (bools and floats with a fraction are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BadRequest(f"{what} must be a whole number from {low} to {high}")
    try:
        number = int(value) if not isinstance(value, float) or value.is_integer() else None
    except (TypeError, ValueError):
        number = None
    if number is None or not low <= number <= high:
        raise BadRequest(f"{what} must be a whole number from {low} to {high}, not {_show(value)}")
    return number


def check_overcommit(what: str, value: Any) -> float:
    try:
        ratio = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        ratio = math.nan
    if not (math.isfinite(ratio) and 0 < ratio <= MAX_OVERCOMMIT):
        raise BadRequest(
            f"{what} must be a number above 0 and at most {MAX_OVERCOMMIT:g}, not {_show(value)}"
        )
    return ratio


def check_tags(value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or len(value) > MAX_TAGS:
        raise BadRequest(f"tags are a list of at most {MAX_TAGS} tags")
    for tag in value:
        if not isinstance(tag, str) or not TAG.fullmatch(tag):
            raise BadRequest(
                f"invalid tag {_show(tag)}: 1 to 32 letters, digits, '.', '_', ':' or '-'"
            )
    return tuple(dict.fromkeys(value))


def check_settings(backend: str, value: Any) -> dict[str, str]:
    """A cluster's connection settings: its backend's options (`<backend>_...`), strings."""
    if not isinstance(value, Mapping) or len(value) > MAX_SETTINGS:
        raise BadRequest(f"settings are an object of at most {MAX_SETTINGS} key: value pairs")
    out: dict[str, str] = {}
    for key, text in value.items():
        if not isinstance(key, str) or not SETTING_KEY.fullmatch(key):
            raise BadRequest(f"invalid setting name {_show(key)}: lower-case, e.g. libvirt_uri")
        if not key.startswith(f"{backend}_") and key != "database_url":
            raise BadRequest(
                f"setting {key} is not an option of the {backend} backend (they start with "
                f"{backend}_)"
            )
        if not isinstance(text, (str, int, float)) or isinstance(text, bool):
            raise BadRequest(f"setting {key} must be a string")
        text = str(text)
        if len(text) > MAX_SETTING_VALUE or _CONTROL.search(text):
            raise BadRequest(
                f"setting {key} must be at most {MAX_SETTING_VALUE} characters, no control "
                "characters"
            )
        out[key] = text
    return out


def check_uri(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_URI or _CONTROL.search(value):
        raise BadRequest(f"a host's uri is at most {MAX_URI} characters, no control characters")
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 70 else text[:67] + "..."


def _fields(doc: Mapping[str, Any], allowed: tuple[str, ...], what: str) -> None:
    unknown = sorted(str(k) for k in doc if k not in allowed)
    if unknown:
        raise BadRequest(
            f"unknown field {_show(unknown[0])[:70]} for {what}: send {', '.join(allowed)}"
        )


# ---------------------------------------------------------------------------------------------
# the service
# ---------------------------------------------------------------------------------------------


@dataclass
class InventoryService:
    """Administration of zones, clusters and hosts on `store`. `backend_for(name, settings)`
    makes a backend to read a host's capacity (occi.plugins.load_backend by default)."""

    store: Store
    settings: Settings
    backend_for: Callable[[str, dict[str, Any]], Any] | None = None
    #: called after each committed change (the server's pool forgets its map of the inventory)
    on_change: Callable[[], None] | None = None
    #: runs jobs here and waits for them (job ids, timeout): the server's job runner's settle;
    #: without it, waiting watches the jobs while the servers' runners do them
    settle: maintenance.Settle | None = None

    def __post_init__(self) -> None:
        self._cipher: Cipher | None = None

    @property
    def cipher(self) -> Cipher:
        if self._cipher is None:
            self._cipher = Cipher.from_settings(self.settings)
        return self._cipher

    def cluster_settings(self, cluster: Any) -> dict[str, Any]:
        """A cluster's backend settings: its own (decrypted), over the server's database URL
        (where a simulator cluster keeps its platform, as the server's own backend does)."""
        return {
            "database_url": self.settings.database_url,
            **self.cipher.decrypt(cluster.settings, f"cluster {cluster.name}"),
        }

    @contextmanager
    def _tx(self, ctx: RequestContext, readonly: bool = False) -> Iterator[InventoryTx]:
        if not ctx.is_admin:
            raise Forbidden("only administrators manage zones, clusters and hosts")
        with self.store.begin(readonly=readonly) as tx:
            yield InventoryTx(tx)  # type: ignore[arg-type]
            if not readonly:
                # zones are offered as mixins and every server keeps a map of the inventory:
                # both are read again when the categories version moves
                tx.bump_categories_version()
        if not readonly and self.on_change is not None:
            self.on_change()

    # ------------------------------------------------------------------ zones
    def list_zones(self, ctx: RequestContext) -> list[dict[str, Any]]:
        with self._tx(ctx, readonly=True) as inv:
            counts = inv.cluster_counts()
            return [self._zone(z, counts.get(z.id, 0)) for z in inv.zones()]

    def show_zone(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        with self._tx(ctx, readonly=True) as inv:
            zone = inv.zone(name)
            return self._zone(zone, inv.cluster_counts().get(zone.id, 0))

    def create_zone(self, ctx: RequestContext, doc: Mapping[str, Any]) -> dict[str, Any]:
        _fields(doc, ("name",), "a zone")
        name = check_name("zone", doc.get("name"))
        with self._tx(ctx) as inv:
            return self._zone(inv.add_zone(name), 0)

    def update_zone(self, ctx: RequestContext, name: str, doc: Mapping[str, Any]) -> dict[str, Any]:
        _fields(doc, ("name",), "a zone")
        with self._tx(ctx) as inv:
            zone = inv.zone(name)
            if "name" in doc:
                zone = inv.rename_zone(zone, check_name("zone", doc["name"]))
            return self._zone(zone, inv.cluster_counts().get(zone.id, 0))

    def delete_zone(self, ctx: RequestContext, name: str) -> None:
        with self._tx(ctx) as inv:
            inv.delete_zone(inv.zone(name))

    @staticmethod
    def _zone(z: Zone, clusters: int) -> dict[str, Any]:
        return {
            "id": z.id,
            "name": z.name,
            "clusters": clusters,
            "created_at": z.created_at.isoformat(),
        }

    # ------------------------------------------------------------------ clusters
    CLUSTER_FIELDS = ("name", "zone", "backend", "settings", "cpu_overcommit",
                      "memory_overcommit", "tags")  # fmt: skip

    def list_clusters(self, ctx: RequestContext, zone: str | None = None) -> list[dict[str, Any]]:
        with self._tx(ctx, readonly=True) as inv:
            zone_id = inv.zone(zone).id if zone is not None else None
            counts = inv.host_counts()
            return [self._cluster(c, counts.get(c.id, 0)) for c in inv.clusters(zone_id)]

    def show_cluster(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        with self._tx(ctx, readonly=True) as inv:
            cluster = inv.cluster(name)
            return self._cluster(cluster, inv.host_counts().get(cluster.id, 0))

    def create_cluster(self, ctx: RequestContext, doc: Mapping[str, Any]) -> dict[str, Any]:
        _fields(doc, self.CLUSTER_FIELDS, "a cluster")
        name = check_name("cluster", doc.get("name"))
        zone = check_name("zone", doc.get("zone"))
        backend = self._check_backend(doc.get("backend"))
        values: dict[str, Any] = {
            "name": name,
            "backend": backend,
            "settings": self.cipher.encrypt(check_settings(backend, doc.get("settings") or {})),
            "cpu_overcommit": check_overcommit("cpu_overcommit", doc.get("cpu_overcommit", 1)),
            "memory_overcommit": check_overcommit(
                "memory_overcommit", doc.get("memory_overcommit", 1)
            ),
            "tags": check_tags(doc.get("tags") or []),
            "origin": "admin",
        }
        with self._tx(ctx) as inv:
            values["zone_id"] = inv.zone(zone).id
            return self._cluster(inv.add_cluster(values), 0)

    def update_cluster(
        self, ctx: RequestContext, name: str, doc: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Change a cluster: `settings` are merged (a key set to null or "" is removed),
        `tags` replaced. Its zone and backend stay (make a new cluster to change those)."""
        _fields(doc, tuple(f for f in self.CLUSTER_FIELDS if f not in ("zone", "backend")),
                "a cluster update (its zone and backend stay)")  # fmt: skip
        with self._tx(ctx) as inv:
            cluster = inv.cluster(name)
            values: dict[str, Any] = {}
            if "name" in doc:
                values["name"] = check_name("cluster", doc["name"])
            for ratio in ("cpu_overcommit", "memory_overcommit"):
                if ratio in doc:
                    values[ratio] = check_overcommit(ratio, doc[ratio])
            if "tags" in doc:
                values["tags"] = check_tags(doc["tags"] or [])
            if "settings" in doc:
                change = doc["settings"]
                if not isinstance(change, Mapping):
                    raise BadRequest("settings are an object of key: value pairs")
                merged = self.cipher.decrypt(cluster.settings, f"cluster {cluster.name}")
                for key, value in change.items():
                    if value is None or value == "":
                        merged.pop(str(key), None)
                    else:
                        merged[key] = value
                values["settings"] = self.cipher.encrypt(check_settings(cluster.backend, merged))
            if values and cluster.origin == "settings":
                values["origin"] = "admin"  # changed by hand: no longer re-made from settings
            cluster = inv.update_cluster(cluster, values)
            return self._cluster(cluster, inv.host_counts().get(cluster.id, 0))

    def delete_cluster(self, ctx: RequestContext, name: str) -> None:
        with self._tx(ctx) as inv:
            inv.delete_cluster(inv.cluster(name))

    def _check_backend(self, value: Any) -> str:
        from occi.plugins import available

        names = available()
        if not isinstance(value, str) or value not in names:
            raise BadRequest(
                f"unknown backend {_show(value)}: the installed ones are {', '.join(names)}"
            )
        return value

    def _cluster(self, c: Cluster, hosts: int) -> dict[str, Any]:
        settings = self.cipher.decrypt(c.settings, f"cluster {c.name}")
        return {
            "id": c.id,
            "name": c.name,
            "zone": c.zone_name,
            "backend": c.backend,
            "settings": masked(settings),
            "cpu_overcommit": c.cpu_overcommit,
            "memory_overcommit": c.memory_overcommit,
            "tags": list(c.tags),
            "origin": c.origin,
            "hosts": hosts,
            "created_at": c.created_at.isoformat(),
        }

    # ------------------------------------------------------------------ hosts
    HOST_FIELDS = ("name", "cluster", "uri", "cores", "memory_gb", "memory_mb", "cpu_mhz", "tags")

    def list_hosts(self, ctx: RequestContext, cluster: str | None = None) -> list[dict[str, Any]]:
        with self._tx(ctx, readonly=True) as inv:
            cluster_id = inv.cluster(cluster).id if cluster is not None else None
            vms = inv.vm_counts()
            return [host_doc(h, vms.get(h.id, 0)) for h in inv.hosts(cluster_id)]

    def show_host(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        with self._tx(ctx, readonly=True) as inv:
            host = inv.host(name)
            return host_doc(host, inv.vm_counts().get(host.id, 0))

    def create_host(self, ctx: RequestContext, doc: Mapping[str, Any]) -> dict[str, Any]:
        """A host of a cluster. Its size is what the request gives (cores, memory_gb or
        memory_mb, cpu_mhz), the rest read from the cluster's platform at `uri`
        (Backend.host_capacity); 400 when neither knows it."""
        _fields(doc, self.HOST_FIELDS, "a host")
        name = check_name("host", doc.get("name"))
        cluster_name = check_name("cluster", doc.get("cluster"))
        uri = check_uri(doc.get("uri"))
        size = self._size(doc)
        tags = check_tags(doc.get("tags") or [])
        with self._tx(ctx, readonly=True) as inv:
            cluster = inv.cluster(cluster_name)
            if inv.find_host(name) is not None:
                raise Conflict(f"a host {name} exists already", code="name_taken")
        if "cores" not in size or "memory_mb" not in size:
            size = {**self._capacity(cluster, uri, name), **size}
        values = {"name": name, "cluster_id": cluster.id, "uri": uri, "tags": tags, **size}
        with self._tx(ctx) as inv:
            return host_doc(inv.add_host(values), 0)

    def update_host(self, ctx: RequestContext, name: str, doc: Mapping[str, Any]) -> dict[str, Any]:
        _fields(doc, tuple(f for f in self.HOST_FIELDS if f != "cluster"),
                "a host update (its cluster stays)")  # fmt: skip
        values: dict[str, Any] = self._size(doc)
        if "name" in doc:
            values["name"] = check_name("host", doc["name"])
        if "uri" in doc:
            values["uri"] = check_uri(doc["uri"])
        if "tags" in doc:
            values["tags"] = check_tags(doc["tags"] or [])
        with self._tx(ctx) as inv:
            host = inv.update_host(inv.host(name), values)
            return host_doc(host, inv.vm_counts().get(host.id, 0))

    def discover_hosts(self, ctx: RequestContext, cluster_name: str) -> list[dict[str, Any]]:
        """The cluster's hosts made the ones its platform lists (Backend.discover_hosts: a
        vCenter cluster, a Xen pool): new hosts added with the size the platform reports,
        sizes and addresses updated, hosts it no longer lists deleted (disabled while VMs are
        placed on them). 400 for a backend that does not list hosts, 502/503 when the platform
        fails or does not answer."""
        from backends.base import BackendFault, Unreachable
        from occi.errors import PlatformUnavailable
        from occi.inventory import shorthand

        name = check_name("cluster", cluster_name)
        with self._tx(ctx, readonly=True) as inv:
            cluster = inv.cluster(name)
        make = self.backend_for or _load_backend
        try:
            backend = make(cluster.backend, self.cluster_settings(cluster))
        except Exception as exc:  # not installed here, or settings it refuses
            raise BadRequest(
                f"the {cluster.backend} backend cannot load here "
                f"({type(exc).__name__}: {str(exc)[:200]})"
            ) from None
        try:
            found = backend.discover_hosts()
        except Unreachable as exc:
            raise PlatformUnavailable(
                f"the {cluster.backend} platform does not answer: {exc}"
            ) from None
        except BackendFault as exc:
            raise BackendError(
                f"the {cluster.backend} platform cannot list its hosts: {exc}"
            ) from None
        finally:
            backend.close()
        if found is None:
            raise BadRequest(
                f"the {cluster.backend} backend does not list its hosts: add them with hosts create"
            )
        declared = [
            shorthand.Declared(
                h.name, h.uri, h.capacity.cores, h.capacity.memory_mb, h.capacity.cpu_mhz
            )
            for h in found
        ]
        with self._tx(ctx) as inv:
            shorthand.sync_hosts(
                inv,
                cluster.id,
                declared,
                gone="no longer listed by the cluster's platform; its VMs stay until moved",
            )
            vms = inv.vm_counts()
            return [host_doc(h, vms.get(h.id, 0)) for h in inv.hosts(cluster.id)]

    def delete_host(self, ctx: RequestContext, name: str) -> None:
        with self._tx(ctx) as inv:
            inv.delete_host(inv.host(name))

    def host_action(self, ctx: RequestContext, name: str, action: str) -> dict[str, Any]:
        """enable, disable, maintenance or cancel-maintenance: the host's admin state. An
        action the host's state does not allow is a 409 saying what would.

        `maintenance` sets the host to prepare-for-maintenance and queues the moves of its
        computes to other hosts of its cluster in the same transaction (occi.inventory.
        maintenance); then it waits up to the job_wait setting for them, so the host shown is
        usually in maintenance or error-in-maintenance already."""
        if action not in HOST_ACTIONS:
            raise BadRequest(f"unknown host action {_show(action)}: {', '.join(HOST_ACTIONS)}")
        allowed, target = HOST_ACTIONS[action]
        moves: list[str] = []
        with self._tx(ctx) as inv:
            host = inv.host(name)
            if host.admin_state not in allowed:
                raise Conflict(
                    f"host {name} is {host.admin_state}: {action} does not apply "
                    f"({_hint(host.admin_state)})",
                    code="state_conflict",
                )
            message = (
                f"maintenance asked by {ctx.user or 'the system'}: moving its computes away"
                if target == maintenance.PREPARING
                else None
            )
            if not inv.set_admin_state(host, target, allowed, message):
                raise Conflict(f"host {name} changed meanwhile; try again", code="state_conflict")
            if target == maintenance.PREPARING:
                rid = metrics.REQUEST_ID.get()
                moves = maintenance.queue_moves(inv.tx, host.id, None if rid == "-" else rid)
            host = inv.host(name)
            doc = host_doc(host, inv.vm_counts().get(host.id, 0))
            cluster = inv.find_cluster(host.cluster_name)
        if cluster is not None and (
            (target == maintenance.PREPARING and doc["admin_state"] == "maintenance")
            or action == "cancel-maintenance"
        ):  # no computes to move (else the last move does it), or cancelled
            self._platform_maintenance(cluster, host, action == "maintenance")
        if moves and self.settings.job_wait > 0:
            self._await(moves, self.settings.job_wait)
            doc = self.show_host(ctx, name)
        return doc

    def _platform_maintenance(self, cluster: Cluster, host: Host, entering: bool) -> None:
        """The platform's own maintenance mode of the host follows (Backend.host_maintenance;
        a backend that has none is not even made)."""
        from backends.base import Backend
        from occi.plugins import backend_class

        make = self.backend_for or _load_backend
        try:
            if backend_class(cluster.backend).host_maintenance is Backend.host_maintenance:
                return
        except Exception:  # noqa: BLE001 - not installed here: said below
            pass
        try:
            backend = make(cluster.backend, self.cluster_settings(cluster))
        except Exception as exc:  # noqa: BLE001 - not installed here: the server's state stands
            log.warning("host %s: no backend for its platform maintenance mode: %s", host.name, exc)
            return
        try:
            maintenance.enter_platform_maintenance(lambda _: backend, host.id, host, entering)
        finally:
            backend.close()

    def _await(self, job_ids: list[str], timeout: float) -> None:
        """Wait up to `timeout` seconds for these jobs: run here where this process can (the
        `settle` it was given), else watched while the servers' job runners do them."""
        if self.settle is not None:
            try:
                self.settle(job_ids, timeout)
            except Exception as exc:  # the moves go on without us: the host shows how far
                log.warning("waiting for the moves of a host failed: %s", exc)
            return
        deadline = time.monotonic() + timeout
        delay = 0.02
        while time.monotonic() < deadline:
            with self.store.begin(readonly=True) as tx:
                states = tx.jobs.statuses(job_ids)
            if all(j.status in ("done", "failed") for j in states.values()):
                return
            time.sleep(delay)
            delay = min(delay * 2, 0.25)

    def _size(self, doc: Mapping[str, Any]) -> dict[str, int]:
        size: dict[str, int] = {}
        if doc.get("cores") is not None:
            size["cores"] = check_count("cores", doc["cores"], MAX_CORES)
        if doc.get("memory_gb") is not None and doc.get("memory_mb") is not None:
            raise BadRequest("give memory_gb or memory_mb, not both")
        if doc.get("memory_gb") is not None:
            size["memory_mb"] = check_count("memory_gb", doc["memory_gb"], MAX_MEMORY_GB) * 1024
        if doc.get("memory_mb") is not None:
            size["memory_mb"] = check_count("memory_mb", doc["memory_mb"], MAX_MEMORY_GB * 1024)
        if doc.get("cpu_mhz") is not None:
            size["cpu_mhz"] = check_count("cpu_mhz", doc["cpu_mhz"], MAX_CPU_MHZ)
        return size

    def _capacity(self, cluster: Cluster, uri: str | None, name: str) -> dict[str, int]:
        """What the cluster's platform says of the host at `uri` (the host's name for a
        platform that names its hosts so, like the simulator)."""
        from backends.base import BackendFault

        settings = {
            "database_url": self.settings.database_url,
            **self.cipher.decrypt(cluster.settings, f"cluster {cluster.name}"),
        }
        make = self.backend_for or _load_backend
        try:
            backend = make(cluster.backend, settings)
        except Exception as exc:  # not installed here, or settings it refuses
            raise BadRequest(
                f"the {cluster.backend} backend cannot load here to read the host's size "
                f"({type(exc).__name__}: {str(exc)[:200]}): give cores and memory_gb"
            ) from None
        try:
            found = backend.host_capacity(uri if uri is not None else name)
        except BackendFault as exc:
            raise BackendError(
                f"the {cluster.backend} platform cannot tell the size of the host at "
                f"{uri or name}: {exc}; give cores and memory_gb"
            ) from None
        finally:
            backend.close()
        if found is None:
            raise BadRequest(
                f"the {cluster.backend} platform does not know the size of the host at "
                f"{uri or name}: give cores and memory_gb"
            )
        return {"cores": found.cores, "memory_mb": found.memory_mb, "cpu_mhz": found.cpu_mhz}


def _load_backend(name: str, settings: dict[str, Any]) -> Any:
    from occi.plugins import load_backend

    return load_backend(name, settings)


def host_doc(h: Host, vms: int) -> dict[str, Any]:
    """A host as administrators see it: capacity, use against capacity x overcommit, states."""
    cores_total = math.floor(h.cores * h.cpu_overcommit)
    memory_total = math.floor(h.memory_mb * h.memory_overcommit)
    return {
        "id": h.id,
        "name": h.name,
        "cluster": h.cluster_name,
        "zone": h.zone_name,
        "uri": h.uri,
        "cores": h.cores,
        "memory_mb": h.memory_mb,
        "cpu_mhz": h.cpu_mhz,
        "used_cores": h.used_cores,
        "used_memory_mb": h.used_memory_mb,
        "cpu_overcommit": h.cpu_overcommit,
        "memory_overcommit": h.memory_overcommit,
        "allocatable_cores": cores_total,
        "allocatable_memory_mb": memory_total,
        "vms": vms,
        "state": h.state,
        "admin_state": h.admin_state,
        "state_message": h.state_message,
        "tags": list(h.tags),
        "last_seen": h.last_seen,
        "created_at": h.created_at.isoformat(),
    }
