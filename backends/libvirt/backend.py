"""The libvirt backend: KVM/QEMU domains, volumes in storage pools, isolated networks.

Touches the libvirt SDK and occi.model / occi.infrastructure only (never the store, service or
API). Platform objects are named `occi-<entity id>` so a retried job finds what a first attempt
made. Operations that wait on the guest (graceful and ACPI stop) return at once with the state
libvirt reports and a message saying what is under way; `observe()` reports the end. What OCCI
needs and libvirt has no field for lives in the domain's <metadata> (xmldesc.Metadata).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import libvirt

from backends import common
from backends.base import (
    CAPABILITIES,
    CONTEXTUALISATION,
    LINK_HOTPLUG,
    STORAGE_RESIZE,
    Backend,
    BackendFault,
    EventCallback,
    HostCapacity,
    InvalidTransition,
    NotFoundOnPlatform,
    Outcome,
    PlatformError,
    Unreachable,
    Unsupported,
)
from backends.common import (
    disk_names,
    name_at,
    platform_name,
    root_volume,
    seed_volume,
    storage_volume,
)
from backends.libvirt import catalog, seed, states
from backends.libvirt.config import LibvirtConfig
from backends.libvirt.events import EventWatcher
from backends.libvirt.xmldesc import (
    ARCH_TO_OCCI,
    ARCHES,
    METADATA_KEY,
    METADATA_NS,
    DiskSpec,
    DomainSpec,
    Metadata,
    NetworkSpec,
    NicSpec,
    disk_element,
    domain_xml,
    network_xml,
    nic_element,
    parse_domain,
    parse_network,
    parse_volume,
    pool_xml,
    volume_xml,
    with_device,
    without_device,
)
from occi import infrastructure as infra
from occi import states as machines
from occi.model import Entity, Link, Mixin, Resource

log = logging.getLogger(__name__)
T = TypeVar("T")

GIB = 1 << 30
NOT_FOUND = {
    libvirt.VIR_ERR_NO_DOMAIN,
    libvirt.VIR_ERR_NO_NETWORK,
    libvirt.VIR_ERR_NO_STORAGE_VOL,
    libvirt.VIR_ERR_NO_STORAGE_POOL,
}
UNSUPPORTED = {
    libvirt.VIR_ERR_NO_SUPPORT,
    libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED,
    libvirt.VIR_ERR_OPERATION_UNSUPPORTED,
}
INVALID = {libvirt.VIR_ERR_OPERATION_INVALID}
#: errors of the connection itself (refused, closed, broken pipe): the platform is unreachable
UNREACHABLE_CODES = {
    libvirt.VIR_ERR_SYSTEM_ERROR,
    libvirt.VIR_ERR_INTERNAL_ERROR,
    libvirt.VIR_ERR_RPC,
}
XML_INACTIVE = libvirt.VIR_DOMAIN_XML_INACTIVE
LIVE, CONFIG = libvirt.VIR_DOMAIN_AFFECT_LIVE, libvirt.VIR_DOMAIN_AFFECT_CONFIG
STOP_REASONS = {"graceful": ("0", "1"), "acpioff": ("0", "1"), "poweroff": ("2",)}


def mac_for(link_id: str) -> str:
    """A MAC in QEMU's 52:54:00 range derived from the link id (same id, same MAC)."""
    return common.mac_for(link_id, common.QEMU_MAC_PREFIX)


def _gb(value: float) -> str:
    return f"{value:g} GB"


def _quiet(_ctx: Any, _err: Any) -> None:
    """libvirt prints every error on stderr unless a handler is registered; we raise instead."""


def translate(exc: libvirt.libvirtError, what: str) -> BackendFault:
    code = exc.get_error_code()
    text = f"{what}: {exc.get_error_message() or exc}"
    if code in NOT_FOUND:
        return NotFoundOnPlatform(text)
    if code in UNSUPPORTED:
        return Unsupported(text)
    if code in INVALID:
        return InvalidTransition(text)
    if code == libvirt.VIR_ERR_NO_CONNECT or (
        exc.get_error_domain() == libvirt.VIR_FROM_RPC and code in UNREACHABLE_CODES
    ):
        return Unreachable(text)
    return PlatformError(text)


def _on_host(method: Callable[..., T]) -> Callable[..., T]:
    """Run an operation whose first argument is an entity against that entity's host."""

    @functools.wraps(method)
    def on_host(self: LibvirtBackend, entity: Entity, *args: Any, **kwargs: Any) -> T:
        with self._at(self.host_of(entity)):
            return method(self, entity, *args, **kwargs)

    return on_host


class LibvirtBackend(Backend):
    """KVM/QEMU through libvirt. Settings: see backends/README.md (libvirt_uri, ...)."""

    name = "libvirt"
    live_attributes = frozenset({"occi.compute.cores", "occi.compute.memory"})

    def __init__(self, settings: Mapping[str, Any] | None = None):
        super().__init__(settings)
        self.config = LibvirtConfig.from_settings(self.settings)
        self.test_driver = _scheme(self.config.uri) == "test"
        caps = set(CAPABILITIES)
        if self.test_driver:
            # The test driver refuses device hot-plug, volume resize and volume upload.
            caps -= {LINK_HOTPLUG, STORAGE_RESIZE, CONTEXTUALISATION}
        if self.config.seed == "none":
            caps.discard(CONTEXTUALISATION)
        self.capabilities = frozenset(caps)
        self.domain_type = "test" if self.test_driver else self.config.domain_type
        #: one connection per host URI of this process (a test:///file host keeps its state per
        #: connection, so a second one would see another host)
        self._conns: dict[str, libvirt.virConnect] = {}
        self._conn_pid = os.getpid()
        self._lock = threading.RLock()
        #: the host the current operation works on (per thread: the job runner runs several)
        self._here = threading.local()
        self._callback: EventCallback | None = None
        self._watchers: dict[str, EventWatcher] = {}
        libvirt.registerErrorHandler(_quiet, None)

    # ================================================================== plumbing
    @property
    def uri(self) -> str:
        """The URI of the host the current operation works on (default: libvirt_uri)."""
        return getattr(self._here, "uri", None) or self.config.uri

    @contextmanager
    def _at(self, uri: str | None) -> Iterator[None]:
        """Run the enclosed calls against the host at `uri` (None: libvirt_uri)."""
        before = getattr(self._here, "uri", None)
        self._here.uri = uri or self.config.uri
        try:
            yield
        finally:
            self._here.uri = before

    def host_of(self, entity: Entity) -> str:
        """The URI of the host an entity lives on: its placement's, else libvirt_uri. A link
        without a placement lives where its compute does (looked up on the hosts open)."""
        placement = entity.placement
        if placement is not None and placement.host_uri:
            return placement.host_uri
        if isinstance(entity, Link) or entity.is_link:
            return self._host_with_domain(name_at(getattr(entity, "source", None)))
        return self.config.uri

    def _host_with_domain(self, name: str | None) -> str:
        """The first host open in this process that has domain `name` (default: libvirt_uri)."""
        with self._lock:
            others = [u for u in self._conns if u != self.config.uri]
        if name and others:
            for uri in [self.config.uri, *others]:
                try:
                    self.connection(uri).lookupByName(name)
                    return uri
                except (libvirt.libvirtError, Unreachable):
                    continue
        return self.config.uri

    @property
    def conn(self) -> libvirt.virConnect:
        """The connection to the current host (see `_at`)."""
        return self.connection(self.uri)

    def connection(self, uri: str | None = None) -> libvirt.virConnect:
        """The connection to the host at `uri` (None: libvirt_uri), opened on first use, again
        after a fork or when it died. Raises Unreachable when the host does not answer."""
        uri = uri or self.config.uri
        with self._lock:
            if self._conn_pid != os.getpid():
                # a forked child must not use (or close) its parent's sockets
                self._conns, self._watchers = {}, {}
                self._conn_pid = os.getpid()
            conn = self._live(uri)
            if conn is not None:
                return conn
        # opened outside the lock: a host that hangs (an ssh timeout) must not hold up the
        # operations on the other hosts
        try:
            opened = libvirt.open(uri)
        except libvirt.libvirtError as exc:
            raise Unreachable(
                f"cannot connect to libvirt host {uri}: {exc.get_error_message() or exc}"
            ) from None
        with self._lock:
            conn = self._live(uri)
            if conn is None:
                dead, conn = self._conns.get(uri), opened
                self._conns[uri] = opened
            else:  # another thread opened it meanwhile: one connection per host
                dead = opened
        if dead is not None:
            try:
                dead.close()
            except libvirt.libvirtError:
                pass
        self._watch(uri)
        return conn

    def _live(self, uri: str) -> libvirt.virConnect | None:
        """The open connection to `uri` if it is alive (call with the lock held)."""
        conn = self._conns.get(uri)
        try:
            if conn is not None and conn.isAlive():
                return conn
        except libvirt.libvirtError:
            pass
        return None

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except BackendFault:
            raise
        except libvirt.libvirtError as exc:
            fault = translate(exc, what)
            log.warning("libvirt: %s", fault)
            raise fault from None

    @contextmanager
    def _deleting(self, what: str) -> Iterator[None]:
        """As _errors, while removing `what`: its going away meanwhile is what was wanted (the
        rest of the delete, e.g. a domain's volumes, must still happen)."""
        try:
            with self._errors(f"deleting {what}"):
                yield
        except NotFoundOnPlatform:
            log.info("%s went away meanwhile", what)

    def _domain(self, name: str) -> libvirt.virDomain | None:
        try:
            return self.conn.lookupByName(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise translate(exc, f"looking up domain {name}") from None

    def _require_domain(self, name: str) -> libvirt.virDomain:
        dom = self._domain(name)
        if dom is None:
            raise NotFoundOnPlatform(f"domain {name} does not exist on {self.uri}")
        return dom

    def _network(self, name: str) -> libvirt.virNetwork | None:
        try:
            return self.conn.networkLookupByName(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_NETWORK:
                return None
            raise translate(exc, f"looking up network {name}") from None

    def _pool(self, name: str, path: str | None = None) -> libvirt.virStoragePool:
        """The pool `name`, started; created as a dir pool at `path` when it is missing."""
        with self._errors(f"storage pool {name}"):
            try:
                pool = self.conn.storagePoolLookupByName(name)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_POOL or not path:
                    raise
                log.info("defining dir pool %s at %s", name, path)
                pool = self.conn.storagePoolDefineXML(pool_xml(name, path), 0)
                pool.build(0)
            if not pool.isActive():
                pool.create(0)
            return pool

    @property
    def volume_pool(self) -> libvirt.virStoragePool:
        return self._pool(self.config.pool, self.config.pool_path)

    @property
    def image_pool(self) -> libvirt.virStoragePool:
        return self._pool(self.config.image_pool, self.config.image_pool_path)

    @staticmethod
    def _volume(pool: libvirt.virStoragePool, name: str) -> libvirt.virStorageVol | None:
        try:
            return pool.storageVolLookupByName(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
                return None
            raise translate(exc, f"looking up volume {name}") from None

    def _delete_volume(self, pool: libvirt.virStoragePool, name: str) -> None:
        vol = self._volume(pool, name)
        if vol is not None:
            with self._deleting(f"volume {name}"):
                vol.delete(0)
            log.info("deleted volume %s", name)

    def _metadata(self, dom: libvirt.virDomain, *, inactive: bool = False) -> Metadata:
        flags = CONFIG if inactive else 0
        try:
            return Metadata.parse(
                dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS, flags)
            )
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN_METADATA:
                return Metadata()
            raise translate(exc, f"reading the metadata of {dom.name()}") from None

    def _set_metadata(self, dom: libvirt.virDomain, md: Metadata) -> None:
        with self._errors(f"writing the metadata of {dom.name()}"):
            flags = (LIVE | CONFIG) if dom.isActive() else CONFIG
            dom.setMetadata(
                libvirt.VIR_DOMAIN_METADATA_ELEMENT, md.xml(), METADATA_KEY, METADATA_NS, flags
            )

    @staticmethod
    def _kind(entity: Entity) -> str:
        for kind in (infra.COMPUTE, infra.STORAGE, infra.NETWORK):
            if entity.kind == kind.id:
                return kind.term
        raise Unsupported(f"the libvirt backend has no resources of kind {entity.kind}")

    # ================================================================== discovery
    def _images(self) -> dict[str, tuple[str, str]]:
        """os_tpl term -> (volume name, title) for the images in the image pool."""
        pool = self.image_pool
        out: dict[str, tuple[str, str]] = {}
        with self._errors(f"listing images in pool {self.config.image_pool}"):
            try:
                pool.refresh(0)
            except libvirt.libvirtError as exc:
                log.debug("pool refresh: %s", exc)
            for vol in pool.listAllVolumes(0):
                name = vol.name()
                if not catalog.is_image(name):
                    continue
                term = catalog.image_term(name)
                _, capacity, _ = vol.info()
                out.setdefault(term, (name, f"{term} image ({capacity / GIB:.3g} GB)"))
        return out

    def provider_mixins(self) -> list[Mixin]:
        scheme = self.config.os_tpl_scheme
        mixins = [
            catalog.os_tpl(scheme, term, title)
            for term, (_, title) in sorted(self._images().items())
        ]
        mixins += [
            catalog.resource_tpl(self.config.resource_tpl_scheme, t) for t in self.config.templates
        ]
        return [*mixins, *infra.CRTP_TEMPLATES]

    def _os_tpl_term(self, entity: Entity) -> str | None:
        scheme = self.config.os_tpl_scheme
        for m in entity.mixins:
            if m.startswith(scheme):
                return m[len(scheme) :]
        return None

    # ================================================================== resources
    @_on_host
    def create(self, entity: Resource) -> Outcome:
        kind = self._kind(entity)
        if kind == "compute":
            return self._create_compute(entity)
        if kind == "storage":
            return self._create_storage(entity)
        return self._create_network(entity)

    # ------------------------------------------------------------------ compute
    def _needs_seed(self, entity: Entity) -> bool:
        a = entity.attributes
        return bool(a.get("occi.compute.userdata") or a.get("occi.credentials.ssh.publickey"))

    def _create_compute(self, entity: Resource) -> Outcome:
        name = platform_name(entity)
        if self._domain(name) is not None:
            log.info("domain %s exists already; create is a no-op", name)
            return self.observe(entity)
        if self._needs_seed(entity) and CONTEXTUALISATION not in self.capabilities:
            raise Unsupported(
                f"{self.uri} cannot hold a cloud-init seed (ssh_key / user_data)"
                if self.config.seed != "none"
                else "cloud-init seeds are off (libvirt_seed=none)"
            )
        a = entity.attributes
        cores = int(a.get("occi.compute.cores") or 1)
        memory = float(a.get("occi.compute.memory") or 1.0)
        arch = ARCHES.get(str(a.get("occi.compute.architecture") or "x64"), "x86_64")
        pool = self.volume_pool
        pool_name = self.config.pool
        made: list[str] = []
        disks: list[DiskSpec] = []
        term = self._os_tpl_term(entity)
        ephemeral = a.get("occi.compute.ephemeral_storage.size")
        try:
            root = root_volume(name)
            if term:
                images = self._images()
                if term not in images:
                    raise PlatformError(
                        f"image {term} is no longer in pool {self.config.image_pool}"
                    )
                if self._volume(pool, root) is None:
                    self._clone(
                        self.image_pool,
                        images[term][0],
                        pool,
                        root,
                        int(float(ephemeral or 0) * GIB),
                    )
                    made.append(root)
                disks.append(DiskSpec(pool_name, root, "vda"))
            elif ephemeral:
                if self._volume(pool, root) is None:
                    with self._errors(f"creating root disk {root}"):
                        pool.createXML(volume_xml(root, int(float(ephemeral) * GIB)), 0)
                    made.append(root)
                disks.append(DiskSpec(pool_name, root, "vda"))
            if self._needs_seed(entity):
                seed_name = self._write_seed(entity, pool, name)
                made.append(seed_name)
                disks.append(
                    DiskSpec(pool_name, seed_name, "sda", format="raw", device="cdrom", bus="sata")
                )
            md = Metadata(
                entity=entity.id or "",
                os_tpl=term or "",
                hostname=str(a.get("occi.compute.hostname") or ""),
            )
            console = (
                os.path.join(self.config.console_dir, f"{name}.log")
                if self.config.console_dir
                else None
            )
            spec = DomainSpec(
                name=name,
                domain_type=self.domain_type,
                arch=arch,
                cores=cores,
                max_vcpus=max(cores, self.config.max_vcpus),
                memory_kib=int(memory * (1 << 20)),
                max_memory_kib=int(max(memory, self.config.max_memory) * (1 << 20)),
                title=entity.title,
                machine=self.config.machine,
                console_path=console,
                disks=disks,
                metadata=md.element(),
            )
            with self._errors(f"defining domain {name}"):
                self.conn.defineXML(domain_xml(spec))
        except BaseException:
            for vol in made:
                try:
                    self._delete_volume(pool, vol)
                except BackendFault:
                    log.warning("could not remove %s after a failed create", vol)
            raise
        log.info("defined domain %s (%d cores, %s, image %s)", name, cores, _gb(memory), term)
        note = f" from image {term}" if term else ""
        return Outcome(
            {
                "occi.compute.state": "inactive",
                "occi.compute.state.message": f"created{note}; inactive until started",
                "occi.compute.architecture": ARCH_TO_OCCI.get(arch, "x64"),
            }
        )

    def _clone(
        self,
        src_pool: libvirt.virStoragePool,
        src_name: str,
        dst_pool: libvirt.virStoragePool,
        dst_name: str,
        min_bytes: int = 0,
    ) -> None:
        src = self._volume(src_pool, src_name)
        if src is None:
            raise NotFoundOnPlatform(f"volume {src_name} is gone")
        with self._errors(f"cloning {src_name} to {dst_name}"):
            _, capacity, _ = src.info()
            vol = dst_pool.createXMLFrom(volume_xml(dst_name, max(capacity, min_bytes)), src, 0)
        if min_bytes > capacity:
            try:
                vol.resize(min_bytes, 0)
            except libvirt.libvirtError as exc:
                log.info("%s keeps the image size (%s)", dst_name, exc)

    def _write_seed(self, entity: Entity, pool: libvirt.virStoragePool, name: str) -> str:
        a = entity.attributes
        keys = [
            k.strip()
            for k in str(a.get("occi.credentials.ssh.publickey") or "").splitlines()
            if k.strip()
        ]
        try:
            data = seed.build_iso(
                instance_id=name,
                hostname=str(a.get("occi.compute.hostname") or "") or None,
                ssh_keys=keys,
                userdata=seed.decode_user_data(a.get("occi.compute.userdata")),
            )
        except seed.SeedError as exc:
            raise PlatformError(f"cannot build the cloud-init seed: {exc}") from None
        seed_name = seed_volume(name)
        self._delete_volume(pool, seed_name)
        with self._errors(f"writing cloud-init seed {seed_name}"):
            vol = pool.createXML(volume_xml(seed_name, len(data), "raw"), 0)
            try:
                stream = self.conn.newStream(0)
                vol.upload(stream, 0, len(data), 0)
                offset = 0
                while offset < len(data):
                    sent = stream.send(data[offset : offset + 65536])
                    if sent <= 0:
                        raise PlatformError(f"the upload of {seed_name} stalled")
                    offset += sent
                stream.finish()
            except libvirt.libvirtError:
                vol.delete(0)
                raise
        return seed_name

    # ------------------------------------------------------------------ storage
    def _storage_volume_name(self, entity: Entity) -> str:
        return storage_volume(platform_name(entity))

    def _create_storage(self, entity: Resource) -> Outcome:
        name = self._storage_volume_name(entity)
        pool = self.volume_pool
        size = float(entity.attributes.get("occi.storage.size") or 0.0)
        if self._volume(pool, name) is None:
            with self._errors(f"creating volume {name}"):
                pool.createXML(volume_xml(name, int(size * GIB)), 0)
            log.info("created volume %s (%s)", name, _gb(size))
        return Outcome(
            {
                "occi.storage.state": "offline",
                "occi.storage.state.message": f"created as qcow2 volume {name} in pool {self.config.pool}; offline until "
                "brought online",
            }
        )

    # ------------------------------------------------------------------ network
    def _network_spec(self, entity: Entity) -> NetworkSpec:
        a = entity.attributes
        vlan = a.get("occi.network.vlan")
        return NetworkSpec(
            name=platform_name(entity),
            address=a.get("occi.network.address")
            if infra.IPNETWORK.id in entity.mixins or a.get("occi.network.address")
            else None,
            gateway=a.get("occi.network.gateway"),
            dhcp=(a.get("occi.network.allocation") or "dynamic") == "dynamic",
            vlan=int(vlan) if vlan is not None else None,
        )

    def _network_define(self, entity: Entity) -> str:
        try:
            xml = network_xml(self._network_spec(entity))
        except ValueError as exc:
            raise InvalidTransition(f"network {platform_name(entity)}: {exc}") from None
        with self._errors(f"defining network {platform_name(entity)}"):
            self.conn.networkDefineXML(xml)
        return xml

    def _create_network(self, entity: Resource) -> Outcome:
        name = platform_name(entity)
        if self._network(name) is None:
            self._network_define(entity)
            log.info("defined isolated network %s", name)
        return Outcome(
            {
                "occi.network.state": "inactive",
                "occi.network.state.message": "created (isolated); inactive until brought up",
            }
        )

    # ------------------------------------------------------------------ update
    @_on_host
    def update(self, entity: Resource, changed: Mapping[str, Any]) -> Outcome:
        kind = self._kind(entity)
        if kind == "compute":
            return self._update_compute(entity, changed)
        if kind == "storage":
            return self._update_storage(entity, changed)
        return self._update_network(entity, changed)

    def _update_compute(self, entity: Resource, changed: Mapping[str, Any]) -> Outcome:
        name = platform_name(entity)
        dom = self._require_domain(name)
        running = bool(dom.isActive())
        live: list[str] = []
        later: list[str] = []
        why: list[str] = []
        cores = changed.get("occi.compute.cores")
        if cores is not None:
            cores = int(cores)
            with self._errors(f"setting {cores} cores on {name}"):
                cfg = parse_domain(dom.XMLDesc(XML_INACTIVE))
                if cores > cfg.max_vcpus:
                    dom.setVcpusFlags(cores, CONFIG | libvirt.VIR_DOMAIN_VCPU_MAXIMUM)
                dom.setVcpusFlags(cores, CONFIG)
            if running and self._try_live(dom, lambda: dom.setVcpusFlags(cores, LIVE), why):
                live.append(f"{cores} cores")
            else:
                later.append(f"{cores} cores")
        memory = changed.get("occi.compute.memory")
        if memory is not None:
            kib = int(float(memory) * (1 << 20))
            text = f"{_gb(float(memory))} memory"
            with self._errors(f"setting {text} on {name}"):
                cfg = parse_domain(dom.XMLDesc(XML_INACTIVE))
                if kib > cfg.max_memory_kib:
                    dom.setMemoryFlags(kib, CONFIG | libvirt.VIR_DOMAIN_MEM_MAXIMUM)
                dom.setMemoryFlags(kib, CONFIG)
            if running:
                live_max = parse_domain(dom.XMLDesc(0)).max_memory_kib
                if kib <= live_max and self._try_live(
                    dom, lambda: dom.setMemoryFlags(kib, LIVE), why
                ):
                    live.append(text)
                else:
                    if kib > live_max:
                        why.append(
                            f"memory above the running maximum of "
                            f"{_gb(live_max / (1 << 20))} needs a restart"
                        )
                    later.append(text)
            else:
                later.append(text)
        if "occi.compute.hostname" in changed:
            md = self._metadata(dom, inactive=True)
            md.hostname = str(changed.get("occi.compute.hostname") or "")
            self._set_metadata(dom, md)
        out = self.observe(entity)
        state = out.attributes["occi.compute.state"]
        parts = []
        if live:
            parts.append(f"{', '.join(live)} applied live")
        if later:
            when = "from the next boot" if running else "from the next start"
            reason = f" ({'; '.join(why)})" if why and running else ""
            parts.append(f"{', '.join(later)} {when}{reason}")
        if parts:
            base = "running" if state == "active" else state
            out.attributes["occi.compute.state.message"] = f"{base}; {'; '.join(parts)}"
        return out

    @staticmethod
    def _try_live(dom: libvirt.virDomain, call, why: list[str]) -> bool:
        if not dom.isActive():
            return False
        try:
            call()
            return True
        except libvirt.libvirtError as exc:
            why.append(exc.get_error_message() or str(exc))
            return False

    def _update_storage(self, entity: Resource, changed: Mapping[str, Any]) -> Outcome:
        name = self._storage_volume_name(entity)
        vol = self._volume(self.volume_pool, name)
        if vol is None:
            raise NotFoundOnPlatform(f"volume {name} does not exist in pool {self.config.pool}")
        state = str(entity.attributes.get("occi.storage.state") or "offline")
        message = str(entity.attributes.get("occi.storage.state.message") or state)
        size = changed.get("occi.storage.size")
        if size is not None:
            size = float(size)
            current = parse_volume(vol.XMLDesc(0))["capacity"]
            if size * GIB < current:
                raise InvalidTransition(
                    f"shrinking a volume is not supported: {name} is {_gb(current / GIB)}, "
                    f"asked for {_gb(size)}"
                )
            if size * GIB > current:
                with self._errors(f"resizing volume {name}"):
                    vol.resize(int(size * GIB), 0)
                message = f"{state}; grown from {_gb(current / GIB)} to {_gb(size)}"
        return Outcome(
            {
                "occi.storage.state": state,
                "occi.storage.state.message": message,
                "occi.storage.size": self._size_gb(vol),
            }
        )

    @staticmethod
    def _size_gb(vol: libvirt.virStorageVol) -> float:
        return round(vol.info()[1] / GIB, 6)

    def _update_network(self, entity: Resource, changed: Mapping[str, Any]) -> Outcome:
        name = platform_name(entity)
        net = self._network(name)
        if net is None:
            raise NotFoundOnPlatform(f"network {name} does not exist on {self.uri}")
        touched = [
            k
            for k in changed
            if k.startswith("occi.network.")
            and k not in ("occi.network.state", "occi.network.state.message")
        ]
        out = self.observe(entity)
        if touched:
            self._network_define(entity)
            if net.isActive():
                out.attributes["occi.network.state.message"] = (
                    "active; new settings take effect when the network is next brought up"
                )
        return out

    # ------------------------------------------------------------------ delete
    def _existing_volume_pool(self) -> libvirt.virStoragePool | None:
        """The volume pool, or None when it does not exist (then it holds none of ours)."""
        try:
            return self.volume_pool
        except NotFoundOnPlatform as exc:
            log.info("no volumes to delete: %s", exc)
            return None

    def _volume_users(self, pool: libvirt.virStoragePool, vol_name: str) -> list[str]:
        """Domains whose disks use this volume (live or in their config), with their state."""
        vol = self._volume(pool, vol_name)
        if vol is None:
            return []
        with self._errors(f"looking for domains using volume {vol_name}"):
            pool_name, path = pool.name(), vol.path()
            users = []
            for dom in self.conn.listAllDomains(0):
                active = bool(dom.isActive())
                docs = [dom.XMLDesc(XML_INACTIVE)] + ([dom.XMLDesc(0)] if active else [])
                if any(
                    (d["pool"] == pool_name and d["volume"] == vol_name) or d["file"] == path
                    for doc in docs
                    for d in parse_domain(doc).disks
                ):
                    users.append(f"{dom.name()} ({'running' if active else 'stopped'})")
        return users

    @_on_host
    def delete(self, entity: Entity) -> None:
        if isinstance(entity, Link) or entity.is_link:
            self.unlink(entity)  # type: ignore[arg-type]
            return
        if entity.kind not in (infra.COMPUTE.id, infra.STORAGE.id, infra.NETWORK.id):
            return  # no platform object was ever made for it
        kind = self._kind(entity)
        name = platform_name(entity)
        if kind == "compute":
            dom = self._domain(name)
            if dom is not None:
                self._undefine(dom, name)
                log.info("deleted domain %s", name)
            pool = self._existing_volume_pool()
            for vol in (root_volume(name), seed_volume(name)):
                if pool is not None:
                    self._delete_volume(pool, vol)
        elif kind == "storage":
            pool = self._existing_volume_pool()
            vol_name = self._storage_volume_name(entity)
            if pool is None:
                return
            users = self._volume_users(pool, vol_name)
            if users:  # never pull a volume from under a domain: detach it first
                raise InvalidTransition(
                    f"volume {vol_name} is attached to {', '.join(users)}; detach it (delete "
                    "its storagelink) or stop the compute first"
                )
            self._delete_volume(pool, vol_name)
        else:
            net = self._network(name)
            if net is not None:
                with self._deleting(f"network {name}"):
                    if net.isActive():
                        net.destroy()
                    net.undefine()
                log.info("deleted network %s", name)

    def _undefine(self, dom: libvirt.virDomain, name: str) -> None:
        """Destroy (if running) and undefine a domain of the current host; gone is fine."""
        with self._deleting(f"domain {name}"):
            if dom.isActive():
                dom.destroy()
            try:
                dom.undefineFlags(
                    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                )
            except libvirt.libvirtError as exc:
                if exc.get_error_code() not in UNSUPPORTED | {libvirt.VIR_ERR_INVALID_ARG}:
                    raise
                dom.undefine()

    # ================================================================== actions
    @_on_host
    def action(self, entity: Resource, action: str, params: Mapping[str, Any]) -> Outcome:
        kind = self._kind(entity)
        term = action.rsplit("#", 1)[-1]
        handler = {
            ("compute", "start"): self._start,
            ("compute", "stop"): self._stop,
            ("compute", "restart"): self._restart,
            ("compute", "suspend"): self._suspend,
            ("compute", "save"): self._save,
            ("storage", "online"): self._storage_state,
            ("storage", "offline"): self._storage_state,
            ("network", "up"): self._network_state,
            ("network", "down"): self._network_state,
        }.get((kind, term))
        if handler is None:
            raise Unsupported(f"the libvirt backend cannot {term} a {kind}")
        return handler(entity, term, params)

    def _compute_state(self, dom: libvirt.virDomain) -> tuple[str, int, int, bool]:
        state, reason = dom.state()
        managed = bool(dom.hasManagedSaveImage(0)) if state == states.SHUTOFF else False
        occi, _ = states.describe(state, reason, managed)
        return occi, state, reason, managed

    @staticmethod
    def _check(machine: machines.Machine, name: str, term: str, current: str) -> None:
        """Refuse what GFD.224's state machine (occi.states) does not allow."""
        if machines.refusal(machine, term, current) is not None:
            raise InvalidTransition(
                f"{machine.label} {name} is {current}: {term} needs it "
                + machines.describe(machine.transitions[term].allowed)
            )

    def _refuse(self, name: str, term: str, current: str) -> InvalidTransition:
        """A state the machine allows that this platform cannot leave this way."""
        return InvalidTransition(f"compute {name} is {current}: libvirt cannot {term} it from here")

    def _start(self, entity: Resource, term: str, params: Mapping[str, Any]) -> Outcome:
        name = platform_name(entity)
        dom = self._require_domain(name)
        occi, state, _, managed = self._compute_state(dom)
        self._check(machines.COMPUTE, name, term, occi)
        md = self._metadata(dom, inactive=True)
        md.pending, md.last = {}, {}
        with self._errors(f"starting {name}"):
            if state == states.PAUSED:
                dom.resume()
                message = "running; resumed from suspension"
            elif state in (states.SHUTOFF, states.NOSTATE, states.CRASHED):
                self._set_metadata(dom, md)
                dom.create()
                message = "running; restored from hibernation" if managed else "running; booting"
            else:
                raise self._refuse(name, term, occi)
        self._set_metadata(dom, md)
        log.info("started %s", name)
        return self._compute_outcome(dom, message)

    def _stop(self, entity: Resource, term: str, params: Mapping[str, Any]) -> Outcome:
        name = platform_name(entity)
        dom = self._require_domain(name)
        occi, state, _, _ = self._compute_state(dom)
        method = str(params.get("method") or "graceful")
        self._check(machines.COMPUTE, name, term, occi)
        md = self._metadata(dom, inactive=True)
        md.pending = {"op": "stop", "method": method, "since": f"{time.time():.0f}"}
        md.last = {}
        self._set_metadata(dom, md)
        with self._errors(f"stopping {name} ({method})"):
            if method == "poweroff":
                dom.destroy()
            elif method == "acpioff":
                try:
                    dom.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() not in UNSUPPORTED | {libvirt.VIR_ERR_INVALID_ARG}:
                        raise
                    dom.shutdown()
            else:
                dom.shutdown()
        log.info("stop (%s) requested for %s", method, name)
        return self.observe(entity)

    def _restart(self, entity: Resource, term: str, params: Mapping[str, Any]) -> Outcome:
        name = platform_name(entity)
        dom = self._require_domain(name)
        occi, _, _, _ = self._compute_state(dom)
        self._check(machines.COMPUTE, name, term, occi)
        method = str(params.get("method") or "graceful")
        with self._errors(f"restarting {name} ({method})"):
            if method == "cold":
                dom.reset(0)
            else:
                dom.reboot(0)
        return self._compute_outcome(dom, states.RESTART_DONE.get(method, "running; restarted"))

    def _suspend(self, entity: Resource, term: str, params: Mapping[str, Any]) -> Outcome:
        name = platform_name(entity)
        dom = self._require_domain(name)
        occi, _, _, _ = self._compute_state(dom)
        self._check(machines.COMPUTE, name, term, occi)
        method = str(params.get("method") or "suspend")
        with self._errors(f"suspending {name} ({method})"):
            if method == "hibernate":
                dom.managedSave(0)
                message = "hibernated; memory saved to disk"
            else:
                dom.suspend()
                message = "suspended; memory kept in RAM"
        return self._compute_outcome(dom, message)

    def _compute_outcome(self, dom: libvirt.virDomain, message: str) -> Outcome:
        occi, _, _, _ = self._compute_state(dom)
        return Outcome({"occi.compute.state": occi, "occi.compute.state.message": message})

    # ------------------------------------------------------------------ save
    def _root_volume(self, dom: libvirt.virDomain) -> tuple[libvirt.virStoragePool, str] | None:
        for d in parse_domain(dom.XMLDesc(XML_INACTIVE)).disks:
            if d["dev"] == "vda" and d["device"] == "disk" and d["volume"]:
                return self._pool(d["pool"]), d["volume"]
        return None

    def _image_term_for(self, entity: Entity, wanted: str) -> str:
        base = catalog.clean_term(wanted) or (
            f"{(entity.id or 'image')[:8]}-{datetime.now(UTC):%Y%m%d%H%M%S}"
        )
        taken = set(self._images())
        pool = self.image_pool
        for n in range(1, 1000):
            term = base if n == 1 else f"{base}-{n}"
            if term not in taken and self._volume(pool, f"{term}.qcow2") is None:
                return term
        raise PlatformError(f"no free image name left for {base!r}")

    def _save(self, entity: Resource, term: str, params: Mapping[str, Any]) -> Outcome:
        name = platform_name(entity)
        dom = self._require_domain(name)
        occi, state, _, _ = self._compute_state(dom)
        self._check(machines.COMPUTE, name, term, occi)
        root = self._root_volume(dom)
        if root is None:
            raise Unsupported(f"compute {name} has no root disk to save")
        method = str(params.get("method") or "hot")
        wanted = str(params.get("name") or "").strip()
        image = self._image_term_for(entity, wanted)
        title = wanted or f"Image saved from {entity.title or name}"
        scheme = self.config.os_tpl_scheme
        running = occi == "active"
        if method == "deferred" and running:
            md = self._metadata(dom, inactive=True)
            md.deferred_save = {"term": image}
            self._set_metadata(dom, md)
            message = f"running; will be saved as os_tpl {image} when it stops"
            return Outcome(
                {"occi.compute.state": occi, "occi.compute.state.message": message},
                mixin=catalog.os_tpl(scheme, image, f"{title} (written at next stop)"),
            )
        self._write_image(dom, root, image, pause=running)
        message = (
            f"{'running' if running else 'inactive'}; saved as os_tpl {image} "
            f"({'hot copy while paused' if running else 'copy'})"
        )
        return Outcome(
            {"occi.compute.state": occi, "occi.compute.state.message": message},
            mixin=catalog.os_tpl(scheme, image, title),
        )

    def delete_image(self, mixin: Mixin) -> None:
        if mixin.scheme != self.config.os_tpl_scheme:
            raise Unsupported(f"{mixin.id} is not an image of this libvirt backend")
        images = self._images()
        volume = images[mixin.term][0] if mixin.term in images else f"{mixin.term}.qcow2"
        self._delete_volume(self.image_pool, volume)

    def _write_image(
        self,
        dom: libvirt.virDomain,
        root: tuple[libvirt.virStoragePool, str],
        image: str,
        *,
        pause: bool,
    ) -> None:
        """Copy the root disk into the image pool as `<image>.qcow2`.

        A stopped domain's disk is cloned (createXMLFrom). A running QEMU holds a write lock on
        its disk, so there a block copy job mirrors the disk into the new file and is ended
        once in sync, leaving a crash-consistent copy (`virsh blockcopy --finish`). Drivers
        without block copy (the test driver) get a clone while the domain is paused."""
        name = dom.name()
        if pause and dom.isActive():
            try:
                self._block_copy(dom, image)
                log.info("saved running %s as image %s (block copy)", name, image)
                return
            except Unsupported:
                log.info("%s: no block copy here; cloning while paused", name)
        paused = False
        try:
            if pause and dom.state()[0] == states.RUNNING:
                with self._errors(f"pausing {name} for a consistent copy"):
                    dom.suspend()
                paused = True
            self._clone(root[0], root[1], self.image_pool, f"{image}.qcow2")
        finally:
            if paused:
                with self._errors(f"resuming {name} after the copy"):
                    dom.resume()
        log.info("saved %s as image %s", name, image)

    def _block_copy(self, dom: libvirt.virDomain, image: str, timeout: float = 600.0) -> None:
        pool = self.image_pool
        with self._errors(f"reading pool {self.config.image_pool}"):
            root = ET.fromstring(pool.XMLDesc(0))
        directory = root.findtext("target/path")
        if not directory:
            raise Unsupported(f"pool {self.config.image_pool} has no directory for a block copy")
        path = os.path.join(directory, f"{image}.qcow2")
        dest = ET.Element("disk", {"type": "file"})
        ET.SubElement(dest, "driver", {"type": "qcow2"})
        ET.SubElement(dest, "source", {"file": path})
        with self._errors(f"copying the disk of {dom.name()} to {image}"):
            dom.blockCopy(
                "vda",
                ET.tostring(dest, encoding="unicode"),
                None,
                libvirt.VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB,
            )
            try:
                deadline = time.monotonic() + timeout
                while True:
                    info = dom.blockJobInfo("vda", 0)
                    if info and info.get("end", 0) > 0 and info.get("cur") == info.get("end"):
                        break
                    if not info or time.monotonic() > deadline:
                        raise PlatformError(f"the block copy of {dom.name()} did not finish")
                    time.sleep(0.2)
            finally:
                dom.blockJobAbort("vda", 0)
            pool.refresh(0)

    # ------------------------------------------------------------------ storage / network
    def _storage_state(self, entity: Resource, term: str, params: Mapping[str, Any]) -> Outcome:
        name = self._storage_volume_name(entity)
        vol = self._volume(self.volume_pool, name)
        if vol is None:
            raise NotFoundOnPlatform(f"volume {name} does not exist in pool {self.config.pool}")
        current = str(entity.attributes.get("occi.storage.state") or "offline")
        target = term
        self._check(machines.STORAGE, name, term, current)
        message = "online; ready to attach" if term == "online" else "offline"
        return Outcome(
            {
                "occi.storage.state": target,
                "occi.storage.state.message": message,
                "occi.storage.size": self._size_gb(vol),
            }
        )

    def _network_state(self, entity: Resource, term: str, params: Mapping[str, Any]) -> Outcome:
        name = platform_name(entity)
        net = self._network(name)
        if net is None:
            raise NotFoundOnPlatform(f"network {name} does not exist on {self.uri}")
        active = bool(net.isActive())
        self._check(machines.NETWORK, name, term, "active" if active else "inactive")
        if term == "up":
            with self._errors(f"starting network {name}"):
                net.create()
        else:
            with self._errors(f"stopping network {name}"):
                net.destroy()
        return self.observe(entity)

    # ================================================================== links
    def link(self, link: Link, source: Resource, target: Resource | None) -> Outcome:
        """Attach on the compute's host (the source's placement)."""
        with self._at(self.host_of(source)):
            return self._link(link, source, target)

    def _link(self, link: Link, source: Resource, target: Resource | None) -> Outcome:
        if link.kind not in (infra.STORAGELINK.id, infra.NETWORKINTERFACE.id):
            raise Unsupported(f"the libvirt backend cannot attach links of kind {link.kind}")
        if target is None:
            raise Unsupported(
                f"{link.kind.rsplit('#', 1)[-1]} targets must be resources of this server"
            )
        dom_name = platform_name(source)
        dom = self._require_domain(dom_name)
        md = self._metadata(dom, inactive=True)
        link_id = link.id or ""
        if link_id in md.links:
            return self.observe(link)
        occi, state, _, managed = self._compute_state(dom)
        if managed:
            raise InvalidTransition(
                f"compute {dom_name} is hibernated: start it before changing its devices"
            )
        running = state != states.SHUTOFF
        cfg = parse_domain(dom.XMLDesc(XML_INACTIVE))
        live = parse_domain(dom.XMLDesc(0)) if running else cfg
        if link.kind == infra.STORAGELINK.id:
            vol_name = self._storage_volume_name(target)
            vol = self._volume(self.volume_pool, vol_name)
            if vol is None:
                raise NotFoundOnPlatform(f"volume {vol_name} does not exist")
            used = {d["dev"] for d in cfg.disks} | {d["dev"] for d in live.disks}
            dev = str(link.attributes.get("occi.storagelink.deviceid") or "")
            if dev and dev in used:
                raise InvalidTransition(f"device {dev} is already in use on {dom_name}")
            dev = dev or next(n for n in disk_names() if n not in used)
            fmt = parse_volume(vol.XMLDesc(0))["format"]
            element = disk_element(DiskSpec(self.config.pool, vol_name, dev, format=fmt))
            info = {"kind": "disk", "dev": dev, "target": vol_name}
        else:
            net_name = platform_name(target)
            if self._network(net_name) is None:
                raise NotFoundOnPlatform(f"network {net_name} does not exist")
            used_macs = {n["mac"] for n in cfg.nics} | {n["mac"] for n in live.nics}
            mac = str(link.attributes.get("occi.networkinterface.mac") or mac_for(link_id)).lower()
            if mac in used_macs:
                raise InvalidTransition(f"MAC {mac} is already in use on {dom_name}")
            element = nic_element(NicSpec(net_name, mac))
            info = {"kind": "nic", "mac": mac, "target": net_name, "dev": f"eth{len(cfg.nics)}"}
        xml = ET.tostring(element, encoding="unicode")
        with self._errors(f"attaching {info['kind']} to {dom_name}"):
            if running:
                dom.attachDeviceFlags(xml, LIVE | CONFIG)
            else:
                self._edit_config(dom, lambda cur: with_device(cur, element), xml, attach=True)
        md = self._metadata(dom, inactive=True)
        md.links[link_id] = info
        self._set_metadata(dom, md)
        log.info("attached %s %s to %s", info["kind"], info.get("dev"), dom_name)
        return self.observe(link)

    def _edit_config(self, dom: libvirt.virDomain, edit, xml: str, *, attach: bool) -> None:
        """Change a stopped domain's persistent config: attach/detachDeviceFlags(CONFIG) where
        the driver has it, else a redefinition with the edited XML (the test driver)."""
        try:
            if attach:
                dom.attachDeviceFlags(xml, CONFIG)
            else:
                dom.detachDeviceFlags(xml, CONFIG)
            return
        except libvirt.libvirtError as exc:
            if exc.get_error_code() not in UNSUPPORTED:
                raise
        new = edit(dom.XMLDesc(XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE))
        if new is not None:
            self.conn.defineXML(new)

    def _link_info(self, link: Link) -> tuple[libvirt.virDomain | None, dict[str, str] | None]:
        dom_name = name_at(link.source)
        dom = self._domain(dom_name) if dom_name else None
        if dom is None:
            return None, None
        md = self._metadata(dom, inactive=True)
        info = md.links.get(link.id or "")
        if info is None:
            # not recorded by link(): the device its attributes name, if it is this link's
            # (a link whose attachment was refused names a device another link holds)
            a = link.attributes
            target = name_at(link.target) or ""
            with self._errors(f"reading domain {dom.name()}"):
                docs = [parse_domain(dom.XMLDesc(flags)) for flags in (XML_INACTIVE, 0)]
            if link.kind == infra.STORAGELINK.id and a.get("occi.storagelink.deviceid"):
                dev, volume = str(a["occi.storagelink.deviceid"]), storage_volume(target)
                if any(d["dev"] == dev and d["volume"] == volume for x in docs for d in x.disks):
                    info = {"kind": "disk", "dev": dev}
            elif link.kind == infra.NETWORKINTERFACE.id and a.get("occi.networkinterface.mac"):
                mac = str(a["occi.networkinterface.mac"]).lower()
                if any(n["mac"] == mac and n["network"] == target for x in docs for n in x.nics):
                    info = {"kind": "nic", "mac": mac}
        return dom, info

    @_on_host
    def unlink(self, link: Link) -> None:
        dom, info = self._link_info(link)
        if dom is None or info is None:
            return
        name = dom.name()
        key = {"disk_dev": info.get("dev")} if info["kind"] == "disk" else {"mac": info.get("mac")}
        with self._errors(f"detaching {info['kind']} from {name}"):
            running = dom.state()[0] != states.SHUTOFF
            live = _find_device(dom.XMLDesc(0), **key) if running else None
            if live is not None:
                # the guest is asked to release the device; libvirt may return before it has
                # (QEMU waits a few seconds): until it is gone, the detach is not done
                dom.detachDeviceFlags(live, LIVE)
                if _find_device(dom.XMLDesc(0), **key) is not None:
                    raise PlatformError(
                        f"{info['kind']} {info.get('dev') or info.get('mac')} is still in use "
                        f"by the running guest of {name}: it has not released it yet"
                    )
            cfg_dev = _find_device(dom.XMLDesc(XML_INACTIVE), **key)
            if cfg_dev is not None:
                self._edit_config(
                    dom, lambda cur: without_device(cur, **key), cfg_dev, attach=False
                )
        md = self._metadata(dom, inactive=True)
        if md.links.pop(link.id or "", None) is not None:
            self._set_metadata(dom, md)
        log.info("detached %s from %s", info["kind"], name)

    # ================================================================== observation
    @_on_host
    def observe(self, entity: Entity) -> Outcome:
        if isinstance(entity, Link) or entity.is_link:
            return self._observe_link(entity)  # type: ignore[arg-type]
        kind = self._kind(entity)
        name = platform_name(entity)
        if kind == "compute":
            return self._observe_compute(entity, name)
        if kind == "storage":
            vol_name = self._storage_volume_name(entity)
            vol = self._volume(self.volume_pool, vol_name)
            if vol is None:
                raise NotFoundOnPlatform(
                    f"volume {vol_name} does not exist in pool {self.config.pool}"
                )
            state = str(entity.attributes.get("occi.storage.state") or "offline")
            message = str(entity.attributes.get("occi.storage.state.message") or state)
            if state == "error":
                state, message = "offline", "offline; the volume is there again"
            return Outcome(
                {
                    "occi.storage.state": state,
                    "occi.storage.state.message": message,
                    "occi.storage.size": self._size_gb(vol),
                }
            )
        net = self._network(name)
        if net is None:
            raise NotFoundOnPlatform(f"network {name} does not exist on {self.uri}")
        with self._errors(f"reading network {name}"):
            active = bool(net.isActive())
            info = parse_network(net.XMLDesc(0))
        if active:
            where = f" on bridge {info['bridge']}" if info.get("bridge") else ""
            addr = f", gateway {info['gateway']}" if info.get("gateway") else ""
            message = f"up (isolated){where}{addr}"
        else:
            message = "down"
        return Outcome(
            {
                "occi.network.state": "active" if active else "inactive",
                "occi.network.state.message": message,
            }
        )

    def _observe_compute(self, entity: Entity, name: str) -> Outcome:
        dom = self._require_domain(name)
        with self._errors(f"reading domain {name}"):
            state, reason = dom.state()
            managed = bool(dom.hasManagedSaveImage(0)) if state == states.SHUTOFF else False
            md = self._metadata(dom, inactive=True)
            occi, message = states.with_pending(
                state, reason, managed, md.pending, time.time(), self.config.shutdown_timeout
            )
            if (
                state == states.SHUTOFF
                and not managed
                and md.last
                and str(reason) in md.last.get("reasons", "").split(",")
            ):
                message = md.last.get("message", message)
            cfg = parse_domain(dom.XMLDesc(XML_INACTIVE))
            dirty = False
            if state == states.SHUTOFF and md.pending:
                # the operation we asked for is over: remember how it ended, for later reads
                method = md.pending.get("method", "")
                md.last = {
                    "message": message,
                    "reasons": ",".join(STOP_REASONS.get(method, (str(reason),))),
                }
                md.pending = {}
                dirty = True
            if state == states.SHUTOFF and not managed and md.deferred_save:
                image = md.deferred_save.get("term", "")
                md.deferred_save = {}
                dirty = True
                root = self._root_volume(dom)
                if root is not None and image:
                    self._write_image(dom, root, image, pause=False)
                    message = f"{message}; saved as os_tpl {image}"
            if dirty:
                self._set_metadata(dom, md)
        return Outcome(
            {
                "occi.compute.state": occi,
                "occi.compute.state.message": message,
                "occi.compute.cores": cfg.cores,
                "occi.compute.memory": round(cfg.memory_kib / (1 << 20), 6),
            }
        )

    def _observe_link(self, link: Link) -> Outcome:
        dom, info = self._link_info(link)
        if dom is None or info is None:
            raise NotFoundOnPlatform(f"link {link.id} is not attached on {self.uri}")
        with self._errors(f"reading domain {dom.name()}"):
            state = dom.state()[0]
            running = state != states.SHUTOFF
            present = parse_domain(dom.XMLDesc(0 if running else XML_INACTIVE))
        dom_name = dom.name()
        if info["kind"] == "disk":
            if not any(d["dev"] == info.get("dev") for d in present.disks):
                raise NotFoundOnPlatform(f"disk {info.get('dev')} is not attached to {dom_name}")
            live = running and state != states.PAUSED
            message = (
                f"attached to running {dom_name} as {info['dev']}"
                if live
                else f"attached to {dom_name} as {info['dev']}; active while it runs"
            )
            return Outcome(
                {
                    "occi.storagelink.deviceid": info["dev"],
                    "occi.storagelink.state": "active" if live else "inactive",
                    "occi.storagelink.state.message": message,
                }
            )
        if not any(n["mac"] == info.get("mac") for n in present.nics):
            raise NotFoundOnPlatform(f"NIC {info.get('mac')} is not attached to {dom_name}")
        live = running and state != states.PAUSED
        dev = info.get("dev") or "eth0"
        message = (
            f"plugged into running {dom_name} ({info.get('target', '')})"
            if live
            else f"attached to {dom_name} on {info.get('target', '')}; active while it runs"
        )
        return Outcome(
            {
                "occi.networkinterface.interface": dev,
                "occi.networkinterface.mac": info["mac"],
                "occi.networkinterface.state": "active" if live else "inactive",
                "occi.networkinterface.state.message": message,
            }
        )

    # ================================================================== hosts
    def host_capacity(self, uri: str | None) -> HostCapacity:
        """What libvirt's getInfo says of the host at `uri`: active CPUs, memory, CPU speed.
        Raises Unreachable when the host does not answer (host monitoring asks this).

        A test-driver host (`test:///path/host.xml`) is its file: the connection this process
        holds keeps its machines in memory and would answer for ever, so the host is asked as
        a new client would, by opening it again (the driver reads the file then); a host whose
        file is gone does not answer, and answers again, machines and all, once it is back."""
        uri = uri or self.config.uri
        if _scheme(uri) == "test":
            try:
                libvirt.open(uri).close()
            except libvirt.libvirtError as exc:
                raise Unreachable(
                    f"cannot connect to libvirt host {uri}: {exc.get_error_message() or exc}"
                ) from None
        conn = self.connection(uri)
        try:
            _model, memory_mb, cpus, mhz, *_ = conn.getInfo()
        except libvirt.libvirtError as exc:
            raise Unreachable(
                f"libvirt host {uri} does not answer: {exc.get_error_message() or exc}"
            ) from None
        return HostCapacity(cores=int(cpus), memory_mb=int(memory_mb), cpu_mhz=int(mhz))

    def migrate(self, entity: Resource, target_uri: str | None, live: bool) -> Outcome:
        """Move a compute from its placement's host to `target_uri`, keeping its name and UUID.

        A running compute asked to move `live` goes by virDomainMigrate3 (live, persisted on
        the target, undefined on the source). Where that is unsupported (the test driver), and
        for a stopped compute or `live=False`, the move is offline: the running domain is
        destroyed, its definition made on the target and removed from the source, then started
        there again; the state message says so. Volumes and networks the domain needs are
        checked on the target before anything stops (see _provide_on)."""
        if self._kind(entity) != "compute":
            raise Unsupported("only computes move between hosts; storage and networks stay")
        source, target = self.host_of(entity), target_uri or self.config.uri
        name = platform_name(entity)
        if source == target:
            return self.observe(entity)
        with self._at(source):
            dom = self._domain(name)
        if dom is None:
            with self._at(target):
                if self._domain(name) is not None:  # moved already (a retried job)
                    return self._observe_compute(entity, name)
            raise NotFoundOnPlatform(f"domain {name} exists neither on {source} nor {target}")
        with self._at(source):
            occi, state, _, managed = self._compute_state(dom)
        if managed:
            raise InvalidTransition(
                f"compute {name} is hibernated on {source}: its memory image stays on that "
                "host; start it (or stop it) before moving it"
            )
        running = state != states.SHUTOFF
        if running and live:
            try:
                return self._migrate_live(entity, dom, source, target)
            except Unsupported as exc:
                log.info("%s; moving %s offline", exc, name)
        return self._move_offline(entity, dom, source, target, running)

    def _migrate_live(
        self, entity: Resource, dom: libvirt.virDomain, source: str, target: str
    ) -> Outcome:
        name = dom.name()
        flags = (
            libvirt.VIR_MIGRATE_LIVE
            | libvirt.VIR_MIGRATE_PERSIST_DEST
            | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
        )
        dconn = self.connection(target)
        try:
            dom.migrate3(dconn, {}, flags)
        except libvirt.libvirtError as exc:
            fault = translate(exc, f"migrating {name} live from {source} to {target}")
            if not isinstance(fault, Unsupported):
                log.warning("libvirt: %s", fault)
            raise fault from None
        log.info("migrated %s live from %s to %s", name, source, target)
        with self._at(target):
            out = self._observe_compute(entity, name)
        # users never see hosts: the message says what happened, not where
        out.attributes["occi.compute.state.message"] = "running; migrated live to another host"
        return out

    def _move_offline(
        self,
        entity: Resource,
        dom: libvirt.virDomain,
        source: str,
        target: str,
        running: bool,
    ) -> Outcome:
        name = dom.name()
        with self._at(source), self._errors(f"reading domain {name} on {source}"):
            xml = dom.XMLDesc(XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
        copied = self._provide_on(target, source, parse_domain(xml))
        with self._at(source), self._errors(f"stopping {name} on {source} to move it"):
            if dom.isActive():
                dom.destroy()
        with self._at(target), self._errors(f"defining {name} on {target}"):
            moved = self.conn.defineXML(xml)
        with self._at(source):
            self._undefine(dom, name)
            pool = self._existing_volume_pool()
            for vol in copied:  # the compute's own disks went with it; storage volumes stay
                if pool is not None and vol.startswith(f"{name}-"):
                    self._delete_volume(pool, vol)
        if running:
            with self._at(target), self._errors(f"starting {name} on {target}"):
                moved.create()
        log.info("moved %s offline from %s to %s (running: %s)", name, source, target, running)
        with self._at(target):
            out = self._observe_compute(entity, name)
        # users never see hosts: the message says what happened, not where
        out.attributes["occi.compute.state.message"] = (
            "running; stopped, moved to another host and started again (no live migration "
            "between these hosts)"
            if running
            else "inactive; moved to another host while stopped"
        )
        return out

    def _provide_on(self, target: str, source: str, spec: Any) -> list[str]:
        """Make sure the volumes and networks of a domain (parsed XML) exist on the target.

        Hosts of a real cluster share their storage pools (NFS, Ceph, iSCSI, ...): the volume
        is there already. On the test driver every host has its own pools: a missing volume
        is made there with the same name, size and format (the test driver holds no data).
        Elsewhere a missing volume refuses the move before anything stopped. A network the
        target lacks is defined there from the source's definition (and started if it runs
        there). Returns the names of the volumes it made."""
        copied: list[str] = []
        per_host = _scheme(target) == "test"
        for disk in spec.disks:
            if not (disk["pool"] and disk["volume"]):
                continue
            with self._at(target):
                dst_pool = self._pool(disk["pool"])
                if self._volume(dst_pool, disk["volume"]) is not None:
                    continue
            if not per_host:
                raise PlatformError(
                    f"volume {disk['volume']} is not in pool {disk['pool']} on {target}: the "
                    "hosts of a cluster need shared storage to move a compute"
                )
            with self._at(source):
                src = self._volume(self._pool(disk["pool"]), disk["volume"])
                if src is None:
                    raise NotFoundOnPlatform(f"volume {disk['volume']} is gone from {source}")
                with self._errors(f"reading volume {disk['volume']}"):
                    info = parse_volume(src.XMLDesc(0))
            with self._at(target), self._errors(f"making volume {disk['volume']} on {target}"):
                dst_pool.createXML(volume_xml(info["name"], info["capacity"], info["format"]), 0)
            copied.append(disk["volume"])
        for nic in spec.nics:
            if not nic["network"]:
                continue
            with self._at(target):
                if self._network(nic["network"]) is not None:
                    continue
            with self._at(source):
                net = self._network(nic["network"])
                if net is None:
                    raise NotFoundOnPlatform(f"network {nic['network']} is gone from {source}")
                with self._errors(f"reading network {nic['network']}"):
                    net_xml, active = net.XMLDesc(0), bool(net.isActive())
            with self._at(target), self._errors(f"defining network {nic['network']} on {target}"):
                made = self.conn.networkDefineXML(net_xml)
                if active:
                    made.create()
        return copied

    # ================================================================== lifecycle
    def start_events(self, callback: EventCallback) -> bool:
        """Watch the default host, every host opened so far and those opened later."""
        with self._lock:
            if self._callback is not None:
                return True
            self._callback = callback
            uris = [self.config.uri, *self._conns]
        ok = False
        for uri in dict.fromkeys(uris):
            ok = self._watch(uri) or ok
        if not ok:
            with self._lock:
                self._callback = None
        return ok

    def _watch(self, uri: str) -> bool:
        """Start the event watcher of one host, once (when events are on)."""
        with self._lock:
            callback = self._callback
            if callback is None:
                return False
            if uri in self._watchers:
                return True
            shared = (lambda: self.connection(uri)) if _scheme(uri) == "test" else None
            watcher = EventWatcher(uri, callback, shared=shared)
            self._watchers[uri] = watcher
        try:
            watcher.start()
        except (libvirt.libvirtError, BackendFault) as exc:
            log.warning("no libvirt events from %s: %s", uri, exc)
            with self._lock:
                self._watchers.pop(uri, None)
            return False
        return True

    def stop_events(self) -> None:
        with self._lock:
            watchers = list(self._watchers.values())
            self._watchers, self._callback = {}, None
        for watcher in watchers:
            watcher.stop()

    def ping(self) -> bool:
        try:
            self.connection().getLibVersion()
            return True
        except (libvirt.libvirtError, BackendFault):
            log.warning("libvirt at %s does not answer", self.config.uri, exc_info=True)
            return False

    def close(self) -> None:
        self.stop_events()
        with self._lock:
            conns = list(self._conns.values()) if self._conn_pid == os.getpid() else []
            self._conns = {}
        for conn in conns:
            try:
                conn.close()
            except libvirt.libvirtError:
                pass


def _scheme(uri: str) -> str:
    """'test:///x.xml' -> 'test', 'qemu+ssh://h/system' -> 'qemu' (the driver)."""
    return uri.split(":", 1)[0].split("+", 1)[0]


def _find_device(xml: str, *, disk_dev: str | None = None, mac: str | None = None) -> str | None:
    """The XML of the disk at `disk_dev` or the NIC with `mac` in a domain document."""
    root = ET.fromstring(xml)
    for el in root.findall("devices/*"):
        if disk_dev and el.tag == "disk":
            tgt = el.find("target")
            if tgt is not None and tgt.get("dev") == disk_dev:
                return ET.tostring(el, encoding="unicode")
        if mac and el.tag == "interface":
            m = el.find("mac")
            if m is not None and m.get("address", "").lower() == mac.lower():
                return ET.tostring(el, encoding="unicode")
    return None
