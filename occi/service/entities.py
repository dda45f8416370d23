"""Writing entities: create (with a resource's inline links), put, partial update, replace,
delete; each queues its hypervisor work (occi.service.work). Attributes and mixins are checked
by occi.validation."""

from __future__ import annotations

import logging
import uuid

from occi import errors, validation
from occi import infrastructure as infra
from occi.context import DEFAULT_PROJECT, RequestContext
from occi.inventory import placement
from occi.inventory.pool import Snapshot, Zone
from occi.model import Entity, Kind, Link, Mixin, Placement, Resource, stored_id
from occi.registry import Registry
from occi.service.conditions import Expected, check_expected
from occi.service.links import Links
from occi.service.locations import ID_RE, relative
from occi.service.quotas import QuotaGuard, amounts
from occi.service.reads import Filter, kind_id_of
from occi.store.base import StoreTx

log = logging.getLogger(__name__)


class Entities(Links):
    # ------------------------------------------------------------------ creating
    def create(self, ctx: RequestContext, collection: str, entities: list[Entity]) -> list[Entity]:
        """POST on a kind collection: create each entity (and a resource's inline links)."""
        if not entities:
            raise errors.BadRequest("the request carries no entity to create")
        self._authorize(ctx, "create")
        created: list[Entity] = []
        self._begin_work(ctx)
        with self.store.begin() as tx:
            reg = self.registry(tx, ctx.project)
            target = self.collection_target(collection, reg)
            if isinstance(target, Mixin):
                raise errors.BadRequest(
                    f"{collection} is a mixin collection: POST locations there to associate "
                    "the mixin; create entities in their kind's collection"
                )
            self._local.hosts_last = []  # computes whose host is reserved last
            try:
                for e in entities:
                    created.append(self._create_one(tx, reg, e, target, entity_id=None))
                QuotaGuard(tx, ctx, self.default_quotas).check(reg, created)
                self._reserve_hosts(tx)
            finally:
                self._local.hosts_last = None
        made = created[0].location if len(created) == 1 else None
        if made and made.count("/") >= 2:  # as the audit middleware names it
            self._audit_with_work(ctx, f"create {made.strip('/').split('/')[-2]}", made, 201)
        self._settle()  # a failed creation answers 502/503 with the entity's Location
        return self._refresh(created)

    def _create_one(
        self, tx: StoreTx, reg: Registry, e: Entity, target: Kind | None, entity_id: str | None
    ) -> Entity:
        kind = self._kind_of(reg, e, target)
        fresh = entity_id is None and not e.id  # a server-made uuid: the insert checks it
        if entity_id is None:
            entity_id = e.id or str(uuid.uuid4())
        elif e.id and e.id != entity_id:
            raise errors.BadRequest(
                f"occi.core.id {e.id!r} differs from the id in the URL ({entity_id!r})"
            )
        if not ID_RE.match(entity_id):
            raise errors.BadRequest(
                f"occi.core.id {entity_id!r} must be 1-128 letters, digits, '-', '_', '.' or ':'"
            )
        if not fresh and tx.get(entity_id) is not None:
            raise errors.IdTaken(f"an entity with occi.core.id {entity_id} already exists")
        mixins = validation.check_mixins(reg, kind, e.mixins)
        attributes = validation.entity_attributes(reg, kind, mixins, e.attributes).attributes
        location = f"{kind.location}{entity_id}"
        if kind.is_a(infra.LINK):
            link = Link(kind.id, entity_id, e.title, mixins, attributes, location)
            if isinstance(e, Link):
                link.source, link.target = e.source, e.target
                link.target_kind = e.target_kind
            self._bind_link(tx, reg, link, kind)
            if kind != infra.LINK:  # a plain core link is a relation only: nothing to attach
                self._note(link, kind, "attaching")
            tx.insert(link, project_id=self._project(), fresh=fresh)
            if kind != infra.LINK:
                self._submit(tx, self._link_key(link), "link", entity_id)
            return self._present(link, reg)
        if isinstance(e, Link):
            raise errors.BadRequest(f"{kind.id} is a resource kind: it takes no source or target")
        res = Resource(kind.id, entity_id, e.title, mixins, attributes, location)
        res.summary = e.summary if isinstance(e, Resource) else None
        self._note(res, kind, "creating")
        where = self._place(tx, reg, kind, res)
        tx.insert(res, project_id=self._project(), fresh=fresh, placement=where)
        res.placement = where
        self._submit(tx, entity_id, "create", entity_id, first=fresh, entity=res)
        for inline in e.links if isinstance(e, Resource) else []:
            res.links.append(self._create_inline_link(tx, reg, res, inline))
        return self._present(res, reg)

    # ------------------------------------------------------------------ placement
    def _place(self, tx: StoreTx, reg: Registry, kind: Kind, res: Resource) -> Placement | None:
        """Where a new compute, storage or network lives (occi.inventory.placement): its zone
        (its zone mixin, else the default zone, whose mixin it then carries), and for a
        compute the host, whose room is reserved in this transaction. None while the
        inventory has no cluster: the process's own backend runs it."""
        if not any(kind.is_a(k) for k in (infra.COMPUTE, infra.STORAGE, infra.NETWORK)):
            return None
        snap = self.pool.snapshot(tx)
        if not snap.clusters:
            return None
        zone = self._zone_of(snap, res)
        if kind.is_a(infra.COMPUTE):
            cores, memory_mb = placement.compute_size(res.attributes)
            ask = placement.Ask(
                zone.id,
                zone.name,
                cores,
                memory_mb,
                self._project() or DEFAULT_PROJECT,
                placement.required_tags(reg.mixins[m] for m in res.mixins if m in reg.mixins),
            )
            later = getattr(self._local, "hosts_last", None)
            if later is not None and placement.defers(tx):  # see _reserve_hosts
                later.append((res, ask))
                return Placement(
                    zone_id=zone.id, reserved_cores=ask.cores, reserved_memory_mb=ask.memory_mb
                )
            return placement.place_compute(tx, ask, self.placement_strategy)
        held = snap.clusters_of(zone.id)
        if not held:
            raise errors.NoCapacity(f"zone {zone.name} has no cluster to hold a {kind.term}")
        return Placement(zone_id=zone.id, cluster_id=held[0].id)

    def _reserve_hosts(self, tx: StoreTx) -> None:
        """The hosts of the computes this create stored, reserved last (PostgreSQL): a host's
        row is locked from its reservation to the commit, so the creates placed on one host
        wait for each other only through that statement and the COMMIT, not the inserts."""
        for res, ask in self._local.hosts_last:
            res.placement = placement.place_compute(
                tx, ask, self.placement_strategy, stored=stored_id(res)
            )

    def _zone_of(self, snap: Snapshot, res: Resource) -> Zone:
        scheme = self.zone_scheme
        named = [m[len(scheme) :] for m in res.mixins if m.startswith(scheme)]
        if len(named) > 1:
            raise errors.BadRequest(
                f"an entity lives in one zone: it names {len(named)} ({', '.join(named)})"
            )
        if named:
            zone = snap.zone_named(named[0])
            if zone is None:
                raise errors.BadRequest(f"there is no zone {named[0]}")
            return zone
        zone = snap.zone_named(self.default_zone) if self.default_zone else None
        if zone is None:
            zone = snap.zones_by_name()[0]
        res.mixins.append(scheme + zone.name)  # the rendering shows where it lives
        return zone

    def _keep_zone(self, cur: Entity, before: list[str]) -> None:
        """An entity stays in its zone: a replace or update may not name another, and keeps
        the zone mixin it had."""
        scheme = self.zone_scheme
        old = [m for m in before if m.startswith(scheme)]
        new = [m for m in cur.mixins if m.startswith(scheme)]
        if new and new != old:
            raise errors.BadRequest(
                f"{cur.location} lives in zone {old[0][len(scheme) :] if old else '(none)'}: "
                "an entity cannot move to another zone"
            )
        if old and not new:
            cur.mixins.extend(old)

    def _kind_of(self, reg: Registry, e: Entity, target: Kind | None) -> Kind:
        if e.kind:
            kind = reg.kinds.get(e.kind)
            if kind is None:
                other = reg.category(e.kind)
                what = f"a {other.cls}, not a kind" if other else "not defined here"
                raise errors.BadRequest(f"{e.kind} is {what}")
            if target is not None and kind != target:
                raise errors.BadRequest(
                    f"{kind.id} entities are created in {kind.location}, not in {target.location}"
                )
        else:
            # GFD.223: a creation carries a full entity rendering, Kind included (only inline
            # links take theirs from the target, in _create_inline_link)
            term = target.term if target is not None else "compute"
            scheme = target.scheme if target is not None else infra.COMPUTE.scheme
            raise errors.BadRequest(
                f"the rendering has no Kind, so it is not a full entity: say which kind to "
                f'create, e.g. Category: {term}; scheme="{scheme}"; class="kind" '
                f'(JSON: "kind": "{scheme}{term}")'
            )
        if kind.location is None or kind is infra.ENTITY:
            raise errors.BadRequest(f"{kind.id} cannot be instantiated")
        return kind

    # ------------------------------------------------------------------ links

    def _create_inline_link(
        self, tx: StoreTx, reg: Registry, source: Resource, inline: Entity
    ) -> Link:
        if not isinstance(inline, Link):
            raise errors.BadRequest("an inline link needs a target")
        kind_id = inline.kind
        target_loc = relative(inline.target or "")
        target = self._resource_at(tx, target_loc, "target") if target_loc.startswith("/") else None
        if not kind_id:
            if target is not None and reg.kinds[target.kind].is_a(infra.NETWORK):
                kind_id = infra.NETWORKINTERFACE.id
            elif target is not None and reg.kinds[target.kind].is_a(infra.STORAGE):
                kind_id = infra.STORAGELINK.id
            else:
                kind_id = infra.LINK.id
        kind = reg.kinds.get(kind_id)
        if kind is None or not kind.is_a(infra.LINK):
            raise errors.BadRequest(f"inline link category {kind_id} is not a link kind")
        spec = Link(
            kind.id,
            inline.id,
            inline.title,
            list(inline.mixins),
            dict(inline.attributes),
            source=source.location,
            target=target_loc,
            target_kind=inline.target_kind,
        )
        link = self._create_one(tx, reg, spec, kind, entity_id=None)
        assert isinstance(link, Link)  # kind is a link kind: _create_one made a Link
        return link

    # ------------------------------------------------------------------ updating
    def put(
        self,
        ctx: RequestContext,
        kind: Kind | str,
        entity_id: str,
        e: Entity,
        expected: Expected | None = None,
    ) -> tuple[Entity, bool]:
        """Create the entity of `kind` with `entity_id`, or replace it (links stay); True when
        it was created.

        Concurrent PUTs of one new id are each a create-or-replace: the one whose insert finds
        the id taken (another PUT stored it after this one looked, which PostgreSQL allows)
        does it again, and so replaces what the other stored."""
        kind_id = kind_id_of(kind)
        self._authorize(ctx, "update", kind_id)
        for attempt in range(2):
            self._begin_work(ctx)  # jobs queued by a rolled-back attempt are gone with it
            try:
                with self.store.begin() as tx:
                    reg, quota = (
                        self.registry(tx, ctx.project),
                        QuotaGuard(tx, ctx, self.default_quotas),
                    )
                    before = quota.previous(reg, kind_id, entity_id)
                    result, created = self._put(tx, kind_id, entity_id, e, expected, ctx.project)
                    quota.check(reg, [result], before)
                break
            except errors.IdTaken:
                if attempt:
                    raise
                log.info("PUT %s: created meanwhile by another request; replacing it", entity_id)
        self._settle()  # a failed creation answers 502/503 with the entity's Location
        return self._refresh([result])[0], created

    def _put(
        self,
        tx: StoreTx,
        kind_id: str,
        entity_id: str,
        e: Entity,
        expected: Expected | None,
        project: str | None = None,
    ) -> tuple[Entity, bool]:
        reg = self.registry(tx, project)
        kind = reg.kinds.get(kind_id)
        if kind is None or not kind.location:
            raise errors.NotFound(f"{kind_id} is not a kind with a collection here")
        path = f"{kind.location}{entity_id}"
        existing = tx.get(entity_id, for_update=True) if entity_id else None
        if existing is not None and self._visible(project, existing) is None:
            # another project's id: never replaced nor shown; ids are global, so it cannot be
            # created here either (the same answer as a GET of it)
            raise errors.NotFound(f"nothing exists at {path}")
        if existing is not None and existing.location == path:
            check_expected(existing, expected, path)
        elif expected is not None and (expected.exists or expected.versions is not None):
            check_expected(None, expected, path)
        if existing is None:
            if isinstance(e, Resource) and e.links:
                raise errors.BadRequest("PUT does not create links: POST them to a link collection")
            return self._create_one(tx, reg, e, kind, entity_id=entity_id), True
        if existing.location != path:
            raise errors.Conflict(f"occi.core.id {entity_id} is used at {existing.location}")
        return self._replace(tx, reg, existing, e, full=True), False

    def update(
        self,
        ctx: RequestContext,
        kind: Kind | str,
        entity_id: str,
        e: Entity,
        expected: Expected | None = None,
    ) -> Entity:
        """A partial update (given attributes change, mixins are added)."""
        with self._changing(ctx, "update", kind, entity_id, expected) as (tx, reg, existing):
            if isinstance(e, Resource) and e.links:
                raise errors.BadRequest(
                    "links cannot be added by updating a resource: POST them to a link collection"
                )
            before = amounts(reg, [existing])
            result = self._replace(tx, reg, existing, e, full=False)
            QuotaGuard(tx, ctx, self.default_quotas).check(reg, [result], before)
        self._settle()
        return self._refresh([result])[0]

    def _replace(
        self, tx: StoreTx, reg: Registry, cur: Entity, new: Entity, *, full: bool
    ) -> Entity:
        kind = reg.kinds[cur.kind]
        cur_id = stored_id(cur)
        prev = dict(cur.attributes)
        if new.kind and new.kind != cur.kind:
            raise errors.BadRequest(
                f"the kind of an entity cannot change ({cur.kind} given as {new.kind})"
            )
        if new.id and new.id != cur.id:
            raise errors.Forbidden(
                f"occi.core.id is immutable ({cur.id})", code="immutable_attribute"
            )
        if full:
            mixin_ids = validation.check_mixins(reg, kind, new.mixins)
        else:
            mixin_ids = validation.added_mixins(reg, kind, cur.mixins, new.mixins)
        checked = validation.entity_attributes(
            reg,
            kind,
            mixin_ids,
            new.attributes,
            current=cur.attributes,
            current_mixins=cur.mixins,
            full=full,
        )
        for mid in checked.dropped:
            log.info("%s: direct resize drops resource template %s", cur.location, mid)
        changed = checked.changed
        before_mixins = list(cur.mixins)
        cur.attributes = checked.attributes
        cur.mixins = checked.mixins
        self._keep_zone(cur, before_mixins)
        if (
            cur.placement is not None
            and cur.placement.host_id is not None
            and {"occi.compute.cores", "occi.compute.memory"} & set(changed)
        ):
            cores, memory_mb = placement.compute_size(cur.attributes)
            zone = self.pool.snapshot(tx).zones.get(cur.placement.zone_id or "")
            placement.resize(
                tx, cur_id, cur.placement, cores, memory_mb, zone.name if zone else "?"
            )
        if full or new.title is not None:
            cur.title = new.title
        if isinstance(cur, Resource) and isinstance(new, Resource):
            if full or new.summary is not None:
                cur.summary = new.summary
        if isinstance(cur, Link) and isinstance(new, Link):
            moved = False
            for attr in ("source", "target"):
                val = getattr(new, attr)
                if val and relative(val) != getattr(cur, attr):
                    setattr(cur, attr, relative(val))
                    moved = True
            if moved:
                old_source = old_target = None
                stored = tx.get(cur_id)
                if isinstance(stored, Link):
                    old_source, old_target = stored.source, stored.target
                self._bind_link(tx, reg, cur, kind)
                if kind != infra.LINK:
                    self._submit(
                        tx,
                        self._link_key(cur),
                        "relink",
                        cur_id,
                        old_source=old_source,
                        old_target=old_target,
                    )
        previous = {n: prev.get(n) for n in changed}
        tx.update(cur)
        if changed and not kind.is_a(infra.LINK):
            self._submit(tx, cur_id, "update", cur_id, changed=changed, previous=previous)
        return self._present(cur, reg)

    # ------------------------------------------------------------------ deleting
    def delete(
        self,
        ctx: RequestContext,
        kind: Kind | str,
        entity_id: str,
        expected: Expected | None = None,
    ) -> None:
        with self._changing(ctx, "delete", kind, entity_id, expected) as (tx, reg, entity):
            self._delete_entities(tx, reg, [entity])
        self._settle()

    def delete_collection(self, ctx: RequestContext, path: str, flt: Filter) -> int:
        self._authorize(ctx, "delete")
        with self.store.begin() as tx:
            reg = self.registry(tx, ctx.project)
            target = self.collection_target(path, reg)
            if isinstance(target, Mixin):
                raise errors.BadRequest("use DELETE with locations to dissociate a mixin")
            q = self._query(ctx, reg, path, flt)
            entities = tx.query(q)
            self._begin_work(ctx)
            self._submit_many(
                tx,
                [
                    (
                        self._link_key(e) if isinstance(e, Link) else stored_id(e),
                        "delete",
                        stored_id(e),
                        {},
                    )
                    for e in entities
                ],
            )
        self._settle()
        return len(entities)

    def _delete_entities(self, tx: StoreTx, reg: Registry, entities: list[Entity]) -> None:
        """Queue the deletion: the job removes the platform objects, then the rows (with every
        link touching them). Until then the entities say they are being deleted."""
        for e in entities:
            kind = reg.kinds.get(e.kind)
            if kind is not None:
                self._note(e, kind, "deleting")
                tx.update(e)
            e_id = stored_id(e)
            key = self._link_key(e) if isinstance(e, Link) else e_id
            self._submit(tx, key, "delete", e_id)
