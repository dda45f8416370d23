"""Job execution: a claimed job carried out on the backend, and what it did stored (the entity's
new attributes, its links' states, a saved image, the backend's platform reference; or why it
failed, and in which way).

Long platform tasks: a backend that answers Pending (backends.base) has started a task it will
not wait for. The job is then parked: back in the queue, unowned, due again after the task's
`poll_after`, its handle kept in its params under PENDING_KEY, the claim not counted as an
attempt. Whichever server claims it next calls `backend.poll` with the handle instead of the
operation, and records its final Outcome (or fault) as the operation's own. No thread waits
for the task meanwhile; the entity's later jobs wait behind it as behind any unfinished job.

Takes the store, the backend and the registry accessor it is given; never the service's
semantics beyond that. Run by the job runner (occi.jobs.runner) in any server process.

The backend is called through its typed contract (compute_start, storage_resize, link_attach,
...; backends.base `dispatch_*`), so a backend written against either the typed or the generic
contract works: each side's defaults reach the other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from backends.base import (
    Backend,
    BackendFault,
    InvalidTransition,
    NotFoundOnPlatform,
    Outcome,
    Pending,
    PlatformError,
    Unreachable,
    Unsupported,
    dispatch_action,
    dispatch_create,
    dispatch_delete,
    dispatch_update,
)
from occi import errors, metrics
from occi import infrastructure as infra
from occi import states as machines
from occi.context import DEFAULT_PROJECT
from occi.jobs.link_states import RegistryOf, derive_link_states
from occi.jobs.runner import JobRunner
from occi.model import Entity, Link, Mixin, Placement, Resource, stored_id
from occi.store.base import Job, Store, StoreTx

log = logging.getLogger(__name__)

#: the state an action leads to (GFD.224), to recognise a retried action already carried out
ACTION_TARGET_STATES = machines.ACTION_TARGETS


#: What a failed job's fault was (stored as Job.result["fault"]) and what a request waiting for
#: it answers, from the least to the most severe (a request whose jobs failed in several ways
#: answers with the most severe). A platform's failure is not the client's: 502, or 503 when the
#: platform cannot be reached; 409 only when the entity's state does not allow the operation.
FAULTS: dict[str, type[errors.OcciError]] = {
    "state": errors.Conflict,
    "unsupported": errors.NotImplementedYet,
    "platform": errors.BackendError,
    "unreachable": errors.PlatformUnavailable,
}


#: where a parked job keeps the platform task it waits for: {"handle": ...} (and what the
#: operation needs to finish, e.g. a move's reserved target)
PENDING_KEY = "_pending"


def pending_of(job: Job) -> dict[str, Any] | None:
    """The platform task a parked job waits for ({"handle": ..., ...}), or None."""
    pending = job.params.get(PENDING_KEY)
    return pending if isinstance(pending, dict) and isinstance(pending.get("handle"), str) else None


def without_pending(params: dict[str, Any]) -> dict[str, Any]:
    """A job's params with no platform task: a retry starts the operation afresh."""
    return {k: v for k, v in params.items() if k != PENDING_KEY}


class _LostJob(Exception):
    """The job's lease passed to another server: this server's result must not be stored."""


def _owner(job: Job) -> str:
    """The server holding a claimed job: only claimed jobs are executed, finished or failed."""
    assert job.owner is not None, f"job {job.id} is not claimed"
    return job.owner


class Executor:
    """Carries out claimed jobs (`execute` is the job runner's callback)."""

    def __init__(
        self,
        store: Store,
        backend: Backend,
        registry: RegistryOf,
        categories_changed: Callable[[StoreTx], None],
        backend_for: Callable[[Entity | None], Backend] | None = None,
    ):
        self.store = store
        self.backend = backend
        #: the backend of an entity's cluster, with its placement's host filled in
        #: (occi.inventory.pool.Pool.backend_for); without it, `backend` runs everything
        self.backend_for = backend_for or (lambda _entity: backend)
        self.registry = registry
        #: how a compute moved for a host's maintenance chooses its new host (the service's)
        self.placement_strategy = "firstfit"
        #: tells every server that the categories changed (a saved image is a new os_tpl)
        self.categories_changed = categories_changed

    def execute(self, job: Job, runner: JobRunner) -> None:
        """Carry out one claimed job on the backend and store what it did, logging under the id
        of the request that queued it (in any server process)."""
        request_id = job.params.get("request_id")
        token = metrics.REQUEST_ID.set(request_id) if isinstance(request_id, str) else None
        try:
            self._execute(job, runner)
        finally:
            if token is not None:
                metrics.REQUEST_ID.reset(token)

    def _execute(self, job: Job, runner: JobRunner) -> None:
        if job.operation == "migrate":  # a compute moved off a host for its maintenance
            from occi.inventory.maintenance import run_move

            run_move(self, job, runner)
            return
        target_id = job.params.get("target", job.entity_id)
        entity: Entity | None = job.given
        links: list[Entity] = []
        source = target = None
        if not (isinstance(entity, Resource) and job.operation in ("create", "action")):
            with self.store.begin(readonly=True) as tx:  # not handed over by the request
                entity = tx.get(target_id)
                links = tx.links_touching([target_id]) if job.operation == "delete" else []
                if isinstance(entity, Link):
                    source = self._resource_by_location(tx, entity.source)
                    target = self._resource_by_location(tx, entity.target)
        if entity is None:  # deleted meanwhile: nothing left to do
            self._finish(job, runner, None, None)
            return
        if not runner.still_mine(job):
            return
        pending = pending_of(job)
        try:
            if pending is not None:  # a platform task under way: how does it stand?
                b = self.backend_for(source if isinstance(entity, Link) else entity)
                outcome = b.poll(entity, pending["handle"])
            else:
                outcome = self._call_backend(job, entity, links, source, target)
            if isinstance(outcome, Pending):
                self.park(job, runner, entity, outcome)
                return
        except InvalidTransition as exc:
            seen = self._already_done(job, entity)
            if seen is None:
                self._job_failed(job, runner, entity, str(exc), broken=False, fault="state")
                return
            outcome = seen
        except (NotFoundOnPlatform, Unsupported) as exc:
            if isinstance(exc, Unsupported) or job.operation != "delete":
                self._job_failed(
                    job,
                    runner,
                    entity,
                    f"not possible on the {self.backend.name} platform: {exc}",
                    broken=job.operation in ("create", "link"),
                    fault="unsupported" if isinstance(exc, Unsupported) else "platform",
                )
                return
            # what the platform does not have is deleted (backends say so themselves; this
            # keeps an entity whose platform object never existed deletable on any backend)
            log.info("delete of %s: not on the platform (%s); done", target_id, exc)
            outcome = Outcome()
        except Exception as exc:  # PlatformError, or the platform's SDK failing
            message = f"the {self.backend.name} platform failed: {exc}"
            log.warning("%s of %s, attempt %d: %s", job.operation, target_id, job.attempts, exc)
            if job.attempts < job.max_attempts:
                params = without_pending(job.params) if pending is not None else None
                with self.store.begin() as tx:
                    delay = runner.backoff(job.attempts)
                    if tx.jobs.retry(job.id, _owner(job), message, delay, params):
                        job.status, job.owner, job.error = "pending", None, message
                        job.params = params if params is not None else job.params
                runner.notify()
            else:
                self._job_failed(
                    job,
                    runner,
                    entity,
                    message,
                    broken=job.operation in ("create", "action", "link"),
                    fault="unreachable" if isinstance(exc, Unreachable) else "platform",
                )
            return
        self._finish(job, runner, entity, outcome)

    def _call_backend(
        self,
        job: Job,
        entity: Entity,
        links: list[Entity],
        source: Resource | None,
        target: Resource | None,
    ) -> Outcome | Pending:
        op, p = job.operation, job.params
        # a link runs on the backend of its source resource's cluster
        b = self.backend_for(source if isinstance(entity, Link) else entity)
        if op == "create":
            assert isinstance(entity, Resource)  # links are made by "link" jobs
            return dispatch_create(b, entity)
        if op == "update":
            assert isinstance(entity, Resource)  # a link's update has no platform work
            return dispatch_update(b, entity, p.get("changed", {}))
        if op == "action":
            assert isinstance(entity, Resource)  # only resource kinds have actions
            return dispatch_action(b, entity, p["action"], p.get("params", {}))
        if op == "link":
            assert isinstance(entity, Link)  # queued by _create_one for links only
            if source is None:
                raise NotFoundOnPlatform(f"the source {entity.source} of the link is gone")
            return b.link_attach(entity, source, target)
        if op == "relink":
            assert isinstance(entity, Link)  # queued by _replace for a moved link
            old = Link(
                entity.kind,
                entity.id,
                entity.title,
                list(entity.mixins),
                dict(entity.attributes),
                entity.location,
                source=p["old_source"],
                target=p["old_target"],
            )
            _detached_now(b, b.link_detach(old))
            return b.link_attach(entity, source, target) if source is not None else Outcome()
        if op == "delete":
            if isinstance(entity, Link):
                if entity.kind != infra.LINK.id:
                    return dispatch_delete(b, entity) or Outcome()
            else:
                # links pointing here from other resources are detached from those; the
                # entity's own links (its NICs and disks) go with it in the backend's delete
                for ln in links:
                    if ln.kind != infra.LINK.id and getattr(ln, "source", None) != entity.location:
                        self._detach_for_delete(entity, ln)
                return dispatch_delete(b, entity) or Outcome()
            return Outcome()
        raise Unsupported(f"unknown job operation {op}")

    def _detach_for_delete(self, entity: Entity, link: Entity) -> None:
        """Detach a link of another resource pointing at `entity` before `entity` goes (a
        storage attached to a compute). Where the platform cannot detach it now, the delete is
        refused with what to do, and nothing changes."""
        try:
            backend = self.backend_for(entity)
            _detached_now(backend, backend.link_detach(link))  # type: ignore[arg-type]
        except Unsupported as exc:
            source = getattr(link, "source", None) or "its compute"
            raise InvalidTransition(
                f"{entity.location} is attached to {source} by {link.location}, and the "
                f"{self.backend.name} platform cannot detach it now ({exc}); stop {source} "
                "and delete again"
            ) from None

    def _already_done(self, job: Job, entity: Entity) -> Outcome | None:
        """A retried action that the platform refuses because a first attempt already did it
        (the server died before recording it): observe and accept."""
        if job.attempts < 2 or job.operation != "action":
            return None
        goal = ACTION_TARGET_STATES.get(job.params.get("action", ""))
        try:
            seen = self.backend_for(entity).observe(entity)
        except BackendFault:
            return None
        if goal and any(n.endswith(".state") and v == goal for n, v in seen.attributes.items()):
            return seen
        return None

    def park(
        self,
        job: Job,
        runner: JobRunner,
        entity: Entity,
        pending: Pending,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """The platform runs a task for this job (see the module's docstring): the job goes
        back to the queue with its handle (and `extra`, what the operation needs to finish),
        due again after the task's poll_after. The entity shows the task's message, if any."""
        params = {**job.params, PENDING_KEY: {**(extra or {}), "handle": pending.handle}}
        try:
            with self.store.begin() as tx:
                if not tx.jobs.park(job.id, _owner(job), params, pending.delay):
                    raise _LostJob
                if pending.message:
                    self._show_message(tx, entity, pending.message)
        except _LostJob:
            log.warning("job %s was taken over by another server; its task is theirs", job.id)
            return
        log.debug("%s of %s waits for task %s", job.operation, job.entity_id, pending.handle)
        job.status, job.owner, job.error, job.params = "pending", None, None, params

    def _show_message(self, tx: StoreTx, entity: Entity, message: str) -> None:
        """The entity's state message (where its kind has one) says what the platform does."""
        current = tx.get(stored_id(entity), for_update=True)
        kind = self.registry(tx).kinds.get(current.kind) if current is not None else None
        if current is None or kind is None:
            return
        name = f"occi.{kind.term}.state.message"
        if name in kind.all_attributes() and current.attributes.get(name) != message:
            current.attributes[name] = message
            tx.update(current)

    def _finish(
        self, job: Job, runner: JobRunner, entity: Entity | None, outcome: Outcome | None
    ) -> None:
        """Record what the job did, and the job done, in one transaction (with the audit
        event of the request running it: Job.event). When the event cannot be stored, the job
        is recorded without it: the platform's work is never lost to it."""
        if job.event is None:
            self._finish_once(job, entity, outcome)
            return
        try:
            self._finish_once(job, entity, outcome)
        except Exception as exc:
            log.warning("job %s: recorded without its audit event (%s)", job.id, exc)
            job.event = None
            self._finish_once(job, entity, outcome)

    def _finish_once(self, job: Job, entity: Entity | None, outcome: Outcome | None) -> None:
        result: dict[str, Any] = {}
        if outcome is not None and outcome.mixin is not None:
            result["mixin"] = outcome.mixin.id
        current: Entity | None = None
        if self._record_alone(job, entity, outcome, result):
            return
        try:
            with self.store.begin() as tx:
                finished = False  # the job recorded done along with the entity
                if entity is not None and job.operation == "delete":
                    tx.delete([stored_id(entity)])
                elif entity is not None and outcome is not None:
                    current, linked, finished = self._record_given(tx, job, entity, outcome, result)
                    if linked is None:  # not handed over, or changed since: read and update
                        current = tx.get(stored_id(entity), for_update=True)
                        if current is not None:
                            _record_ref(tx, current, outcome.platform_ref)
                        if current is not None and outcome.attributes:
                            current.attributes.update(outcome.attributes)
                            tx.update(current)
                            linked = True
                    if current is not None and linked:  # links touch it: their states follow
                        stored = {
                            ln.id: ln for ln in derive_link_states(tx, current, self.registry)
                        }
                        if isinstance(current, Resource):  # its links as stored now
                            current.links = [stored.get(ln.id, ln) for ln in current.links]
                    if outcome.mixin is not None:
                        self._record_saved_image(tx, outcome.mixin, entity.project)
                        self.categories_changed(tx)
                if not finished:
                    if not tx.jobs.finish(job.id, _owner(job), result):
                        raise _LostJob
                    if job.event is not None:
                        tx.add_event(job.event)
            job.status, job.error, job.result = "done", None, result  # as stored
            job.event_stored = job.event is not None
            job.entity = current  # as stored (None: not changed here, read it again)
        except _LostJob:
            log.warning("job %s was taken over by another server; its result is dropped", job.id)

    def _record_alone(
        self, job: Job, entity: Entity | None, outcome: Outcome | None, result: dict[str, Any]
    ) -> bool:
        """The common case in one autocommitted statement (StoreTx.record_alone): the entity
        handed over by the request, with no links of its own, changed by the platform's
        outcome, nothing else to store. True when it was stored, the job done; else nothing
        changed and the caller records in a transaction."""
        if (
            entity is None
            or entity is not job.given
            or not isinstance(entity, Resource)
            or entity.links
            or outcome is None
            or not outcome.attributes
            or outcome.mixin is not None
            or job.operation not in ("create", "action")
        ):
            return False
        ref = outcome.platform_ref
        with self.store.begin(single=True) as tx:
            done = tx.record_alone(entity, dict(outcome.attributes), job, result, platform_ref=ref)
        if not done:
            return False
        _keep_ref(entity, ref)
        job.status, job.error, job.result = "done", None, result  # as stored
        job.event_stored = job.event is not None
        job.entity = entity
        return True

    @staticmethod
    def _record_given(
        tx: StoreTx, job: Job, entity: Entity, outcome: Outcome, result: dict[str, Any]
    ) -> tuple[Entity | None, bool | None, bool]:
        """What the platform did, stored into the entity the request handed over, unread (a
        guarded update: None when it changed since), and the job recorded done with `result`
        in the same go (StoreTx.record_and_finish). Returns the entity as stored, whether
        links touch it (whose states then follow), and whether the job was recorded done.
        Raises _LostJob when the entity was stored but the job is no longer this server's
        (the transaction then stores nothing)."""
        if entity is not job.given or not outcome.attributes:
            return None, None, False
        ref = outcome.platform_ref
        linked, finished = tx.record_and_finish(
            entity, dict(outcome.attributes), job, result, platform_ref=ref
        )
        if linked is None:
            return None, None, False
        if not finished:
            raise _LostJob
        _keep_ref(entity, ref)
        return entity, linked, True

    def _job_failed(
        self,
        job: Job,
        runner: JobRunner,
        entity: Entity,
        message: str,
        *,
        broken: bool,
        fault: str = "platform",
    ) -> None:
        """A job that cannot succeed: the entity says why; `broken` puts it in state error;
        an update's attributes go back to what they were. `fault` (a key of FAULTS) is kept
        on the job for the request waiting for it."""
        try:
            with self.store.begin() as tx:
                current = tx.get(stored_id(entity), for_update=True)
                if current is not None:
                    kind = self.registry(tx).kinds.get(current.kind)
                    if job.operation == "update":
                        for name, old in job.params.get("previous", {}).items():
                            if old is None:
                                current.attributes.pop(name, None)
                            else:
                                current.attributes[name] = old
                    if kind is not None:
                        defs = kind.all_attributes()
                        state = f"occi.{kind.term}.state"
                        if broken and state in defs:
                            current.attributes[state] = "error"
                        if state + ".message" in defs:
                            current.attributes[state + ".message"] = message
                    tx.update(current)
                    derive_link_states(tx, current, self.registry)
                if not tx.jobs.fail(job.id, _owner(job), message, {"fault": fault}):
                    raise _LostJob
            job.status, job.error, job.result = "failed", message, {"fault": fault}  # as stored
        except _LostJob:
            log.warning("job %s was taken over by another server", job.id)

    def _record_saved_image(self, tx: StoreTx, mixin: Mixin, project: str | None) -> None:
        """An image made by `save` belongs to whoever saved it: it is recorded with the user
        mixins of the saved entity's project (the backend still lists it as a template, which
        the other projects' registries leave out), so that it can be deleted."""
        owner = project or DEFAULT_PROJECT
        if any(m.id == mixin.id for m in tx.user_mixins(owner)):
            return
        try:
            tx.add_user_mixin(mixin, project_id=owner)
        except errors.Conflict as exc:  # its location is taken by a user mixin
            log.warning("saved image %s is not recorded as the user's: %s", mixin.id, exc)

    def _resource_by_location(self, tx: StoreTx, location: str | None) -> Resource | None:
        if not location or not location.startswith("/"):
            return None
        e = tx.get(location.rsplit("/", 1)[-1])
        return e if isinstance(e, Resource) and e.location == location else None


def _keep_ref(entity: Entity, ref: str | None) -> None:
    """The entity (as this process holds it) with the platform reference the store has now."""
    if ref is None:
        return
    if entity.placement is None:
        entity.placement = Placement(platform_ref=ref)
    else:
        entity.placement.platform_ref = ref


def _record_ref(tx: StoreTx, entity: Entity, ref: str | None) -> None:
    """Store the backend's platform reference of an entity read in this transaction, where it
    changed (None from a backend: unchanged)."""
    if ref is None or (entity.placement is not None and entity.placement.platform_ref == ref):
        return
    tx.record_platform_ref(stored_id(entity), ref)
    _keep_ref(entity, ref)


def _detached_now(backend: Backend, answer: Pending | None) -> None:
    """A detach the server needs done on return (a moved link, a storage about to go): a
    backend's long task for it is a platform failure, retried like one."""
    if isinstance(answer, Pending):
        raise PlatformError(
            f"the {backend.name} platform answered a long task ({answer.handle}) for a detach "
            "that must be done at once"
        )
