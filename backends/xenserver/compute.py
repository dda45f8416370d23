"""Computes on a Xen pool: a VM cloned from a template and provisioned (create), its sizes, its
power operations as Async tasks with a clean-to-hard fallback, save as a template, delete with
its own disks, and moves between the pool's hosts (pool_migrate, or the affinity of a VM that
does not run)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from backends import common
from backends.base import (
    InvalidTransition,
    NotFoundOnPlatform,
    Outcome,
    Pending,
    PlatformError,
    RestartMethod,
    SaveMethod,
    StopMethod,
    SuspendMethod,
)
from backends.xenserver import catalog, states
from backends.xenserver.catalog import ENTITY_KEY, SAVED_KEY
from backends.xenserver.client import TaskStatus, translated
from backends.xenserver.pool import GIB, LAST_KEY, NULL, READY_KEY, PoolOps, gb
from backends.xenserver.states import HALTED, PAUSED, RUNNING, SUSPENDED
from occi.model import Resource

log = logging.getLogger(__name__)

#: xenstore-data keys of the contextualisation (vm-data/ is readable by the guest)
SSH_KEY_PATH, USER_DATA_PATH, HOSTNAME_PATH = (
    "vm-data/ssh-key",
    "vm-data/user-data",
    "vm-data/hostname",
)
#: xenstore holds values of at most 4096 bytes: longer user data is split in parts
XENSTORE_VALUE = 4000
#: errors of a clean operation after which the hard one is used instead
CLEAN_FAILURES = frozenset(
    {"VM_MISSING_PV_DRIVERS", "VM_SHUTDOWN_TIMEOUT", "OPERATION_NOT_ALLOWED"}
)


class ComputeOps(PoolOps):
    """The typed compute operations."""

    def compute_create(self, entity: Resource) -> Outcome | Pending:
        with translated(f"creating VM {common.platform_name(entity)}"):
            self._check_contextualisation(entity)
            found = self._find_vm(entity)
            if found is not None:
                ref, rec = found
                if rec["other_config"].get(READY_KEY) == "true":
                    return self.observe(entity)
                return self._configure(entity, ref)
            template = self._template_for(entity)
            name = common.platform_name(entity)
        return self._task(
            entity, "create", {"op": "create"}, lambda x: x.Async.VM.clone(template, name)
        )

    def _finish_create(
        self, entity: Resource, data: dict[str, Any], status: TaskStatus | None
    ) -> Outcome:
        found = self._find_vm(entity)
        if found is None:
            raise PlatformError(f"the clone of VM {common.platform_name(entity)} vanished")
        return self._configure(entity, found[0])

    def _configure(self, entity: Resource, ref: str) -> Outcome:
        """Make a fresh clone the entity's VM (each step idempotent: a retry redoes them)."""
        x = self.client.api
        rec = x.VM.get_record(ref)
        self._set_other_config(ref, rec["other_config"], {ENTITY_KEY: str(entity.id)})
        for key in (SAVED_KEY, "default_template", LAST_KEY):
            if key in rec["other_config"]:
                x.VM.remove_from_other_config(ref, key)
        if rec["is_a_template"]:
            x.VM.set_is_a_template(ref, False)
        if "disks" in rec["other_config"]:
            x.VM.provision(ref)
        x.VM.set_name_description(ref, f"OCCI compute {entity.id}")
        a = entity.attributes
        cores = int(a.get("occi.compute.cores") or rec["VCPUs_at_startup"])
        memory = float(a.get("occi.compute.memory") or gb(rec["memory_static_max"]))
        self._size_halted(ref, x.VM.get_record(ref), cores, memory)
        self._grow_root(ref, a.get("occi.compute.ephemeral_storage.size"))
        self._contextualise(ref, entity)
        host = self._placed_host(entity)
        if host is not None:
            x.VM.set_affinity(ref, host)
        self._set_other_config(
            ref,
            x.VM.get_other_config(ref),
            {READY_KEY: "true", LAST_KEY: states.remembered(HALTED, states.DONE["create"])},
        )
        out = self.observe(entity)
        out.platform_ref = str(x.VM.get_uuid(ref))
        return out

    def _grow_root(self, ref: str, size_gb: Any) -> None:
        """The root disk (userdevice 0) grown to the resource template's ephemeral size
        when that is larger (never shrunk)."""
        if not size_gb:
            return
        x = self.client.api
        wanted = int(float(size_gb) * GIB)
        for vbd in x.VM.get_VBDs(ref):
            record = x.VBD.get_record(vbd)
            if record["userdevice"] != "0" or record["VDI"] == NULL or record["type"] != "Disk":
                continue
            if int(x.VDI.get_virtual_size(record["VDI"])) < wanted:
                x.VDI.resize(record["VDI"], str(wanted))

    # ------------------------------------------------------------------ contextualisation
    @staticmethod
    def _context(entity: Resource) -> dict[str, str]:
        a = entity.attributes
        data: dict[str, str] = {}
        key = a.get("occi.credentials.ssh.publickey")
        if key:
            data[SSH_KEY_PATH] = str(key)
        user_data = str(a.get("occi.compute.userdata") or "")
        if len(user_data) > XENSTORE_VALUE:
            parts = [
                user_data[i : i + XENSTORE_VALUE] for i in range(0, len(user_data), XENSTORE_VALUE)
            ]
            data[f"{USER_DATA_PATH}/parts"] = str(len(parts))
            data.update({f"{USER_DATA_PATH}/{i}": part for i, part in enumerate(parts)})
        elif user_data:
            data[USER_DATA_PATH] = user_data
        hostname = a.get("occi.compute.hostname")
        if hostname:
            data[HOSTNAME_PATH] = str(hostname)
        return data

    def _check_contextualisation(self, entity: Resource) -> None:
        key = str(entity.attributes.get("occi.credentials.ssh.publickey") or "")
        if len(key) > XENSTORE_VALUE:
            raise InvalidTransition(
                f"an ssh key of {len(key)} characters does not fit a xenstore value "
                f"({XENSTORE_VALUE} at most)"
            )

    def _contextualise(self, ref: str, entity: Resource) -> None:
        data = self._context(entity)
        if data:
            x = self.client.api
            current = x.VM.get_xenstore_data(ref)
            x.VM.set_xenstore_data(ref, {**current, **data})

    # ------------------------------------------------------------------ sizes
    def _size_halted(self, ref: str, rec: Mapping[str, Any], cores: int, memory: float) -> None:
        """VCPUs and memory limits of a halted VM (the order keeps xapi's constraints)."""
        x = self.client.api
        top = max(cores, self.config.max_vcpus)
        if top >= int(rec["VCPUs_max"]):
            x.VM.set_VCPUs_max(ref, str(top))
            x.VM.set_VCPUs_at_startup(ref, str(cores))
        else:
            x.VM.set_VCPUs_at_startup(ref, str(cores))
            x.VM.set_VCPUs_max(ref, str(top))
        size = int(memory * GIB)
        ceiling = max(size, int(self.config.max_memory * GIB))
        x.VM.set_memory_limits(ref, str(size), str(ceiling), str(size), str(size))

    def compute_resize(
        self, entity: Resource, cores: int | None, memory_gb: float | None
    ) -> Outcome | Pending:
        with translated(f"resizing VM {common.platform_name(entity)}"):
            ref, rec = self._require_vm(entity)
            have_cores, have_memory = int(rec["VCPUs_at_startup"]), gb(rec["memory_dynamic_max"])
            cores = have_cores if cores is None else int(cores)
            memory = have_memory if memory_gb is None else float(memory_gb)
            if (cores, memory) == (have_cores, have_memory):
                return self.observe(entity)
            power = rec["power_state"]
            if power == HALTED:
                self._size_halted(ref, rec, cores, memory)
                message = "inactive; resized, from the next start"
            elif power == RUNNING:
                self._size_live(ref, rec, cores, memory)
                message = "running; resized live"
            else:
                raise InvalidTransition(
                    f"VM {rec['name_label']} is {power.lower()}: it must be halted (or running, "
                    "within its maximum vCPUs and memory) to be resized"
                )
            self._set_other_config(
                ref, rec["other_config"], {LAST_KEY: states.remembered(power, message)}
            )
            return self.observe(entity)

    def _size_live(self, ref: str, rec: Mapping[str, Any], cores: int, memory: float) -> None:
        """Within VCPUs_max and the static memory limits, live; else refused (nothing set)."""
        size = int(memory * GIB)
        if cores > int(rec["VCPUs_max"]):
            raise InvalidTransition(
                f"{cores} cores exceed the {rec['VCPUs_max']} vCPUs VM {rec['name_label']} "
                "was started with: the VM must be halted first (stop it, resize, start it)"
            )
        if not int(rec["memory_static_min"]) <= size <= int(rec["memory_static_max"]):
            raise InvalidTransition(
                f"{memory:g} GB of memory is outside the limits VM {rec['name_label']} was "
                f"started with ({gb(rec['memory_static_min']):g}-"
                f"{gb(rec['memory_static_max']):g} GB): the VM must be halted first"
            )
        x = self.client.api
        if cores != int(rec["VCPUs_at_startup"]):
            x.VM.set_VCPUs_number_live(ref, str(cores))
        x.VM.set_memory_dynamic_range(ref, str(size), str(size))

    # ------------------------------------------------------------------ power
    def _power(
        self,
        entity: Resource,
        op: str,
        call: str,
        done: str,
        fallback: str | None = None,
        on_host: bool = False,
    ) -> Outcome | Pending:
        """Start `Async.VM.<call>`; `done` names the message it leaves; `fallback` the hard
        call used when the clean one is refused (no PV drivers)."""
        ref, rec = self._require_vm(entity)
        host = self._placed_host(entity) if on_host else None
        data = {"op": op, "call": call, "done": done, "fallback": fallback or "", "vm": rec["uuid"]}

        def start(x: Any) -> str:
            method = getattr(x.Async.VM, call + ("_on" if host else ""))
            if call in ("start", "resume"):
                return method(ref, host, False, False) if host else method(ref, False, False)
            return method(ref)

        return self._task(entity, "power", data, start)

    def _finish_power(
        self, entity: Resource, data: dict[str, Any], status: TaskStatus | None
    ) -> Outcome | Pending:
        if status is not None and status.fault is not None:
            code = getattr(status.fault, "xapi_code", "")
            if data.get("fallback") and code in CLEAN_FAILURES:
                reason = str(status.fault).split(": ", 1)[-1]
                ref, _ = self._require_vm(entity)
                done = states.DONE[f"{data['op']}:fallback"].format(reason=reason)
                self._remember(ref, done)
                call = str(data["fallback"])
                return self._task(
                    entity,
                    "power",
                    {
                        "op": data["op"],
                        "call": call,
                        "done": done,
                        "fallback": "",
                        "vm": data["vm"],
                    },
                    lambda x: getattr(x.Async.VM, call)(ref),
                )
            raise status.fault
        found = self._find_vm(entity)
        if found is None:
            raise NotFoundOnPlatform(f"VM {common.platform_name(entity)} is not in the pool")
        done = str(data["done"])
        self._remember(found[0], states.DONE.get(done, done))
        return self.observe(entity)

    def _refuse(self, rec: Mapping[str, Any], action: str, allowed: tuple[str, ...]) -> None:
        power = rec["power_state"]
        if power not in allowed:
            state, _ = states.describe(power)
            raise InvalidTransition(
                f"cannot {action} VM {rec['name_label']}: it is {state} ({power.lower()})"
            )

    def compute_start(self, entity: Resource) -> Outcome | Pending:
        with translated(f"starting VM {common.platform_name(entity)}"):
            _, rec = self._require_vm(entity)
            self._refuse(rec, "start", (HALTED, PAUSED, SUSPENDED))
            power = rec["power_state"]
            if power == PAUSED:
                return self._power(entity, "resume", "unpause", "resume")
            if power == SUSPENDED:
                return self._power(entity, "resume", "resume", "resume", on_host=True)
            return self._power(entity, "start", "start", "start", on_host=True)

    def compute_stop(self, entity: Resource, method: StopMethod | None = None) -> Outcome | Pending:
        method = method or "graceful"
        with translated(f"stopping VM {common.platform_name(entity)}"):
            _, rec = self._require_vm(entity)
            self._refuse(rec, "stop", (RUNNING,))
            if method == "poweroff":
                return self._power(entity, "stop", "hard_shutdown", "stop:poweroff")
            return self._power(
                entity, "stop", "clean_shutdown", f"stop:{method}", fallback="hard_shutdown"
            )

    def compute_restart(
        self, entity: Resource, method: RestartMethod | None = None
    ) -> Outcome | Pending:
        method = method or "graceful"
        with translated(f"restarting VM {common.platform_name(entity)}"):
            _, rec = self._require_vm(entity)
            self._refuse(rec, "restart", (RUNNING,))
            if method == "graceful":
                return self._power(
                    entity, "restart", "clean_reboot", "restart:graceful", fallback="hard_reboot"
                )
            return self._power(entity, "restart", "hard_reboot", f"restart:{method}")

    def compute_suspend(
        self, entity: Resource, method: SuspendMethod | None = None
    ) -> Outcome | Pending:
        method = method or "suspend"
        with translated(f"suspending VM {common.platform_name(entity)}"):
            _, rec = self._require_vm(entity)
            self._refuse(rec, "suspend", (RUNNING,))
            if method == "hibernate":
                return self._power(entity, "suspend", "suspend", "suspend:hibernate")
            return self._power(entity, "suspend", "pause", "suspend:suspend")

    # ------------------------------------------------------------------ save
    def compute_save(
        self, entity: Resource, method: SaveMethod | None = None, name: str | None = None
    ) -> Outcome | Pending:
        with translated(f"saving VM {common.platform_name(entity)}"):
            ref, rec = self._require_vm(entity)
            term = common.clean_term(name or "") or common.clean_term(f"{rec['name_label']}-image")
            if term in catalog.templates(self._template_records(), "all"):
                raise InvalidTransition(f"the pool has a template named {term} already")
        data = {"op": "save", "term": term, "step": "copy"}
        if rec["power_state"] == HALTED:
            return self._task(entity, "save", data, lambda x: x.Async.VM.clone(ref, term))
        data["step"] = "snapshot"
        return self._task(
            entity, "save", data, lambda x: x.Async.VM.snapshot(ref, f"{term}-snapshot")
        )

    def _finish_save(
        self, entity: Resource, data: dict[str, Any], status: TaskStatus | None
    ) -> Outcome | Pending:
        x = self.client.api
        term = str(data["term"])
        if status is None:  # the task ended and was read already: what it made is kept
            for rec in self._template_records().values():
                if catalog.template_term(rec) == term and (
                    rec["other_config"].get(SAVED_KEY) == entity.id
                ):
                    out = self.observe(entity)
                    out.mixin = catalog.os_tpl(self.config.os_tpl_scheme, term, term)
                    return out
            raise PlatformError(f"the task saving {term} is gone and made nothing; save again")
        made = status.result
        if data["step"] == "snapshot":
            return self._task(
                entity,
                "save",
                {**data, "step": "template", "snapshot": x.VM.get_uuid(made)},
                lambda x: x.Async.VM.clone(made, term),
            )
        rec = x.VM.get_record(made)
        if not rec["is_a_template"]:
            x.VM.set_is_a_template(made, True)
        for key in (ENTITY_KEY, READY_KEY, LAST_KEY):
            if key in rec["other_config"]:
                x.VM.remove_from_other_config(made, key)
        if SAVED_KEY not in rec["other_config"]:
            x.VM.add_to_other_config(made, SAVED_KEY, entity.id)
        x.VM.set_xenstore_data(made, {})
        if data.get("snapshot"):
            try:
                snap = x.VM.get_by_uuid(data["snapshot"])
                self._destroy_vm_and_disks(snap, x.VM.get_record(snap), own_only=False)
            except Exception as exc:  # noqa: BLE001 - a snapshot left is only space
                log.warning("the snapshot of save %s stays: %s", term, exc)
        out = self.observe(entity)
        out.mixin = catalog.os_tpl(self.config.os_tpl_scheme, term, term)
        return out

    # ------------------------------------------------------------------ delete
    def compute_delete(self, entity: Resource) -> Pending | None:
        with translated(f"deleting VM {common.platform_name(entity)}"):
            found = self._find_vm(entity)
            if found is None:
                return None
            ref, rec = found
            x = self.client.api
            if rec["power_state"] != HALTED:
                x.VM.hard_shutdown(ref)
            self._destroy_vm_and_disks(ref, x.VM.get_record(ref), own_only=True)
        return None

    # ------------------------------------------------------------------ migrate
    def compute_migrate(
        self, entity: Resource, target_uri: str | None, live: bool
    ) -> Outcome | Pending:
        with translated(f"moving VM {common.platform_name(entity)}"):
            found = self._find_vm(entity)
            if found is None:
                raise NotFoundOnPlatform(f"VM {common.platform_name(entity)} is not in the pool")
            ref, rec = found
            if not target_uri:
                raise InvalidTransition("a move needs a target host")
            target = self._host_ref(target_uri)
            x = self.client.api
            power = rec["power_state"]
            if self._location(rec) == target:
                return self._observe_vm(entity, rec)
            if power in (RUNNING, PAUSED):
                data = {"op": "migrate", "target": target_uri, "live": live}
                options = {"live": "true" if live else "false"}
                return self._task(
                    entity, "migrate", data, lambda x: x.Async.VM.pool_migrate(ref, target, options)
                )
            x.VM.set_affinity(ref, target)
            done = states.DONE["migrate:suspended" if power == SUSPENDED else "migrate:stopped"]
            self._remember(ref, done)
            return self._observe_vm(entity, x.VM.get_record(ref))

    def _finish_migrate(
        self, entity: Resource, data: dict[str, Any], status: TaskStatus | None
    ) -> Outcome:
        found = self._find_vm(entity)
        if found is None:
            raise NotFoundOnPlatform(f"VM {common.platform_name(entity)} is not in the pool")
        ref, rec = found
        x = self.client.api
        x.VM.set_affinity(ref, self._host_ref(str(data["target"])))
        how = "live" if data.get("live") else "offline"
        self._remember(
            ref, states.DONE["migrate:paused" if rec["power_state"] == PAUSED else f"migrate:{how}"]
        )
        return self._observe_vm(entity, x.VM.get_record(ref))
