"""Host maintenance: the computes of a host an administrator puts in maintenance move away.

`maintenance` on a host sets it to `prepare-for-maintenance` (new placements avoid it from that
commit on) and, in the same transaction, queues one `migrate` job per compute placed on it
(`queue_moves`). They are ordinary jobs: any server process claims them, under leases, one at a
time per compute, after the compute's earlier jobs. A host without computes goes straight to
`maintenance`.

A move (`run_move`, the Executor's `migrate` operation):

1. reserve room on another host of the compute's cluster: placement's guarded UPDATE, with the
   Ask limited to the cluster and excluding the host left (the target must be up and enabled
   on the row as the UPDATE finds it), in its own transaction;
2. `backend.migrate(entity, target, live=True)`: live where the platform can, else the backend
   stops, moves and starts it again and its state message says so; a stopped compute moves
   stopped;
3. one transaction moves the entity's placement to the target, gives back what it reserved on
   the source and finishes the job. On failure the target's reservation is given back, the
   compute stays where it was and the job fails with the reason.

Whoever finishes the last move of a host concludes (`conclude`): with the host's row locked
(so two servers finishing the last two moves at once conclude one after the other, the second
seeing the first's job finished), when no move of the host is unfinished the host goes to
`maintenance` if nothing is left on it, else to `error-in-maintenance` with a state message
naming the computes left and why. The UPDATE is guarded by `prepare-for-maintenance`, so it
happens once, and not after a cancel.

`cancel-maintenance` enables the host at once. A move not started by then does nothing (its job
finishes without moving); one under way completes.

A platform that moves a compute as a long task answers Pending (backends.base): the job is
parked with the task's handle and the target's reservation (occi.jobs.execution), and the
server that claims it next polls the task and goes on with step 3, or gives the target back.

Known gap: a server dying between step 1 and step 3 leaves the target's reservation in place
(the job is retried by another server, which reserves again).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from backends.base import InvalidTransition, NotFoundOnPlatform, Outcome, Pending, Unsupported
from occi import errors
from occi.inventory import placement
from occi.model import Placement, Resource
from occi.store.base import Job, StoreTx
from occi.store.inventory_sql import hosts
from occi.store.sql import entities, jobs

if TYPE_CHECKING:
    from occi.jobs.execution import Executor
    from occi.jobs.runner import JobRunner

log = logging.getLogger(__name__)

OPERATION = "migrate"
PREPARING = "prepare-for-maintenance"
#: a move failing in a way that may pass (the platform's error) is tried this many times
MAX_ATTEMPTS = 3
#: how many of the computes left on a host its state message names
NAMED = 5
UNFINISHED = ("pending", "running")
#: runs jobs where it can and waits for them (job ids, timeout): how the admin API and the
#: command line wait for a host's moves (a server's JobRunner.settle)
Settle = Callable[[list[str], float], object]


# ---------------------------------------------------------------------------------------------
# queueing (in the administrator's transaction)
# ---------------------------------------------------------------------------------------------


def queue_moves(tx: StoreTx, host_id: str, request_id: str | None = None) -> list[str]:
    """Queue a move for every compute placed on the host (just set to prepare-for-maintenance
    in this transaction); conclude at once when there is none. Returns the jobs' ids."""
    conn = tx.conn  # type: ignore[attr-defined]  # the SQL store's transaction
    rows = conn.execute(
        sa.select(entities.c.id, entities.c.project_id)
        .where(entities.c.host_id == host_id)
        .order_by(entities.c.seq)
    ).all()
    if not rows:
        conclude(tx, host_id)
        return []
    params: dict[str, Any] = {"host": host_id}
    if request_id is not None:
        params["request_id"] = request_id
    by_project: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for entity_id, project in rows:
        by_project.setdefault(project, []).append((entity_id, OPERATION, dict(params)))
    ids: list[str] = []
    for project, queued in by_project.items():
        ids += tx.jobs.enqueue_many(queued, MAX_ATTEMPTS, project_id=project)
    log.info("host %s: %d compute(s) to move away for maintenance", host_id, len(ids))
    return ids


# ---------------------------------------------------------------------------------------------
# concluding (whoever finishes a host's last move)
# ---------------------------------------------------------------------------------------------


def _lock_host(tx: StoreTx, host_id: str) -> str | None:
    """Lock the host's row for the rest of the transaction; its admin state (None: gone)."""
    conn = tx.conn  # type: ignore[attr-defined]
    return conn.execute(  # type: ignore[no-any-return]
        sa.select(hosts.c.admin_state).where(hosts.c.id == host_id).with_for_update()
    ).scalar_one_or_none()


def _moves_of(tx: StoreTx, host_id: str, statuses: tuple[str, ...]) -> list[tuple[str, str]]:
    """(entity id, error) of the host's move jobs in `statuses`, newest first."""
    conn = tx.conn  # type: ignore[attr-defined]
    rows = conn.execute(
        sa.select(jobs.c.entity_id, jobs.c.params, jobs.c.error)
        .where(
            jobs.c.operation == OPERATION,
            jobs.c.status.in_(statuses),
            jobs.c.params.contains(host_id, autoescape=True),
        )
        .order_by(jobs.c.seq.desc())
    ).all()
    out = []
    for entity_id, raw, error in rows:
        try:
            if json.loads(raw).get("host") == host_id:
                out.append((entity_id, error or ""))
        except (ValueError, AttributeError):
            continue
    return out


def conclude(tx: StoreTx, host_id: str) -> str | None:
    """When the host prepares for maintenance and none of its moves is unfinished: set it to
    maintenance, or error-in-maintenance naming what stayed. Returns the state set, if any."""
    if _lock_host(tx, host_id) != PREPARING or _moves_of(tx, host_id, UNFINISHED):
        return None
    conn = tx.conn  # type: ignore[attr-defined]
    left = conn.execute(
        sa.select(entities.c.id, entities.c.location)
        .where(entities.c.host_id == host_id)
        .order_by(entities.c.location)
    ).all()
    if not left:
        state, message = "maintenance", "in maintenance: no compute left on it"
    else:
        why = dict(reversed(_moves_of(tx, host_id, ("failed",))))  # the newest error wins
        named = [f"{loc} ({why.get(eid) or 'not moved'})" for eid, loc in left[:NAMED]]
        more = f" and {len(left) - NAMED} more" if len(left) > NAMED else ""
        state = "error-in-maintenance"
        message = f"{len(left)} compute(s) could not move to another host: {'; '.join(named)}{more}"
    done = conn.execute(
        hosts.update()
        .where(hosts.c.id == host_id, hosts.c.admin_state == PREPARING)
        .values(admin_state=state, state_message=message)
    )
    if not done.rowcount:
        return None
    log.info("host %s: %s (%s)", host_id, state, message)
    return state


# ---------------------------------------------------------------------------------------------
# one move (the Executor's `migrate` operation)
# ---------------------------------------------------------------------------------------------


def run_move(executor: Executor, job: Job, runner: JobRunner) -> None:
    """Carry out one claimed move job (see the module's docstring)."""
    from occi.jobs.execution import _LostJob

    try:
        _Move(executor, job, runner).run()
    except _LostJob:
        log.warning("move job %s was taken over by another server; its result is dropped", job.id)


class _Move:
    def __init__(self, executor: Executor, job: Job, runner: JobRunner):
        self.executor, self.job, self.runner = executor, job, runner
        self.store = executor.store
        self.host_id: str = str(job.params.get("host", ""))

    def _owner(self) -> str:
        assert self.job.owner is not None, f"job {self.job.id} is not claimed"
        return self.job.owner

    def run(self) -> None:
        with self.store.begin(readonly=True) as tx:
            entity = tx.get(self.job.entity_id)
        if not isinstance(entity, Resource) or entity.placement is None:
            self._finish_unmoved("the compute is gone")
            return
        if entity.placement.host_id != self.host_id:
            self._finish_unmoved("the compute is on another host already")
            return
        if not self.runner.still_mine(self.job):
            return
        from occi.jobs.execution import pending_of

        pending = pending_of(self.job)
        target: Placement | None
        if pending is not None:  # the platform moves it as a task: reserved already
            target = Placement(**pending.get("target", {}))
        else:
            try:
                target = self._reserve(entity)
            except errors.NoCapacity as exc:
                self._fail(str(exc), None, entity, "capacity")
                return
        if target is None:
            self._finish_unmoved("maintenance was cancelled before it moved")
            return
        address = target.host_uri if target.host_uri is not None else target.host_name
        try:
            backend = self.executor.backend_for(entity)
            if pending is not None:
                outcome = backend.poll(entity, pending["handle"])
            else:
                outcome = backend.migrate(entity, address, live=True)
            if isinstance(outcome, Pending):
                self.executor.park(
                    self.job, self.runner, entity, outcome, {"target": _placement_row(target)}
                )
                return
        except (InvalidTransition, NotFoundOnPlatform, Unsupported) as exc:
            self._fail(str(exc), target, entity)
            return
        except Exception as exc:  # PlatformError, or the platform's SDK failing: may pass
            message = f"the platform failed to move it: {exc}"
            log.warning("move of %s, attempt %d: %s", entity.id, self.job.attempts, exc)
            if self.job.attempts < self.job.max_attempts:
                self._retry(message, target)
            else:
                self._fail(message, target, entity)
            return
        self._moved(entity, target, outcome)

    # ------------------------------------------------------------------ steps
    def _reserve(self, entity: Resource) -> Placement | None:
        """Room on another host of the cluster (None: the maintenance was cancelled)."""
        p = entity.placement
        assert p is not None
        with self.store.begin() as tx:
            if _lock_host(tx, self.host_id) != PREPARING:
                return None
            cores, memory_mb = placement.compute_size(entity.attributes)
            reg = self.executor.registry(tx)
            ask = placement.Ask(
                zone_id=p.zone_id or "",
                zone_name="",
                cores=p.reserved_cores if p.reserved_cores is not None else cores,
                memory_mb=p.reserved_memory_mb if p.reserved_memory_mb is not None else memory_mb,
                project=entity.project or "default",
                tags=placement.required_tags(
                    reg.mixins[m] for m in entity.mixins if m in reg.mixins
                ),
                cluster_id=p.cluster_id,
                excluded_host=self.host_id,
            )
            return placement.place_compute(tx, ask, self.executor.placement_strategy)

    def _moved(self, entity: Resource, target: Placement, outcome: Outcome) -> None:
        """The platform moved it: the placement follows, the source's room is given back."""
        from occi.jobs.execution import _LostJob

        p = entity.placement
        assert p is not None
        with self.store.begin() as tx:
            current = tx.get(self.job.entity_id, for_update=True)
            _lock_host(tx, self.host_id)
            here = current.placement if current is not None else None
            if here is None or here.host_id != self.host_id:  # deleted or moved meanwhile
                placement.release(tx, target.host_id or "", _cores(target), _memory(target))
            else:
                tx.conn.execute(  # type: ignore[attr-defined]
                    entities.update()
                    .where(entities.c.id == self.job.entity_id)
                    .values(
                        host_id=target.host_id,
                        reserved_cores=target.reserved_cores,
                        reserved_memory_mb=target.reserved_memory_mb,
                    )
                )
                placement.release(tx, self.host_id, _cores(here), _memory(here))
                assert current is not None
                if outcome.platform_ref is not None:  # a platform may rename what it moved
                    tx.record_platform_ref(self.job.entity_id, outcome.platform_ref)
                current.attributes.update(outcome.attributes)
                tx.update(current)  # a new version (and the entity caches forget it)
            result = {"host": target.host_name, "host_id": target.host_id}
            if not tx.jobs.finish(self.job.id, self._owner(), result):
                raise _LostJob
            concluded = conclude(tx, self.host_id)
        self.job.status, self.job.error, self.job.result = "done", None, result
        self._platform_maintenance(concluded)
        log.info("moved %s off host %s to %s", entity.id, self.host_id, target.host_name)

    def _finish_unmoved(self, why: str) -> None:
        from occi.jobs.execution import _LostJob

        result = {"skipped": why}
        with self.store.begin() as tx:
            _lock_host(tx, self.host_id)
            if not tx.jobs.finish(self.job.id, self._owner(), result):
                raise _LostJob
            concluded = conclude(tx, self.host_id)
        self.job.status, self.job.error, self.job.result = "done", None, result
        self._platform_maintenance(concluded)

    def _platform_maintenance(self, concluded: str | None) -> None:
        """Once the host is in maintenance, its platform's own maintenance mode too
        (Backend.host_maintenance: vCenter's EnterMaintenanceMode_Task); a failure is logged,
        the server's state stays."""
        if concluded != "maintenance":
            return
        with self.store.begin(readonly=True) as tx:
            row = tx.conn.execute(  # type: ignore[attr-defined]
                sa.select(hosts.c.name, hosts.c.uri, hosts.c.cluster_id).where(
                    hosts.c.id == self.host_id
                )
            ).first()
        if row is not None:
            enter_platform_maintenance(self.executor.backend_for, self.host_id, row, True)

    def _give_back(self, target: Placement | None) -> None:
        if target is None or target.host_id is None:
            return
        with self.store.begin() as tx:  # alone: never holds two hosts' rows at once
            placement.release(tx, target.host_id, _cores(target), _memory(target))

    def _retry(self, message: str, target: Placement) -> None:
        from occi.jobs.execution import without_pending

        self._give_back(target)
        params = without_pending(self.job.params)  # a retry reserves and moves afresh
        with self.store.begin() as tx:
            if tx.jobs.retry(
                self.job.id,
                self._owner(),
                message,
                self.runner.backoff(self.job.attempts),
                params,
            ):
                self.job.status, self.job.owner, self.job.error = "pending", None, message
                self.job.params = params
        self.runner.notify()

    def _fail(
        self, message: str, target: Placement | None, entity: Resource, fault: str = "platform"
    ) -> None:
        """The compute stays where it is; the job says why (and the host's message, once
        concluded)."""
        from occi.jobs.execution import _LostJob

        self._give_back(target)
        result = {"fault": fault}
        with self.store.begin() as tx:
            _lock_host(tx, self.host_id)
            if not tx.jobs.fail(self.job.id, self._owner(), message, result):
                raise _LostJob
            concluded = conclude(tx, self.host_id)
        self.job.status, self.job.error, self.job.result = "failed", message, result
        self._platform_maintenance(concluded)
        log.warning("could not move %s off host %s: %s", entity.id, self.host_id, message)


def enter_platform_maintenance(
    backend_for: Callable[[Any], Any], host_id: str, row: Any, entering: bool
) -> None:
    """Backend.host_maintenance for the host of this row (name, uri, cluster_id), through the
    backend of its cluster; logged, never raised (the server's state is what counts)."""
    from occi import infrastructure as infra

    probe = Resource(kind=infra.COMPUTE.id, id=f"host-{host_id}")
    probe.placement = Placement(
        cluster_id=row.cluster_id, host_id=host_id, host_name=row.name, host_uri=row.uri
    )
    try:
        backend_for(probe).host_maintenance(row.uri, entering)
        log.info("host %s: platform maintenance mode %s", row.name, "on" if entering else "off")
    except Exception as exc:  # noqa: BLE001 - the platform's mode follows the server's
        log.warning(
            "host %s: the platform's maintenance mode could not be %s: %s",
            row.name,
            "entered" if entering else "left",
            exc,
        )


def _placement_row(p: Placement) -> dict[str, Any]:
    """A reserved target as a parked job keeps it (JSON): what `Placement(**row)` makes again."""
    return {
        "zone_id": p.zone_id,
        "cluster_id": p.cluster_id,
        "host_id": p.host_id,
        "host_name": p.host_name,
        "host_uri": p.host_uri,
        "reserved_cores": p.reserved_cores,
        "reserved_memory_mb": p.reserved_memory_mb,
    }


def _cores(p: Placement) -> int:
    return p.reserved_cores or 0


def _memory(p: Placement) -> int:
    return p.reserved_memory_mb or 0
