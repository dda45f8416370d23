"""The mapping table from libvirt's domain states (virDomainState, reason) to OCCI compute states.

Pure data, in the manner of Libcloud's NODE_STATE_MAP, plus the messages the backend shows.
The numbers are libvirt's stable ABI values (libvirt-domain.h), so no SDK import is needed here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# virDomainState
NOSTATE, RUNNING, BLOCKED, PAUSED, SHUTDOWN, SHUTOFF, CRASHED, PMSUSPENDED = range(8)

#: virDomainState -> OCCI occi.compute.state
STATE_MAP: dict[int, str] = {
    NOSTATE: "inactive",
    RUNNING: "active",
    BLOCKED: "active",  # running, waiting on a resource
    PAUSED: "suspended",
    SHUTDOWN: "active",  # being shut down: still running until it is off
    SHUTOFF: "inactive",
    CRASHED: "error",
    PMSUSPENDED: "suspended",  # the guest suspended itself (S3/S4)
}

STATE_NAMES = {
    NOSTATE: "no state",
    RUNNING: "running",
    BLOCKED: "blocked",
    PAUSED: "paused",
    SHUTDOWN: "shutting down",
    SHUTOFF: "shut off",
    CRASHED: "crashed",
    PMSUSPENDED: "suspended by the guest",
}

# reasons (virDomainShutoffReason, virDomainPausedReason, virDomainRunningReason)
SHUTOFF_REASONS = {
    0: "shut off",
    1: "the guest shut itself down",
    2: "powered off (destroyed)",
    3: "the guest crashed",
    4: "migrated away",
    5: "saved to a file",
    6: "failed to start",
    7: "reverted to a snapshot",
    8: "the daemon stopped it",
}
PAUSED_REASONS = {
    0: "paused",
    1: "paused",
    2: "paused for migration",
    3: "paused while its memory is saved",
    4: "paused while its memory is dumped",
    5: "paused after a disk I/O error",
    6: "paused by its watchdog",
    7: "paused after reverting to a snapshot",
    8: "paused while shutting down",
    9: "paused while a snapshot is taken",
    10: "paused after the guest crashed",
    11: "paused while starting up",
    12: "paused in post-copy migration",
    13: "paused after a failed post-copy migration",
}
RUNNING_REASONS = {
    3: "running; restored from saved memory",
    5: "running; resumed",
    8: "running; woken up",
    9: "running after a crash",
}

STOP_PENDING = {
    "graceful": "stopping (graceful shutdown requested)",
    "acpioff": "stopping (ACPI power button pressed)",
}
STOP_DONE = {
    "graceful": "stopped by a graceful guest shutdown",
    "acpioff": "stopped by the ACPI power button",
    "poweroff": "powered off",
}
RESTART_DONE = {
    "graceful": "running; graceful guest reboot requested",
    "warm": "running; rebooted (warm)",
    "cold": "running; reset (cold)",
}


def occi_state(state: int) -> str:
    return STATE_MAP.get(state, "error")


def describe(state: int, reason: int, managed_save: bool = False) -> tuple[str, str]:
    """(OCCI state, message) for a domain in libvirt state/reason, seen without any pending
    operation of ours (a change made outside the server reads like this)."""
    if state == SHUTOFF and managed_save:
        return "suspended", "hibernated; memory saved to disk"
    occi = occi_state(state)
    if state == SHUTOFF:
        text = SHUTOFF_REASONS.get(reason, "shut off")
        if reason in (3, 6):
            return "error", text
        return occi, "inactive" if reason == 0 else f"inactive; {text}"
    if state == PAUSED:
        if reason in (5, 10):
            return "error", PAUSED_REASONS[reason]
        return occi, "suspended; memory kept in RAM" if reason in (0, 1) else PAUSED_REASONS.get(
            reason, "paused"
        )
    if state == PMSUSPENDED:
        return occi, "suspended by the guest itself"
    if state == CRASHED:
        return "error", "the guest crashed"
    if state == SHUTDOWN:
        return occi, "running; shutting down"
    return occi, RUNNING_REASONS.get(reason, "running")


def with_pending(
    state: int,
    reason: int,
    managed_save: bool,
    pending: Mapping[str, Any] | None,
    now: float,
    shutdown_timeout: float,
) -> tuple[str, str]:
    """(OCCI state, message) taking an operation of ours under way into account."""
    occi, message = describe(state, reason, managed_save)
    if not pending:
        return occi, message
    op = pending.get("op")
    method = pending.get("method") or ""
    if op == "stop":
        if occi == "active":
            since = float(pending.get("since") or now)
            if now - since > shutdown_timeout:
                return occi, (
                    f"{STOP_PENDING.get(method, 'stopping')}; still running after "
                    f"{now - since:.0f} s: the guest may ignore it (stop with method=poweroff)"
                )
            return occi, STOP_PENDING.get(method, "stopping")
        if state == SHUTOFF and not managed_save and reason in (0, 1, 2):
            return "inactive", STOP_DONE.get(method, "stopped")
    return occi, message
