"""A request's hypervisor work: jobs queued in its transaction, run (or waited for) after the
commit, and the error the request answers with when they failed.

Hypervisor work is queued as job rows in the request's transaction, so it happens only if the
request's changes are stored, and any server can finish it. After the commit the request runs
its jobs itself when they are free (the fast path), or waits for them up to the configured
time, then answers with the state so far.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from occi import errors
from occi.context import DEFAULT_PROJECT, RequestContext
from occi.identity import audit
from occi.jobs.execution import FAULTS
from occi.jobs.runner import JobRunner
from occi.model import Entity, Kind, stored_id
from occi.registry import Registry
from occi.service.conditions import Expected, check_expected
from occi.service.reads import Reads, kind_id_of
from occi.store.base import Job, StoreTx


class Work(Reads):
    def attach_runner(self, runner: JobRunner) -> None:
        self.runner = runner

    @contextmanager
    def _changing(
        self,
        ctx: RequestContext,
        action: str,
        kind: Kind | str,
        entity_id: str,
        expected: Expected | None,
    ) -> Iterator[tuple[StoreTx, Registry, Entity]]:
        """A change to one entity: authorized, its jobs tagged with the request, the entity
        loaded for update in a write transaction and checked against the versions the client
        expects. What the block raises rolls the transaction back."""
        kind_id = kind_id_of(kind)
        self._authorize(ctx, action, kind_id)
        self._begin_work(ctx)
        with self.store.begin() as tx:
            reg = self.registry(tx, ctx.project)
            entity = self._load(tx, reg, kind_id, entity_id, for_update=True, project=ctx.project)
            check_expected(entity, expected, entity.location or entity_id)
            yield tx, reg, entity

    def _begin_work(self, ctx: RequestContext) -> None:
        """A request's work begins: the jobs it queues carry its request id."""
        self._local.jobs = []
        self._local.claimed = {}
        self._local.given = {}
        self._local.settled = {}
        self._local.request_id = ctx.request_id

    def _job_params(self, target: str, params: dict[str, Any]) -> dict[str, Any]:
        """A job's parameters: its target, what the operation needs, the request's id."""
        request_id = getattr(self._local, "request_id", None)
        extra = {"request_id": request_id} if request_id else {}
        return {"target": target, **params, **extra}

    def _submit(
        self,
        tx: StoreTx,
        key: str,
        operation: str,
        target: str,
        *,
        first: bool = False,
        entity: Entity | None = None,
        **params: Any,
    ) -> str:
        """Queue a job. `first`: no other job of `key` can precede it (its entity is new, or
        has no unfinished job and is locked by this transaction), so when the request will
        run it itself it is inserted already claimed by this server (the fast path: no claim
        transaction of its own; if this server dies, its lease lapses and others take it).
        `entity`: the target as this transaction stores it, handed to that run of the job so
        that it neither reads it again nor before recording what the platform did."""
        job_params = self._job_params(target, params)
        owner = self._running_here() if first else None
        max_attempts = self.job_settings.max_attempts
        job_id = tx.jobs.enqueue(
            key,
            operation,
            job_params,
            max_attempts,
            project_id=self._project(),
            owner=owner,
            lease=self.job_settings.lease,
        )
        self._local.__dict__.setdefault("jobs", []).append(job_id)
        if entity is not None and entity.version is None:  # inserted by this transaction
            entity.version = 1
            entity.project = entity.project or self._project() or DEFAULT_PROJECT
        self._keep_for_run(job_id, key, operation, job_params, owner, entity)
        return job_id

    def _running_here(self) -> str | None:
        """The server id a job is inserted claimed by when the request will run it itself
        (None: it waits for nothing, or this server is fenced). A runner not made yet is not
        registered: it registers after this transaction."""
        runner = self.runner if self.job_settings.wait > 0 else None
        return runner.server_id if runner is not None and not runner.fenced else None

    def _keep_for_run(
        self,
        job_id: str,
        key: str,
        operation: str,
        job_params: dict[str, Any],
        claimed_by: str | None,
        entity: Entity | None,
    ) -> None:
        """Note what the request's run of a job after the commit needs: the job as inserted
        claimed by this server (`claimed_by`), or else the entity to hand to it once claimed."""
        if claimed_by is not None:
            max_attempts = self.job_settings.max_attempts
            claimed = Job(
                job_id, key, operation, job_params, "running", 1, max_attempts, claimed_by
            )
            claimed.given = entity
            self._local.__dict__.setdefault("claimed", {})[job_id] = claimed
        elif entity is not None and self.job_settings.wait > 0:  # for its claim after the commit
            self._local.__dict__.setdefault("given", {})[job_id] = entity

    def _submit_behind(
        self, tx: StoreTx, entity: Entity, term: str, params: dict[str, Any]
    ) -> tuple[str, list[Job]]:
        """Queue an action's job on `entity` (locked by this transaction, handed to the
        request's run of the job as _submit's `entity`), and say which unfinished jobs of the
        entity it queues behind (JobTx.enqueue_behind): one statement. When it queues behind
        none and the request will run it, it is inserted already claimed by this server, as
        _submit's `first` (every job of the entity queued before is visible here: their
        transactions held the entity's row lock this one holds now); else pending."""
        entity_id = stored_id(entity)
        owner = self._running_here()
        job_params = self._job_params(entity_id, {"action": term, "params": params})
        job_id, earlier = tx.jobs.enqueue_behind(
            entity_id,
            "action",
            job_params,
            self.job_settings.max_attempts,
            project_id=self._project(),
            owner=owner,
            lease=self.job_settings.lease,
        )
        self._local.__dict__.setdefault("jobs", []).append(job_id)
        claimed_by = None if earlier else owner  # the statement claimed it when none was ahead
        self._keep_for_run(job_id, entity_id, "action", job_params, claimed_by, entity)
        return job_id, earlier

    def _submit_many(self, tx: StoreTx, jobs: list[tuple[str, str, str, dict[str, Any]]]) -> None:
        """Queue many jobs (key, operation, target, params) with one statement."""
        ids = tx.jobs.enqueue_many(
            [(key, op, self._job_params(target, params)) for key, op, target, params in jobs],
            self.job_settings.max_attempts,
            project_id=self._project(),
        )
        self._local.__dict__.setdefault("jobs", []).extend(ids)

    def _runner(self) -> JobRunner:
        if self.runner is None:  # no background threads: run every job in the request
            runner = JobRunner(self.store, self.executor.execute, self.job_settings)
            runner._register()
            self.runner = runner
        return self.runner

    def _audit_with_work(
        self, ctx: RequestContext, operation: str, entity: str | None, status: int
    ) -> None:
        """Record the request's audit event in the transaction that records its one job done,
        when the request runs that job itself (then `ctx.audit` notes `status`, the answer
        the event stands for, and the audit middleware records no other: see
        occi.api.audit). Only for a front that asks (ctx.audit) and a request of one job;
        otherwise, and when the job fails, the middleware records the event as usual."""
        jobs = self._local.__dict__.get("jobs", [])
        if ctx.audit is None or len(jobs) != 1:
            return
        values = audit.event_values(
            operation=operation,
            status=status,
            user=ctx.user,
            project=ctx.project,
            request_id=ctx.request_id,
            entity=entity,
        )
        self._local.audit_hook = (jobs[0], values, ctx.audit, status)

    def _settle(self, *, raise_failures: bool = True) -> dict[str, Job]:
        ids = self._local.__dict__.pop("jobs", [])
        claimed = self._local.__dict__.pop("claimed", {})
        given = self._local.__dict__.pop("given", {})
        hook = self._local.__dict__.pop("audit_hook", None)
        self._local.settled = {}
        if not ids:
            return {}
        events = {hook[0]: hook[1]} if hook is not None else {}
        jobs = self._runner().settle(ids, claimed=claimed, given=given, events=events)
        if hook is not None and hook[0] in jobs and jobs[hook[0]].event_stored:
            hook[2].status = hook[3]
        # what the jobs run here stored, for _refresh; not when jobs of one entity followed
        # each other (an inline link's job changes its resource's links after the create)
        keys = [j.entity_id for j in jobs.values()]
        if len(set(keys)) == len(keys):
            self._local.settled = {
                j.entity.id: j.entity for j in jobs.values() if j.entity is not None
            }
        failed = [jobs[i] for i in ids if i in jobs and jobs[i].status == "failed"]
        if failed and raise_failures:
            raise self._failure(failed)
        return jobs

    def _failure(self, failed: list[Job]) -> errors.OcciError:
        """The error a request answers with when its jobs failed (see FAULTS). When it made
        entities whose platform work failed, they stay (in state error, deletable) and the
        error names the first of them as its location."""
        order = list(FAULTS)
        faults = [(j.result or {}).get("fault") for j in failed]
        worst = max((f if f in FAULTS else "platform" for f in faults), key=order.index)
        messages = dict.fromkeys(j.error or "the operation failed" for j in failed)
        error = FAULTS[worst]("; ".join(messages))
        made = [
            j.params.get("target", j.entity_id)
            for op in ("create", "link")
            for j in failed
            if j.operation == op
        ]
        if made:
            with self.store.begin(readonly=True) as tx:
                found = tx.get_many(made)
            located = [found[i].location for i in made if i in found]
            error.location = located[0] if located else None
        return error

    def _refresh(self, entities: list[Entity]) -> list[Entity]:
        """The entities as stored now (after their jobs), ready to render: as the jobs run in
        this request stored them, or else read again."""
        settled = self._local.__dict__.pop("settled", {})
        if entities and all(e.id in settled for e in entities):
            reg = self.registry(project=self._project())
            return [self._present(settled[e.id], reg) for e in entities]
        with self.store.begin(readonly=True) as tx:
            reg = self.registry(tx, self._project())
            fresh = tx.get_many(e.id for e in entities if e.id)
            return [self._present(fresh.get(e.id or "", e), reg) for e in entities]

    @staticmethod
    def _note(entity: Entity, kind: Kind, message: str) -> None:
        """Say in the state message what is under way."""
        name = f"occi.{kind.term}.state.message"
        if name in kind.all_attributes():
            entity.attributes[name] = message
