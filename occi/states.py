"""The GFD.224 state machine, in one place: resource states, which action leads from which
states to which, and the rule that gives a link its state from the resources it joins.

Pure data and functions over occi.infrastructure. The service checks an action against it before
anything is written (an impossible action is a 409 with nothing changed); the backends take their
transitions from it (the simulator's machines, the libvirt refusals); and the service recomputes
the state of every link whose source or target changed state.

Beyond the figures of GFD.224: a resource in `error` may be given the action that leads back to
its working state (start, online, up), which is how a crashed machine is recovered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from occi import infrastructure as infra


@dataclass(frozen=True)
class Transition:
    allowed: tuple[str, ...]  # states the resource must be in
    target: str | None  # the state it ends in; None keeps the current one


@dataclass(frozen=True)
class Machine:
    kind_id: str
    label: str  # compute | storage | network
    state_attr: str  # occi.compute.state, ...
    initial: str
    states: tuple[str, ...]
    transitions: Mapping[str, Transition]
    #: the state in which a link to or from the resource can carry traffic
    working: str

    @property
    def message_attr(self) -> str:
        return self.state_attr + ".message"

    def attributes(self, state: str, message: str) -> dict[str, Any]:
        return {self.state_attr: state, self.message_attr: message}


COMPUTE = Machine(
    infra.COMPUTE.id,
    "compute",
    "occi.compute.state",
    "inactive",
    infra.COMPUTE_STATES,
    {
        "start": Transition(("inactive", "suspended", "error"), "active"),
        "stop": Transition(("active",), "inactive"),
        "restart": Transition(("active",), "active"),
        "suspend": Transition(("active",), "suspended"),
        "save": Transition(("active", "inactive"), None),
    },
    "active",
)
STORAGE = Machine(
    infra.STORAGE.id,
    "storage",
    "occi.storage.state",
    "offline",
    infra.STORAGE_STATES,
    {
        "online": Transition(("offline", "error"), "online"),
        "offline": Transition(("online",), "offline"),
    },
    "online",
)
NETWORK = Machine(
    infra.NETWORK.id,
    "network",
    "occi.network.state",
    "inactive",
    infra.LINK_STATES,
    {
        "up": Transition(("inactive", "error"), "active"),
        "down": Transition(("active",), "inactive"),
    },
    "active",
)

MACHINES: dict[str, Machine] = {m.kind_id: m for m in (COMPUTE, STORAGE, NETWORK)}

#: the state an action leads to (None: it keeps the state), whichever kind it belongs to
ACTION_TARGETS: dict[str, str | None] = {
    term: tr.target for m in MACHINES.values() for term, tr in m.transitions.items()
}

#: link kind -> its state attribute
LINK_STATE_ATTRS: dict[str, str] = {
    infra.NETWORKINTERFACE.id: "occi.networkinterface.state",
    infra.STORAGELINK.id: "occi.storagelink.state",
}


def machine_for(kind: Any) -> Machine | None:
    """The machine of a kind (or of the standard kind it derives from); None if it has none."""
    k = kind
    while k is not None:
        m = MACHINES.get(k.id)
        if m is not None:
            return m
        k = k.parent
    return None


def describe(states: tuple[str, ...]) -> str:
    return " or ".join(states)


def refusal(machine: Machine, term: str, current: str | None) -> str | None:
    """Why `term` is impossible for a resource in state `current`; None when it is possible
    (or when the machine does not know the action or the state is unknown)."""
    tr = machine.transitions.get(term)
    if tr is None or current is None or current in tr.allowed:
        return None
    return f"the {machine.label} is {current}: {term} needs it {describe(tr.allowed)}"


def link_state(
    source_kind: Any, source_state: str | None, target_kind: Any, target_state: str | None
) -> tuple[str, str]:
    """(state, message) of a networkinterface or storagelink from the resources it joins:
    `error` if either is in error, `active` when the compute runs and an internal target is
    up/online, else `inactive`. A target outside this server (no kind) counts as working."""
    parts = [(machine_for(source_kind), source_state), (machine_for(target_kind), target_state)]
    waiting = []
    for machine, state in parts:
        if machine is None:
            continue
        if state == "error":
            return "error", f"the {machine.label} it joins is in error"
        if state != machine.working:
            waiting.append(f"the {machine.label} is {state or 'unknown'}")
    if waiting:
        return "inactive", "inactive: " + ", ".join(waiting)
    return "active", "active"


def after(machine: Machine, state: str | None, terms: list[str]) -> str | None:
    """The state a resource in `state` will be in once the actions `terms` (queued, in order)
    are carried out."""
    for term in terms:
        tr = machine.transitions.get(term)
        if tr is not None and tr.target is not None:
            state = tr.target
    return state
