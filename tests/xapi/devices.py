"""Storage, network and host classes of the test xapi server: VDI (create, resize, destroy),
VBD and VIF (create, plug, unplug, destroy), network (create, destroy), host (disable,
enable) and task (destroy, cancel)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.xapi import errors
from tests.xapi.errors import XapiError
from tests.xapi.events import Tasks
from tests.xapi.power import RUNNING, Power
from tests.xapi.store import Store, as_int
from tests.xapi.vm import VMs


class Devices:
    def __init__(self, store: Store, power: Power, vms: VMs, tasks: Tasks):
        self.store = store
        self.power = power
        self.vms = vms
        self.tasks = tasks

    def handlers(self) -> dict[str, Callable[..., Any]]:
        return {
            "VDI.create": self.vdi_create,
            "VDI.resize": self.vdi_resize,
            "VDI.destroy": self.vdi_destroy,
            "VBD.create": self.vbd_create,
            "VBD.plug": lambda ref: self._plug("VBD", ref, True),
            "VBD.unplug": lambda ref: self._plug("VBD", ref, False),
            "VBD.destroy": lambda ref: self._destroy("VBD", ref),
            "VIF.create": self.vif_create,
            "VIF.plug": lambda ref: self._plug("VIF", ref, True),
            "VIF.unplug": lambda ref: self._plug("VIF", ref, False),
            "VIF.destroy": lambda ref: self._destroy("VIF", ref),
            "network.create": self.network_create,
            "network.destroy": self.network_destroy,
            "host.disable": lambda ref: self._host_enabled(ref, False),
            "host.enable": lambda ref: self._host_enabled(ref, True),
            "task.destroy": self.tasks.destroy,
            "task.cancel": self.tasks.cancel,
        }

    # ------------------------------------------------------------------ VDI
    def vdi_create(self, record: dict[str, Any]) -> str:
        with self.store.lock:
            sr = record.get("SR")
            self.store.get("SR", sr)
            size = as_int("virtual_size", record.get("virtual_size"))
            if size < 0:
                raise XapiError(errors.VALUE_NOT_SUPPORTED, "virtual_size", size, "negative")
            ref = self.store.add(
                "VDI",
                {
                    "name_label": str(record.get("name_label", "")),
                    "name_description": str(record.get("name_description", "")),
                    "SR": sr,
                    "virtual_size": size,
                    "physical_utilisation": 0,
                    "type": str(record.get("type", "user")),
                    "sharable": bool(record.get("sharable", False)),
                    "read_only": bool(record.get("read_only", False)),
                    "VBDs": [],
                    "sm_config": dict(record.get("sm_config", {})),
                    "tags": list(record.get("tags", [])),
                    "other_config": {
                        str(k): str(v) for k, v in record.get("other_config", {}).items()
                    },
                },
            )
            self.store.get("SR", sr)["VDIs"].append(ref)
            self.store.touched("SR", sr)
            return ref

    def vdi_resize(self, ref: str, size: Any) -> None:
        with self.store.lock:
            vdi = self.store.get("VDI", ref)
            new = as_int("size", size)
            if new < vdi["virtual_size"]:
                raise XapiError(errors.VALUE_NOT_SUPPORTED, "size", new, "a VDI cannot shrink")
            self.store.update("VDI", ref, virtual_size=new)

    def vdi_destroy(self, ref: str) -> None:
        with self.store.lock:
            vdi = self.store.get("VDI", ref)
            for vbd in vdi["VBDs"]:
                if self.store.get("VBD", vbd)["currently_attached"]:
                    raise XapiError(errors.VDI_IN_USE, ref, "destroy")
            for vbd in list(vdi["VBDs"]):
                self.vms.drop_vbd(vbd)
            sr = vdi["SR"]
            if self.store.exists("SR", sr):
                self.store.get("SR", sr)["VDIs"].remove(ref)
                self.store.touched("SR", sr)
            self.store.remove("VDI", ref)

    # ------------------------------------------------------------------ VBD, VIF
    def vbd_create(self, record: dict[str, Any]) -> str:
        vdi = record.get("VDI", "OpaqueRef:NULL")
        empty = bool(record.get("empty", False))
        if not empty:
            self.store.get("VDI", vdi)
        return self.vms.add_vbd(
            record.get("VM", ""),
            vdi,
            str(record.get("userdevice", "")),
            bool(record.get("bootable", False)),
            str(record.get("type", "Disk")),
            str(record.get("mode", "RW")),
            {str(k): str(v) for k, v in record.get("other_config", {}).items()},
        )

    def vif_create(self, record: dict[str, Any]) -> str:
        return self.vms.add_vif(
            record.get("VM", ""),
            record.get("network", ""),
            str(record.get("device", "")),
            str(record.get("MAC", "")),
            {str(k): str(v) for k, v in record.get("other_config", {}).items()},
        )

    def _plug(self, cls: str, ref: str, plug: bool) -> None:
        with self.store.lock:
            device = self.store.get(cls, ref)
            vm = self.store.get("VM", device["VM"])
            if vm["power_state"] != RUNNING:
                raise XapiError(
                    errors.VM_BAD_POWER_STATE, device["VM"], "running", vm["power_state"].lower()
                )
            if device["currently_attached"] == plug:
                code = errors.DEVICE_ALREADY_ATTACHED if plug else errors.DEVICE_ALREADY_DETACHED
                raise XapiError(code, ref)
            self.store.update(cls, ref, currently_attached=plug)

    def _destroy(self, cls: str, ref: str) -> None:
        with self.store.lock:
            if self.store.get(cls, ref)["currently_attached"]:
                raise XapiError(errors.OPERATION_NOT_ALLOWED, f"{cls} is currently attached")
            if cls == "VBD":
                self.vms.drop_vbd(ref)
            else:
                self.vms.drop_vif(ref)

    # ------------------------------------------------------------------ network, host
    def network_create(self, record: dict[str, Any]) -> str:
        with self.store.lock:
            number = len(self.store.objects["network"])
            return self.store.add(
                "network",
                {
                    "name_label": str(record.get("name_label", "")),
                    "name_description": str(record.get("name_description", "")),
                    "MTU": as_int("MTU", record.get("MTU", 1500)),
                    "bridge": f"xapi{number}",
                    "VIFs": [],
                    "PIFs": [],
                    "tags": list(record.get("tags", [])),
                    "other_config": {
                        str(k): str(v) for k, v in record.get("other_config", {}).items()
                    },
                },
            )

    def network_destroy(self, ref: str) -> None:
        with self.store.lock:
            net = self.store.get("network", ref)
            attached = [v for v in net["VIFs"] if self.store.get("VIF", v)["currently_attached"]]
            if attached:
                raise XapiError(errors.NETWORK_CONTAINS_VIF, *attached)
            for vif in list(net["VIFs"]):
                self.vms.drop_vif(vif)
            self.store.remove("network", ref)

    def _host_enabled(self, ref: str, enabled: bool) -> None:
        self.store.update("host", ref, enabled=enabled)
