"""The mapping tables of the XenServer backend: xapi power states to OCCI compute states, the
messages of operations, and xapi error codes to the backend's faults. Pure data and lookups, in
the manner of Libcloud's NODE_STATE_MAP; an unknown value takes the table's default."""

from __future__ import annotations

from collections.abc import Sequence

from backends.base import (
    BackendFault,
    InvalidTransition,
    NotFoundOnPlatform,
    PlatformError,
    Unreachable,
    Unsupported,
)

HALTED, RUNNING, PAUSED, SUSPENDED = "Halted", "Running", "Paused", "Suspended"

#: xapi VM.power_state -> occi.compute.state (anything else: UNKNOWN_STATE)
POWER_STATE_MAP: dict[str, str] = {
    HALTED: "inactive",
    RUNNING: "active",
    PAUSED: "suspended",
    SUSPENDED: "suspended",
}
UNKNOWN_STATE = "error"

#: the message of a power state seen without an operation of ours (a change made in XenCenter
#: or with `xe` reads like this)
POWER_MESSAGES: dict[str, str] = {
    HALTED: "inactive; halted",
    RUNNING: "running",
    PAUSED: "suspended; paused, memory kept in RAM",
    SUSPENDED: "suspended; memory saved to disk",
}

#: the message each operation leaves (kept in the VM's other_config as occi_last, so every
#: worker's observe() says how the VM got where it is while the power state stays the same)
DONE: dict[str, str] = {
    "create": "inactive; created",
    "start": "running",
    "resume": "running; resumed",
    "stop:graceful": "inactive; stopped by a graceful guest shutdown",
    "stop:acpioff": "inactive; stopped by a clean shutdown (Xen has no separate ACPI button)",
    "stop:poweroff": "inactive; powered off",
    "stop:fallback": "inactive; powered off instead of a clean shutdown: {reason}",
    "restart:graceful": "running; rebooted by the guest",
    "restart:warm": "running; reset (warm)",
    "restart:cold": "running; reset (cold)",
    "restart:fallback": "running; reset instead of a clean reboot: {reason}",
    "suspend:suspend": "suspended; paused, memory kept in RAM",
    "suspend:hibernate": "suspended; memory saved to disk",
    "migrate:live": "running; migrated live to another host of the pool",
    "migrate:offline": "running; migrated to another host of the pool",
    "migrate:stopped": "inactive; stopped, moved to another host of the pool",
    "migrate:paused": "suspended; paused, moved live to another host of the pool",
    "migrate:suspended": "suspended; moved to another host of the pool",
}
#: what an operation under way (a Pending) shows meanwhile
UNDER_WAY: dict[str, str] = {
    "create": "creating (cloning the template)",
    "start": "starting",
    "resume": "resuming",
    "stop": "stopping",
    "restart": "restarting",
    "suspend": "suspending",
    "migrate": "migrating to another host of the pool",
    "save": "saving as a template",
    "resize": "resizing the disk",
}

#: xapi error code -> (fault class, message template over the error's parameters p[0], p[1]...)
ERRORS: dict[str, tuple[type[BackendFault], str]] = {
    "VM_BAD_POWER_STATE": (
        InvalidTransition,
        "the VM must be {p[1]} for this, it is {p[2]}",
    ),
    "VM_IS_TEMPLATE": (InvalidTransition, "the object is a template, not a VM"),
    "VM_MISSING_PV_DRIVERS": (
        InvalidTransition,
        "the guest has no PV drivers (tools) to do this cleanly",
    ),
    "MEMORY_CONSTRAINT_VIOLATION": (InvalidTransition, "memory outside the VM's limits: {p[0]}"),
    "VALUE_NOT_SUPPORTED": (InvalidTransition, "{p[0]} = {p[1]} is not possible: {p[2]}"),
    "DEVICE_ALREADY_EXISTS": (InvalidTransition, "device {p[0]} is taken"),
    "DEVICE_ALREADY_ATTACHED": (InvalidTransition, "the device is attached already"),
    "DEVICE_ALREADY_DETACHED": (InvalidTransition, "the device is detached already"),
    "VDI_IN_USE": (InvalidTransition, "the disk is in use ({p[1]} refused)"),
    "OPERATION_NOT_ALLOWED": (InvalidTransition, "xapi does not allow it: {p[0]}"),
    "NETWORK_CONTAINS_VIF": (InvalidTransition, "the network still has interfaces plugged"),
    "HOST_DISABLED": (PlatformError, "the host is disabled (in maintenance)"),
    "HOST_NOT_ENOUGH_FREE_MEMORY": (
        PlatformError,
        "the host has not enough free memory ({p[0]} bytes needed, {p[1]} free)",
    ),
    "NO_HOSTS_AVAILABLE": (PlatformError, "no host of the pool can run it"),
    "HANDLE_INVALID": (NotFoundOnPlatform, "the {p[0]} is gone from the pool"),
    "UUID_INVALID": (NotFoundOnPlatform, "no {p[0]} with uuid {p[1]} in the pool"),
    "MESSAGE_METHOD_UNKNOWN": (Unsupported, "this xapi does not know {p[0]}"),
    "SESSION_AUTHENTICATION_FAILED": (
        Unreachable,
        "xapi refused the credentials of user {p[0]}",
    ),
    "HOST_IS_SLAVE": (Unreachable, "the URL names a pool member, not the master ({p[0]})"),
}
DEFAULT_ERROR: tuple[type[BackendFault], str] = (PlatformError, "xapi failed: {code} {p}")


def occi_state(power_state: str) -> str:
    return POWER_STATE_MAP.get(power_state, UNKNOWN_STATE)


def remembered(power_state: str, message: str) -> str:
    """What an operation leaves in other_config: the power state it left and its message."""
    return f"{power_state}|{message}"


def describe(power_state: str, last: str | None = None) -> tuple[str, str]:
    """(OCCI state, message) of a VM in `power_state`; `last` is what our last operation left
    (`remembered`), its message used while the VM is still in the power state it left."""
    state = occi_state(power_state)
    if state == UNKNOWN_STATE:
        return state, f"unknown xapi power state {power_state!r}"
    left, _, message = (last or "").partition("|")
    if message and left == power_state:
        return state, message
    return state, POWER_MESSAGES[power_state]


def fault(details: Sequence[object], doing: str) -> BackendFault:
    """The backend fault for a xapi failure [code, params...] met while `doing` something."""
    code = str(details[0]) if details else "UNKNOWN"
    params = [str(p) for p in details[1:]]
    cls, template = ERRORS.get(code, DEFAULT_ERROR)
    padded = [*params, "", "", ""]
    try:
        text = template.format(p=padded, code=code)
    except (IndexError, KeyError):
        text = f"{code} {params}"
    if template is DEFAULT_ERROR[1]:
        text = f"xapi failed: {code} {' '.join(params)}".strip()
    exc = cls(f"{doing}: {text}")
    exc.xapi_code = code  # type: ignore[attr-defined]
    exc.xapi_params = params  # type: ignore[attr-defined]
    return exc
