"""The job queue and server registry in SQL (occi.store.base.JobTx) for SQLite and PostgreSQL.

Touches only the `jobs` and `servers` tables. PostgreSQL claims with FOR UPDATE SKIP LOCKED so
several servers take different jobs at once; SQLite's BEGIN IMMEDIATE makes the same claim
statement exclusive between processes on one host.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from occi.store.base import Job, JobTx, ServerInfo

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
UNFINISHED = (PENDING, RUNNING)


@functools.cache
def _insert(t: sa.Table) -> sa.Insert:
    """A job's INSERT (its columns are those of the parameters), built once: building and
    keying a statement costs more than SQLite takes to run it."""
    return t.insert()


@functools.cache
def _finish(t: sa.Table) -> sa.Update:
    """The guarded UPDATE that marks a running job of this server done, built once."""
    c = t.c
    return (
        t.update()
        .where(
            c.id == sa.bindparam("job_id"),
            c.owner == sa.bindparam("b_owner"),
            c.status == RUNNING,
        )
        .values(
            status=DONE,
            lease_expires=None,
            updated_at=sa.bindparam("b_updated_at"),
            error=None,
            result=sa.bindparam("b_result", type_=c.result.type),
        )
    )


@functools.cache
def _unfinished(t: sa.Table) -> sa.Select[Any]:
    """The unfinished jobs of the entities `ids`, oldest first, built once."""
    c = t.c
    ids: sa.BindParameter[Any] = sa.bindparam("ids", expanding=True)
    return sa.select(t).where(c.entity_id.in_(ids), c.status.in_(UNFINISHED)).order_by(c.seq)


@functools.cache
def _statuses(t: sa.Table) -> sa.Select[Any]:
    """The jobs `ids`, built once."""
    return sa.select(t).where(t.c.id.in_(sa.bindparam("ids", expanding=True)))


@functools.cache
def _enqueue_behind(t: sa.Table, columns: tuple[str, ...], claimed: bool) -> sa.Select[Any]:
    """SqlJobTx.enqueue_behind's statement for rows of these columns, built once. `claimed`:
    the row is inserted running, owned by :b_owner under the lease :b_lease_expires, when the
    statement sees no unfinished job of the entity (`ahead`), and pending otherwise."""
    entity: sa.BindParameter[Any] = sa.bindparam("b_entity_id", type_=t.c.entity_id.type)
    unfinished = (t.c.entity_id == entity, t.c.status.in_(UNFINISHED))
    if claimed:
        ahead = sa.select(sa.exists().where(*unfinished).label("ahead")).subquery("a")

        def value(c: str) -> sa.ColumnElement[Any]:
            param = sa.bindparam(f"b_{c}", type_=t.c[c].type)
            if c in ("status", "owner", "lease_expires", "attempts"):
                pending = {"status": PENDING, "owner": None, "lease_expires": None}.get(c, 0)
                return sa.case((ahead.c.ahead, sa.literal(pending, t.c[c].type)), else_=param)
            return param

        rows = sa.select(*(value(c) for c in columns)).select_from(ahead)
        new = t.insert().from_select(list(columns), rows).cte("queued")
    else:
        new = t.insert().values({c: sa.bindparam(f"b_{c}") for c in columns}).cte("queued")
    return sa.select(t).add_cte(new).where(*unfinished).order_by(t.c.seq)


def _key_share(keys: sa.Table, which: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """The ids of the key entities `which`, locked FOR KEY SHARE in id order (SqlJobTx)."""
    return (
        sa.select(keys.c.id)
        .where(which)
        .order_by(keys.c.id)
        .with_for_update(read=True, key_share=True)
    )


@functools.cache
def _enqueue_locked(t: sa.Table, keys: sa.Table, columns: tuple[str, ...]) -> sa.Insert:
    """PostgreSQL: a pending job's INSERT (of these columns) that first locks the row of its
    key entity in `keys` (the entities table, FOR KEY SHARE), as SqlJobTx._lock_keys does
    for many."""
    entity = sa.bindparam("b_entity_id", type_=t.c.entity_id.type)
    locked = _key_share(keys, keys.c.id == entity).cte("lk")
    taken = sa.select(sa.func.count()).select_from(locked).scalar_subquery()
    row = sa.select(*(sa.bindparam(f"b_{c}", type_=t.c[c].type) for c in columns)).where(
        taken >= 0  # evaluated before the row is made: the lock comes before the job's seq
    )
    return t.insert().from_select(list(columns), row)


#: SqlJobTx._claim's statements by (jobs table, PostgreSQL, one job named)
_CLAIMS: dict[tuple[sa.Table, bool, bool], sa.Update] = {}


class SqlJobTx(JobTx):
    """Jobs in SQL. On PostgreSQL every job queued pending is inserted under a lock on its key
    entity's row (`keys`, the entities table): FOR KEY SHARE, which waits for a transaction
    holding the row FOR UPDATE (a request changing the entity, or acting on it) and is not
    held up by the job records' plain UPDATEs of the row (so a request on a link, which
    holds the link's row, never deadlocks with a record of its source). An action queued
    under the entity's FOR UPDATE lock (enqueue_behind) therefore sees every job of the
    entity queued before it, and is inserted already claimed when none is ahead; one queued
    after it gets a later seq. SQLite's one writer at a time gives the same order by
    itself."""

    def __init__(
        self, conn: Connection, jobs: sa.Table, servers: sa.Table, keys: sa.Table | None = None
    ):
        self.conn = conn
        self.t = jobs
        self.s = servers
        self.keys = keys
        self._pg = conn.dialect.name == "postgresql"
        self.exclusive = not self._pg  # SQLite: BEGIN IMMEDIATE, one writer at a time

    # ------------------------------------------------------------------ jobs
    @staticmethod
    def _job(row: Row[Any]) -> Job:
        return Job(
            id=row.id,
            entity_id=row.entity_id,
            operation=row.operation,
            params=json.loads(row.params or "{}"),
            status=row.status,
            attempts=row.attempts,
            max_attempts=row.max_attempts,
            owner=row.owner,
            error=row.error,
            result=json.loads(row.result) if row.result else None,
            seq=row.seq,
        )

    def enqueue(
        self,
        entity_id: str,
        operation: str,
        params: dict[str, Any],
        max_attempts: int = 5,
        *,
        project_id: str | None = None,
        owner: str | None = None,
        lease: float = 0.0,
    ) -> str:
        now = time.time()
        row = self._row(entity_id, operation, params, max_attempts, project_id, now)
        if owner is not None:  # claimed in the same statement (see JobTx.enqueue)
            row.update(status=RUNNING, owner=owner, lease_expires=now + lease, attempts=1)
        elif self._pg and self.keys is not None:  # after its entity's row lock (see the class)
            stmt = _enqueue_locked(self.t, self.keys, tuple(row))
            self.conn.execute(stmt, {f"b_{k}": v for k, v in row.items()})
            return str(row["id"])
        self.conn.execute(_insert(self.t), row)
        return str(row["id"])

    def _lock_keys(self, entity_ids: Iterable[str]) -> None:
        """PostgreSQL: lock the rows of these key entities FOR KEY SHARE (see the class), in
        id order."""
        if not self._pg or self.keys is None:
            return
        ids = sorted(set(entity_ids))
        for at in range(0, len(ids), 1000):  # bounded IN lists
            self.conn.execute(_key_share(self.keys, self.keys.c.id.in_(ids[at : at + 1000]))).all()

    @staticmethod
    def _row(
        entity_id: str,
        operation: str,
        params: dict[str, Any],
        max_attempts: int,
        project_id: str | None,
        now: float,
    ) -> dict[str, Any]:
        """A new pending job's row (the project column keeps its default unless one is named)."""
        owned = {} if project_id is None else {"project_id": project_id}
        return dict(
            **owned,
            id=str(uuid.uuid4()),
            entity_id=entity_id,
            operation=operation,
            params=json.dumps(params, separators=(",", ":")),
            status=PENDING,
            owner=None,
            lease_expires=None,
            attempts=0,
            max_attempts=max_attempts,
            not_before=now,
            error=None,
            result=None,
            created_at=now,
            updated_at=now,
        )

    def enqueue_behind(
        self,
        entity_id: str,
        operation: str,
        params: dict[str, Any],
        max_attempts: int = 5,
        *,
        project_id: str | None = None,
        owner: str | None = None,
        lease: float = 0.0,
    ) -> tuple[str, list[Job]]:
        """PostgreSQL: one statement, the INSERT as a data-modifying CTE and the unfinished
        jobs of the entity read by the same statement (which does not see its own insert).
        It runs after the caller locked the entity's row, so it sees every job queued by a
        transaction that held that lock before. With `owner`, the INSERT claims the job when
        that statement sees none ahead of it: the same snapshot as the list returned, so an
        empty list says the job is claimed."""
        if not self._pg:
            return super().enqueue_behind(
                entity_id,
                operation,
                params,
                max_attempts,
                project_id=project_id,
                owner=owner,
                lease=lease,
            )
        now = time.time()
        row = self._row(entity_id, operation, params, max_attempts, project_id, now)
        if owner is not None:  # as claimed, unless the statement finds a job ahead
            row.update(status=RUNNING, owner=owner, lease_expires=now + lease, attempts=1)
        rows = self.conn.execute(
            _enqueue_behind(self.t, tuple(row), owner is not None),
            {f"b_{k}": v for k, v in row.items()},
        ).all()
        return str(row["id"]), [self._job(r) for r in rows]

    def enqueue_many(
        self,
        jobs: list[tuple[str, str, dict[str, Any]]],
        max_attempts: int = 5,
        *,
        project_id: str | None = None,
    ) -> list[str]:
        if not jobs:
            return []
        now = time.time()
        rows = [
            self._row(entity_id, operation, params, max_attempts, project_id, now)
            for entity_id, operation, params in jobs
        ]
        self._lock_keys(r["entity_id"] for r in rows)
        self.conn.execute(self.t.insert(), rows)
        return [str(r["id"]) for r in rows]

    def get(self, job_id: str) -> Job | None:
        row = self.conn.execute(sa.select(self.t).where(self.t.c.id == job_id)).first()
        return self._job(row) if row else None

    def any_runnable(self) -> bool:
        q = self._runnable(time.time()).with_only_columns(self.t.c.seq).limit(1)
        return self.conn.execute(q).first() is not None

    def _runnable(self, now: Any, t: Any = None) -> sa.Select[Any]:
        """The runnable jobs (of `t`, the jobs table or an alias of it), oldest first."""
        t = self.t if t is None else t
        other = self.t.alias("other")
        # runnable: pending and due, or running under a lease that expired (its server died)
        runnable = sa.or_(
            sa.and_(t.c.status == PENDING, t.c.not_before <= now),
            sa.and_(t.c.status == RUNNING, t.c.lease_expires < now),
        )
        # the oldest unfinished job of its entity, and no other job of the entity under a
        # lease: one at a time even when two transactions that did not see each other's jobs
        # queued for one entity (their order is then arbitrary, as their requests')
        first_of_entity = ~sa.exists().where(
            other.c.entity_id == t.c.entity_id,
            other.c.seq != t.c.seq,
            sa.or_(
                sa.and_(other.c.seq < t.c.seq, other.c.status.in_(UNFINISHED)),
                sa.and_(other.c.status == RUNNING, other.c.lease_expires >= now),
            ),
        )
        return sa.select(t).where(runnable, first_of_entity).order_by(t.c.seq)

    def claim(self, server_id: str, lease_seconds: float, job_id: str | None = None) -> Job | None:
        """One statement: the UPDATE of the first runnable job (that one, if given) that a
        subquery picks, locked (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: the statement
        holds the write lock), returning the job as claimed."""
        now = time.time()
        row = self.conn.execute(
            self._claim(job_id is not None),
            {
                "b_now": now,
                "b_owner": server_id,
                "b_lease_expires": now + lease_seconds,
                "b_job_id": job_id,
            },
        ).first()
        return self._job(row) if row is not None else None

    def _claim(self, one: bool) -> sa.Update:
        """The claim's UPDATE (of the job `b_job_id` when `one`), built once per shape."""
        key = (self.t, self._pg, one)
        stmt = _CLAIMS.get(key)
        if stmt is None:
            t = self.t
            candidate = t.alias("candidate")
            now = sa.bindparam("b_now", type_=sa.Float())
            q = self._runnable(now, candidate).with_only_columns(candidate.c.seq)
            if one:  # unique: no order to walk (a planner would scan by seq)
                q = q.where(candidate.c.id == sa.bindparam("b_job_id")).order_by(None)
            q = q.limit(1)
            if self._pg:
                q = q.with_for_update(skip_locked=True, of=candidate)
            stmt = _CLAIMS[key] = (
                t.update()
                .where(t.c.seq == q.scalar_subquery())
                .values(
                    status=RUNNING,
                    owner=sa.bindparam("b_owner"),
                    lease_expires=sa.bindparam("b_lease_expires"),
                    attempts=t.c.attempts + 1,
                    updated_at=now,
                )
                .returning(*t.c)
            )
        return stmt

    def _mine(self, job_id: str, owner: str) -> sa.ColumnElement[bool]:
        return sa.and_(self.t.c.id == job_id, self.t.c.owner == owner, self.t.c.status == RUNNING)

    def finish(self, job_id: str, owner: str, result: dict[str, Any] | None = None) -> bool:
        return bool(
            self.conn.execute(
                _finish(self.t),
                {
                    "job_id": job_id,
                    "b_owner": owner,
                    "b_updated_at": time.time(),
                    "b_result": None
                    if result is None
                    else json.dumps(result, separators=(",", ":")),
                },
            ).rowcount
        )

    def retry(
        self,
        job_id: str,
        owner: str,
        error: str,
        delay: float,
        params: dict[str, Any] | None = None,
    ) -> bool:
        changed = {} if params is None else {"params": json.dumps(params, separators=(",", ":"))}
        return self._requeue(job_id, owner, delay, error=error, **changed)

    def park(self, job_id: str, owner: str, params: dict[str, Any], delay: float) -> bool:
        # a poll is not a failed attempt: the claim that polls again adds the one taken here
        attempts = sa.case((self.t.c.attempts > 0, self.t.c.attempts - 1), else_=0)
        params_json = json.dumps(params, separators=(",", ":"))
        return self._requeue(
            job_id, owner, delay, error=None, params=params_json, attempts=attempts
        )

    def _requeue(self, job_id: str, owner: str, delay: float, **values: Any) -> bool:
        """Back to the queue, ownerless, due in `delay` seconds (a retry, a parked task)."""
        now = time.time()
        return bool(
            self.conn.execute(
                self.t.update()
                .where(self._mine(job_id, owner))
                .values(
                    status=PENDING,
                    owner=None,
                    lease_expires=None,
                    not_before=now + delay,
                    updated_at=now,
                    **values,
                )
            ).rowcount
        )

    def fail(
        self, job_id: str, owner: str, error: str, result: dict[str, Any] | None = None
    ) -> bool:
        return bool(
            self.conn.execute(
                self.t.update()
                .where(self._mine(job_id, owner))
                .values(
                    status=FAILED,
                    lease_expires=None,
                    error=error,
                    result=json.dumps(result, separators=(",", ":"))
                    if result is not None
                    else None,
                    updated_at=time.time(),
                )
            ).rowcount
        )

    def statuses(self, job_ids: Iterable[str]) -> dict[str, Job]:
        ids = list(job_ids)
        if not ids:
            return {}
        rows = self.conn.execute(_statuses(self.t), {"ids": ids}).all()
        return {r.id: self._job(r) for r in rows}

    def unfinished(self, entity_ids: Iterable[str]) -> list[Job]:
        ids = list(entity_ids)
        if not ids:
            return []
        rows = self.conn.execute(_unfinished(self.t), {"ids": ids}).all()
        return [self._job(r) for r in rows]

    def recent(self, limit: int = 50) -> list[Job]:
        rows = self.conn.execute(sa.select(self.t).order_by(self.t.c.seq.desc()).limit(limit)).all()
        return [self._job(r) for r in rows]

    def counts(self) -> dict[str, int]:
        rows = self.conn.execute(
            sa.select(self.t.c.status, sa.func.count()).group_by(self.t.c.status)
        ).all()
        return {status: n for status, n in rows}

    # ------------------------------------------------------------------ servers
    def register_server(self, server_id: str, host: str, pid: int) -> None:
        now = time.time()
        self.conn.execute(
            self.s.insert().values(
                id=server_id,
                host=host,
                pid=pid,
                status="alive",
                started_at=now,
                heartbeat_at=now,
            )
        )

    def heartbeat(self, server_id: str, lease_seconds: float) -> bool:
        now = time.time()
        alive = self.conn.execute(
            self.s.update()
            .where(self.s.c.id == server_id, self.s.c.status == "alive")
            .values(heartbeat_at=now)
        ).rowcount
        if not alive:
            return False
        self.conn.execute(
            self.t.update()
            .where(self.t.c.owner == server_id, self.t.c.status == RUNNING)
            .values(lease_expires=now + lease_seconds)
        )
        return True

    def reap(self, dead_after: float) -> list[str]:
        now = time.time()
        dead = [
            r.id
            for r in self.conn.execute(
                sa.select(self.s.c.id).where(
                    self.s.c.status == "alive", self.s.c.heartbeat_at < now - dead_after
                )
            ).all()
        ]
        if dead:
            self.conn.execute(self.s.update().where(self.s.c.id.in_(dead)).values(status="dead"))
            # their running jobs are runnable now (attempts are kept: retries stay bounded)
            self.conn.execute(
                self.t.update()
                .where(self.t.c.owner.in_(dead), self.t.c.status == RUNNING)
                .values(
                    status=PENDING, owner=None, lease_expires=None, not_before=now, updated_at=now
                )
            )
        return dead

    def stop_server(self, server_id: str) -> None:
        self.conn.execute(self.s.update().where(self.s.c.id == server_id).values(status="stopped"))
        now = time.time()
        self.conn.execute(
            self.t.update()
            .where(self.t.c.owner == server_id, self.t.c.status == RUNNING)
            .values(status=PENDING, owner=None, lease_expires=None, not_before=now, updated_at=now)
        )

    def servers(self) -> list[ServerInfo]:
        rows = self.conn.execute(sa.select(self.s).order_by(self.s.c.started_at)).all()
        return [
            ServerInfo(r.id, r.host, r.pid, r.status, r.started_at, r.heartbeat_at) for r in rows
        ]
