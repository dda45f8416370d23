"""Actions on an entity or on every member of a collection: checked (occi.validation, with the
actions already queued for each entity), then queued as jobs."""

from __future__ import annotations

from occi import errors, validation
from occi.context import RequestContext
from occi.model import ActionInvocation, Entity, Kind, Mixin, stored_id
from occi.registry import Registry
from occi.service.conditions import Expected
from occi.service.reads import Filter
from occi.service.work import Work
from occi.store.base import Job, StoreTx


class Actions(Work):
    def act(
        self,
        ctx: RequestContext,
        kind: Kind | str,
        entity_id: str,
        term: str,
        inv: ActionInvocation,
        expected: Expected | None = None,
    ) -> Entity | Mixin:
        """Invoke the action `term` on the entity (the new mixin for `save`, else the entity)."""
        with self._changing(ctx, "act", kind, entity_id, expected) as (tx, reg, entity):
            job_id = self._queue_action(tx, reg, entity, term, inv)
        self._audit_with_work(ctx, f"action {term[:60]}", entity.location, 200)
        jobs = self._settle()
        job = jobs.get(job_id)
        if job is not None and job.status == "done" and job.result and job.result.get("mixin"):
            self._registry_checked = float("-inf")  # the job may have run in another process
            mixin = self.registry(project=ctx.project).mixins.get(job.result["mixin"])
            if mixin is not None:
                return mixin
        return self._refresh([entity])[0]

    def _queue_action(
        self, tx: StoreTx, reg: Registry, entity: Entity, term: str, inv: ActionInvocation
    ) -> str:
        """Check the action against the entity (locked by this transaction) and the actions
        queued for it, and queue its job; the job's id."""
        if not tx.jobs.exclusive and self.job_settings.wait > 0 and entity.id:
            queued_at_once = self._queue_optimistically(tx, reg, entity, term, inv)
            if queued_at_once is not None:
                return queued_at_once
        unfinished = tx.jobs.unfinished([entity.id] if entity.id else [])
        queued = self._queued_of(unfinished)
        action, params = validation.check_action(
            reg, entity, term, inv, queued.get(entity.id or "", [])
        )
        # nothing queued for the entity, and nobody can queue before this commits (SQLite:
        # one writer; PostgreSQL: every job is queued under its entity's row lock, held
        # here): the request's job is inserted already claimed (see Work._submit)
        first = not unfinished
        # nothing queued: the request runs the job itself at once, so the entity is not
        # noted "requested" for that moment (its row written twice)
        at_once = not unfinished and self.job_settings.wait > 0
        return self._run_action(tx, reg, entity, action.term, params, first=first, note=not at_once)

    def _queue_optimistically(
        self, tx: StoreTx, reg: Registry, entity: Entity, term: str, inv: ActionInvocation
    ) -> str | None:
        """PostgreSQL: the action checked as if nothing were queued for the entity (the
        common case), then queued with ONE statement that inserts it claimed when nothing is
        ahead and says what it queues behind (JobTx.enqueue_behind). When something is, the
        action is checked again behind it (a refusal rolls everything back) and the entity
        noted "requested". None, with nothing queued, when the first check refuses: the
        caller checks behind what is queued."""
        try:
            action, params = validation.check_action(reg, entity, term, inv, [])
        except errors.OcciError:
            return None  # perhaps allowed behind what is queued: the caller decides
        job_id, earlier = self._submit_behind(tx, entity, action.term, params)
        if earlier:
            behind = self._queued_of(earlier).get(stored_id(entity), [])
            validation.check_action(reg, entity, term, inv, behind)
            self._note(entity, reg.kinds[entity.kind], f"{action.term} requested")
            tx.update(entity)
        return job_id

    def act_on_collection(
        self, ctx: RequestContext, path: str, term: str, inv: ActionInvocation, flt: Filter
    ) -> list[Entity]:
        self._authorize(ctx, "act")
        with self.store.begin() as tx:
            reg = self.registry(tx, ctx.project)
            entities = tx.query(self._query(ctx, reg, path, flt))
            checked, refused = [], []
            queued = self._queued_actions(tx, entities)
            for e in entities:  # every member is checked before any is changed
                try:
                    checked.append(
                        validation.check_action(reg, e, term, inv, queued.get(e.id or "", []))
                    )
                except errors.Conflict as exc:
                    refused.append(str(exc))
            if refused:
                raise errors.Conflict(
                    code="state_conflict",
                    message=f"{len(refused)} of {len(entities)} members cannot {term}, so none was "
                    "changed: " + "; ".join(refused),
                )
            self._begin_work(ctx)
            # one statement for the whole collection; each job reports into its entity
            self._submit_many(
                tx,
                [
                    (
                        stored_id(e),
                        "action",
                        stored_id(e),
                        {"action": action.term, "params": params},
                    )
                    for e, (action, params) in zip(entities, checked, strict=True)
                ],
            )
        self._settle()
        return self._refresh(entities)

    @staticmethod
    def _queued_actions(tx: StoreTx, entities: list[Entity]) -> dict[str, list[str]]:
        """Entity id -> the terms of its actions queued and not yet carried out, in order."""
        return Actions._queued_of(tx.jobs.unfinished([e.id for e in entities if e.id]))

    @staticmethod
    def _queued_of(unfinished: list[Job]) -> dict[str, list[str]]:
        """Entity id -> the terms of the `unfinished` action jobs, in order."""
        out: dict[str, list[str]] = {}
        for job in unfinished:
            if job.operation == "action":
                out.setdefault(job.params.get("target", job.entity_id), []).append(
                    job.params.get("action", "")
                )
        return out

    def _run_action(
        self,
        tx: StoreTx,
        reg: Registry,
        entity: Entity,
        term: str,
        params,
        first: bool = False,
        note: bool = True,
    ) -> str:
        if note:
            self._note(entity, reg.kinds[entity.kind], f"{term} requested")
            tx.update(entity)
        entity_id = stored_id(entity)
        return self._submit(
            tx,
            entity_id,
            "action",
            entity_id,
            first=first,
            entity=entity,
            action=term,
            params=params,
        )
