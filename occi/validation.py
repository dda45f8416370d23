"""What a client sends, checked against the category registry: attributes, mixins, actions.

Pure: functions of the registry, a kind, mixins and the given values, returning what is checked
or raising occi.errors. No store, no backend, no I/O. A creation and a replacement go through
the same attribute check (`entity_attributes`), so immutability, defaults, required attributes,
legacy names and resource templates are decided once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from occi import errors
from occi import infrastructure as infra
from occi import states as machines
from occi.model import (
    CORE_ATTRIBUTES,
    Action,
    ActionInvocation,
    AttributeDef,
    AttributeValueError,
    Entity,
    Kind,
    split_type_id,
)
from occi.registry import Registry

CORE_FIELDS = frozenset(CORE_ATTRIBUTES)


def canonical(name: str) -> str:
    """The OCCI 1.2 name of an attribute given by its legacy name (or the name itself)."""
    return infra.LEGACY_ATTRIBUTES.get(name, name)


# ---------------------------------------------------------------------------------- mixins
def check_mixins(reg: Registry, kind: Kind, mixin_ids: Iterable[str]) -> list[str]:
    """The mixins given for an entity of `kind`, each once: defined, applicable, and at most
    one of each template family (os_tpl, resource_tpl)."""
    out: list[str] = []
    families: dict[str, str] = {}
    for mid in mixin_ids:
        m = reg.mixins.get(mid)
        if m is None:
            other = reg.category(mid)
            what = f"a {other.cls}, not a mixin" if other else "not defined here"
            raise errors.BadRequest(f"mixin {mid} is {what}")
        if not reg.applies(m, kind):
            raise errors.BadRequest(f"mixin {mid} does not apply to {kind.id} entities")
        fam = reg.template_family(m)
        if fam is not None:
            if fam in families and families[fam] != mid:
                raise errors.BadRequest(
                    f"only one {split_type_id(fam)[1]} mixin per entity: "
                    f"{families[fam]} and {mid} were both given"
                )
            families[fam] = mid
        if mid not in out:
            out.append(mid)
    return out


def added_mixins(
    reg: Registry, kind: Kind, current: Sequence[str], given: Iterable[str]
) -> list[str]:
    """The mixins of an entity after a partial update adds `given` to its `current` ones: a
    template replaces the entity's template of the same family."""
    mixin_ids = list(current)
    for mid in check_mixins(reg, kind, given):
        fam = reg.template_family(reg.mixins[mid])
        if fam is not None:
            mixin_ids = [
                x
                for x in mixin_ids
                if x not in reg.mixins or reg.template_family(reg.mixins[x]) != fam
            ]
        if mid not in mixin_ids:
            mixin_ids.append(mid)
    return mixin_ids


# ---------------------------------------------------------------------------------- attributes
@dataclass
class Checked:
    """An entity's attributes after a creation or a replacement, checked and completed."""

    attributes: dict[str, Any]
    #: the entity's mixins (a direct resize drops the resource template it contradicts)
    mixins: list[str]
    #: name -> new value (None: removed), relative to the entity before; empty for a creation
    changed: dict[str, Any] = field(default_factory=dict)
    #: resource templates dropped because a size was changed directly
    dropped: list[str] = field(default_factory=list)


def _definition(defs: Mapping[str, AttributeDef], kind: Kind, name: str) -> AttributeDef | None:
    d = defs.get(name)
    if d is None and name == infra.COMPUTE_SPEED.name and kind.is_a(infra.COMPUTE):
        d = infra.COMPUTE_SPEED  # OCCI 1.1's, still sent by every peer: accepted, stored
    return d


def entity_attributes(
    reg: Registry,
    kind: Kind,
    mixins: Sequence[str],
    given: Mapping[str, Any],
    *,
    current: Mapping[str, Any] | None = None,
    current_mixins: Sequence[str] = (),
    full: bool = True,
) -> Checked:
    """Check the attributes `given` for an entity of `kind` with `mixins`, and complete them.

    A creation has no `current` attributes; a replacement gives the entity's `current`
    attributes and mixins, and `full=False` for a partial update (given attributes change, the
    others stay). One rule for immutable attributes: a value is given once. After creation a
    client may only repeat the value the entity has; at creation, one with a default (from the
    kind or a template) may only be given that default, and one without a default takes the
    client's value (a state message, which only the server writes, is left out). Anything
    else is 403 and nothing changes. A value of None removes a mutable attribute.
    Resource templates set their sizes (GFD.224): all of them at creation, the mutable ones
    when associated later; a size changed directly to a value the entity's template disagrees
    with drops that template. Defaults fill what a creation or a full replacement leaves out.
    """
    creating = current is None
    before: Mapping[str, Any] = current if current is not None else {}
    mixins = list(mixins)
    defs = reg.attribute_defs(kind, mixins)
    if creating:
        out: dict[str, Any] = {}
    elif full:  # a replacement keeps the immutable attributes the entity has
        out = {n: v for n, v in before.items() if n in defs and not defs[n].mutable}
    else:
        out = dict(before)
    changed: dict[str, Any] = {}
    for raw_name, value in given.items():
        name = canonical(raw_name)
        if name in CORE_FIELDS:
            continue
        d = _definition(defs, kind, name)
        if d is None:
            raise errors.BadRequest(
                f"attribute {raw_name} is not defined for {kind.id}"
                + (" with its mixins" if mixins else "")
            )
        if value is None:
            if d.mutable and not creating:
                out.pop(name, None)
                changed[name] = None
            continue
        try:
            value = d.coerce(value)
        except AttributeValueError as exc:
            raise errors.BadRequest(str(exc)) from None
        if not d.mutable:
            if creating and d.default is None:
                # set once: an immutable attribute without a default is the client's to give
                # at creation, except the state message, which only the server writes
                if not name.endswith(".state.message"):
                    out[name] = value
                continue
            was = d.default if creating else before.get(name)
            if value != was:
                raise errors.Forbidden(
                    f"attribute {name} is immutable: the server sets it"
                    if creating
                    else f"attribute {name} is immutable: it is {was!r}, {value!r} was given",
                    code="immutable_attribute",
                )
            if creating:
                out[name] = value
            continue
        if before.get(name) != value:
            changed[name] = value
        out[name] = value
    # a newly associated resource template sets its sizes (GFD.224 / CRTP R0305), over the
    # client's; after creation it never changes an immutable attribute (the ephemeral disk made
    # at creation keeps its size)
    for mid in mixins:
        if mid in current_mixins:
            continue
        for m in reg.mixin_closure([mid]):
            if reg.template_family(m) != infra.RESOURCE_TPL.id:
                continue
            for n, d in m.attributes.items():
                if d.default is None or (not d.mutable and not creating):
                    continue
                if out.get(n) != d.default or creating:
                    out[n] = d.default
                    changed[n] = d.default
    # a size changed directly wins over the resource template the entity had: the template
    # no longer describes it, so it is dropped (the answer shows it gone)
    dropped = []
    for mid in [x for x in mixins if x in current_mixins]:
        for m in reg.mixin_closure([mid]):
            if reg.template_family(m) == infra.RESOURCE_TPL.id and any(
                d.default is not None and n in changed and changed[n] != d.default
                for n, d in m.attributes.items()
            ):
                mixins.remove(mid)
                dropped.append(mid)
                break
    if full:
        for name, d in defs.items():
            if name in out or d.default is None or name in CORE_FIELDS:
                continue
            if not d.mutable and not creating and name not in before:
                continue  # an immutable attribute the entity lacks stays unset
            out[name] = d.default
            if before.get(name) != d.default:
                changed[name] = d.default
        for name in set(before) - set(out):
            changed[name] = None
    missing = [n for n, d in defs.items() if d.required and n not in out and n not in CORE_FIELDS]
    if missing:
        raise errors.BadRequest(
            f"missing required attribute{'s' if len(missing) > 1 else ''} "
            + ", ".join(sorted(missing))
        )
    return Checked(out, mixins, {} if creating else changed, dropped)


def filter_attributes(reg: Registry, attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Attribute filters of a collection request, by their 1.2 names, coerced to the type of
    the attribute of that name (names no category defines are compared as given)."""
    defs: dict[str, AttributeDef] = {}
    for k in reg.kinds.values():
        defs.update(k.attributes)
    for m in reg.mixins.values():
        defs.update(m.attributes)
    out = {}
    for name, value in attrs.items():
        name = canonical(name)
        d = defs.get(name)
        if d is not None:
            try:
                value = d.coerce(value)
            except AttributeValueError as exc:
                raise errors.BadRequest(f"filter: {exc}") from None
        out[name] = value
    return out


# ---------------------------------------------------------------------------------- actions
def check_action(
    reg: Registry,
    entity: Entity,
    term: str,
    inv: ActionInvocation,
    queued: Sequence[str] = (),
) -> tuple[Action, dict[str, Any]]:
    """The action `term` (or the category `inv.action`) on `entity`, and its parameters
    checked and completed with defaults. The GFD.224 state machine decides on the state the
    entity will be in once its `queued` actions are done: an impossible action is 409."""
    kind = reg.kinds[entity.kind]
    available = reg.entity_actions(kind, entity.mixins)
    matches = [a for a in available if a.term == term]
    if inv.action:
        if reg.actions.get(inv.action) is None:
            raise errors.BadRequest(f"{inv.action} is not an action defined here")
        matches = [a for a in matches if a.id == inv.action]
        if not matches:
            raise errors.BadRequest(
                f"the action category {inv.action} does not match ?action={term} for a {kind.term}"
            )
    if not matches:
        names = ", ".join(sorted({a.term for a in available})) or "none"
        raise errors.BadRequest(f"a {kind.term} has no action {term!r}; its actions are: {names}")
    if len(matches) > 1:
        raise errors.Conflict(
            f"action {term!r} is ambiguous ({', '.join(a.id for a in matches)}): "
            "send its Category to choose",
            code="ambiguous_category",
        )
    action = matches[0]
    params = action_parameters(action, inv.attributes)
    machine = machines.machine_for(kind)
    if machine is not None and any(a.id == action.id for a in infra.ACTIONS):
        state = machines.after(machine, entity.attributes.get(machine.state_attr), list(queued))
        why = machines.refusal(machine, action.term, state)
        if why is not None:
            after = " once the actions queued for it are done" if queued else ""
            raise errors.Conflict(f"{entity.location}: {why}{after}", code="state_conflict")
    return action, params


def action_parameters(action: Action, given: Mapping[str, Any]) -> dict[str, Any]:
    """An action's parameters: each defined by the action, coerced, defaults filled in, the
    required ones present."""
    params: dict[str, Any] = {}
    for name, value in given.items():
        d = action.attributes.get(name)
        if d is None:
            allowed = ", ".join(action.attributes) or "none"
            raise errors.BadRequest(
                f"action {action.term} takes no parameter {name!r} (parameters: {allowed})"
            )
        try:
            params[name] = d.coerce(value)
        except AttributeValueError as exc:
            raise errors.BadRequest(str(exc)) from None
    for name, d in action.attributes.items():
        if name not in params and d.default is not None:
            params[name] = d.default
        if d.required and name not in params:
            raise errors.BadRequest(f"action {action.term} needs the parameter {name}")
    return params
