"""VM configuration pieces: the extraConfig keys this backend keeps on a VM (entity id, links,
an operation under way, a size for the next start) and the device specs of disks, NICs and the
SCSI controller they hang on.

Builds pyvmomi data objects only; no calls to vSphere.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pyVmomi import vim

from backends import common

#: extraConfig keys of ours
ENTITY_KEY = "occi.entity_id"
LINK_PREFIX = "occi.link."
PENDING_KEY = "occi.pending"
RESIZE_KEY = "occi.resize"
#: VMware's range for manually set MACs is 00:50:56:00:00:00 - 00:50:56:3F:FF:FF
VMWARE_MAC_PREFIX = "00:50:56"
#: the SCSI unit the controller itself takes
CONTROLLER_UNIT = 7
NEW_CONTROLLER_KEY = -100
#: the datastore directory of the storage volumes' disks ([datastore] occi/occi-<id>.vmdk)
VOLUME_DIR = "occi"


def volume_path(datastore: str, name: str) -> str:
    return f"[{datastore}] {VOLUME_DIR}/{name}.vmdk"


def is_volume(path: str | None) -> bool:
    """Whether a disk file is a storage volume's (not a VM's own disk)."""
    return bool(path) and f"] {VOLUME_DIR}/" in str(path)


# ---------------------------------------------------------------------------- extraConfig
def extra_dict(options: Iterable[Any] | None) -> dict[str, str]:
    """A VM's extraConfig as a dict: the last value of a key wins, an empty one removes it
    (how vSphere removes a key; the simulator keeps both entries)."""
    out: dict[str, str] = {}
    for o in options or ():
        out[str(o.key)] = str(o.value if o.value is not None else "")
    return {k: v for k, v in out.items() if v != ""}


def option_values(values: Mapping[str, str | None]) -> list[Any]:
    """extraConfig entries; None removes the key."""
    return [vim.option.OptionValue(key=k, value=v or "") for k, v in values.items()]


def link_key(link_id: str) -> str:
    return LINK_PREFIX + link_id


def link_records(extra: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """link id -> its record ({"k": "disk"|"nic", "dev": ..., "file"/"mac": ...})."""
    out = {}
    for key, value in extra.items():
        if key.startswith(LINK_PREFIX):
            try:
                out[key[len(LINK_PREFIX) :]] = json.loads(value)
            except ValueError:
                continue
    return out


def record(kind: str, dev: str, **more: Any) -> str:
    return json.dumps({"k": kind, "dev": dev, **more}, sort_keys=True)


def loads(value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    try:
        got = json.loads(value)
    except ValueError:
        return None
    return got if isinstance(got, dict) else None


# ---------------------------------------------------------------------------- MACs
def vmware_mac(link_id: str) -> str:
    """A MAC in VMware's manual range derived from the link id (a retry gets the same)."""
    mac = common.mac_for(link_id, VMWARE_MAC_PREFIX).split(":")
    mac[3] = f"{int(mac[3], 16) & 0x3F:02x}"
    return ":".join(mac)


# ---------------------------------------------------------------------------- devices
def scsi_controller(devices: Iterable[Any]) -> Any:
    return next((d for d in devices if isinstance(d, vim.vm.device.VirtualSCSIController)), None)


def controller_add() -> Any:
    controller = vim.vm.device.ParaVirtualSCSIController(
        key=NEW_CONTROLLER_KEY, busNumber=0, sharedBus="noSharing"
    )
    return vim.vm.device.VirtualDeviceSpec(operation="add", device=controller)


def free_unit(devices: Iterable[Any], controller_key: int) -> int:
    used = {d.unitNumber for d in devices if getattr(d, "controllerKey", None) == controller_key}
    for unit in range(16):
        if unit != CONTROLLER_UNIT and unit not in used:
            return unit
    raise ValueError("the SCSI controller has no free unit")


def disk_file(device: Any) -> str | None:
    backing = getattr(device, "backing", None)
    return getattr(backing, "fileName", None) if backing is not None else None


def disks(devices: Iterable[Any]) -> list[Any]:
    return [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]


def nics(devices: Iterable[Any]) -> list[Any]:
    return [d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)]


def find_disk(devices: Iterable[Any], path: str) -> Any:
    return next((d for d in disks(devices) if disk_file(d) == path), None)


def find_nic(devices: Iterable[Any], mac: str) -> Any:
    return next((d for d in nics(devices) if str(d.macAddress or "").lower() == mac.lower()), None)


def disk_add(
    path: str, capacity_kb: int, controller_key: int, unit: int, create: bool = False
) -> Any:
    """Attach the virtual disk at `path` (made with it when `create`)."""
    disk = vim.vm.device.VirtualDisk(
        key=-200 - unit,
        controllerKey=controller_key,
        unitNumber=unit,
        capacityInKB=capacity_kb,
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
            fileName=path, diskMode="persistent", thinProvisioned=True
        ),
    )
    if create:
        return vim.vm.device.VirtualDeviceSpec(operation="add", device=disk, fileOperation="create")
    return vim.vm.device.VirtualDeviceSpec(operation="add", device=disk)


def nic_add(mac: str, backing: Any, connected: bool) -> Any:
    nic = vim.vm.device.VirtualVmxnet3(
        key=-300,
        addressType="manual",
        macAddress=mac,
        backing=backing,
        connectable=vim.vm.device.VirtualDevice.ConnectInfo(
            startConnected=True, connected=connected, allowGuestControl=True
        ),
    )
    return vim.vm.device.VirtualDeviceSpec(operation="add", device=nic)


def remove(device: Any) -> Any:
    """Take a device off the VM (a disk's file stays)."""
    return vim.vm.device.VirtualDeviceSpec(operation="remove", device=device)
