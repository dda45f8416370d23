"""Links as VM devices: a storagelink attaches the storage's virtual disk to the VM's SCSI
controller, a networkinterface adds a vmxnet3 NIC on the network's port group with a MAC of
VMware's manual range (or the one given).

Each link is recorded in the VM's extraConfig (`occi.link.<link id>`: kind, device id, file or
MAC), so a retried attach finds it and a detach takes off exactly its device. Running VMs get
the device live (vSphere hot-adds SCSI disks and NICs), stopped ones in their configuration.
"""

from __future__ import annotations

from typing import Any

from pyVmomi import vim

from backends import common
from backends.base import InvalidTransition, NotFoundOnPlatform, Outcome, Pending, Unsupported
from backends.vsphere import devices
from backends.vsphere.core import Vm, entity_id_of
from backends.vsphere.networks import NetworkOps
from backends.vsphere.volumes import KB_PER_GB, VolumeOps
from occi import infrastructure as infra
from occi.model import Link, Resource


class LinkOps(VolumeOps, NetworkOps):
    def link_vm(self, link: Link) -> Vm | None:
        """The VM of the link's compute (None: there is none)."""
        cid = entity_id_of(link.source)
        return self.find_vm(cid) if cid else None

    def link_outcome(self, link: Link, vm: Vm, record: dict[str, Any]) -> Outcome:
        running = vm.power == "poweredOn"
        state = "active" if running else "inactive"
        tail = "" if running else "; active while it runs"
        if record["k"] == "disk":
            return Outcome(
                {
                    "occi.storagelink.deviceid": record["dev"],
                    "occi.storagelink.state": state,
                    "occi.storagelink.state.message": f"attached to {vm.name} as "
                    f"{record['dev']}{tail}",
                }
            )
        return Outcome(
            {
                "occi.networkinterface.interface": record["dev"],
                "occi.networkinterface.mac": record["mac"],
                "occi.networkinterface.state": state,
                "occi.networkinterface.state.message": f"{record['dev']} of {vm.name}{tail}",
            }
        )

    def _present(self, vm: Vm, record: dict[str, Any]) -> Any:
        if record.get("k") == "disk":
            return devices.find_disk(vm.devices, str(record.get("file")))
        return devices.find_nic(vm.devices, str(record.get("mac")))

    def observe_link(self, link: Link) -> Outcome:
        vm = self.link_vm(link)
        record = devices.link_records(vm.extra).get(str(link.id)) if vm is not None else None
        if vm is None or record is None or self._present(vm, record) is None:
            raise NotFoundOnPlatform(f"link {str(link.id)} is not attached")
        return self.link_outcome(link, vm, record)

    def link_attach(
        self, link: Link, source: Resource, target: Resource | None
    ) -> Outcome | Pending:
        if link.kind not in (infra.STORAGELINK.id, infra.NETWORKINTERFACE.id):
            raise Unsupported(f"the vSphere platform has no device for links of kind {link.kind}")
        if target is None:
            raise Unsupported("a link to a resource outside this server has no vSphere device")
        vm = self.vm_of(source)
        records = devices.link_records(vm.extra)
        mine = records.get(str(link.id))
        if mine is not None and self._present(vm, mine) is not None:
            return self.link_outcome(link, vm, mine)
        if vm.power == "suspended":
            raise InvalidTransition(f"VM {vm.name} is suspended: resume or stop it first")
        if link.kind == infra.STORAGELINK.id:
            return self._attach_disk(link, vm, records, target)
        return self._attach_nic(link, vm, records, target)

    def _device_id(
        self, link: Link, records: dict[str, dict[str, Any]], kind: str, attribute: str
    ) -> str:
        used = [str(r.get("dev")) for r in records.values() if r.get("k") == kind]
        wanted = str(link.attributes.get(attribute) or "")
        if wanted and wanted in used:
            raise InvalidTransition(f"device {wanted} is taken on this compute")
        names = common.disk_names() if kind == "disk" else common.nic_names()
        return wanted or common.next_free(names, used)

    def _attach_disk(
        self, link: Link, vm: Vm, records: dict[str, dict[str, Any]], target: Resource
    ) -> Outcome:
        dev = self._device_id(link, records, "disk", "occi.storagelink.deviceid")
        path = self.volume_path(target)
        info = self.volume_info(path)
        if info is None:
            raise NotFoundOnPlatform(f"disk {path} does not exist")
        size_kb = info.get("capacity_kb") or int(
            float(target.attributes.get("occi.storage.size") or 1) * KB_PER_GB
        )
        changes = []
        controller = devices.scsi_controller(vm.devices)
        if controller is None:
            changes.append(devices.controller_add())
            key, unit = devices.NEW_CONTROLLER_KEY, 0
        else:
            key, unit = controller.key, devices.free_unit(vm.devices, controller.key)
        record = {"k": "disk", "dev": dev, "file": path}
        if devices.find_disk(vm.devices, path) is None:
            changes.append(devices.disk_add(path, int(size_kb), key, unit))
        self.reconfigure(
            vm,
            f"attaching {path} to {vm.name}",
            deviceChange=changes,
            extraConfig=devices.option_values(
                {devices.link_key(str(link.id)): devices.record("disk", dev, file=path)}
            ),
        )
        return self.link_outcome(link, self.read_vm(vm.obj), record)

    def _attach_nic(
        self, link: Link, vm: Vm, records: dict[str, dict[str, Any]], target: Resource
    ) -> Outcome:
        dev = self._device_id(link, records, "nic", "occi.networkinterface.interface")
        name = common.platform_name(target)
        group = self.portgroup(name)
        if group is None:
            raise NotFoundOnPlatform(f"port group {name} does not exist")
        mac = str(link.attributes.get("occi.networkinterface.mac") or "") or devices.vmware_mac(
            str(link.id)
        )
        if isinstance(group, vim.dvs.DistributedVirtualPortgroup):
            p = self.session.props(group, ["key", "config.distributedVirtualSwitch"])
            switch = p["config.distributedVirtualSwitch"]
            uuid = self.session.props(switch, ["uuid"])["uuid"]
            backing: Any = vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
                port=vim.dvs.PortConnection(switchUuid=uuid, portgroupKey=p["key"])
            )
        else:
            backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
                deviceName=name, network=group
            )
        record = {"k": "nic", "dev": dev, "mac": mac}
        changes = []
        if devices.find_nic(vm.devices, mac) is None:
            changes.append(devices.nic_add(mac, backing, vm.power == "poweredOn"))
        self.reconfigure(
            vm,
            f"adding a NIC on {name} to {vm.name}",
            deviceChange=changes,
            extraConfig=devices.option_values(
                {devices.link_key(str(link.id)): devices.record("nic", dev, mac=mac)}
            ),
        )
        return self.link_outcome(link, self.read_vm(vm.obj), record)

    def link_detach(self, link: Link) -> Pending | None:
        vm = self.link_vm(link)
        if vm is None:
            return None
        record = devices.link_records(vm.extra).get(str(link.id))
        if record is None:
            return None
        present = self._present(vm, record)
        if present is None:
            self.set_extra(
                vm, {devices.link_key(str(link.id)): None}, f"forgetting link {str(link.id)}"
            )
            return None
        self.detach_devices(vm, [present], f"detaching {record['dev']} from {vm.name}")
        return None
