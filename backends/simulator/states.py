"""The simulator's view of the state machines: GFD.224's (occi.states), with the messages the
pretend hypervisor shows after each action.

A backend translates: the service checks transitions before it asks, and learns of refusals the
platform still makes (a state changed meanwhile) as InvalidTransition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from occi import states as machines
from occi.states import Machine
from occi.states import Transition as Transition  # re-exported for the backend
from occi.states import describe as describe  # re-exported for the backend

# The transitions are GFD.224's (occi.states); the simulator adds its messages.
MachineKind = Machine
COMPUTE = machines.COMPUTE
STORAGE = machines.STORAGE
NETWORK = machines.NETWORK

BY_KIND_ID: dict[str, MachineKind] = dict(machines.MACHINES)
BY_LABEL: dict[str, MachineKind] = {k.label: k for k in BY_KIND_ID.values()}

STOP_MESSAGES = {
    "graceful": "stopped by a graceful guest shutdown",
    "acpioff": "stopped by the ACPI power button",
    "poweroff": "powered off",
}
RESTART_MESSAGES = {
    "graceful": "running, restarted by a graceful guest reboot",
    "warm": "running, restarted by a warm (soft) reset",
    "cold": "running, restarted by a cold power cycle",
}
SUSPEND_MESSAGES = {
    "suspend": "suspended, memory kept in RAM",
    "hibernate": "hibernated, memory saved to disk",
}


def action_message(term: str, before: str, params: Mapping[str, Any]) -> str:
    """The state message after an action succeeded (save composes its own)."""
    method = params.get("method")
    if term == "start":
        return "running, resumed from suspension" if before == "suspended" else "running"
    if term == "stop":
        return STOP_MESSAGES.get(method or "graceful", f"stopped ({method})")
    if term == "restart":
        return RESTART_MESSAGES.get(method or "graceful", f"running, restarted ({method})")
    if term == "suspend":
        return SUSPEND_MESSAGES.get(method or "suspend", f"suspended ({method})")
    if term == "online":
        return "online, ready to attach"
    if term == "offline":
        return "offline"
    if term == "up":
        return "up, forwarding traffic"
    if term == "down":
        return "down"
    return term


def created_message(kind: MachineKind) -> str:
    return {
        "compute": "created, inactive until started",
        "storage": "created, offline until brought online",
        "network": "created, inactive until brought up",
    }[kind.label]
