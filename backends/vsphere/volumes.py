"""Storage as virtual disks on the datastore (`[datastore] occi/occi-<id>.vmdk`, made by the
VirtualDiskManager).

A disk has no online/offline of its own in vSphere: that state is OCCI's, kept in the entity.
A disk's size is read from the datastore browser where vSphere reports it (the simulator does
not; the entity's size stands then).
"""

from __future__ import annotations

from typing import Any

from pyVmomi import vim

from backends import common
from backends.base import (
    InvalidTransition,
    NotFoundOnPlatform,
    Outcome,
    Pending,
    PlatformError,
    Unsupported,
)
from backends.vsphere import devices
from backends.vsphere.core import Core, Vm
from occi.model import Resource

KB_PER_GB = 1024 * 1024
SIZE = "occi.storage.size"


class VolumeOps(Core):
    # ------------------------------------------------------------------ storage
    def volume_path(self, entity: Resource) -> str:
        return devices.volume_path(self.session.datastore_name, common.platform_name(entity))

    def volume_info(self, path: str) -> dict[str, Any] | None:
        """{"capacity_kb": int | None} of the disk at `path`, None when there is none."""
        folder, _, file = path.rpartition("/")
        ds = self.session.datastore
        query = vim.host.DatastoreBrowser.VmDiskQuery(
            details=vim.host.DatastoreBrowser.VmDiskQuery.Details(capacityKb=True)
        )
        spec = vim.host.DatastoreBrowser.SearchSpec(matchPattern=[file], query=[query])
        try:
            result = self.session.run(
                f"looking for disk {path}",
                lambda: ds.browser.SearchDatastore_Task(datastorePath=folder, searchSpec=spec),
            )
        except NotFoundOnPlatform:  # no folder yet
            return None
        for info in getattr(result, "file", None) or []:
            if info.path == file:
                return {"capacity_kb": getattr(info, "capacityKb", None) or None}
        return None

    def storage_outcome(
        self, entity: Resource, info: dict[str, Any] | None = None, state: str | None = None
    ) -> Outcome:
        path = self.volume_path(entity)
        info = info if info is not None else self.volume_info(path)
        if info is None:
            raise NotFoundOnPlatform(f"disk {path} does not exist")
        a = entity.attributes
        state = state or str(a.get("occi.storage.state") or "offline")
        known_kb = info.get("capacity_kb")
        if not known_kb:  # the simulator's browser does not say: an attached disk does
            known_kb = next((d.capacityInKB for _, d in self.holders(path)), None)
        size = round(known_kb / KB_PER_GB, 3) if known_kb else float(a.get(SIZE) or 0)
        return Outcome(
            {
                "occi.storage.state": state,
                "occi.storage.state.message": f"{state}; virtual disk {path}",
                "occi.storage.size": size,
            }
        )

    def storage_create(self, entity: Resource) -> Outcome | Pending:
        path = self.volume_path(entity)
        info = self.volume_info(path)
        if info is not None:
            return self.storage_outcome(entity, info)
        s = self.session
        try:
            s.call(
                "making the volumes' folder",
                lambda: s.content.fileManager.MakeDirectory(
                    name=f"[{s.datastore_name}] {devices.VOLUME_DIR}",
                    datacenter=s.datacenter,
                    createParentDirectories=True,
                ),
            )
        except PlatformError as exc:
            if "FileAlreadyExists" not in str(exc):
                raise
        size_kb = int(float(entity.attributes.get("occi.storage.size") or 1) * KB_PER_GB)
        spec = vim.VirtualDiskManager.FileBackedVirtualDiskSpec(
            diskType="thin", adapterType="lsiLogic", capacityKb=size_kb
        )
        return self.started(  # type: ignore[return-value]
            {"op": "storage"},
            f"creating disk {path}",
            lambda: s.content.virtualDiskManager.CreateVirtualDisk_Task(
                name=path, datacenter=s.datacenter, spec=spec
            ),
            lambda: self.storage_outcome(entity, state="offline"),
        )

    def holders(self, path: str) -> list[tuple[Vm, Any]]:
        """The VMs the disk at `path` is attached to, with the disk device."""
        found = self.session.call(
            f"looking for the VMs using {path}",
            lambda: self.session.all_of(vim.VirtualMachine, ["config.hardware.device"]),
        )
        out = []
        for obj, p in found:
            disk = devices.find_disk(p.get("config.hardware.device") or [], path)
            if disk is not None:
                out.append((self.read_vm(obj), disk))
        return out

    def storage_resize(self, entity: Resource, size_gb: float) -> Outcome | Pending:
        path = self.volume_path(entity)
        info = self.volume_info(path)
        if info is None:
            raise NotFoundOnPlatform(f"disk {path} does not exist")
        held = self.holders(path)
        known_kb = info.get("capacity_kb") or (held[0][1].capacityInKB if held else None)
        # what vSphere says, else (the simulator, a detached disk) the size stored before
        current = known_kb / KB_PER_GB if known_kb else float(entity.attributes.get(SIZE) or 0)
        if size_gb < current:
            raise InvalidTransition(f"disk {path} has {current:g} GB: it can only grow")
        if known_kb and size_gb == current:
            return self.storage_outcome(entity, info)
        size_kb = int(size_gb * KB_PER_GB)
        if held:  # grown through its VM, as vSphere grows an attached disk
            vm, disk = held[0]
            disk.capacityInKB = size_kb
            disk.capacityInBytes = size_kb * 1024
            spec = vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk)
            self.reconfigure(vm, f"growing disk {path}", deviceChange=[spec])
        elif not self.extends_detached_disks():
            raise Unsupported(
                f"this vSphere endpoint cannot extend a detached virtual disk ({path}): "
                "attach it to a compute to grow it"
            )
        else:
            s = self.session
            s.run(
                f"growing disk {path}",
                lambda: s.content.virtualDiskManager.ExtendVirtualDisk_Task(
                    name=path, datacenter=s.datacenter, newCapacityKb=size_kb, eagerZero=False
                ),
            )
        out = self.storage_outcome(entity)
        out.attributes[SIZE] = size_gb
        return out

    def extends_detached_disks(self) -> bool:
        """Whether the endpoint has ExtendVirtualDisk_Task (VsphereBackend probes it)."""
        return True

    def _storage_state(self, entity: Resource, wanted: str) -> Outcome:
        self.storage_outcome(entity)
        if entity.attributes.get("occi.storage.state") == wanted:
            raise InvalidTransition(f"storage {entity.id} is {wanted} already")
        return self.storage_outcome(entity, state=wanted)

    def storage_online(self, entity: Resource) -> Outcome:
        return self._storage_state(entity, "online")

    def storage_offline(self, entity: Resource) -> Outcome:
        return self._storage_state(entity, "offline")

    def storage_delete(self, entity: Resource) -> Pending | None:
        path = self.volume_path(entity)
        if self.volume_info(path) is None:
            return None
        for vm, disk in self.holders(path):  # detached first: the VMs run on without it
            self.detach_devices(vm, [disk], f"detaching {path} from {vm.name}")
        s = self.session
        try:
            s.run(
                f"deleting disk {path}",
                lambda: s.content.virtualDiskManager.DeleteVirtualDisk_Task(
                    name=path, datacenter=s.datacenter
                ),
            )
        except NotFoundOnPlatform:
            pass
        return None

    def detach_devices(self, vm: Vm, gone: list[Any], doing: str) -> None:
        """Take devices off a VM and forget the link records naming them."""
        files = {devices.disk_file(d) for d in gone}
        macs = {str(getattr(d, "macAddress", "") or "").lower() for d in gone}
        forget = {
            devices.link_key(lid): None
            for lid, r in devices.link_records(vm.extra).items()
            if r.get("file") in files or str(r.get("mac", "")).lower() in macs
        }
        self.reconfigure(
            vm,
            doing,
            deviceChange=[devices.remove(d) for d in gone],
            extraConfig=devices.option_values(forget),
        )
