"""Reconciliation: stored states brought in line with what the platform reports, for the
entities events name and, periodically, for all of them. Entities with work queued are left
alone (their jobs will say), and so, in the periodic pass, are the entities of hosts that are
not up (and the links from them): host monitoring (occi.inventory.monitor) put them in error
naming the host, and observes them again itself when the host answers, so the pass neither
flaps them back nor declares them gone from a platform it cannot reach.

Takes the store, the backend and the registry accessor it is given. Run by the job runner.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from typing import Any

from backends.base import Backend, BackendFault, NotFoundOnPlatform
from occi import infrastructure as infra
from occi import states as machines
from occi.jobs.link_states import RegistryOf, derive_link_states
from occi.model import Entity, Link, stored_id
from occi.store.base import Query, Store

log = logging.getLogger(__name__)


class Reconciler:
    def __init__(
        self,
        store: Store,
        backend: Backend,
        registry: RegistryOf,
        backend_for: Callable[[Entity | None], Backend] | None = None,
        down_hosts: Callable[[], Collection[str]] | None = None,
    ):
        self.store = store
        self.backend = backend
        #: the backend of an entity's cluster (occi.inventory.pool.Pool.backend_for)
        self.backend_for = backend_for or (lambda _entity: backend)
        self.registry = registry
        #: ids of the hosts that are not up (occi.inventory.monitor.down_host_ids), read once
        #: per periodic pass
        self.down_hosts = down_hosts or (lambda: ())

    def reconcile(
        self,
        entity_ids: Iterable[str] | None = None,
        batch: int = 200,
        unreachable: Collection[str] | None = None,
    ) -> int:
        """Bring stored states in line with what the platform reports (events name entities;
        the periodic pass walks all of them). Entities with work queued are left alone: their
        jobs will say. `unreachable`: host ids whose entities are left alone (the periodic
        pass asks `down_hosts` when not given; entities named are all observed unless
        given). Returns how many entities changed."""
        changed = 0
        down = frozenset(unreachable or ())
        if entity_ids is not None:
            ids = list(entity_ids)
            with self.store.begin(readonly=True) as tx:
                found = list(tx.get_many(ids).values())
            return self._reconcile_batch(found, down)
        if unreachable is None:
            down = frozenset(self.down_hosts())
        offset = 0
        while True:
            with self.store.begin(readonly=True) as tx:
                page = tx.query(Query(offset=offset, limit=batch))
            changed += self._reconcile_batch(page, down)
            if len(page) < batch:
                return changed
            offset += batch

    def _reconcile_batch(self, entities: list[Entity], down: frozenset[str] = frozenset()) -> int:
        if not entities:
            return 0
        if down:
            entities = self._reachable(entities, down)
            if not entities:
                return 0
        with self.store.begin(readonly=True) as tx:
            unfinished = tx.jobs.unfinished([stored_id(e) for e in entities])
        stored = {e.id: e.attributes for e in entities}
        busy = {j.entity_id for j in unfinished} | {j.params.get("target") for j in unfinished}
        seen: dict[str, dict[str, Any]] = {}
        #: the host each observation was made through: a placement that moved meanwhile (a
        #: migration finished between the reads) makes the observation stale
        through: dict[str, str | None] = {}
        for e in entities:
            e_id = stored_id(e)
            if e_id in busy or e.kind == infra.LINK.id or e.kind == infra.RESOURCE.id:
                continue
            through[e_id] = _host_id(e)
            try:
                seen[e_id] = self._observed(e)
            except NotFoundOnPlatform as exc:
                kind = self.registry(None).kinds.get(e.kind)
                if kind is None:
                    continue
                state = f"occi.{kind.term}.state"
                seen[e_id] = {state: "error", state + ".message": f"gone from the platform: {exc}"}
            except BackendFault as exc:
                log.warning("cannot observe %s: %s", e.location, exc)
        changed = 0
        for entity_id, attributes in seen.items():
            if all(stored[entity_id].get(k) == v for k, v in attributes.items()):
                continue  # the usual case: nothing to write, no write transaction
            with self.store.begin() as tx:
                current = tx.get(entity_id, for_update=True)
                if current is None or tx.jobs.unfinished([entity_id]):
                    continue
                if _host_id(current) != through.get(entity_id):
                    continue  # moved since it was observed: the next look is through its host
                diff = {k: v for k, v in attributes.items() if current.attributes.get(k) != v}
                if diff:
                    log.info("reconciled %s: %s", current.location, diff)
                    current.attributes.update(diff)
                    tx.update(current)
                    derive_link_states(tx, current, self.registry)
                    changed += 1
        return changed

    def _reachable(self, entities: list[Entity], down: frozenset[str]) -> list[Entity]:
        """`entities` less those placed on a `down` host and the links from them (their
        sources read in one statement)."""

        def host_of(e: Entity | None) -> str | None:
            return e.placement.host_id if e is not None and e.placement is not None else None

        sources = {
            (e.source or "").rsplit("/", 1)[-1]
            for e in entities
            if isinstance(e, Link) and (e.source or "").startswith("/")
        }
        with self.store.begin(readonly=True) as tx:
            ends = tx.get_many(sources) if sources else {}
        kept = []
        for e in entities:
            source = ends.get((e.source or "").rsplit("/", 1)[-1]) if isinstance(e, Link) else None
            if host_of(e) in down or host_of(source) in down:
                log.debug("not observed, its host is down: %s", e.location)
                continue
            kept.append(e)
        return kept

    def _observed(self, e: Entity) -> dict[str, Any]:
        """What the platform reports for e; a link's state comes from the resources it joins
        (_derive_link_states), so only the platform's `error` (or its end) is taken from it."""
        seen = self.backend_for(e).observe(e).attributes
        attr = machines.LINK_STATE_ATTRS.get(e.kind)
        if attr and "error" not in (seen.get(attr), e.attributes.get(attr)):
            seen = {k: v for k, v in seen.items() if k not in (attr, attr + ".message")}
        return seen


def _host_id(e: Entity) -> str | None:
    return e.placement.host_id if e.placement is not None else None
