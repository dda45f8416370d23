"""OCCI semantics: registry checks, defaults, templates, links, mixin collections, actions.

The service takes neutral model objects from the fronts, checks them against the category
registry (occi.validation), persists them through the store and has the backend carry them out
as jobs (occi.jobs). It raises occi.errors and never imports falcon or SQLAlchemy.

Its rooms, each a layer of the one Service class, from the bottom:
  base        the store, the backend, the settings, the job runner
  categories  the cached registry, the query interface, user mixins, saved images
  reads       get, collections, filters, pages
  work        jobs queued by a request, run or waited for, and their failures
  links       a link's source and target, the queue its work waits in
  entities    create, put, update, replace, delete
  actions     actions on an entity or a collection
  mixins      mixin collections: associate, dissociate
and beside them ec2_records (the EC2 front's key pairs, tags and instance records: an object of
its own, Service.ec2_records) and, pure, locations (ids, collection paths, reserved paths) and
conditions (the versions a write expects).

Every public method takes the request context (occi.context.RequestContext) first, and addresses
an entity by its kind (a Kind or its identifier) and id; collections by their path (collection
paths are data: user mixins choose theirs). ServiceBase._authorize is where authorization will be
decided. `execute` and `reconcile` are the job runner's callbacks: the server's own work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from backends.base import Backend
from occi.inventory.monitor import HostMonitor, down_host_ids
from occi.jobs.execution import FAULTS, Executor
from occi.jobs.reconcile import Reconciler
from occi.jobs.runner import JobRunner, JobSettings
from occi.service.actions import Actions
from occi.service.conditions import Expected, version
from occi.service.ec2_records import Ec2Records
from occi.service.locations import RESERVED_PATHS, reserved_path, valid_location
from occi.service.mixins import MixinCollections
from occi.service.reads import Filter, Page
from occi.store.base import Job, Store

__all__ = [
    "FAULTS",
    "RESERVED_PATHS",
    "Expected",
    "Filter",
    "Page",
    "Service",
    "version",
    "reserved_path",
    "valid_location",
]


class Service(MixinCollections, Actions):
    """The cloud's semantics, one object per server process (see the rooms above)."""

    def __init__(
        self,
        store: Store,
        backend: Backend,
        *,
        max_page_size: int = 1000,
        job_settings: JobSettings | None = None,
        default_quotas: Mapping[str, int] | None = None,
        placement_strategy: str = "firstfit",
        default_zone: str = "",
        host_down_after: float = 30.0,
    ):
        super().__init__(
            store,
            backend,
            max_page_size=max_page_size,
            job_settings=job_settings,
            default_quotas=default_quotas,
            placement_strategy=placement_strategy,
            default_zone=default_zone,
        )
        self.executor = Executor(
            store, backend, self.registry, self._categories_changed, self.pool.backend_for
        )
        self.executor.placement_strategy = placement_strategy
        self.reconciler = Reconciler(
            store, backend, self.registry, self.pool.backend_for, lambda: down_host_ids(store)
        )
        #: host monitoring (occi.inventory.monitor): a job runner's chore runs it; tests run
        #: a pass with `monitor.check(now=...)`
        self.monitor = HostMonitor(
            store, self.pool, self.reconcile, self.registry, down_after=host_down_after
        )
        #: the EC2 front's records beside the entities (occi.service.ec2_records)
        self.ec2_records = Ec2Records(self)

    def execute(self, job: Job, runner: JobRunner) -> None:
        """Carry out one claimed job on the backend and store what it did (the job runner's
        callback; occi.jobs.execution)."""
        self.executor.execute(job, runner)

    def reconcile(self, entity_ids: Iterable[str] | None = None, batch: int = 200) -> int:
        """Bring stored states in line with what the platform reports (occi.jobs.reconcile).
        Returns how many entities changed."""
        return self.reconciler.reconcile(entity_ids, batch)
