"""The VM power-state machine of the test xapi server (Halted, Running, Paused, Suspended):
which operation is allowed from which state (else VM_BAD_POWER_STATE [vm, expected, actual]),
where a VM runs (its affinity, an enabled host with free memory), host memory accounting, and
the guest agent (PV drivers) the clean operations need."""

from __future__ import annotations

from typing import Any

from tests.xapi import errors
from tests.xapi.errors import XapiError
from tests.xapi.store import NULL, Store

HALTED, RUNNING, PAUSED, SUSPENDED = "Halted", "Running", "Paused", "Suspended"

#: operation -> (power states it is allowed from, the first being the one errors name; the
#: power state it leaves the VM in)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "start": ((HALTED,), RUNNING),
    "start_on": ((HALTED,), RUNNING),
    "clean_shutdown": ((RUNNING,), HALTED),
    "hard_shutdown": ((RUNNING, PAUSED, SUSPENDED), HALTED),
    "shutdown": ((RUNNING, PAUSED, SUSPENDED), HALTED),
    "clean_reboot": ((RUNNING,), RUNNING),
    "hard_reboot": ((RUNNING, PAUSED), RUNNING),
    "suspend": ((RUNNING,), SUSPENDED),
    "resume": ((SUSPENDED,), RUNNING),
    "resume_on": ((SUSPENDED,), RUNNING),
    "pause": ((RUNNING,), PAUSED),
    "unpause": ((PAUSED,), RUNNING),
    "pool_migrate": ((RUNNING, PAUSED), RUNNING),  # a paused VM moves paused
}
#: operations that ask the guest (its PV drivers) to do something
CLEAN = frozenset({"clean_shutdown", "clean_reboot", "suspend"})
RESIDENT = (RUNNING, PAUSED)


class Power:
    """Carries out the power operations on the store's VMs."""

    def __init__(self, store: Store):
        self.store = store

    def check(self, ref: str, operation: str) -> dict[str, Any]:
        vm = self.store.get("VM", ref)
        if vm["is_a_template"]:
            raise XapiError(errors.VM_IS_TEMPLATE, ref)
        allowed, _ = TRANSITIONS[operation]
        if vm["power_state"] not in allowed:
            raise XapiError(
                errors.VM_BAD_POWER_STATE, ref, allowed[0].lower(), vm["power_state"].lower()
            )
        if operation in CLEAN and not self._pv_drivers(vm):
            raise XapiError(errors.VM_MISSING_PV_DRIVERS, ref)
        return vm

    def _pv_drivers(self, vm: dict[str, Any]) -> bool:
        gm = vm.get("guest_metrics", NULL)
        if not self.store.exists("VM_guest_metrics", gm):
            return False
        return bool(self.store.get("VM_guest_metrics", gm).get("PV_drivers_detected"))

    # ------------------------------------------------------------------ hosts
    def free_memory(self, host: str) -> int:
        metrics = self.store.get("host_metrics", self.store.get("host", host)["metrics"])
        used = sum(
            vm["memory_dynamic_max"]
            for vm in self.store.objects["VM"].values()
            if vm["resident_on"] == host and vm["power_state"] in RESIDENT
        )
        return int(metrics["memory_total"]) - used

    def refresh_metrics(self) -> None:
        """Each host's free memory and resident VMs, after a VM started, stopped or moved."""
        for host_ref, host in self.store.objects["host"].items():
            resident = [
                r for r, vm in self.store.objects["VM"].items() if vm["resident_on"] == host_ref
            ]
            if host["resident_VMs"] != resident:
                self.store.update("host", host_ref, resident_VMs=resident)
            metrics_ref = host["metrics"]
            free = self.free_memory(host_ref)
            if self.store.get("host_metrics", metrics_ref)["memory_free"] != free:
                self.store.update("host_metrics", metrics_ref, memory_free=free)

    def choose_host(self, vm_ref: str, wanted: str | None = None) -> str:
        """The host a VM starts on: `wanted` (start_on), else its affinity when enabled and
        with room, else the enabled host with most free memory."""
        vm = self.store.get("VM", vm_ref)
        need = vm["memory_static_max"]
        if wanted is not None:
            host = self.store.get("host", wanted)
            if not host["enabled"]:
                raise XapiError(errors.HOST_DISABLED, wanted)
            free = self.free_memory(wanted)
            if free < need:
                raise XapiError(errors.HOST_NOT_ENOUGH_FREE_MEMORY, need, free)
            return wanted
        affinity = vm.get("affinity", NULL)
        if self.store.exists("host", affinity):
            host = self.store.get("host", affinity)
            if host["enabled"] and self.free_memory(affinity) >= need:
                return affinity
        enabled = [r for r, h in self.store.objects["host"].items() if h["enabled"]]
        if not enabled:
            raise XapiError(errors.NO_HOSTS_AVAILABLE)
        best = max(enabled, key=self.free_memory)
        if self.free_memory(best) < need:
            raise XapiError(errors.HOST_NOT_ENOUGH_FREE_MEMORY, need, self.free_memory(best))
        return best

    # ------------------------------------------------------------------ operations
    def run(self, ref: str, operation: str, host: str | None = None) -> None:
        """Carry out `operation` (checked first); `host`: the target of *_on and pool_migrate."""
        with self.store.lock:
            vm = self.check(ref, operation)
            _, after = TRANSITIONS[operation]
            if operation == "pool_migrate":
                after = vm["power_state"]
            fields: dict[str, Any] = {"power_state": after}
            if operation in ("start", "start_on", "resume", "resume_on"):
                fields["resident_on"] = self.choose_host(ref, host)
                fields["domid"] = self._next_domid()
            elif operation == "pool_migrate":
                assert host is not None
                if host == vm["resident_on"]:
                    raise XapiError(
                        errors.OPERATION_NOT_ALLOWED, "the VM is already resident on that host"
                    )
                fields["resident_on"] = self.choose_host(ref, host)
            elif after in (HALTED, SUSPENDED):
                fields["resident_on"] = NULL
                fields["domid"] = -1
            if after in (HALTED, SUSPENDED):
                self._drop_guest(ref, vm)
            elif vm["power_state"] in (HALTED, SUSPENDED):
                fields["guest_metrics"] = self._boot_guest(vm)
            if after == HALTED:
                for vbd in vm["VBDs"]:
                    self.store.update("VBD", vbd, currently_attached=False)
                for vif in vm["VIFs"]:
                    self.store.update("VIF", vif, currently_attached=False)
            elif after == RUNNING and vm["power_state"] == HALTED:
                for vbd in vm["VBDs"]:
                    self.store.update("VBD", vbd, currently_attached=True)
                for vif in vm["VIFs"]:
                    self.store.update("VIF", vif, currently_attached=True)
            self.store.update("VM", ref, **fields)
            self.refresh_metrics()

    def guest_halts(self, ref: str) -> None:
        """The guest powers itself off (a shutdown inside the VM): Halted, as xapi sees it."""
        with self.store.lock:
            vm = self.store.get("VM", ref)
            if vm["power_state"] != RUNNING:
                raise XapiError(
                    errors.VM_BAD_POWER_STATE, ref, "running", vm["power_state"].lower()
                )
            self._drop_guest(ref, vm)
            for vbd in vm["VBDs"]:
                self.store.update("VBD", vbd, currently_attached=False)
            for vif in vm["VIFs"]:
                self.store.update("VIF", vif, currently_attached=False)
            self.store.update("VM", ref, power_state=HALTED, resident_on=NULL, domid=-1)
            self.refresh_metrics()

    def _next_domid(self) -> int:
        return 1 + max((vm.get("domid", 0) for vm in self.store.objects["VM"].values()), default=0)

    def _boot_guest(self, vm: dict[str, Any]) -> str:
        if not vm.get("_pv_drivers"):
            return NULL
        return self.store.add(
            "VM_guest_metrics",
            {"PV_drivers_detected": True, "os_version": {"name": "test guest"}, "networks": {}},
        )

    def _drop_guest(self, ref: str, vm: dict[str, Any]) -> None:
        gm = vm.get("guest_metrics", NULL)
        if self.store.exists("VM_guest_metrics", gm):
            self.store.remove("VM_guest_metrics", gm)
        vm["guest_metrics"] = NULL
