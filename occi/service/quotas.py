"""Quotas: whether a create or a resize keeps a project within its limits.

What a project's entities use is counted per resource (occi.identity.model.QUOTA_RESOURCES):
instances (computes), cores and memory_gb (the sums of occi.compute.cores and
occi.compute.memory), volumes (storages), storage_gb (the sum of occi.storage.size) and networks.
A project's limit is its own (`occi-server quotas set`), else the quota_* setting; -1 is
unlimited.

A write calls `QuotaGuard.check` in its own transaction after storing what it changed: when
the request asks for more of a limited resource, the guard takes the project's quota lock
(occi.store.usage_sql), sums what the project's entities use in SQL, including the request's own
rows, and raises occi.errors.QuotaExceeded (403, nothing stored) when a limit is passed. With
every relevant limit unlimited it reads the project's quota rows and nothing more; a request
that asks for nothing more (a rename, a shrink, a link) reads nothing at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from occi import errors
from occi import infrastructure as infra
from occi.context import RequestContext
from occi.identity.model import QUOTA_RESOURCES, UNLIMITED
from occi.model import Entity, Kind
from occi.registry import Registry
from occi.store.base import StoreTx

#: each quota: the kind whose entities it counts, and the attribute it sums (None: it counts)
COUNTED: dict[str, tuple[Kind, str | None]] = {
    "instances": (infra.COMPUTE, None),
    "cores": (infra.COMPUTE, "occi.compute.cores"),
    "memory_gb": (infra.COMPUTE, "occi.compute.memory"),
    "volumes": (infra.STORAGE, None),
    "storage_gb": (infra.STORAGE, "occi.storage.size"),
    "networks": (infra.NETWORK, None),
}
assert tuple(COUNTED) == QUOTA_RESOURCES
#: how far a sum of GB may pass a limit through float rounding alone
EPSILON = 1e-9


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)


def amounts(reg: Registry, entities: Iterable[Entity]) -> dict[str, float]:
    """What the entities use of each quota, as they are (after defaults and templates)."""
    out: dict[str, float] = {}
    for e in entities:
        kind = reg.kinds.get(e.kind)
        if kind is None:
            continue
        for resource, (root, attribute) in COUNTED.items():
            if kind.is_a(root):
                add = 1.0 if attribute is None else _number(e.attributes.get(attribute))
                out[resource] = out.get(resource, 0.0) + add
    return out


def _text(n: float) -> str:
    return str(int(n)) if float(n).is_integer() else f"{n:g}"


class QuotaGuard:
    """The quota checks of one write transaction of `ctx` (none for system work)."""

    def __init__(self, tx: StoreTx, ctx: RequestContext, defaults: Mapping[str, int]):
        self.tx, self.ctx, self.defaults = tx, ctx, defaults
        self._limits: dict[str, int] | None = None

    def limits(self) -> dict[str, int]:
        """The project's limit on each quota (read once per transaction)."""
        if self._limits is None:
            own = self.tx.usage.limits(self.ctx.project) if self.ctx.project else {}
            self._limits = {r: own.get(r, self.defaults.get(r, UNLIMITED)) for r in QUOTA_RESOURCES}
        return self._limits

    def limits_kind(self, reg: Registry, kind_id: str) -> bool:
        """Whether some limit counts entities of `kind_id` (reads the limits if it might)."""
        kind = reg.kinds.get(kind_id)
        if self.ctx.project is None or kind is None:
            return False
        counted = [r for r, (root, _) in COUNTED.items() if kind.is_a(root)]
        return bool(counted) and any(self.limits()[r] != UNLIMITED for r in counted)

    def previous(self, reg: Registry, kind_id: str, entity_id: str) -> dict[str, float]:
        """What the stored entity (about to be replaced) uses, locked for update; nothing is
        read unless a limit counts its kind."""
        if not entity_id or not self.limits_kind(reg, kind_id):
            return {}
        old = self.tx.get(entity_id, for_update=True)
        return amounts(reg, [old]) if old is not None and old.kind == kind_id else {}

    def check(
        self, reg: Registry, added: Iterable[Entity], before: Mapping[str, float] | None = None
    ) -> None:
        """Refuse (QuotaExceeded) when the request, which stored `added` in this transaction in
        place of entities that used `before`, takes the project past a limit."""
        project = self.ctx.project
        if project is None:
            return
        now = amounts(reg, added)
        need = {r: now.get(r, 0.0) - (before or {}).get(r, 0.0) for r in now}
        wanted = [r for r in QUOTA_RESOURCES if need.get(r, 0.0) > 0]
        if not wanted:
            return
        limits = self.limits()
        limited = [r for r in wanted if limits[r] != UNLIMITED]
        if not limited:
            return
        self.tx.usage.lock(project)
        kinds = {
            root: [k.id for k in reg.kinds.values() if k.is_a(root)] for root, _ in COUNTED.values()
        }
        counts = {r: kinds[COUNTED[r][0]] for r in limited if COUNTED[r][1] is None}
        sums = {
            r: (kinds[COUNTED[r][0]], attribute)
            for r in limited
            if (attribute := COUNTED[r][1]) is not None
        }
        total = self.tx.usage.usage(project, counts, sums)
        for r in limited:
            if total[r] > limits[r] + EPSILON:
                name = self.ctx.project_name or project
                raise errors.QuotaExceeded(
                    f"quota exceeded in project {name}: {r} limit {limits[r]}, in use "
                    f"{_text(max(total[r] - need[r], 0.0))}, this request needs "
                    f"{_text(need[r])} more"
                )


def project_usage(
    tx: StoreTx, reg: Registry, project: str, defaults: Mapping[str, int]
) -> dict[str, tuple[float, int]]:
    """What the project uses of each quota and its limit (-1: unlimited), summed in SQL."""
    own = tx.usage.limits(project)
    limits = {r: own.get(r, defaults.get(r, UNLIMITED)) for r in QUOTA_RESOURCES}
    kinds = {
        root: [k.id for k in reg.kinds.values() if k.is_a(root)] for root, _ in COUNTED.values()
    }
    counts = {r: kinds[root] for r, (root, attribute) in COUNTED.items() if attribute is None}
    sums = {
        r: (kinds[root], attribute)
        for r, (root, attribute) in COUNTED.items()
        if attribute is not None
    }
    used = tx.usage.usage(project, counts, sums)
    return {r: (float(used.get(r, 0.0)), limits[r]) for r in QUOTA_RESOURCES}
