"""Mixin collections: associating entities with a mixin (a template replaces its predecessor and
may resize, through a partial update), dissociating them."""

from __future__ import annotations

from collections.abc import Sequence

from occi import errors
from occi.context import RequestContext
from occi.model import Entity, EntityRef, Link, Mixin, Resource, stored_id
from occi.registry import Registry
from occi.service.entities import Entities
from occi.service.locations import relative
from occi.service.quotas import QuotaGuard, amounts
from occi.store.base import Query, StoreTx


class MixinCollections(Entities):
    def associate(
        self,
        ctx: RequestContext,
        path: str,
        locations: Sequence[str | EntityRef],
        *,
        replace_all: bool = False,
    ) -> list[Entity]:
        """Associate the mixin of the collection at `path` with the entities at `locations`
        (with only them, `replace_all`); its members now."""
        self._authorize(ctx, "associate")
        self._begin_work(ctx)
        members = self._associate(ctx, path, locations, replace_all)
        self._settle()
        return self._refresh(members)

    def _associate(
        self,
        ctx: RequestContext,
        path: str,
        locations: Sequence[str | EntityRef],
        replace_all: bool,
    ) -> list[Entity]:
        with self.store.begin() as tx:
            reg = self.registry(tx, ctx.project)
            mixin = self._mixin_at(reg, path)
            self._not_a_zone(mixin)
            targets = self._entities_at(tx, reg, locations, ctx.project)
            for e in targets:
                kind = reg.kinds[e.kind]
                if not reg.applies(mixin, kind):
                    raise errors.BadRequest(f"mixin {mixin.id} does not apply to {e.location}")
            if replace_all:
                keep = {e.id for e in targets}
                current = tx.query(Query(mixin=mixin.id, project=ctx.project))
                tx.dissociate(mixin.id, [stored_id(e) for e in current if e.id not in keep])
            fam = reg.template_family(mixin)
            before = amounts(reg, targets)  # a template may raise their sizes: quotas
            for e in targets:
                if mixin.id in e.mixins:
                    continue
                if fam is not None or any(d.default is not None for d in mixin.attributes.values()):
                    # templates replace their predecessor and may resize: a full update
                    patch = (
                        Resource(e.kind, mixins=[mixin.id])
                        if not isinstance(e, Link)
                        else Link(e.kind, mixins=[mixin.id])
                    )
                    self._replace(tx, reg, e, patch, full=False)  # resizes e itself
                else:
                    tx.associate(mixin.id, [stored_id(e)])
            QuotaGuard(tx, ctx, self.default_quotas).check(reg, targets, before)
            members = tx.query(Query(mixin=mixin.id, project=ctx.project))
            return [self._present(e, reg) for e in members]

    def dissociate(
        self, ctx: RequestContext, path: str, locations: Sequence[str | EntityRef] | None
    ) -> None:
        """Dissociate the mixin of the collection at `path` from the entities at `locations`
        (None: from every member)."""
        self._authorize(ctx, "dissociate")
        with self.store.begin() as tx:
            reg = self.registry(tx, ctx.project)
            mixin = self._mixin_at(reg, path)
            self._not_a_zone(mixin)
            if locations is None:
                tx.dissociate(mixin.id, None, project_id=ctx.project)
                return
            targets = self._entities_at(tx, reg, locations, ctx.project)
            tx.dissociate(mixin.id, [stored_id(e) for e in targets])

    def _not_a_zone(self, mixin: Mixin) -> None:
        """A zone mixin is chosen when an entity is created, and never changes after."""
        if mixin.scheme == self.zone_scheme:
            raise errors.BadRequest(
                f"{mixin.id} is a zone: an entity is placed in its zone when it is created (with "
                "this mixin) and never moves to another; its collection only lists what lives there"
            )

    def _mixin_at(self, reg: Registry, path: str) -> Mixin:
        cat = self.collection_target(path, reg)
        if not isinstance(cat, Mixin):
            raise errors.MethodNotAllowed(
                f"{path} is not a mixin collection", allowed=["GET", "POST", "DELETE", "HEAD"]
            )
        return cat

    def _entities_at(
        self,
        tx: StoreTx,
        reg: Registry,
        locations: Sequence[str | EntityRef],
        project: str | None,
    ) -> list[Entity]:
        """The entities at `locations` in `project` (None: in any): paths below the root, or
        EntityRefs (kind and id, from GFD.226 entity collections) resolved through the kind's
        location."""
        if not locations:
            raise errors.BadRequest("send the locations of the entities (X-OCCI-Location)")
        paths = []
        for x in locations:
            if isinstance(x, EntityRef):
                kind = reg.kinds.get(x.kind)
                if kind is None or not kind.location:
                    raise errors.BadRequest(f"{x.kind} is not a kind of this server")
                paths.append(kind.location + x.id)
            else:
                paths.append(relative(x))
        found = tx.get_many(loc.rsplit("/", 1)[-1] for loc in paths if loc.startswith("/"))
        out = []
        for loc in paths:
            e = self._visible(project, found.get(loc.rsplit("/", 1)[-1]))
            if e is None or e.location != loc:
                raise errors.BadRequest(f"no entity exists at {loc}")
            out.append(e)
        return out
