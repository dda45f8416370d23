"""The one registry of categories: standard kinds/mixins/actions, provider templates, user mixins.

Built from static data (occi.infrastructure), the active backend's templates and the store's user
mixins. Knows nothing of HTTP or SQL; the service asks it what a type identifier, a location or an
action term means, and what applies to what.
"""

from __future__ import annotations

from collections.abc import Iterable

from occi import infrastructure as infra
from occi.model import (
    Action,
    AttributeDef,
    CategoryCollection,
    CategoryRef,
    Kind,
    Mixin,
)


class Registry:
    def __init__(self, provider_mixins: Iterable[Mixin] = (), user_mixins: Iterable[Mixin] = ()):
        self.kinds: dict[str, Kind] = {k.id: k for k in infra.KINDS}
        self.mixins: dict[str, Mixin] = {m.id: m for m in infra.MIXINS}
        self.mixins.update({m.id: m for m in infra.CRTP_TEMPLATES})
        for m in provider_mixins:
            self.mixins[m.id] = m
        for m in user_mixins:
            self.mixins.setdefault(m.id, m)
        self.actions: dict[str, Action] = {}
        for k in self.kinds.values():
            for a in k.actions:
                self.actions[a.id] = a
        for m in self.mixins.values():
            for a in m.actions:
                self.actions[a.id] = a
        self._actions_memo: dict[tuple[str, tuple[str, ...]], list[Action]] = {}
        self._by_location: dict[str, Kind | Mixin] = {}
        located: list[Kind | Mixin] = [*self.kinds.values(), *self.mixins.values()]
        for c in located:
            if c.location and c is not infra.ENTITY:
                self._by_location.setdefault(c.location, c)

    # ------------------------------------------------------------------ lookups
    def category(self, type_id: str) -> Kind | Mixin | Action | None:
        return self.kinds.get(type_id) or self.mixins.get(type_id) or self.actions.get(type_id)

    def by_location(self, path: str) -> Kind | Mixin | None:
        """The kind or mixin bound to a collection path ('/compute/')."""
        if not path.endswith("/"):
            path += "/"
        return self._by_location.get(path)

    def locations(self) -> dict[str, Kind | Mixin]:
        return dict(self._by_location)

    def instantiable_kinds(self) -> list[Kind]:
        return [k for k in self.kinds.values() if k.location and k is not infra.ENTITY]

    def kind_for_path(self, path: str) -> Kind | None:
        """The kind whose collection holds an entity at `path` ('/compute/abc' -> compute)."""
        parent = path.rsplit("/", 1)[0] + "/"
        c = self._by_location.get(parent)
        return c if isinstance(c, Kind) else None

    # ------------------------------------------------------------------ semantics
    def mixin_closure(self, mixin_ids: Iterable[str]) -> list[Mixin]:
        """The mixins and everything they depend on, each once, dependencies after dependants."""
        out: list[Mixin] = []
        seen: set[str] = set()
        stack = list(mixin_ids)
        while stack:
            mid = stack.pop(0)
            if mid in seen:
                continue
            seen.add(mid)
            m = self.mixins.get(mid)
            if m is None:
                continue
            out.append(m)
            stack.extend(m.depends)
        return out

    def applies(self, mixin: Mixin, kind: Kind) -> bool:
        """Whether `mixin` may be associated with an entity of `kind` (empty applies = any)."""
        applies = set(mixin.applies)
        for dep in self.mixin_closure(mixin.depends):
            applies.update(dep.applies)
        return not applies or any(kind.is_a(a) for a in applies)

    def template_family(self, mixin: Mixin) -> str | None:
        """os_tpl or resource_tpl when `mixin` is such a template (one per entity is allowed)."""
        for dep in self.mixin_closure(mixin.depends):
            if dep.id in (infra.OS_TPL.id, infra.RESOURCE_TPL.id):
                return dep.id
        return None

    def attribute_defs(self, kind: Kind, mixin_ids: Iterable[str]) -> dict[str, AttributeDef]:
        """Every attribute an entity of `kind` with these mixins has; a mixin's default wins
        over the kind's (templates rely on that)."""
        defs = kind.all_attributes()
        for m in reversed(self.mixin_closure(mixin_ids)):
            defs.update(m.attributes)
        return defs

    def entity_actions(self, kind: Kind, mixin_ids: Iterable[str]) -> list[Action]:
        """The actions an entity of `kind` with these mixins offers (memoised: a registry is
        immutable, and every rendered entity asks)."""
        key = (kind.id, tuple(mixin_ids))
        hit = self._actions_memo.get(key)
        if hit is None:
            hit = self._entity_actions(kind, key[1])
            if len(self._actions_memo) < 4096:
                self._actions_memo[key] = hit
        return hit

    def entity_action_ids(self, kind: Kind, mixin_ids: Iterable[str]) -> list[str]:
        return [a.id for a in self.entity_actions(kind, mixin_ids)]

    def _entity_actions(self, kind: Kind, mixin_ids: Iterable[str]) -> list[Action]:
        acts = list(kind.all_actions())
        for m in self.mixin_closure(mixin_ids):
            acts.extend(a for a in m.actions if a not in acts)
        return acts

    # ------------------------------------------------------------------ discovery
    def collection(self, filters: Iterable[CategoryRef] = ()) -> CategoryCollection:
        """The query interface, or the part related to the filter categories."""
        kinds = list(self.kinds.values())
        mixins = list(self.mixins.values())
        actions = list(self.actions.values())
        wanted = {f.id for f in filters}
        if not wanted:
            return CategoryCollection(kinds, mixins, actions)
        sel_kinds = [k for k in kinds if k.id in wanted]
        sel_mixins = [
            m
            for m in mixins
            if m.id in wanted
            or any(d in wanted for d in m.depends)
            or any(a in wanted for a in m.applies)
        ]
        sel_actions = [a for a in actions if a.id in wanted]
        owners: list[Kind | Mixin] = [*sel_kinds, *sel_mixins]
        for c in owners:
            sel_actions.extend(a for a in c.actions if a not in sel_actions)
        return CategoryCollection(sel_kinds, sel_mixins, sel_actions)
