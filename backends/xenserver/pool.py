"""What every part of the XenServer backend stands on: the pool's templates, finding the VM of
a compute (by the uuid kept as platform_ref, else by its name), the pool's hosts (capacity,
discovery, maintenance), the VM's remembered message, and Async tasks waited on or answered as
Pending and finished when polled."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from backends import common
from backends.base import (
    Backend,
    DiscoveredHost,
    HostCapacity,
    NotFoundOnPlatform,
    Outcome,
    Pending,
    PlatformError,
    Unreachable,
)
from backends.xenserver import catalog, states
from backends.xenserver.catalog import ENTITY_KEY
from backends.xenserver.client import TaskStatus, XenClient, translated
from backends.xenserver.config import XenConfig
from backends.xenserver.states import PAUSED, RUNNING
from occi.model import Entity, Resource

log = logging.getLogger(__name__)

NULL = "OpaqueRef:NULL"
GIB = 1 << 30
#: other_config keys: the message our last operation left, and a create carried out fully
LAST_KEY, READY_KEY = "occi_last", "occi_ready"

if TYPE_CHECKING:
    _Base = Backend
else:
    _Base = object  # a mixin: Backend checks the whole contract on XenServerBackend only

#: finishes an operation once its task ended (status None: the task was read already)
Finisher = Callable[[Resource, dict[str, Any], TaskStatus | None], Any]
#: the kinds of task whose finisher is handed a task that failed (a clean shutdown or reboot
#: falls back to the hard one); any other task's fault is raised before its finisher runs
FAULT_FINISHERS = frozenset({"power"})


def gb(value: Any) -> float:
    return round(int(value) / GIB, 6)


class PoolOps(_Base):
    """The pool's lookups, hosts and tasks (ComputeOps and DeviceOps build on it)."""

    client: XenClient
    config: XenConfig
    _hosts: dict[str, str]  # host uuid -> ref
    _finishers: dict[str, Finisher]

    # ================================================================== templates
    def _template_records(self) -> dict[str, dict[str, Any]]:
        x = self.client.api
        return {ref: rec for ref, rec in x.VM.get_all_records().items() if catalog.is_template(rec)}

    def _template_for(self, entity: Resource) -> str:
        """The template ref a compute is cloned from: its os_tpl's, else the default one."""
        records = self._template_records()
        scheme = self.config.os_tpl_scheme
        terms = [m[len(scheme) :] for m in entity.mixins if m.startswith(scheme)]
        offered = catalog.templates(records, self.config.templates)
        if terms:
            ref = offered.get(terms[0])
            if ref is None:
                raise NotFoundOnPlatform(f"the pool has no template {terms[0]}")
            return ref
        wanted = [
            r for r, rec in records.items() if rec["name_label"] == self.config.default_template
        ]
        if wanted:
            return wanted[0]
        if offered:
            return next(iter(offered.values()))
        raise NotFoundOnPlatform("the pool has no template to make a compute from")

    # ================================================================== compute lookup
    def _find_vm(self, entity: Entity) -> tuple[str, dict[str, Any]] | None:
        """The VM of a compute: by the uuid kept as platform_ref, else by name `occi-<id>`."""
        x = self.client.api
        name = common.platform_name(entity)
        ref_uuid = entity.placement.platform_ref if entity.placement else None
        if ref_uuid:
            try:
                ref = x.VM.get_by_uuid(ref_uuid)
                rec = x.VM.get_record(ref)
                if rec["name_label"] == name or rec["other_config"].get(ENTITY_KEY) == entity.id:
                    return ref, rec
            except Exception as exc:  # noqa: BLE001 - UUID_INVALID: look it up by name
                log.debug("VM %s not found by uuid: %s", ref_uuid, exc)
        for ref in x.VM.get_by_name_label(name):
            rec = x.VM.get_record(ref)
            if rec["is_a_snapshot"] or rec["is_control_domain"]:
                continue
            # a clone of a template is a template until _configure makes it a VM
            if not rec["is_a_template"] or READY_KEY not in rec["other_config"]:
                return ref, rec
        return None

    def _require_vm(self, entity: Entity) -> tuple[str, dict[str, Any]]:
        found = self._find_vm(entity)
        if found is None:
            raise NotFoundOnPlatform(f"VM {common.platform_name(entity)} is not in the pool")
        ref, rec = found
        self._check_host(entity, rec)
        return found

    # ------------------------------------------------------------------ hosts
    def _host_ref(self, host_uuid: str) -> str:
        ref = self._hosts.get(host_uuid)
        if ref is None:
            x = self.client.api
            try:
                ref = x.host.get_by_uuid(host_uuid)
            except Exception as exc:
                raise NotFoundOnPlatform(f"the pool has no host {host_uuid}") from exc
            self._hosts[host_uuid] = ref
        return ref

    def _placed_host(self, entity: Entity) -> str | None:
        p = entity.placement
        return self._host_ref(p.host_uri) if p is not None and p.host_uri else None

    @staticmethod
    def _location(rec: Mapping[str, Any]) -> str:
        """The host a VM is on: where it runs, else the host it is kept for (affinity)."""
        if rec["power_state"] in (RUNNING, PAUSED) and rec["resident_on"] != NULL:
            return str(rec["resident_on"])
        return str(rec.get("affinity") or NULL)

    def _check_host(self, entity: Entity, rec: Mapping[str, Any]) -> None:
        """A VM that is on another host than the placement names is not found there."""
        wanted = self._placed_host(entity)
        where = self._location(rec)
        if wanted is not None and where != NULL and where != wanted:
            raise NotFoundOnPlatform(
                f"VM {rec['name_label']} is not on host {entity.placement.host_name}"  # type: ignore[union-attr]
            )

    def host_capacity(self, uri: str | None) -> HostCapacity | None:
        with translated(f"reading host {uri or 'of the pool master'}"):
            x = self.client.api
            if uri:
                try:
                    ref = x.host.get_by_uuid(uri)
                except Exception as exc:
                    raise Unreachable(f"the pool has no host {uri}") from exc
            else:
                ref = x.pool.get_master(x.pool.get_all()[0])
            return self._capacity(x.host.get_record(ref))

    def _capacity(self, host: Mapping[str, Any]) -> HostCapacity:
        x = self.client.api
        metrics = x.host_metrics.get_record(host["metrics"])
        if not metrics.get("live", True):
            raise Unreachable(f"host {host['name_label']} is not live")
        info = host.get("cpu_info") or {}
        cores = int(info.get("cpu_count") or len(host.get("host_CPUs") or []) or 0)
        mhz = int(float(info.get("speed") or 0))
        return HostCapacity(cores, int(metrics["memory_total"]) >> 20, mhz)

    def discover_hosts(self) -> list[DiscoveredHost] | None:
        with translated("listing the pool's hosts"):
            x = self.client.api
            return [
                DiscoveredHost(str(h["name_label"]), str(h["uuid"]), self._capacity(h))
                for _, h in sorted(
                    x.host.get_all_records().items(), key=lambda item: item[1]["name_label"]
                )
            ]

    def host_maintenance(self, uri: str | None, entering: bool) -> None:
        """host.disable once a maintenance moved the host's VMs away (the pool then places
        nothing there, XenCenter shows it in maintenance); host.enable when it ends."""
        if not uri:
            return
        with translated(f"{'disabling' if entering else 'enabling'} host {uri}"):
            x = self.client.api
            ref = self._host_ref(uri)
            if entering:
                x.host.disable(ref)
            else:
                x.host.enable(ref)

    # ================================================================== Async tasks
    def _task(
        self, entity: Resource, kind: str, data: dict[str, Any], start: Callable[[Any], str]
    ) -> Outcome | Pending:
        """Start an Async task (`start(xenapi)` returns its ref) and wait for it up to the
        configured time; Pending when it runs on. `kind` names the finisher, `data` what it
        needs (all of it goes into the Pending's handle)."""
        x = self.client.api
        with translated(f"starting {data.get('op', kind)} of {common.platform_name(entity)}"):
            task = x.task.get_uuid(start(x))
        return self._settle(entity, {**data, "kind": kind, "task": task}, self.config.task_wait)

    def _settle(self, entity: Resource, data: dict[str, Any], wait: float) -> Outcome | Pending:
        with translated(f"reading the task of {common.platform_name(entity)}"):
            status = self.client.wait(str(data["task"]), wait)
        if status is not None and status.pending:
            return Pending(
                json.dumps(data, separators=(",", ":")),
                poll_after=self.config.poll_after,
                message=states.UNDER_WAY.get(str(data.get("op")), "under way"),
            )
        kind = str(data.get("kind"))
        finisher = self._finishers.get(kind)
        if finisher is None:
            raise PlatformError(f"a pending handle of an unknown kind: {data.get('kind')}")
        if status is not None and status.fault is not None and kind not in FAULT_FINISHERS:
            raise status.fault  # the task's own fault is the operation's
        with translated(f"finishing {data.get('op')} of {common.platform_name(entity)}"):
            out = finisher(entity, data, status)
        if status is not None and status.fault is None:
            self.client.forget(str(data["task"]))
        return out

    def poll(self, entity: Entity, handle: str) -> Outcome | Pending:
        try:
            data = json.loads(handle)
            assert isinstance(data, dict) and "task" in data
        except (ValueError, AssertionError):
            raise PlatformError("a pending handle this backend cannot read") from None
        return self._settle(entity, data, 0.0)  # type: ignore[arg-type]

    # ================================================================== VM records
    def _observe_vm(self, entity: Entity, rec: Mapping[str, Any]) -> Outcome:
        state, message = states.describe(rec["power_state"], rec["other_config"].get(LAST_KEY))
        return Outcome(
            {
                "occi.compute.state": state,
                "occi.compute.state.message": message,
                "occi.compute.cores": int(rec["VCPUs_at_startup"]),
                "occi.compute.memory": gb(rec["memory_dynamic_max"]),
            },
            platform_ref=str(rec["uuid"]),
        )

    def _set_other_config(
        self, ref: str, current: Mapping[str, str], values: dict[str, str]
    ) -> None:
        x = self.client.api
        for key, value in values.items():
            if current.get(key) == value:
                continue
            if key in current:
                x.VM.remove_from_other_config(ref, key)
            x.VM.add_to_other_config(ref, key, value)

    def _remember(self, ref: str, message: str) -> None:
        """Keep the message of what we did, with the power state the VM is in now."""
        x = self.client.api
        rec = x.VM.get_record(ref)
        last = states.remembered(rec["power_state"], message)
        self._set_other_config(ref, rec["other_config"], {LAST_KEY: last})

    def _destroy_vm_and_disks(self, ref: str, rec: Mapping[str, Any], own_only: bool) -> None:
        """The VM and its disks; `own_only` keeps the VDIs of storage entities (volumes
        attached through storagelinks stay)."""
        x = self.client.api
        vdis = []
        for vbd in rec["VBDs"]:
            try:
                vbd_rec = x.VBD.get_record(vbd)
            except Exception:  # noqa: BLE001 - gone meanwhile
                continue
            vdi = vbd_rec["VDI"]
            if vbd_rec.get("empty") or vdi == NULL or vbd_rec.get("type") == "CD":
                continue
            if own_only and x.VDI.get_other_config(vdi).get(ENTITY_KEY):
                continue  # a storage entity's volume
            vdis.append(vdi)
        x.VM.destroy(ref)
        for vdi in vdis:
            try:
                x.VDI.destroy(vdi)
            except Exception as exc:  # noqa: BLE001 - gone, or in use by another VM
                log.warning("disk %s of %s stays: %s", vdi, rec["name_label"], exc)
