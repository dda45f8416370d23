"""Host monitoring: a host that stops answering goes `down`, its VMs show `error` naming it, and
both come back by themselves when it answers again (issue 12).

One server at a time does it (a store lease, as for the periodic reconcile), every
`host_check_interval` seconds: each host of every cluster is asked for its capacity by its
cluster's backend (`Backend.host_capacity`, which raises Unreachable when the host does not
answer).

- An answer stores the time in the host's `last_seen`. A host that was not `up` becomes `up`,
  and its VMs are observed at once (occi.jobs.reconcile with their ids), so each shows what its
  platform reports again.
- No answer for longer than `host_down_after` seconds since `last_seen` (or, for a host never
  seen, since the first failure this server noticed) makes the host `down` with the reason as
  its state message, and every entity placed on it `error` with the message
  `host <name> does not answer: <what the platform said>`. Placement takes only `up` hosts, and
  the periodic reconcile leaves the entities of hosts that are not up alone
  (`down_host_ids`), so they neither flap back nor are declared gone meanwhile.

Each transition is one guarded UPDATE of the host's row (`WHERE state <> ...`): of two
servers that both saw it, one writes it and logs it, once. Time is `time.time()` unless a pass
is given its `now` (tests drive the clock that way). Touches the store's inventory and entities
tables and the pool's backends; no HTTP.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import sqlalchemy as sa

from backends.base import Backend, BackendFault, Unreachable
from occi.inventory.pool import Pool
from occi.jobs.link_states import RegistryOf, derive_link_states
from occi.store.base import Store
from occi.store.inventory_sql import hosts
from occi.store.sql import entities

log = logging.getLogger(__name__)

#: the store lease held by the server that checks the hosts
LEASE = "host monitor"
#: hosts asked at once (a host that hangs until its platform's timeout holds up only its slot)
PARALLEL = 8
#: how a down host's state message starts (cleared when it answers again, unless an
#: administrator's message replaced it meanwhile)
PREFIX = "host {name} does not answer"


def down_message(name: str, reason: str) -> str:
    return f"{PREFIX.format(name=name)}: {reason}"


def down_host_ids(store: Store) -> set[str]:
    """Ids of the hosts that are not `up` (one statement): the periodic reconcile skips what
    lives on them."""
    with store.begin(readonly=True) as tx:
        conn = getattr(tx, "conn", None)
        if conn is None:  # a store without the inventory's tables
            return set()
        return set(conn.execute(sa.select(hosts.c.id).where(hosts.c.state != "up")).scalars())


@dataclass(frozen=True)
class _Row:
    id: str
    name: str
    cluster_id: str
    uri: str | None
    state: str
    last_seen: float | None
    state_message: str | None


@dataclass
class Pass:
    """What one pass did: host names that answered, that went down, that came back, and the
    entities it changed."""

    answered: list[str] = field(default_factory=list)
    silent: list[str] = field(default_factory=list)
    went_down: list[str] = field(default_factory=list)
    came_back: list[str] = field(default_factory=list)
    errored: int = 0
    reconciled: int = 0


class HostMonitor:
    """Checks every host of the inventory; see the module's docstring."""

    def __init__(
        self,
        store: Store,
        pool: Pool,
        reconcile: Callable[[list[str]], int],
        registry: RegistryOf,
        down_after: float = 30.0,
    ):
        self.store = store
        self.pool = pool
        #: observe these entities now and store what the platform says (Service.reconcile)
        self.reconcile = reconcile
        self.registry = registry
        #: seconds without an answer before a host is down
        self.down_after = down_after
        #: host id -> when this server first saw it fail, for hosts never seen answering
        self._first_failure: dict[str, float] = {}
        #: clusters whose backend could not be made, logged once each
        self._unloadable: set[str] = set()

    # ------------------------------------------------------------------ the chore
    def run_if_due(self, interval: float) -> Pass | None:
        """One pass when this server holds the monitor's lease for the next `interval` seconds
        (one server of many checks per interval); None when another one holds it."""
        with self.store.begin() as tx:
            mine = tx.take_lease(LEASE, interval * 0.9)
        return self.check() if mine else None

    def check(self, now: float | None = None) -> Pass:
        """Ask every host once and act on what changed (the lease is the caller's)."""
        now = time.time() if now is None else now
        rows = self._hosts()
        answers = self._ask(rows)
        done = Pass()
        seen: list[str] = []
        for row in rows:
            reason = answers.get(row.id)
            if reason is None:
                continue  # its cluster's backend could not be made: not the host's fault
            if reason == "":
                done.answered.append(row.name)
                self._first_failure.pop(row.id, None)
                if row.state == "up":
                    seen.append(row.id)
                elif self._came_back(row, now):
                    done.came_back.append(row.name)
                    done.reconciled += self._recover(row)
                continue
            done.silent.append(row.name)
            since = row.last_seen
            if since is None:
                since = self._first_failure.setdefault(row.id, now)
            if row.state != "down" and now - since >= self.down_after:
                changed = self._went_down(row, reason)
                if changed is not None:
                    done.went_down.append(row.name)
                    done.errored += changed
        if seen:
            with self.store.begin() as tx:
                tx.conn.execute(  # type: ignore[attr-defined]
                    hosts.update()
                    .where(hosts.c.id.in_(seen), hosts.c.state == "up")
                    .values(last_seen=now)
                )
        return done

    # ------------------------------------------------------------------ asking
    def _hosts(self) -> list[_Row]:
        with self.store.begin(readonly=True) as tx:
            conn = getattr(tx, "conn", None)
            if conn is None:
                return []
            stmt = sa.select(
                hosts.c.id,
                hosts.c.name,
                hosts.c.cluster_id,
                hosts.c.uri,
                hosts.c.state,
                hosts.c.last_seen,
                hosts.c.state_message,
            ).order_by(hosts.c.name)
            return [_Row(*r) for r in conn.execute(stmt).all()]

    def _ask(self, rows: list[_Row]) -> dict[str, str]:
        """host id -> "" when it answered, else what its platform said; hosts whose cluster's
        backend cannot be made are left out."""
        backends: dict[str, Backend] = {}
        for cluster_id in {r.cluster_id for r in rows}:
            try:
                backends[cluster_id] = self.pool.cluster_backend(cluster_id)
                self._unloadable.discard(cluster_id)
            except Exception as exc:  # settings it refuses, a backend not installed here
                if cluster_id not in self._unloadable:
                    self._unloadable.add(cluster_id)
                    log.error("host monitor: the backend of cluster %s cannot load: %s",
                              cluster_id, exc)  # fmt: skip
        asked = [r for r in rows if r.cluster_id in backends]
        if not asked:
            return {}
        with ThreadPoolExecutor(min(PARALLEL, len(asked)), "occi-host-check") as threads:
            results = threads.map(lambda r: _answer(backends[r.cluster_id], r), asked)
            return {r.id: reason for r, reason in zip(asked, results, strict=True)}

    # ------------------------------------------------------------------ transitions
    def _went_down(self, row: _Row, reason: str) -> int | None:
        """Host `down`, its entities `error`: one transaction. None when another server did
        it first."""
        message = down_message(row.name, reason)
        with self.store.begin() as tx:
            conn = tx.conn  # type: ignore[attr-defined]
            done = conn.execute(
                hosts.update()
                .where(hosts.c.id == row.id, hosts.c.state != "down")
                .values(state="down", state_message=message)
            )
            if not done.rowcount:
                return None
            reg = self.registry(tx)
            changed = 0
            for entity_id in _placed_on(conn, row.id):
                current = tx.get(entity_id, for_update=True)
                kind = reg.kinds.get(current.kind) if current is not None else None
                if current is None or kind is None:
                    continue
                state = f"occi.{kind.term}.state"
                current.attributes[state] = "error"
                current.attributes[state + ".message"] = message
                tx.update(current)
                derive_link_states(tx, current, self.registry)
                changed += 1
        log.error("%s: host down, %d entities on it in error", message, changed)
        return changed

    def _came_back(self, row: _Row, now: float) -> bool:
        """Host `up` again; False when another server did it first."""
        ours = row.state_message is not None and row.state_message.startswith(
            PREFIX.format(name=row.name)
        )
        with self.store.begin() as tx:
            done = tx.conn.execute(  # type: ignore[attr-defined]
                hosts.update()
                .where(hosts.c.id == row.id, hosts.c.state != "up")
                .values(
                    state="up",
                    last_seen=now,
                    state_message=None if ours else hosts.c.state_message,
                )
            )
        if done.rowcount:
            log.warning("host %s answers again: up", row.name)
        return bool(done.rowcount)

    def _recover(self, row: _Row) -> int:
        """Observe the entities of a host that answers again, right away."""
        with self.store.begin(readonly=True) as tx:
            ids = _placed_on(tx.conn, row.id)  # type: ignore[attr-defined]
        if not ids:
            return 0
        changed = self.reconcile(ids)
        log.info("host %s: %d of its %d entities observed again changed", row.name, changed,
                 len(ids))  # fmt: skip
        return changed


def _answer(backend: Backend, row: _Row) -> str:
    """An empty string when the host answers, else why not (never raises). Only Unreachable
    (or a platform SDK's own exception) is silence: a host that answers with another fault
    (it cannot tell its size) is up."""
    try:
        backend.host_capacity(row.uri)
    except Unreachable as exc:
        return str(exc) or "no answer"
    except BackendFault as exc:
        log.debug("host %s answers, with a fault: %s", row.name, exc)
    except Exception as exc:  # a platform SDK's own failure: the host did not answer either
        log.debug("host %s: %s", row.name, exc, exc_info=True)
        return f"{type(exc).__name__}: {exc}"
    return ""


def _placed_on(conn: sa.Connection, host_id: str) -> list[str]:
    """Ids of the entities placed on a host."""
    stmt = sa.select(entities.c.id).where(entities.c.host_id == host_id).order_by(entities.c.id)
    return list(conn.execute(stmt).scalars())
