"""The mapping tables from vSphere's VM power and connection states to OCCI compute states.

Pure data, in the manner of Libcloud's NODE_STATE_MAP (an unknown value maps to a default, never
a KeyError), plus the messages the backend shows. The keys are vSphere's enumeration strings
(VirtualMachinePowerState, VirtualMachineConnectionState), so no SDK import is needed here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: VirtualMachinePowerState -> OCCI occi.compute.state
POWER_STATE_MAP: dict[str, str] = {
    "poweredOn": "active",
    "poweredOff": "inactive",
    "suspended": "suspended",
}
#: what a power state not in the table reads as
UNKNOWN_STATE = "error"

#: VirtualMachineConnectionState -> (OCCI state, message) when the VM is not `connected`
CONNECTION_STATE_MAP: dict[str, tuple[str, str]] = {
    "disconnected": ("error", "its host is disconnected from vCenter"),
    "inaccessible": ("error", "its files are inaccessible (datastore down?)"),
    "invalid": ("error", "vCenter reports its configuration as invalid"),
    "orphaned": ("error", "orphaned: its host no longer knows it"),
    "notResponding": ("error", "its host does not respond"),
}

#: the message of each state read without an operation of ours under way
POWER_MESSAGES: dict[str, str] = {
    "poweredOn": "running",
    "poweredOff": "inactive",
    "suspended": "suspended; memory written to the datastore",
}

STOP_PENDING = {
    "graceful": "stopping (graceful shutdown requested)",
    "acpioff": "stopping (guest shutdown requested)",
}
STOP_DONE = {
    "graceful": "stopped by a graceful guest shutdown",
    "acpioff": "stopped by a guest shutdown",
    "poweroff": "powered off",
}
RESTART_DONE = {
    "graceful": "running; graceful guest reboot requested",
    "warm": "running; reset (warm)",
    "cold": "running; reset (cold)",
}

#: TaskInfoState -> whether the task has ended
TASK_DONE: dict[str, bool] = {"queued": False, "running": False, "success": True, "error": True}


def occi_state(power_state: str | None) -> str:
    return POWER_STATE_MAP.get(str(power_state), UNKNOWN_STATE)


def describe(
    power_state: str | None, connection_state: str | None = "connected"
) -> tuple[str, str]:
    """(OCCI state, message) for a VM as vSphere reports it, without an operation of ours."""
    if connection_state and connection_state != "connected":
        return CONNECTION_STATE_MAP.get(
            str(connection_state), ("error", f"connection state {connection_state}")
        )
    state = occi_state(power_state)
    if state == UNKNOWN_STATE:
        return state, f"unknown power state {power_state!r}"
    return state, POWER_MESSAGES[str(power_state)]


def with_pending(
    power_state: str | None,
    connection_state: str | None,
    pending: Mapping[str, Any] | None,
    now: float,
    shutdown_timeout: float,
) -> tuple[str, str, bool]:
    """(OCCI state, message, overdue) taking a guest shutdown of ours under way into account;
    `overdue`: the guest did not stop within the timeout, so the backend powers it off."""
    state, message = describe(power_state, connection_state)
    if not pending or pending.get("op") != "stop":
        return state, message, False
    method = str(pending.get("method") or "graceful")
    if state == "active":
        since = float(pending.get("since") or now)
        if now - since > shutdown_timeout:
            return state, f"{STOP_PENDING.get(method, 'stopping')}; overdue: powering off", True
        return state, STOP_PENDING.get(method, "stopping"), False
    if state == "inactive":
        return state, STOP_DONE.get(method, "stopped"), False
    return state, message, False
