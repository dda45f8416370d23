"""Storage, networks and links of the XenServer backend: a storage is a VDI on the configured
SR, a network a Xen network of the pool (private: no physical interface), a storagelink a VBD
and a networkinterface a VIF with its MAC. Each object carries its entity id in other_config
(`occi_entity_id`), and the OCCI state xapi has no field for (online/offline, up/down) in
`occi_state`, so that every worker reads the same."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from backends import common
from backends.base import (
    InvalidTransition,
    NotFoundOnPlatform,
    Outcome,
    Pending,
    Unsupported,
)
from backends.xenserver.catalog import ENTITY_KEY
from backends.xenserver.client import TaskStatus, translated
from backends.xenserver.pool import PoolOps
from backends.xenserver.states import HALTED, RUNNING
from occi import infrastructure as infra
from occi.model import Link, Resource

log = logging.getLogger(__name__)

NULL = "OpaqueRef:NULL"
GIB = 1 << 30
STATE_KEY = "occi_state"
DISK_NAME = re.compile(r"^vd([a-z]{1,2})$")
NIC_NAME = re.compile(r"^eth(\d{1,2})$")


def disk_index(name: str) -> int | None:
    """The VBD userdevice of an OCCI device id (vda 0, vdb 1, ..., vdaa 26); None if not one."""
    match = DISK_NAME.match(name)
    if match is None:
        return None
    n = 0
    for ch in match.group(1):
        n = n * 26 + ord(ch) - ord("a") + 1
    return n - 1


def disk_name(index: int) -> str:
    names = common.disk_names()
    if index == 0:
        return "vda"
    for i, name in enumerate(names, start=1):
        if i == index:
            return name
    raise AssertionError("unreachable")


class DeviceOps(PoolOps):
    """The typed storage, network and link operations (XenServerBackend adds compute)."""

    # ================================================================== storage
    def _find_vdi(self, entity: Resource) -> tuple[str, dict[str, Any]] | None:
        x = self.client.api
        for ref in x.VDI.get_by_name_label(common.platform_name(entity)):
            rec = x.VDI.get_record(ref)
            if rec["other_config"].get(ENTITY_KEY) == entity.id:
                return ref, rec
        return None

    def _require_vdi(self, entity: Resource) -> tuple[str, dict[str, Any]]:
        found = self._find_vdi(entity)
        if found is None:
            raise NotFoundOnPlatform(f"VDI {common.platform_name(entity)} is not in the pool")
        return found

    def _sr(self) -> str:
        x = self.client.api
        wanted = self.config.sr
        if not wanted:
            sr = x.pool.get_default_SR(x.pool.get_all()[0])
            if sr == NULL:
                raise NotFoundOnPlatform("the pool has no default SR: set OCCI_XENSERVER_SR")
            return str(sr)
        found = x.SR.get_by_name_label(wanted)
        if found:
            return str(found[0])
        try:
            return str(x.SR.get_by_uuid(wanted))
        except Exception:  # noqa: BLE001 - UUID_INVALID
            raise NotFoundOnPlatform(f"the pool has no SR {wanted}") from None

    def storage_create(self, entity: Resource) -> Outcome | Pending:
        with translated(f"creating VDI {common.platform_name(entity)}"):
            if self._find_vdi(entity) is None:
                size = int(float(entity.attributes.get("occi.storage.size") or 1) * GIB)
                self.client.api.VDI.create(
                    {
                        "name_label": common.platform_name(entity),
                        "name_description": f"OCCI storage {entity.id}",
                        "SR": self._sr(),
                        "virtual_size": str(size),
                        "type": "user",
                        "sharable": False,
                        "read_only": False,
                        "other_config": {ENTITY_KEY: entity.id, STATE_KEY: "offline"},
                        "xenstore_data": {},
                        "sm_config": {},
                        "tags": [],
                    }
                )
            return self._observe_storage(entity)

    def _observe_storage(self, entity: Resource) -> Outcome:
        _, rec = self._require_vdi(entity)
        state = rec["other_config"].get(STATE_KEY, "offline")
        state = state if state in ("online", "offline") else "offline"
        return Outcome(
            {
                "occi.storage.state": state,
                "occi.storage.state.message": state,
                "occi.storage.size": round(int(rec["virtual_size"]) / GIB, 6),
            },
            platform_ref=str(rec["uuid"]),
        )

    def storage_resize(self, entity: Resource, size_gb: float) -> Outcome | Pending:
        with translated(f"resizing VDI {common.platform_name(entity)}"):
            ref, rec = self._require_vdi(entity)
            new, have = int(float(size_gb) * GIB), int(rec["virtual_size"])
            if new == have:
                return self._observe_storage(entity)
            if new < have:
                raise InvalidTransition(
                    f"VDI {rec['name_label']} has {have / GIB:g} GB: a disk grows, never shrinks"
                )
        return self._task(
            entity,
            "vdi_resize",
            {"op": "resize"},
            lambda x: x.Async.VDI.resize(ref, str(new)),
        )

    def _finish_vdi_resize(
        self, entity: Resource, data: dict[str, Any], status: TaskStatus | None
    ) -> Outcome:
        return self._observe_storage(entity)

    def _set_state(self, cls: str, ref: str, current: Mapping[str, str], state: str) -> None:
        api = getattr(self.client.api, cls)
        if STATE_KEY in current:
            api.remove_from_other_config(ref, STATE_KEY)
        api.add_to_other_config(ref, STATE_KEY, state)

    def _storage_state(self, entity: Resource, state: str) -> Outcome:
        with translated(f"setting VDI {common.platform_name(entity)} {state}"):
            ref, rec = self._require_vdi(entity)
            if rec["other_config"].get(STATE_KEY, "offline") == state:
                raise InvalidTransition(f"VDI {rec['name_label']} is {state} already")
            self._set_state("VDI", ref, rec["other_config"], state)
            return self._observe_storage(entity)

    def storage_online(self, entity: Resource) -> Outcome | Pending:
        return self._storage_state(entity, "online")

    def storage_offline(self, entity: Resource) -> Outcome | Pending:
        return self._storage_state(entity, "offline")

    def storage_delete(self, entity: Resource) -> Pending | None:
        with translated(f"deleting VDI {common.platform_name(entity)}"):
            found = self._find_vdi(entity)
            if found is None:
                return None
            ref, rec = found
            x = self.client.api
            for vbd in rec["VBDs"]:  # detached first: never a disk pulled from under a guest
                self._unplug_and_destroy("VBD", vbd)
            x.VDI.destroy(ref)
        return None

    def _unplug_and_destroy(self, cls: str, ref: str) -> None:
        api = getattr(self.client.api, cls)
        try:
            if api.get_currently_attached(ref):
                api.unplug(ref)
            api.destroy(ref)
        except Exception as exc:
            if "HANDLE_INVALID" not in str(exc):
                raise

    # ================================================================== network
    def _find_network(self, entity: Resource) -> tuple[str, dict[str, Any]] | None:
        x = self.client.api
        for ref in x.network.get_by_name_label(common.platform_name(entity)):
            rec = x.network.get_record(ref)
            if rec["other_config"].get(ENTITY_KEY) == entity.id:
                return ref, rec
        return None

    def _require_network(self, entity: Resource) -> tuple[str, dict[str, Any]]:
        found = self._find_network(entity)
        if found is None:
            raise NotFoundOnPlatform(f"network {common.platform_name(entity)} is not in the pool")
        return found

    def network_create(self, entity: Resource) -> Outcome | Pending:
        with translated(f"creating network {common.platform_name(entity)}"):
            if self._find_network(entity) is None:
                other = {ENTITY_KEY: entity.id, STATE_KEY: "inactive"}
                address = entity.attributes.get("occi.network.address")
                if address:
                    other["occi_address"] = str(address)
                self.client.api.network.create(
                    {
                        "name_label": common.platform_name(entity),
                        "name_description": f"OCCI network {entity.id}",
                        "MTU": "1500",
                        "other_config": other,
                        "tags": [],
                    }
                )
            return self._observe_network(entity)

    def _observe_network(self, entity: Resource) -> Outcome:
        _, rec = self._require_network(entity)
        state = rec["other_config"].get(STATE_KEY, "inactive")
        state = state if state in ("active", "inactive") else "inactive"
        message = (
            f"up (a private network of the pool on bridge {rec.get('bridge', '')})"
            if state == "active"
            else "down"
        )
        return Outcome(
            {"occi.network.state": state, "occi.network.state.message": message},
            platform_ref=str(rec["uuid"]),
        )

    def _network_state(self, entity: Resource, state: str) -> Outcome:
        with translated(f"setting network {common.platform_name(entity)} {state}"):
            ref, rec = self._require_network(entity)
            if rec["other_config"].get(STATE_KEY, "inactive") == state:
                raise InvalidTransition(f"network {rec['name_label']} is {state} already")
            self._set_state("network", ref, rec["other_config"], state)
            return self._observe_network(entity)

    def network_up(self, entity: Resource) -> Outcome | Pending:
        return self._network_state(entity, "active")

    def network_down(self, entity: Resource) -> Outcome | Pending:
        return self._network_state(entity, "inactive")

    def network_delete(self, entity: Resource) -> Pending | None:
        with translated(f"deleting network {common.platform_name(entity)}"):
            found = self._find_network(entity)
            if found is None:
                return None
            ref, rec = found
            for vif in rec["VIFs"]:
                self._unplug_and_destroy("VIF", vif)
            self.client.api.network.destroy(ref)
        return None

    def _external_network(self) -> str:
        x = self.client.api
        wanted = self.config.external_network
        for ref, rec in sorted(
            x.network.get_all_records().items(), key=lambda i: i[1]["name_label"]
        ):
            if wanted and rec["name_label"] == wanted:
                return str(ref)
            if not wanted and ENTITY_KEY not in rec["other_config"]:
                return str(ref)
        raise NotFoundOnPlatform(f"the pool has no network {wanted or 'for external links'}")

    # ================================================================== links
    def _link_vm(self, link: Link) -> tuple[str, dict[str, Any]] | None:
        name = common.name_at(link.source)
        if not name:
            return None
        x = self.client.api
        for ref in x.VM.get_by_name_label(name):
            rec = x.VM.get_record(ref)
            if not rec["is_a_template"] and not rec["is_a_snapshot"]:
                return ref, rec
        return None

    def _link_device(self, link: Link) -> tuple[str, str, dict[str, Any], dict[str, Any]] | None:
        """(class, ref, device record, VM record) of the VBD or VIF carrying the link."""
        found = self._link_vm(link)
        if found is None:
            return None
        _, vm = found
        cls = "VBD" if link.kind == infra.STORAGELINK.id else "VIF"
        api = getattr(self.client.api, cls)
        for ref in vm[f"{cls}s"]:
            rec = api.get_record(ref)
            if rec["other_config"].get(ENTITY_KEY) == link.id:
                return cls, ref, rec, vm
        return None

    def link_attach(
        self, link: Link, source: Resource, target: Resource | None
    ) -> Outcome | Pending:
        if link.kind not in (infra.STORAGELINK.id, infra.NETWORKINTERFACE.id):
            raise Unsupported(f"the xenserver platform has no links of kind {link.kind}")
        with translated(f"attaching link {link.id}"):
            if self._link_device(link) is not None:
                return self._observe_link(link)
            found = self._link_vm(link)
            if found is None:
                raise NotFoundOnPlatform(f"VM {common.name_at(link.source)} is not in the pool")
            vm_ref, vm = found
            if vm["power_state"] not in (HALTED, RUNNING):
                raise InvalidTransition(
                    f"VM {vm['name_label']} is {vm['power_state'].lower()}: devices are attached "
                    "to a running or halted VM"
                )
            if link.kind == infra.STORAGELINK.id:
                cls, ref = "VBD", self._make_vbd(link, vm_ref, vm, target)
            else:
                cls, ref = "VIF", self._make_vif(link, vm_ref, vm, target)
            if vm["power_state"] == RUNNING:
                getattr(self.client.api, cls).plug(ref)
            return self._observe_link(link)

    def _make_vbd(
        self, link: Link, vm_ref: str, vm: Mapping[str, Any], target: Resource | None
    ) -> str:
        x = self.client.api
        if target is None:
            raise InvalidTransition("a storagelink needs a storage target")
        vdi, _ = self._require_vdi(target)
        used = {
            int(x.VBD.get_userdevice(v)) for v in vm["VBDs"] if x.VBD.get_userdevice(v).isdigit()
        }
        wanted = str(link.attributes.get("occi.storagelink.deviceid") or "")
        if wanted:
            index = disk_index(wanted)
            if index is None:
                raise InvalidTransition(f"device id {wanted} is not vdb, vdc, ... on Xen")
            if index in used:
                raise InvalidTransition(f"device {wanted} of VM {vm['name_label']} is taken")
        else:
            index = disk_index(common.next_free(common.disk_names(), (disk_name(i) for i in used)))
            assert index is not None
        return str(
            x.VBD.create(
                {
                    "VM": vm_ref,
                    "VDI": vdi,
                    "userdevice": str(index),
                    "bootable": False,
                    "mode": "RW",
                    "type": "Disk",
                    "empty": False,
                    "other_config": {ENTITY_KEY: link.id},
                    "qos_algorithm_type": "",
                    "qos_algorithm_params": {},
                }
            )
        )

    def _make_vif(
        self, link: Link, vm_ref: str, vm: Mapping[str, Any], target: Resource | None
    ) -> str:
        x = self.client.api
        network = (
            self._require_network(target)[0] if target is not None else self._external_network()
        )
        used = {int(x.VIF.get_device(v)) for v in vm["VIFs"] if x.VIF.get_device(v).isdigit()}
        wanted = str(link.attributes.get("occi.networkinterface.interface") or "")
        match = NIC_NAME.match(wanted)
        if wanted and match is None:
            raise InvalidTransition(f"interface {wanted} is not eth0, eth1, ... on Xen")
        index = int(match.group(1)) if match else min(set(range(len(used) + 1)) - used)
        if index in used:
            raise InvalidTransition(f"interface {wanted} of VM {vm['name_label']} is taken")
        mac = str(link.attributes.get("occi.networkinterface.mac") or common.mac_for(str(link.id)))
        return str(
            x.VIF.create(
                {
                    "device": str(index),
                    "network": network,
                    "VM": vm_ref,
                    "MAC": mac,
                    "MTU": "1500",
                    "other_config": {ENTITY_KEY: link.id},
                    "qos_algorithm_type": "",
                    "qos_algorithm_params": {},
                }
            )
        )

    def link_detach(self, link: Link) -> Pending | None:
        with translated(f"detaching link {link.id}"):
            found = self._link_device(link)
            if found is not None:
                cls, ref, _, _ = found
                self._unplug_and_destroy(cls, ref)
        return None

    def _observe_link(self, link: Link) -> Outcome:
        with translated(f"reading link {link.id}"):
            found = self._link_device(link)
            if found is None:
                raise NotFoundOnPlatform(f"link {link.id} is not attached in the pool")
            cls, _, dev, vm = found
        live = vm["power_state"] == RUNNING and bool(dev["currently_attached"])
        name = vm["name_label"]
        if cls == "VBD":
            device = disk_name(int(dev["userdevice"]))
            message = (
                f"attached to running {name} as {device}"
                if live
                else f"attached to {name} as {device}; active while it runs"
            )
            return Outcome(
                {
                    "occi.storagelink.deviceid": device,
                    "occi.storagelink.state": "active" if live else "inactive",
                    "occi.storagelink.state.message": message,
                }
            )
        message = (
            f"plugged into running {name}" if live else f"attached to {name}; active while it runs"
        )
        return Outcome(
            {
                "occi.networkinterface.interface": f"eth{dev['device']}",
                "occi.networkinterface.mac": dev["MAC"],
                "occi.networkinterface.state": "active" if live else "inactive",
                "occi.networkinterface.state.message": message,
            }
        )
