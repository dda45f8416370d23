"""The simulator's state machines: which action moves a machine from which states to which.

Pure data following OCCI Infrastructure 1.2 (GFD.224) section 3: a backend translates, so these
are what the pretend hypervisor allows, and the service learns of refusals as InvalidTransition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from occi import infrastructure as infra


@dataclass(frozen=True)
class Transition:
    allowed: tuple[str, ...]  # states the machine must be in
    target: str | None  # new state; None keeps the current one


@dataclass(frozen=True)
class MachineKind:
    label: str  # compute | storage | network (also the sim_machines.kind value)
    state_attr: str  # occi.compute.state, ...
    initial: str
    transitions: Mapping[str, Transition]

    @property
    def message_attr(self) -> str:
        return self.state_attr + ".message"

    def attributes(self, state: str, message: str) -> dict[str, Any]:
        return {self.state_attr: state, self.message_attr: message}


COMPUTE = MachineKind(
    "compute",
    "occi.compute.state",
    "inactive",
    {
        "start": Transition(("inactive", "suspended"), "active"),
        "stop": Transition(("active",), "inactive"),
        "restart": Transition(("active",), "active"),
        "suspend": Transition(("active",), "suspended"),
        "save": Transition(("active", "inactive"), None),
    },
)
STORAGE = MachineKind(
    "storage",
    "occi.storage.state",
    "offline",
    {
        "online": Transition(("offline",), "online"),
        "offline": Transition(("online",), "offline"),
    },
)
NETWORK = MachineKind(
    "network",
    "occi.network.state",
    "inactive",
    {
        "up": Transition(("inactive",), "active"),
        "down": Transition(("active",), "inactive"),
    },
)

BY_KIND_ID: dict[str, MachineKind] = {
    infra.COMPUTE.id: COMPUTE,
    infra.STORAGE.id: STORAGE,
    infra.NETWORK.id: NETWORK,
}
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


def describe(states: tuple[str, ...]) -> str:
    return " or ".join(states)
