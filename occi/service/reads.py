"""Reading: one entity, a collection (a page or a stream), with its filters; the collection a
path is bound to; what a rendering needs besides the stored entity (its applicable actions)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from occi import errors, validation
from occi.context import DEFAULT_PROJECT, RequestContext
from occi.model import Entity, Kind, Mixin, Resource
from occi.registry import Registry
from occi.service.categories import Categories
from occi.service.quotas import project_usage
from occi.store.base import Query, Stored, StoredPage, StoreTx


@dataclass
class Filter:
    """What a collection request narrows to (header and query-string filters together)."""

    categories: list[str] = field(default_factory=list)  # type ids or bare terms
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Page:
    number: int | None = None  # items per page; None = the whole collection
    page: int = 1  # 1-based


#: entities rendered for pages and whole collections kept per process (render_page,
#: render_stream): a rendered entity and a hash of its rows, about 1 KB each; enough for a
#: collection of 10,000 and pages of others
PIECES_KEPT = 16384


class Reads(Categories):
    #: the registry _subkinds last answered for, and its answers by kind id
    _subkinds_memo: tuple[Registry, dict[str, frozenset[str]]] | None = None

    def get(
        self, ctx: RequestContext, kind: Kind | str, entity_id: str, *, fresh: bool = False
    ) -> Entity:
        """The entity of `kind` with `entity_id`. The store may answer from its cache of recent
        reads (see occi.store.cache); `fresh=True` reads the database."""
        kind_id = kind_id_of(kind)
        self._authorize(ctx, "read", kind_id)
        reg = self.registry(project=ctx.project)  # from memory, normally
        found = self.store.get_one(entity_id, fresh=fresh) if entity_id else None
        entity = self._found(reg, self._visible(ctx.project, found), kind_id, entity_id)
        return self._present(entity, reg)

    def _load(
        self,
        tx: StoreTx,
        reg: Registry,
        kind_id: str,
        entity_id: str,
        *,
        for_update: bool = False,
        project: str | None = None,
    ) -> Entity:
        """The entity of `kind_id` with `entity_id` in `project` (None: in any); else NotFound."""
        found = tx.get(entity_id, for_update=for_update) if entity_id else None
        return self._found(reg, self._visible(project, found), kind_id, entity_id)

    @staticmethod
    def _found(reg: Registry, entity: Entity | None, kind_id: str, entity_id: str) -> Entity:
        """`entity` when it is the one of `kind_id` with `entity_id`; else NotFound."""
        if entity is None or entity.kind != kind_id:
            kind = reg.kinds.get(kind_id)
            where = f"{kind.location}{entity_id}" if kind and kind.location else entity_id
            raise errors.NotFound(f"nothing exists at {where}")
        return entity

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

    def _query(self, ctx: RequestContext, reg: Registry, path: str, flt: Filter) -> Query:
        """The store query for the collection at `path` with its filters, in ctx's project."""
        target = self.collection_target(path, reg)
        q = Query(project=ctx.project)
        kinds: set[str] | None = None
        if isinstance(target, Kind):
            kinds = set(self._subkinds(reg, target))
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
                sub = set(self._subkinds(reg, cat))
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
        if flt.attributes:  # (the attribute definitions are gathered for the filter)
            q.attributes = validation.filter_attributes(reg, flt.attributes)
        return q

    def _subkinds(self, reg: Registry, kind: Kind) -> frozenset[str]:
        """The ids of `kind` and the kinds below it in `reg`, remembered per registry: every
        collection read asks, and the answer changes only with the registry."""
        memo = self._subkinds_memo
        if memo is None or memo[0] is not reg:
            memo = self._subkinds_memo = (reg, {})
        known = memo[1].get(kind.id)
        if known is None:
            known = frozenset(k.id for k in reg.kinds.values() if k.is_a(kind))
            memo[1][kind.id] = known
        return known

    def list_collection(
        self, ctx: RequestContext, path: str, flt: Filter, page: Page
    ) -> tuple[Iterator[Entity], Registry]:
        """The collection at `path`: a page (one query) or, without a page size, a stream."""
        self._authorize(ctx, "read")
        with self.store.begin(readonly=True) as tx:
            reg = self.registry(tx, ctx.project)
            q = self._query(ctx, reg, path, flt)
            if page.number is not None:
                self._paginate(q, page)
                return iter(list(self._presented(iter(tx.query(q)), reg))), reg
        return self._presented(self.store.iter_all(q), reg), reg

    def quota_usage(self, ctx: RequestContext) -> dict[str, tuple[float, int]]:
        """What the context's project uses of each quota, and its limit (-1: unlimited)."""
        self._authorize(ctx, "read")
        if ctx.project is None:
            return {}
        with self.store.begin(readonly=True) as tx:
            reg = self.registry(tx, ctx.project)
            return project_usage(tx, reg, ctx.project, self.default_quotas)

    def saved_images(self, ctx: RequestContext) -> list[Mixin]:
        """The images (os_tpl mixins) the context's project saved from its computes."""
        self._authorize(ctx, "read")
        with self.store.begin(readonly=True) as tx:
            mine = tx.user_mixins(ctx.project or DEFAULT_PROJECT)
        return [m for m in mine if self._is_saved_image(m)]

    def busy(self, ctx: RequestContext, entity_ids: Iterable[str]) -> set[str]:
        """Which of these entities of the context's project have work under way (unfinished
        jobs): their state is about to change."""
        self._authorize(ctx, "read")
        ids = list(entity_ids)
        with self.store.begin(readonly=True) as tx:
            found = tx.get_many(ids)
            mine = [i for i, e in found.items() if self._visible(ctx.project, e) is not None]
            return {j.entity_id for j in tx.jobs.unfinished(mine)}

    def _presented(self, entities: Iterator[Entity], reg: Registry) -> Iterator[Entity]:
        """_present over a stream, the actions of each (kind, mixins) looked up once: a
        collection holds a few such combinations, however many entities."""
        actions: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        for entity in entities:
            key = (entity.kind, tuple(entity.mixins))
            known = actions.get(key)
            if known is None:
                self._present(entity, reg)
                if len(actions) < 1024:
                    actions[key] = entity.actions
            else:
                entity.actions = list(known)
                if isinstance(entity, Resource):
                    for ln in entity.links:
                        self._present(ln, reg)
            yield entity

    def render_page(
        self,
        ctx: RequestContext,
        path: str,
        flt: Filter,
        page: Page,
        flavour: Hashable,
        render: Callable[[Entity], bytes],
        reg: Registry | None = None,
        fresh: bool = False,
    ) -> list[tuple[bool, bytes]]:
        """A page of list_collection (page.number set), each entity rendered by `render` and
        paired with whether it is a link (the store reads the page with its links at once).

        `render` is a function of the presented entity and of `flavour` only (e.g. a media
        type and a base URL). What it made is kept per process (PIECES_KEPT entities), and
        given again while the entity's stored rows, its links' and the registry (which gives
        its actions) are the same: such an entity is neither made from its rows nor rendered
        again. `reg`: ctx.project's registry, when the caller holds it already; `fresh`:
        the store reads the database, not its read cache."""
        assert page.number is not None
        self._authorize(ctx, "read")
        if reg is None:
            reg = self.registry(project=ctx.project)  # from memory, normally
        q = self._query(ctx, reg, path, flt)
        self._paginate(q, page)
        stored = self.store.stored_page(q, fresh=fresh)
        # a page the store's read cache gives every reader until something changes carries
        # what was made of it (StoredPage.made): its pieces as made last time, none looked at
        made = stored.made if isinstance(stored, StoredPage) else None
        hit = None if made is None else made.get(flavour)
        if hit is not None and hit[0] is reg:
            return list(hit[1])
        pieces = list(self._pieces_of(stored, flavour, render, reg))
        if made is not None:
            made[flavour] = (reg, pieces)
        return pieces

    def render_stream(
        self,
        ctx: RequestContext,
        path: str,
        flt: Filter,
        flavour: Hashable,
        render: Callable[[Entity], bytes],
        reg: Registry | None = None,
    ) -> Iterator[tuple[bool, bytes]]:
        """The whole collection at `path` (no page size) as render_page renders a page: each
        entity paired with whether it is a link, streamed from one statement in a read
        transaction, each rendered piece kept and given again as render_page's are (one
        cache for both). Authorized and checked now; the rows are read as it is iterated."""
        self._authorize(ctx, "read")
        if reg is None:
            reg = self.registry(project=ctx.project)
        q = self._query(ctx, reg, path, flt)
        return self._pieces_of(self.store.stored_stream(q), flavour, render, reg)

    def _pieces_of(
        self,
        stored: Iterable[Stored],
        flavour: Hashable,
        render: Callable[[Entity], bytes],
        reg: Registry,
    ) -> Iterator[tuple[bool, bytes]]:
        """Each of `stored` rendered, or as rendered before while its rows (compared by the
        store's fingerprint of them) and the registry are the same."""
        kept = self._pieces
        fingerprint = self.store.fingerprint
        for s in stored:
            key = (flavour, s.id)
            hit = kept.get(key)
            mark = fingerprint(s.rows)
            if hit is not None and hit[1] is reg and hit[0] == mark:
                yield s.is_link, hit[2]
                continue
            piece = render(self._present(self.store.entity_of(s.rows), reg))
            with self._pieces_lock:
                if len(kept) >= PIECES_KEPT and key not in kept:
                    del kept[next(iter(kept))]  # the oldest
                kept[key] = (mark, reg, piece)
            yield s.is_link, piece

    def list_locations(
        self,
        ctx: RequestContext,
        path: str,
        flt: Filter,
        page: Page,
        reg: Registry | None = None,
        fresh: bool = False,
    ) -> list[str]:
        """The locations of list_collection's entities, same filters, order, page and project,
        read in one statement without the entities: for renderings that print only those.
        `reg` and `fresh` as for render_page."""
        self._authorize(ctx, "read")
        if reg is None:
            reg = self.registry(project=ctx.project)  # from memory, normally
        q = self._query(ctx, reg, path, flt)
        if page.number is not None:
            self._paginate(q, page)
        return self.store.locations(q, fresh=fresh)

    def queued_work(self, ctx: RequestContext, entities: Iterable[Entity]) -> dict[str, list[str]]:
        """Entity id -> what is queued for it and not done yet, in order: `create`, `delete`,
        `update`, or an action's term; for a front that shows work under way (EC2's pending,
        stopping, shutting-down). Only ctx's project's entities are looked at."""
        self._authorize(ctx, "read")
        ids = [e.id for e in entities if e.id and self._visible(ctx.project, e) is e]
        if not ids:
            return {}
        with self.store.begin(readonly=True) as tx:
            jobs = tx.jobs.unfinished(ids)
        out: dict[str, list[str]] = {}
        for job in jobs:
            what = job.params.get("action", "") if job.operation == "action" else job.operation
            target = job.params.get("target", job.entity_id)
            out.setdefault(str(target), []).append(str(what))
        return out

    def _paginate(self, q: Query, page: Page) -> None:
        """Narrow q to `page`; PayloadTooLarge beyond the largest page."""
        assert page.number is not None
        if page.number > self.max_page_size:
            raise errors.PayloadTooLarge(
                f"number={page.number} is above the largest page of "
                f"{self.max_page_size} entities; ask for fewer",
                code="page_too_large",
            )
        q.offset = (page.page - 1) * page.number
        q.limit = page.number


def kind_id_of(kind: Kind | str) -> str:
    """A kind's type identifier, given the Kind or its identifier."""
    return kind if isinstance(kind, str) else kind.id
