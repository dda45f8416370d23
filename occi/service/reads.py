"""Reading: one entity, a collection (a page or a stream), with its filters; the collection a
path is bound to; what a rendering needs besides the stored entity (its applicable actions)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from occi import errors, validation
from occi.model import Entity, Kind, Mixin, Resource
from occi.registry import Registry
from occi.service.categories import Categories
from occi.service.locations import entity_at
from occi.store.base import Query, StoreTx


@dataclass
class Filter:
    """What a collection request narrows to (header and query-string filters together)."""

    categories: list[str] = field(default_factory=list)  # type ids or bare terms
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Page:
    number: int | None = None  # items per page; None = the whole collection
    page: int = 1  # 1-based


class Reads(Categories):
    def get(self, path: str, *, fresh: bool = False) -> Entity:
        """The entity at path. The store may answer from its cache of recent reads (see
        occi.store.cache); `fresh=True` reads the database."""
        reg = self.registry()  # from memory, normally
        entity = entity_at(path, lambda entity_id: self.store.get_one(entity_id, fresh=fresh))
        return self._present(entity, reg)

    def _load(self, tx: StoreTx, path: str, *, for_update: bool = False) -> Entity:
        return entity_at(path, lambda entity_id: tx.get(entity_id, for_update=for_update))

    def _present(self, entity: Entity, reg: Registry) -> Entity:
        """Fill what a rendering needs: applicable actions, for the entity and its links."""
        kind = reg.kinds.get(entity.kind)
        if kind is not None:
            entity.actions = reg.entity_action_ids(kind, entity.mixins)
        if isinstance(entity, Resource):
            for ln in entity.links:
                self._present(ln, reg)
        return entity

    def collection_target(self, path: str, reg: Registry) -> Kind | Mixin | None:
        """The kind or mixin bound to a collection path; None for the root or an unbound path
        that has collections below it; NotFound otherwise."""
        cat = reg.by_location(path)
        if cat is not None:
            return cat
        if path == "/" or any(loc.startswith(path) for loc in reg.locations()):
            return None
        raise errors.NotFound(f"no collection is bound to {path}")

    def _query(self, reg: Registry, path: str, flt: Filter) -> Query:
        target = self.collection_target(path, reg)
        q = Query()
        kinds: set[str] | None = None
        if isinstance(target, Kind):
            kinds = {k.id for k in reg.kinds.values() if k.is_a(target)}
        elif isinstance(target, Mixin):
            q.mixin = target.id
        elif target is None and path != "/":
            below = [c for loc, c in reg.locations().items() if loc.startswith(path)]
            kinds = set()
            for c in below:
                if isinstance(c, Kind):
                    kinds.update(k.id for k in reg.kinds.values() if k.is_a(c))
        for cat_name in flt.categories:
            cat = self._resolve_category(reg, cat_name)
            if isinstance(cat, Kind):
                sub = {k.id for k in reg.kinds.values() if k.is_a(cat)}
                kinds = sub if kinds is None else kinds & sub
            elif isinstance(cat, Mixin):
                if q.mixin and q.mixin != cat.id:
                    # two different mixins: nothing can match both through one join; filter
                    # by the second with an impossible kind set only if needed
                    raise errors.BadRequest("filter by one mixin at a time")
                q.mixin = cat.id
            else:
                raise errors.BadRequest(f"{cat_name} is an action; filter by a kind or a mixin")
        if kinds is not None:
            q.kinds = sorted(kinds)
        q.attributes = validation.filter_attributes(reg, flt.attributes)
        return q

    def list_collection(
        self, path: str, flt: Filter, page: Page
    ) -> tuple[Iterator[Entity], Registry]:
        """The collection at `path`: a page (one query) or, without a page size, a stream."""
        with self.store.begin(readonly=True) as tx:
            reg = self.registry(tx)
            q = self._query(reg, path, flt)
            if page.number is not None:
                if page.number > self.max_page_size:
                    raise errors.PayloadTooLarge(
                        f"number={page.number} is above the largest page of "
                        f"{self.max_page_size} entities; ask for fewer"
                    )
                q.offset = (page.page - 1) * page.number
                q.limit = page.number
                items = tx.query(q)
                return iter([self._present(e, reg) for e in items]), reg
        return (self._present(e, reg) for e in self.store.iter_all(q)), reg
