"""Computes as vSphere VMs: made by cloning the os_tpl's template (or from a create spec),
powered on and off, reset, suspended, resized by reconfiguring, saved as new templates.

Each long step is a vSphere task run through Core.started (Pending when it outlasts
task_wait); VsphereBackend.poll finishes it through `finish`.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from pyVmomi import vim

from backends import common
from backends.base import (
    COMPUTE_SAVE,
    CONTEXTUALISATION,
    InvalidTransition,
    NotFoundOnPlatform,
    Outcome,
    Pending,
    RestartMethod,
    SaveMethod,
    StopMethod,
    SuspendMethod,
    Unsupported,
)
from backends.vsphere import catalog, devices, guestinfo, states
from backends.vsphere.core import Core, Vm, instance_uuid
from occi.model import Mixin, Resource


def memory_mb(memory_gb: float) -> int:
    """vSphere wants memory in MB, a multiple of 4."""
    return max(4, int(math.ceil(float(memory_gb) * 1024 / 4) * 4))


class ComputeOps(Core):
    capabilities: frozenset[str]

    # ------------------------------------------------------------------ templates
    def templates(self) -> dict[str, Any]:
        """Template name -> VM object, for the templates of the datacenter."""
        found = self.session.call(
            "listing the templates",
            lambda: self.session.all_of(vim.VirtualMachine, ["name", "config.template"]),
        )
        return {str(p["name"]): obj for obj, p in found if p.get("config.template")}

    def os_tpl_term(self, entity: Resource) -> str | None:
        scheme = self.config.os_tpl_scheme
        return next((m[len(scheme) :] for m in entity.mixins if m.startswith(scheme)), None)

    # ------------------------------------------------------------------ reading
    def compute_outcome(
        self, entity: Resource, vm: Vm | None = None, message: str | None = None
    ) -> Outcome:
        vm = vm or self.vm_of(entity)
        pending = devices.loads(vm.extra.get(devices.PENDING_KEY))
        state, text, overdue = states.with_pending(
            vm.power,
            vm.props.get("runtime.connectionState"),
            pending,
            time.time(),
            self.config.shutdown_timeout,
        )
        if overdue:
            late = vm
            self.session.run(f"powering {vm.name} off", lambda: late.obj.PowerOffVM_Task())
            vm = self.read_vm(late.obj)
            state = states.occi_state(vm.power)
            text = (
                f"powered off: the guest did not shut down within "
                f"{self.config.shutdown_timeout:g} s"
            )
        attributes = {
            "occi.compute.state": state,
            "occi.compute.state.message": message or text,
            "occi.compute.cores": vm.cores,
            "occi.compute.memory": round(vm.memory_mb / 1024, 3),
        }
        return Outcome(attributes, platform_ref=vm.obj._moId)

    # ------------------------------------------------------------------ create
    def compute_create(self, entity: Resource) -> Outcome | Pending:
        name = common.platform_name(entity)
        existing = self.find_vm(str(entity.id), getattr(entity.placement, "platform_ref", None))
        if existing is not None:
            return self.finish_create(entity, existing)
        a = entity.attributes
        if guestinfo.wanted(a) and CONTEXTUALISATION not in self.capabilities:
            raise Unsupported("contextualization is not offered by this vSphere backend")
        eid = str(entity.id)
        extra = {devices.ENTITY_KEY: eid, **guestinfo.extra_config(eid, name, a)}
        cores = int(a.get("occi.compute.cores") or 1)
        memory = memory_mb(float(a.get("occi.compute.memory") or 1))
        host = self._host_ref(entity)
        config = vim.vm.ConfigSpec(
            name=name,
            instanceUuid=instance_uuid(str(entity.id)),
            numCPUs=cores,
            memoryMB=memory,
            cpuHotAddEnabled=self.config.hot_add or None,
            memoryHotAddEnabled=self.config.hot_add or None,
            extraConfig=devices.option_values(extra),
        )
        term = self.os_tpl_term(entity)
        s = self.session
        if term:
            template = self._template(term)
            relocate = vim.vm.RelocateSpec(pool=s.pool, datastore=s.datastore, host=host)
            clone = vim.vm.CloneSpec(
                location=relocate, powerOn=False, template=False, config=config
            )
            return self.started(  # type: ignore[return-value]
                {"op": "create"},
                f"cloning template {term} into {name}",
                lambda: template.CloneVM_Task(folder=s.folder, name=name, spec=clone),
                lambda: self.finish_create(entity),
            )
        config.guestId = "otherGuest64"
        config.files = vim.vm.FileInfo(vmPathName=f"[{s.datastore_name}]")
        changes = [devices.controller_add()]
        disk_gb = a.get("occi.compute.ephemeral_storage.size")
        if disk_gb:
            path = f"[{s.datastore_name}] {name}/{name}.vmdk"
            size_kb = int(float(disk_gb) * 1024 * 1024)
            changes.append(devices.disk_add(path, size_kb, devices.NEW_CONTROLLER_KEY, 0, True))
        config.deviceChange = changes
        return self.started(  # type: ignore[return-value]
            {"op": "create"},
            f"creating VM {name}",
            lambda: s.folder.CreateVM_Task(config=config, pool=s.pool, host=host),
            lambda: self.finish_create(entity),
        )

    def _host_ref(self, entity: Resource) -> Any:
        uri = getattr(entity.placement, "host_uri", None)
        return self.session.ref(vim.HostSystem, uri) if uri else None

    def _template(self, term: str) -> Any:
        names = self.templates()
        name = catalog.images(names).get(term)
        if name is None:
            raise NotFoundOnPlatform(f"no vSphere template for os_tpl {term}")
        return names[name]

    def finish_create(self, entity: Resource, vm: Vm | None = None) -> Outcome:
        """After the clone or create: the VM on its placement's host, with the entity's size
        (a clone takes the template's)."""
        vm = vm or self.vm_of(entity, strict=False)
        uri = getattr(entity.placement, "host_uri", None)
        if uri and vm.host != uri and vm.power == "poweredOff":
            spec = vim.vm.RelocateSpec(host=self.session.ref(vim.HostSystem, uri))
            moving = vm
            self.session.run(
                f"moving {vm.name} to its host", lambda: moving.obj.RelocateVM_Task(spec)
            )
            vm = self.read_vm(moving.obj)
        a = entity.attributes
        cores = int(a.get("occi.compute.cores") or vm.cores or 1)
        memory = memory_mb(float(a.get("occi.compute.memory") or vm.memory_mb / 1024 or 1))
        hot = self.config.hot_add
        flags = (
            vm.props.get("config.cpuHotAddEnabled"),
            vm.props.get("config.memoryHotAddEnabled"),
        )
        if vm.power == "poweredOff" and (
            (vm.cores, vm.memory_mb) != (cores, memory) or (hot and flags != (True, True))
        ):
            more = {"cpuHotAddEnabled": True, "memoryHotAddEnabled": True} if hot else {}
            self.reconfigure(vm, f"sizing {vm.name}", numCPUs=cores, memoryMB=memory, **more)
            vm = self.read_vm(vm.obj)
        return self.compute_outcome(entity, vm)

    # ------------------------------------------------------------------ power
    def _power(
        self, entity: Resource, vm: Vm, doing: str, start: Any, message: str
    ) -> Outcome | Pending:
        return self.started(  # type: ignore[return-value]
            {"op": "power", "m": message},
            doing,
            start,
            lambda: self.compute_outcome(entity, message=message),
        )

    def compute_start(self, entity: Resource) -> Outcome | Pending:
        vm = self.vm_of(entity)
        if vm.power == "poweredOn":
            raise InvalidTransition(f"VM {vm.name} runs already")
        resumed = vm.power == "suspended"
        resize = devices.loads(vm.extra.get(devices.RESIZE_KEY))
        clear = {devices.PENDING_KEY: None, devices.RESIZE_KEY: None}
        if resize and not resumed:
            self.reconfigure(
                vm,
                f"resizing {vm.name} before it starts",
                numCPUs=int(resize["cores"]),
                memoryMB=int(resize["memory_mb"]),
                extraConfig=devices.option_values(clear),
            )
        elif vm.extra.get(devices.PENDING_KEY):
            self.set_extra(vm, clear, f"starting {vm.name}")
        message = "running; resumed" if resumed else "running"
        return self._power(
            entity, vm, f"powering {vm.name} on", lambda: vm.obj.PowerOnVM_Task(), message
        )

    def compute_stop(self, entity: Resource, method: StopMethod | None = None) -> Outcome | Pending:
        vm = self.vm_of(entity)
        if vm.power != "poweredOn":
            raise InvalidTransition(f"VM {vm.name} does not run ({vm.power})")
        method = method or "graceful"
        if method != "poweroff":
            # recorded first, so that every observe() reports how the stop ends
            self._mark_stop(vm, method)
            try:
                self.session.call(f"shutting {vm.name} down", lambda: vm.obj.ShutdownGuest())
            except (Unsupported, InvalidTransition) as exc:  # no VMware Tools in the guest
                self._mark_stop(self.read_vm(vm.obj), "poweroff")
                message = f"powered off (the guest cannot shut down by itself: {exc})"
                return self._power(
                    entity, vm, f"powering {vm.name} off", lambda: vm.obj.PowerOffVM_Task(), message
                )
            return self.compute_outcome(entity)
        return self._power(
            entity,
            vm,
            f"powering {vm.name} off",
            lambda: vm.obj.PowerOffVM_Task(),
            states.STOP_DONE["poweroff"],
        )

    def _mark_stop(self, vm: Vm, method: str) -> None:
        pending = {"op": "stop", "method": method, "since": time.time()}
        self.set_extra(vm, {devices.PENDING_KEY: json.dumps(pending)}, f"stopping {vm.name}")

    def compute_restart(
        self, entity: Resource, method: RestartMethod | None = None
    ) -> Outcome | Pending:
        vm = self.vm_of(entity)
        if vm.power != "poweredOn":
            raise InvalidTransition(f"VM {vm.name} does not run ({vm.power})")
        method = method or "graceful"
        if method == "graceful":
            try:
                self.session.call(f"rebooting {vm.name}", lambda: vm.obj.RebootGuest())
                return self.compute_outcome(entity, message=states.RESTART_DONE["graceful"])
            except (Unsupported, InvalidTransition):
                method = "warm"  # no VMware Tools: a reset
        return self._power(
            entity,
            vm,
            f"resetting {vm.name}",
            lambda: vm.obj.ResetVM_Task(),
            states.RESTART_DONE[method],
        )

    def compute_suspend(
        self, entity: Resource, method: SuspendMethod | None = None
    ) -> Outcome | Pending:
        vm = self.vm_of(entity)
        if vm.power != "poweredOn":
            raise InvalidTransition(f"VM {vm.name} does not run ({vm.power})")
        return self._power(
            entity,
            vm,
            f"suspending {vm.name}",
            lambda: vm.obj.SuspendVM_Task(),
            states.POWER_MESSAGES["suspended"],
        )

    # ------------------------------------------------------------------ save
    def compute_save(
        self, entity: Resource, method: SaveMethod | None = None, name: str | None = None
    ) -> Outcome | Pending:
        if COMPUTE_SAVE not in self.capabilities:
            raise Unsupported("saving images is not offered by this vSphere backend")
        vm = self.vm_of(entity)
        term = catalog.free_term(name or f"{vm.name}-image", catalog.images(self.templates()))
        clear = {k: None for k in vm.extra if k.startswith("occi.") or k.startswith("guestinfo.")}
        spec = vim.vm.CloneSpec(
            location=vim.vm.RelocateSpec(pool=self.session.pool),
            powerOn=False,
            template=True,
            config=vim.vm.ConfigSpec(extraConfig=devices.option_values(clear)),
        )
        folder = self.session.folder
        return self.started(  # type: ignore[return-value]
            {"op": "save", "n": term},
            f"saving {vm.name} as template {term}",
            lambda: vm.obj.CloneVM_Task(folder=folder, name=term, spec=spec),
            lambda: self.saved(entity, term),
        )

    def saved(self, entity: Resource, term: str) -> Outcome:
        out = self.compute_outcome(entity)
        state = out.attributes["occi.compute.state"]
        out.attributes["occi.compute.state.message"] = f"{state}; saved as os_tpl {term}"
        out.mixin = common.os_tpl(self.config.os_tpl_scheme, term, f"vSphere template {term}")
        return out

    def delete_image(self, mixin: Mixin) -> None:
        if mixin.scheme != self.config.os_tpl_scheme:
            return
        names = self.templates()
        name = catalog.images(names).get(mixin.term)
        if name is not None:
            template = names[name]
            self.session.run(f"deleting template {name}", lambda: template.Destroy_Task())

    # ------------------------------------------------------------------ resize
    def compute_resize(
        self, entity: Resource, cores: int | None, memory_gb: float | None
    ) -> Outcome | Pending:
        vm = self.vm_of(entity)
        want_cores = int(cores) if cores is not None else vm.cores
        want_mb = memory_mb(memory_gb) if memory_gb is not None else vm.memory_mb
        if (want_cores, want_mb) == (vm.cores, vm.memory_mb):
            return self.compute_outcome(entity, vm)
        if vm.power == "poweredOff":
            message = "inactive; the new size takes effect at the next start"
        else:
            hot = (
                vm.power == "poweredOn"
                and want_cores >= vm.cores
                and want_mb >= vm.memory_mb
                and (want_cores == vm.cores or vm.props.get("config.cpuHotAddEnabled"))
                and (want_mb == vm.memory_mb or vm.props.get("config.memoryHotAddEnabled"))
            )
            if not hot:
                size = {"cores": want_cores, "memory_mb": want_mb}
                self.set_extra(vm, {devices.RESIZE_KEY: json.dumps(size)}, f"resizing {vm.name}")
                why = "no hot-add" if vm.power == "poweredOn" else vm.power
                out = self.compute_outcome(entity)
                out.attributes["occi.compute.state.message"] = (
                    f"{out.attributes['occi.compute.state']}; the new size applies from the "
                    f"next start ({why})"
                )
                return out
            message = "running; new size applied live (hot-add)"
        spec = vim.vm.ConfigSpec(numCPUs=want_cores, memoryMB=want_mb)
        return self.started(  # type: ignore[return-value]
            {"op": "power", "m": message},
            f"resizing {vm.name}",
            lambda: vm.obj.ReconfigVM_Task(spec=spec),
            lambda: self.compute_outcome(entity, message=message),
        )

    # ------------------------------------------------------------------ delete
    def compute_delete(self, entity: Resource) -> Pending | None:
        vm = self.find_vm(str(entity.id), getattr(entity.placement, "platform_ref", None))
        if vm is None:
            return None
        if vm.power != "poweredOff":
            self.session.run(f"powering {vm.name} off", lambda: vm.obj.PowerOffVM_Task())
        # volumes attached to it stay: their disks leave the VM before it is destroyed
        others = [d for d in devices.disks(vm.devices) if devices.is_volume(devices.disk_file(d))]
        if others:
            self.reconfigure(
                vm,
                f"detaching volumes from {vm.name}",
                deviceChange=[devices.remove(d) for d in others],
            )
        done = self.started(
            {"op": "delete"},
            f"destroying VM {vm.name}",
            lambda: vm.obj.Destroy_Task(),
            lambda: None,
        )
        return done if isinstance(done, Pending) else None
