"""What every part of the vSphere backend shares: finding the VM of an entity (by the instance
UUID derived from its id), reading a VM in one property-collector call, reconfiguring it, and
running a vSphere task as the contract's pending work.

Identity: a VM's config.instanceUuid is the entity's id when that is a UUID, else a UUID made
from it (uuid5), and its extraConfig holds `occi.entity_id`; SearchIndex.FindByUuid finds it, so
a retried create finds the VM the first attempt made (vCenter allows duplicate names).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pyVmomi import vim, vmodl

from backends import common
from backends.base import NotFoundOnPlatform, Outcome, Pending
from backends.vsphere import devices
from backends.vsphere.config import VsphereConfig
from backends.vsphere.session import Session

log = logging.getLogger(__name__)

#: namespace of the instance UUIDs made from entity ids that are not UUIDs themselves
NAMESPACE = uuid.UUID("6f1c9a52-3d1e-4c55-9c1b-0cc1a7e5e001")
#: seconds before the first look at a task answered as Pending (then every second)
FIRST_POLL = 0.2
VM_PATHS = [
    "name",
    "config.instanceUuid",
    "config.template",
    "config.extraConfig",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "config.hardware.device",
    "config.cpuHotAddEnabled",
    "config.memoryHotAddEnabled",
    "runtime.powerState",
    "runtime.connectionState",
    "runtime.host",
]


def instance_uuid(entity_id: str) -> str:
    """The instance UUID of the VM of this entity: its id if that is a UUID, else one made from it."""
    try:
        return str(uuid.UUID(entity_id))
    except ValueError:
        return str(uuid.uuid5(NAMESPACE, entity_id))


def entity_id_of(location: str | None) -> str | None:
    """The entity id at a location ('/compute/abc' -> 'abc')."""
    name = common.name_at(location)
    return name[len(common.PREFIX) :] if name else None


@dataclass
class Vm:
    """A VM as read in one call: the managed object and its VM_PATHS properties."""

    obj: Any
    props: dict[str, Any]
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.extra = devices.extra_dict(self.props.get("config.extraConfig"))

    @property
    def name(self) -> str:
        return str(self.props.get("name") or self.obj._moId)

    @property
    def power(self) -> str:
        return str(self.props.get("runtime.powerState") or "")

    @property
    def host(self) -> str | None:
        host = self.props.get("runtime.host")
        return host._moId if host is not None else None

    @property
    def devices(self) -> list[Any]:
        return list(self.props.get("config.hardware.device") or [])

    @property
    def cores(self) -> int:
        return int(self.props.get("config.hardware.numCPU") or 0)

    @property
    def memory_mb(self) -> int:
        return int(self.props.get("config.hardware.memoryMB") or 0)


class Core:
    """Shared state and helpers of the backend's parts (set up by VsphereBackend.__init__)."""

    config: VsphereConfig
    session: Session
    name: str

    # ------------------------------------------------------------------ VMs
    def read_vm(self, obj: Any) -> Vm:
        return Vm(obj, self.session.props(obj, VM_PATHS))

    def find_vm(self, entity_id: str, ref: str | None = None) -> Vm | None:
        """The VM of an entity: at its platform_ref if that is still it, else by instance UUID."""
        wanted = instance_uuid(entity_id)

        def look() -> Vm | None:
            if ref:
                try:
                    vm = self.read_vm(self.session.ref(vim.VirtualMachine, ref))
                    if str(vm.props.get("config.instanceUuid") or "").lower() == wanted:
                        return vm
                except vmodl.fault.ManagedObjectNotFound:
                    pass
            found = self.session.content.searchIndex.FindByUuid(
                datacenter=self.session.datacenter, uuid=wanted, vmSearch=True, instanceUuid=True
            )
            if found is None:
                return None
            vm = self.read_vm(found)
            return None if vm.props.get("config.template") else vm

        return self.session.call(f"looking up the VM of {entity_id}", look)

    def vm_of(self, entity: Any, strict: bool = True) -> Vm:
        """The VM of a compute entity; NotFoundOnPlatform when there is none, or (`strict`)
        when it is not on the host its placement names."""
        placement = getattr(entity, "placement", None)
        vm = self.find_vm(str(entity.id), getattr(placement, "platform_ref", None))
        name = common.platform_name(entity)
        if vm is None:
            raise NotFoundOnPlatform(f"VM {name} does not exist")
        host_uri = getattr(placement, "host_uri", None)
        if strict and host_uri and vm.host != host_uri:
            where = getattr(placement, "host_name", None) or host_uri
            raise NotFoundOnPlatform(f"VM {name} is not on host {where}")
        return vm

    def reconfigure(self, vm: Vm, doing: str, **spec: Any) -> None:
        """ReconfigVM_Task with these ConfigSpec fields, waited for."""
        config = vim.vm.ConfigSpec(**spec)
        self.session.run(doing, lambda: vm.obj.ReconfigVM_Task(spec=config))

    def set_extra(self, vm: Vm, values: Mapping[str, str | None], doing: str) -> None:
        """Set (None: remove) extraConfig keys of ours."""
        changed = {k: v for k, v in values.items() if vm.extra.get(k) != (v or None)}
        if changed:
            self.reconfigure(vm, doing, extraConfig=devices.option_values(changed))

    # ------------------------------------------------------------------ long tasks
    def started(
        self,
        handle: dict[str, Any],
        doing: str,
        start: Callable[[], Any],
        finish: Callable[[], Outcome | None],
    ) -> Outcome | Pending | None:
        """Start a vSphere task; if it ends within task_wait seconds, the operation's result
        (`finish`), else Pending with a handle naming the task and what finishes it
        (VsphereBackend.poll). task_wait 0: Pending at once, without a look."""
        task = self.session.call(doing, start)
        if self.config.task_wait > 0:
            done, _ = self.session.call(
                doing, lambda: self.session.wait(task, self.config.task_wait, doing)
            )
            if done:
                return finish()
        handle = {**handle, "t": task._moId}
        message = str(handle.get("m") or f"{doing}: vSphere task under way")
        return Pending(json.dumps(handle, sort_keys=True), poll_after=FIRST_POLL, message=message)
