"""The VM class of the test xapi server: clone, provision, snapshot, destroy, the size setters
with xapi's constraints, and the power operations (tests/xapi/power.py)."""

from __future__ import annotations

import copy
import functools
import random
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from tests.xapi import errors
from tests.xapi.errors import XapiError
from tests.xapi.power import HALTED, RUNNING, Power
from tests.xapi.store import NULL, Store, as_int

MEMORY_RULE = "Memory limits must satisfy: static_min <= dynamic_min <= dynamic_max <= static_max"


def vm_record(name: str, **fields: Any) -> dict[str, Any]:
    """A VM record with xapi's fields and their defaults (a halted VM of 1 vCPU, 1 GiB)."""
    gib = 1 << 30
    record: dict[str, Any] = {
        "name_label": name,
        "name_description": "",
        "power_state": HALTED,
        "is_a_template": False,
        "is_default_template": False,
        "is_a_snapshot": False,
        "is_control_domain": False,
        "snapshot_of": NULL,
        "snapshots": [],
        "VCPUs_max": 1,
        "VCPUs_at_startup": 1,
        "memory_static_min": gib,
        "memory_static_max": gib,
        "memory_dynamic_min": gib,
        "memory_dynamic_max": gib,
        "resident_on": NULL,
        "affinity": NULL,
        "VBDs": [],
        "VIFs": [],
        "other_config": {},
        "xenstore_data": {},
        "platform": {},
        "tags": [],
        "guest_metrics": NULL,
        "metrics": NULL,
        "domid": -1,
        "PV_args": "",
        "HVM_boot_policy": "BIOS order",
        "allowed_operations": [],
        "current_operations": {},
        "blocked_operations": {},
        "_pv_drivers": False,
    }
    record.update(fields)
    return record


def random_mac() -> str:
    """A locally administered MAC, as xapi makes for a VIF created without one."""
    return "02:" + ":".join(f"{random.randrange(256):02x}" for _ in range(5))


class VMs:
    def __init__(self, store: Store, power: Power):
        self.store = store
        self.power = power

    def handlers(self) -> dict[str, Callable[..., Any]]:
        h: dict[str, Callable[..., Any]] = {
            "VM.clone": self.clone,
            "VM.snapshot": self.snapshot,
            "VM.provision": self.provision,
            "VM.destroy": self.destroy,
            "VM.set_VCPUs_max": self.set_vcpus_max,
            "VM.set_VCPUs_at_startup": self.set_vcpus_at_startup,
            "VM.set_VCPUs_number_live": self.set_vcpus_live,
            "VM.set_memory_limits": self.set_memory_limits,
            "VM.set_memory_dynamic_range": self.set_memory_dynamic_range,
            "VM.start": lambda vm, paused, force: self.power.run(vm, "start"),
            "VM.start_on": lambda vm, host, paused, force: self._on(vm, "start_on", host),
            "VM.resume": lambda vm, paused, force: self.power.run(vm, "resume"),
            "VM.resume_on": lambda vm, host, paused, force: self._on(vm, "resume_on", host),
            "VM.pool_migrate": lambda vm, host, options: self._on(vm, "pool_migrate", host),
        }
        for op in (
            "clean_shutdown",
            "hard_shutdown",
            "shutdown",
            "clean_reboot",
            "hard_reboot",
            "suspend",
            "pause",
            "unpause",
        ):
            h[f"VM.{op}"] = functools.partial(self.power.run, operation=op)
        return h

    def _on(self, vm: str, operation: str, host: str) -> None:
        self.store.get("host", host)  # HANDLE_INVALID for a bad host
        self.power.run(vm, operation, host)

    # ------------------------------------------------------------------ copies
    def clone(self, ref: str, name: str) -> str:
        with self.store.lock:
            source = self.store.get("VM", ref)
            if source["power_state"] != HALTED:
                raise XapiError(
                    errors.VM_BAD_POWER_STATE, ref, "halted", source["power_state"].lower()
                )
            return self._copy(ref, name, is_a_snapshot=False, snapshot_of=NULL)

    def snapshot(self, ref: str, name: str) -> str:
        with self.store.lock:
            source = self.store.get("VM", ref)
            if source["is_a_template"]:
                raise XapiError(errors.VM_IS_TEMPLATE, ref)
            snap = self._copy(ref, name, is_a_snapshot=True, is_a_template=True, snapshot_of=ref)
            source["snapshots"].append(snap)
            self.store.touched("VM", ref)
            return snap

    def _copy(self, ref: str, name: str, **fields: Any) -> str:
        source = self.store.get("VM", ref)
        record = vm_record(
            name,
            **{
                k: copy.deepcopy(v)
                for k, v in source.items()
                if k not in ("uuid", "name_label", "VBDs", "VIFs", "snapshots", "snapshot_of")
            },
        )
        record.update(
            power_state=HALTED,
            resident_on=NULL,
            domid=-1,
            guest_metrics=NULL,
            is_default_template=False,
            **fields,
        )
        record["other_config"].pop("default_template", None)
        new = self.store.add("VM", record)
        for vbd_ref in list(source["VBDs"]):
            vbd = self.store.get("VBD", vbd_ref)
            vdi = vbd["VDI"]
            if self.store.exists("VDI", vdi):
                vdi = self.clone_vdi(vdi)
            self.add_vbd(new, vdi, vbd["userdevice"], vbd["bootable"], vbd["type"], vbd["mode"])
        for vif_ref in list(source["VIFs"]):
            vif = self.store.get("VIF", vif_ref)
            self.add_vif(new, vif["network"], vif["device"], random_mac(), {})
        return new

    def clone_vdi(self, ref: str) -> str:
        vdi = self.store.get("VDI", ref)
        record = {k: copy.deepcopy(v) for k, v in vdi.items() if k not in ("uuid", "VBDs")}
        record["VBDs"] = []
        record["other_config"] = {}
        new = self.store.add("VDI", record)
        sr = self.store.get("SR", vdi["SR"])
        sr["VDIs"].append(new)
        self.store.touched("SR", vdi["SR"])
        return new

    # ------------------------------------------------------------------ devices made here
    def add_vbd(
        self,
        vm: str,
        vdi: str,
        userdevice: str,
        bootable: bool,
        type_: str = "Disk",
        mode: str = "RW",
        other_config: dict[str, str] | None = None,
    ) -> str:
        with self.store.lock:
            record = self.store.get("VM", vm)
            taken = {self.store.get("VBD", v)["userdevice"] for v in record["VBDs"]}
            if userdevice in taken:
                raise XapiError(errors.DEVICE_ALREADY_EXISTS, userdevice)
            index = int(userdevice) if userdevice.isdigit() else 0
            ref = self.store.add(
                "VBD",
                {
                    "VM": vm,
                    "VDI": vdi,
                    "userdevice": userdevice,
                    "device": "xvd" + chr(ord("a") + index % 26),
                    "bootable": bool(bootable),
                    "mode": mode,
                    "type": type_,
                    "empty": vdi == NULL,
                    "unpluggable": True,
                    "currently_attached": False,
                    "other_config": dict(other_config or {}),
                },
            )
            record["VBDs"].append(ref)
            self.store.touched("VM", vm)
            if self.store.exists("VDI", vdi):
                self.store.get("VDI", vdi)["VBDs"].append(ref)
                self.store.touched("VDI", vdi)
            return ref

    def add_vif(
        self, vm: str, network: str, device: str, mac: str, other_config: dict[str, str]
    ) -> str:
        with self.store.lock:
            record = self.store.get("VM", vm)
            net = self.store.get("network", network)
            taken = {self.store.get("VIF", v)["device"] for v in record["VIFs"]}
            if device in taken:
                raise XapiError(errors.DEVICE_ALREADY_EXISTS, device)
            ref = self.store.add(
                "VIF",
                {
                    "VM": vm,
                    "network": network,
                    "device": device,
                    "MAC": mac or random_mac(),
                    "MAC_autogenerated": not mac,
                    "MTU": net["MTU"],
                    "currently_attached": False,
                    "other_config": dict(other_config),
                    "qos_algorithm_type": "",
                    "qos_algorithm_params": {},
                },
            )
            record["VIFs"].append(ref)
            net["VIFs"].append(ref)
            self.store.touched("VM", vm)
            self.store.touched("network", network)
            return ref

    # ------------------------------------------------------------------ provision, destroy
    def provision(self, ref: str) -> None:
        """Make the disks the template's other_config:disks describes, as xapi does."""
        with self.store.lock:
            vm = self.store.get("VM", ref)
            spec = vm["other_config"].get("disks")
            if not spec:
                return
            try:
                disks = ET.fromstring(spec).findall("disk")
            except ET.ParseError:
                raise XapiError(errors.INTERNAL_ERROR, "other_config:disks is not XML") from None
            pools = list(self.store.objects["pool"].values())
            for disk in disks:
                sr = self._sr(disk.get("sr") or "", pools[0]["default_SR"])
                vdi = self.store.add(
                    "VDI",
                    {
                        "name_label": f"{vm['name_label']} {disk.get('device', '0')}",
                        "name_description": "Created by template provisioner",
                        "SR": sr,
                        "virtual_size": int(disk.get("size", "0")),
                        "physical_utilisation": 0,
                        "type": disk.get("type", "system"),
                        "sharable": False,
                        "read_only": False,
                        "VBDs": [],
                        "sm_config": {},
                        "tags": [],
                        "other_config": {},
                    },
                )
                self.store.get("SR", sr)["VDIs"].append(vdi)
                self.store.touched("SR", sr)
                self.add_vbd(
                    ref, vdi, disk.get("device", "0"), disk.get("bootable", "false") == "true"
                )
            del vm["other_config"]["disks"]
            self.store.touched("VM", ref)

    def _sr(self, sr_uuid: str, default: str) -> str:
        for sr_ref, sr in self.store.objects["SR"].items():
            if sr["uuid"] == sr_uuid:
                return sr_ref
        if not self.store.exists("SR", default):
            raise XapiError(errors.INTERNAL_ERROR, "no default SR")
        return default

    def destroy(self, ref: str) -> None:
        """The VM and its VBDs and VIFs; its VDIs stay (as in xapi)."""
        with self.store.lock:
            vm = self.store.get("VM", ref)
            if vm["power_state"] != HALTED and not vm["is_a_template"]:
                raise XapiError(errors.VM_BAD_POWER_STATE, ref, "halted", vm["power_state"].lower())
            for vbd in list(vm["VBDs"]):
                self.drop_vbd(vbd)
            for vif in list(vm["VIFs"]):
                self.drop_vif(vif)
            parent = vm["snapshot_of"]
            if self.store.exists("VM", parent):
                self.store.get("VM", parent)["snapshots"].remove(ref)
                self.store.touched("VM", parent)
            self.store.remove("VM", ref)

    def drop_vbd(self, ref: str) -> None:
        vbd = self.store.remove("VBD", ref)
        for cls, owner in (("VM", vbd["VM"]), ("VDI", vbd["VDI"])):
            if self.store.exists(cls, owner):
                self.store.get(cls, owner)["VBDs"].remove(ref)
                self.store.touched(cls, owner)

    def drop_vif(self, ref: str) -> None:
        vif = self.store.remove("VIF", ref)
        for cls, owner in (("VM", vif["VM"]), ("network", vif["network"])):
            if self.store.exists(cls, owner):
                self.store.get(cls, owner)["VIFs"].remove(ref)
                self.store.touched(cls, owner)

    # ------------------------------------------------------------------ sizes
    def _halted(self, ref: str) -> dict[str, Any]:
        vm = self.store.get("VM", ref)
        if vm["power_state"] != HALTED:
            raise XapiError(errors.VM_BAD_POWER_STATE, ref, "halted", vm["power_state"].lower())
        return vm

    def set_vcpus_max(self, ref: str, value: Any) -> None:
        with self.store.lock:
            vm = self._halted(ref)
            n = as_int("VCPUs_max", value)
            if n < 1 or n < vm["VCPUs_at_startup"]:
                raise XapiError(
                    errors.VALUE_NOT_SUPPORTED, "VCPUs_max", n, "value less than VCPUs_at_startup"
                )
            self.store.update("VM", ref, VCPUs_max=n)

    def set_vcpus_at_startup(self, ref: str, value: Any) -> None:
        with self.store.lock:
            vm = self._halted(ref)
            n = as_int("VCPUs_at_startup", value)
            if n < 1 or n > vm["VCPUs_max"]:
                raise XapiError(
                    errors.VALUE_NOT_SUPPORTED,
                    "VCPUs_at_startup",
                    n,
                    "value greater than VCPUs_max",
                )
            self.store.update("VM", ref, VCPUs_at_startup=n)

    def set_vcpus_live(self, ref: str, value: Any) -> None:
        with self.store.lock:
            vm = self.store.get("VM", ref)
            if vm["power_state"] != RUNNING:
                raise XapiError(
                    errors.VM_BAD_POWER_STATE, ref, "running", vm["power_state"].lower()
                )
            n = as_int("nvcpu", value)
            if n < 1 or n > vm["VCPUs_max"]:
                raise XapiError(
                    errors.VALUE_NOT_SUPPORTED, "VCPU values", n, "value greater than VCPUs_max"
                )
            self.store.update("VM", ref, VCPUs_at_startup=n)

    def set_memory_limits(self, ref: str, smin: Any, smax: Any, dmin: Any, dmax: Any) -> None:
        with self.store.lock:
            self._halted(ref)
            values = [
                as_int(n, v)
                for n, v in zip(
                    ("smin", "smax", "dmin", "dmax"), (smin, smax, dmin, dmax), strict=True
                )
            ]
            static_min, static_max, dynamic_min, dynamic_max = values
            if not 0 < static_min <= dynamic_min <= dynamic_max <= static_max:
                raise XapiError(errors.MEMORY_CONSTRAINT_VIOLATION, MEMORY_RULE)
            self.store.update(
                "VM",
                ref,
                memory_static_min=static_min,
                memory_static_max=static_max,
                memory_dynamic_min=dynamic_min,
                memory_dynamic_max=dynamic_max,
            )

    def set_memory_dynamic_range(self, ref: str, dmin: Any, dmax: Any) -> None:
        with self.store.lock:
            vm = self.store.get("VM", ref)
            low, high = as_int("min", dmin), as_int("max", dmax)
            if not vm["memory_static_min"] <= low <= high <= vm["memory_static_max"]:
                raise XapiError(errors.MEMORY_CONSTRAINT_VIOLATION, MEMORY_RULE)
            self.store.update("VM", ref, memory_dynamic_min=low, memory_dynamic_max=high)
            self.power.refresh_metrics()
