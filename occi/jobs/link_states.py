"""A link's stored state, derived from the resources it joins (occi.states.link_state): written
after every change of state that a job or reconciliation stores."""

from __future__ import annotations

from collections.abc import Callable

from occi import states as machines
from occi.model import Entity, Link
from occi.registry import Registry
from occi.store.base import StoreTx

#: the registry now (the service's cached one), read in the transaction when one is given
RegistryOf = Callable[[StoreTx | None], Registry]


def derive_link_states(tx: StoreTx, entity: Entity, registry: RegistryOf) -> list[Link]:
    """After a state change: store the GFD.224 state (occi.states.link_state) of every link
    joining the resource, or of the link itself unless the platform put it in error. Returns
    the links with a state, as stored now."""
    if isinstance(entity, Link):
        attr = machines.LINK_STATE_ATTRS.get(entity.kind)
        links = [entity] if attr and entity.attributes.get(attr) != "error" else []
    else:
        links = [ln for ln in tx.links_touching([entity.id or ""]) if isinstance(ln, Link)]
    links = [ln for ln in links if ln.kind in machines.LINK_STATE_ATTRS]
    if not links:
        return links
    reg = registry(tx)
    ends = tx.get_many(
        loc.rsplit("/", 1)[-1]
        for ln in links
        for loc in (ln.source, ln.target)
        if loc and loc.startswith("/")
    )
    ends[entity.id or ""] = entity
    for ln in links:
        side = []
        for loc in (ln.source, ln.target):
            e = ends.get((loc or "").rsplit("/", 1)[-1]) if (loc or "").startswith("/") else None
            kind = reg.kinds.get(e.kind) if e is not None and e.location == loc else None
            machine = machines.machine_for(kind) if kind is not None else None
            state = e.attributes.get(machine.state_attr) if e and machine else None
            side.append((kind, state))
        state, message = machines.link_state(side[0][0], side[0][1], side[1][0], side[1][1])
        attr = machines.LINK_STATE_ATTRS[ln.kind]
        # an inactive link says what it waits for, even when it was inactive before
        waits = state == "inactive" and ln.attributes.get(attr + ".message") != message
        if ln.attributes.get(attr) != state or waits:
            ln.attributes[attr] = state
            ln.attributes[attr + ".message"] = message
            tx.update(ln)
    return links
