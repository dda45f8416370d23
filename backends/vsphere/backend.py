"""The vSphere backend: VMs, virtual disks and port groups of one vCenter cluster (or one
standalone ESXi host) through pyvmomi, implementing the typed contract directly.

The parts live beside this module (compute, volumes, links over core and session); this one
holds what is the backend's as a whole: templates, observe, long tasks (poll), the hosts of the
cluster (discovery, capacity, vMotion) and events. backends/README.md maps OCCI onto vSphere.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

from pyVmomi import vim

from backends.base import (
    CAPABILITIES,
    CORES,
    MEMORY,
    SIZE,
    STORAGE_RESIZE,
    Backend,
    DiscoveredHost,
    EventCallback,
    HostCapacity,
    InvalidTransition,
    NotFoundOnPlatform,
    Outcome,
    Pending,
    PlatformError,
    Unreachable,
    Unsupported,
    kind_of,
)
from backends.vsphere import catalog, guestinfo
from backends.vsphere.compute import ComputeOps
from backends.vsphere.config import VsphereConfig
from backends.vsphere.events import EventWatcher
from backends.vsphere.links import LinkOps
from backends.vsphere.session import Session, guarded
from occi.model import Entity, Link, Mixin, Resource

log = logging.getLogger(__name__)
MIB = 1 << 20
#: a path no datastore has: extending it tells whether the endpoint can extend disks at all
PROBE_DISK = "[occi-probe] occi-probe/occi-probe.vmdk"


class VsphereBackend(ComputeOps, LinkOps, Backend):
    name = "vsphere"
    live_attributes = frozenset({CORES, MEMORY})

    def __init__(self, settings: Mapping[str, Any] | None = None):
        Backend.__init__(self, settings)
        self.config = VsphereConfig.from_settings(self.settings)
        self.session = Session(self.config)
        self._capabilities: frozenset[str] | None = None
        self._events: EventWatcher | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ capabilities
    @property
    def capabilities(self) -> frozenset[str]:
        """All of them, but storage.resize only where the endpoint extends detached virtual
        disks (the simulator does not: there, only attached disks grow, through their VM);
        found out on first use, once per backend."""
        if self._capabilities is None:
            s = self.session
            try:
                s.call(
                    "probing ExtendVirtualDisk_Task",
                    lambda: s.content.virtualDiskManager.ExtendVirtualDisk_Task(
                        name=PROBE_DISK,
                        datacenter=s.datacenter,
                        newCapacityKb=1024,
                        eagerZero=False,
                    ),
                )
                self._capabilities = CAPABILITIES
            except Unsupported:
                self._capabilities = CAPABILITIES - {STORAGE_RESIZE}
            except Unreachable:
                return CAPABILITIES
            except (PlatformError, NotFoundOnPlatform, InvalidTransition):
                self._capabilities = CAPABILITIES
        return self._capabilities

    @capabilities.setter
    def capabilities(self, value: frozenset[str]) -> None:
        self._capabilities = frozenset(value)

    def extends_detached_disks(self) -> bool:
        return STORAGE_RESIZE in self.capabilities

    def update(self, entity: Resource, changed: Mapping[str, Any]) -> Outcome | Pending:
        """Changes beyond the sizes: a compute's hostname, user data or key rewrite its
        guestinfo (read by cloud-init at its next boot); a network's VLAN and addresses are
        set when its port group is made (Unsupported after); other attributes are OCCI's."""
        kind = kind_of(entity)
        if kind == "network" and {"occi.network.vlan", "occi.network.address"} & set(changed):
            raise Unsupported("a vSphere port group's VLAN is set when the network is made")
        out: Outcome | Pending | None = None
        if kind == "compute":
            if {guestinfo.USERDATA_KEY, guestinfo.SSH_KEY, "occi.compute.hostname"} & set(changed):
                vm = self.vm_of(entity)
                name, a = vm.name, entity.attributes
                keys: dict[str, str | None] = {
                    k: None for k in vm.extra if k.startswith("guestinfo.") and "data" in k
                }
                keys.update(guestinfo.extra_config(str(entity.id), name, a))
                self.set_extra(vm, keys, f"writing the guestinfo of {name}")
            if CORES in changed or MEMORY in changed:
                cores = changed.get(CORES)
                memory = changed.get(MEMORY)
                out = self.compute_resize(
                    entity,
                    None if cores is None else int(cores),
                    None if memory is None else float(memory),
                )
        elif kind == "storage" and changed.get(SIZE) is not None:
            out = self.storage_resize(entity, float(changed[SIZE]))
        return out if out is not None else self.observe(entity)

    # ------------------------------------------------------------------ templates
    def provider_mixins(self) -> list[Mixin]:
        return catalog.mixins(self.config.os_tpl_scheme, self.templates())

    # ------------------------------------------------------------------ reading
    def observe(self, entity: Entity) -> Outcome:
        if isinstance(entity, Link) or entity.is_link:
            return self.observe_link(entity)  # type: ignore[arg-type]
        assert isinstance(entity, Resource)
        kind = kind_of(entity)
        if kind == "compute":
            return self.compute_outcome(entity)
        if kind == "storage":
            return self.storage_outcome(entity)
        if kind == "network":
            return self.network_outcome(entity)
        raise NotFoundOnPlatform(f"the vSphere platform has no {entity.kind}")

    def poll(self, entity: Entity, handle: str) -> Outcome | Pending:
        try:
            h = json.loads(handle)
            task = self.session.ref(vim.Task, str(h["t"]))
            op = str(h["op"])
        except (ValueError, KeyError, TypeError):
            raise PlatformError(f"not a vSphere task handle: {handle[:100]}") from None
        doing = f"vSphere task {h['t']} ({op})"
        done, _ = self.session.call(doing, lambda: self.session.wait(task, 0, doing))
        if not done:
            return Pending(handle, poll_after=1.0, message=str(h.get("m") or ""))
        assert isinstance(entity, Resource)
        message = h.get("m")
        if op == "create":
            return self.finish_create(entity)
        if op in ("power", "migrate"):
            vm = self.vm_of(entity, strict=op != "migrate")
            return self.compute_outcome(entity, vm, message)
        if op == "save":
            return self.saved(entity, str(h["n"]))
        if op == "storage":
            return self.storage_outcome(entity, state="offline")
        if op == "network":
            return self.network_outcome(entity, "inactive")
        return Outcome()  # delete

    def ping(self) -> bool:
        try:
            self.session.call("asking vSphere the time", lambda: self.session.si.CurrentTime())
        except PlatformError:
            return False
        return True

    def close(self) -> None:
        self.stop_events()
        self.session.close()

    # ------------------------------------------------------------------ hosts
    def _capacity(self, p: Mapping[str, Any]) -> HostCapacity | None:
        hw = p.get("summary.hardware")
        if hw is None:
            return None
        cores = int(hw.numCpuThreads or hw.numCpuCores or 0)
        return HostCapacity(cores, int(hw.memorySize or 0) // MIB, int(hw.cpuMhz or 0))

    def host_capacity(self, uri: str | None) -> HostCapacity | None:
        s = self.session
        if uri is None:
            hosts = s.call("listing the hosts", s.hosts)
            if len(hosts) != 1:
                return None
            uri = hosts[0]._moId
        host = s.ref(vim.HostSystem, uri)
        paths = ["name", "summary.hardware", "runtime.connectionState"]
        try:
            p = s.call(f"reading host {uri}", lambda: s.props(host, paths))
        except NotFoundOnPlatform as exc:
            raise Unreachable(f"host {uri} is not known to vSphere: {exc}") from None
        state = p.get("runtime.connectionState")
        if state != "connected":
            raise Unreachable(f"host {p.get('name', uri)} is {state} in vCenter")
        return self._capacity(p)

    def discover_hosts(self) -> list[DiscoveredHost] | None:
        s = self.session

        def listed() -> list[DiscoveredHost]:
            out = []
            for host in s.hosts():
                p = s.props(host, ["name", "summary.hardware"])
                capacity = self._capacity(p)
                if capacity is not None:
                    out.append(DiscoveredHost(str(p["name"]), host._moId, capacity))
            return out

        return s.call("listing the cluster's hosts", listed)

    def host_maintenance(self, uri: str | None, entering: bool) -> None:
        """EnterMaintenanceMode_Task (the server moved the VMs away with RelocateVM_Task
        first) or ExitMaintenanceMode_Task, waited for up to task_wait seconds (vCenter goes on
        with it after that)."""
        s = self.session
        if uri is None:
            return
        host = s.ref(vim.HostSystem, uri)
        mode = s.call(f"reading host {uri}", lambda: s.props(host, ["runtime.inMaintenanceMode"]))
        if bool(mode.get("runtime.inMaintenanceMode")) == entering:
            return
        doing = f"{'entering' if entering else 'leaving'} maintenance mode on host {uri}"
        if entering:
            task = s.call(doing, lambda: host.EnterMaintenanceMode_Task(timeout=0))
        else:
            task = s.call(doing, lambda: host.ExitMaintenanceMode_Task(timeout=0))
        s.call(doing, lambda: s.wait(task, self.config.task_wait, doing))

    def compute_migrate(
        self, entity: Resource, target_uri: str | None, live: bool
    ) -> Outcome | Pending:
        vm = self.vm_of(entity, strict=False)
        if not target_uri or vm.host == target_uri:
            return self.compute_outcome(entity, vm)
        s = self.session
        spec = vim.vm.RelocateSpec(host=s.ref(vim.HostSystem, target_uri), pool=s.pool)
        if vm.power == "poweredOn" and not live:
            s.run(f"powering {vm.name} off to move it", lambda: vm.obj.PowerOffVM_Task())
            s.run(f"moving {vm.name}", lambda: vm.obj.RelocateVM_Task(spec))
            s.run(f"powering {vm.name} on again", lambda: vm.obj.PowerOnVM_Task())
            message = "running; stopped, moved to another host and started again"
            return self.compute_outcome(entity, self.read_vm(vm.obj), message)
        message = "running; moved live (vMotion)" if vm.power == "poweredOn" else ""
        return self.started(  # type: ignore[return-value]
            {"op": "migrate", "m": message},
            f"moving {vm.name} to another host",
            lambda: vm.obj.RelocateVM_Task(spec),
            lambda: self.compute_outcome(entity, self.read_vm(vm.obj), message),
        )

    # ------------------------------------------------------------------ events
    def start_events(self, callback: EventCallback) -> bool:
        with self._lock:
            if self._events is None:
                self._events = EventWatcher(self.config, callback)
                self._events.start()
        return True

    def stop_events(self) -> None:
        with self._lock:
            watcher, self._events = self._events, None
        if watcher is not None:
            watcher.stop()


#: the backend's entry points, each turning what pyvmomi raises into the contract's faults
GUARDED = (
    "update",
    "provider_mixins",
    "observe",
    "poll",
    "compute_create",
    "compute_start",
    "compute_stop",
    "compute_restart",
    "compute_suspend",
    "compute_save",
    "compute_resize",
    "compute_delete",
    "compute_migrate",
    "storage_create",
    "storage_resize",
    "storage_online",
    "storage_offline",
    "storage_delete",
    "network_create",
    "network_up",
    "network_down",
    "network_delete",
    "link_attach",
    "link_detach",
    "delete_image",
    "host_capacity",
    "discover_hosts",
    "host_maintenance",
)
for _name in GUARDED:
    setattr(VsphereBackend, _name, guarded(getattr(VsphereBackend, _name)))
