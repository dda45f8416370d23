"""The store contract: what the service asks of persistence. occi.store.sql implements it.

Entities cross this boundary as occi.model objects (Resource, Link) whose `location` is set
from the kind's collection path and the id ('/compute/<id>'). Reads and writes happen inside a
transaction obtained from `Store.begin()`; everything in one `with` block commits or rolls back
together, so a failed request leaves nothing half-changed.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from occi.model import Entity, Mixin, Placement


@dataclass
class Query:
    """Which entities to list. Every criterion is ANDed; all of them are evaluated in SQL.

    kinds:       entity kind type identifiers (the service expands a parent kind to its children)
    mixin:       only entities associated with this mixin type identifier
    attributes:  name -> value equality; values compare by JSON value, so 2 matches 2.0, "2" not
    source:      only links whose source is this resource id
    offset/limit: pagination over a stable order (creation order)
    project:     only entities owned by this project id (None: every project's)
    """

    kinds: Sequence[str] | None = None
    mixin: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    offset: int = 0
    limit: int | None = None
    project: str | None = None


@dataclass
class Job:
    """A hypervisor operation waiting, running or done (see occi.jobs)."""

    id: str
    entity_id: str
    operation: str
    params: dict[str, Any]
    status: str  # pending | running | done | failed
    attempts: int = 0
    max_attempts: int = 5
    owner: str | None = None
    error: str | None = None
    result: dict[str, Any] | None = None
    seq: int = 0
    #: the entity as this process's run of the job stored it (not a column: set only where
    #: the job ran, for the request waiting on it to answer without reading it again)
    entity: Any = field(default=None, compare=False, repr=False)
    #: the entity as the request that queued the job (and claimed it at insert) stored it,
    #: for that request's own run of it: not read again (not a column; None elsewhere)
    given: Any = field(default=None, compare=False, repr=False)
    #: the audit event (an `events` row) of the request that runs this job itself, stored
    #: in the transaction that records the job done, so with it or not at all (occi.service.work;
    #: not a column)
    event: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    #: whether `event` was stored with the job's record (set after the commit)
    event_stored: bool = field(default=False, compare=False, repr=False)


@dataclass
class ServerInfo:
    id: str
    host: str
    pid: int
    status: str  # alive | stopped | dead
    started_at: float
    heartbeat_at: float


class JobTx(ABC):
    """The job queue and the server registry, inside the caller's transaction.

    Claiming is safe between processes and hosts: PostgreSQL rows are locked with
    FOR UPDATE SKIP LOCKED, SQLite takes its write lock at BEGIN. Only the oldest unfinished
    job of an entity can be claimed, and only while no other job of that entity runs: the
    operations on one entity happen one after another, different entities in parallel."""

    #: write transactions run one at a time (SQLite): what one reads of the queue cannot
    #: change before it commits, so an entity with no unfinished job read here has none
    exclusive: bool = False

    @abstractmethod
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
        """Queue one job; it belongs to `project_id` (None: the `default` project). With an
        `owner` the job is inserted already claimed by that server (running, first attempt,
        under a lease of `lease` seconds): the request that queues it runs it itself, and if
        that server dies the lease lapses and any other server takes the job over. Only for
        a job no other job of its entity can precede (its entity is new, or has no
        unfinished job under the entity's row lock)."""

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
        """Queue one job, and say which unfinished jobs of `entity_id` it queues behind
        (oldest first): those this transaction sees as it inserts it. A store may do both in
        one statement. `owner`: when it queues behind none (the list is empty), the job is
        inserted already claimed by that server, as enqueue's `owner`; else pending."""
        earlier = self.unfinished([entity_id])
        job_id = self.enqueue(
            entity_id,
            operation,
            params,
            max_attempts,
            project_id=project_id,
            owner=None if earlier else owner,
            lease=lease,
        )
        return job_id, earlier

    @abstractmethod
    def enqueue_many(
        self,
        jobs: list[tuple[str, str, dict[str, Any]]],
        max_attempts: int = 5,
        *,
        project_id: str | None = None,
    ) -> list[str]:
        """Queue (entity_id, operation, params) jobs with ONE statement, all in `project_id`
        (None: the `default` project)."""

    @abstractmethod
    def get(self, job_id: str) -> Job | None: ...

    @abstractmethod
    def claim(self, server_id: str, lease_seconds: float, job_id: str | None = None) -> Job | None:
        """Take the next runnable job (or that one), mark it running with a lease."""

    def any_runnable(self) -> bool:
        """Whether claim() would find a job now (a read: an idle server asks this in a read
        transaction before taking the write lock to claim). True when the store cannot tell
        without claiming."""
        return True

    # finish/retry/fail apply only while `owner` still holds the job (False otherwise: its
    # lease expired and another server took it over, so this server's result is discarded)
    @abstractmethod
    def finish(self, job_id: str, owner: str, result: dict[str, Any] | None = None) -> bool: ...

    @abstractmethod
    def retry(
        self,
        job_id: str,
        owner: str,
        error: str,
        delay: float,
        params: dict[str, Any] | None = None,
    ) -> bool:
        """Back to pending, runnable again after `delay` seconds (with these `params`, when
        given: a failed platform task's handle is dropped so that the retry starts afresh)."""

    @abstractmethod
    def park(self, job_id: str, owner: str, params: dict[str, Any], delay: float) -> bool:
        """The job waits for a platform task (backends.base.Pending): back to pending with
        these `params` (the task's handle among them), no owner, runnable again after `delay`
        seconds, and this claim not counted as an attempt (a poll is no failure)."""

    @abstractmethod
    def fail(
        self, job_id: str, owner: str, error: str, result: dict[str, Any] | None = None
    ) -> bool:
        """Failed for good; `result` says what kind of failure it was (the service's)."""

    @abstractmethod
    def statuses(self, job_ids: Iterable[str]) -> dict[str, Job]: ...

    @abstractmethod
    def unfinished(self, entity_ids: Iterable[str]) -> list[Job]: ...

    @abstractmethod
    def recent(self, limit: int = 50) -> list[Job]: ...

    @abstractmethod
    def counts(self) -> dict[str, int]: ...

    @abstractmethod
    def register_server(self, server_id: str, host: str, pid: int) -> None: ...

    @abstractmethod
    def heartbeat(self, server_id: str, lease_seconds: float) -> bool:
        """Record that the server lives and extend its jobs' leases. False when the server was
        declared dead meanwhile (it must stop working: its jobs belong to others now)."""

    @abstractmethod
    def reap(self, dead_after: float) -> list[str]:
        """Declare servers silent for `dead_after` seconds dead and hand their running jobs
        back to the queue. Returns the ids of the servers declared dead."""

    @abstractmethod
    def stop_server(self, server_id: str) -> None: ...

    @abstractmethod
    def servers(self) -> list[ServerInfo]: ...


class UsageTx(ABC):
    """A project's quota limits and usage (occi.service.quotas decides what they mean)."""

    @abstractmethod
    def limits(self, project_id: str) -> dict[str, int]:
        """The project's own limits by resource (those it has no row for are absent)."""

    @abstractmethod
    def lock(self, project_id: str) -> None:
        """Serialise the quota checks of the project until the transaction ends."""

    @abstractmethod
    def usage(
        self,
        project_id: str,
        counts: Mapping[str, Sequence[str]],
        sums: Mapping[str, tuple[Sequence[str], str]],
    ) -> dict[str, float]:
        """In ONE statement, what the project's stored entities use: for each resource of
        `counts`, how many entities of those kinds; of `sums`, the sum of the numeric attribute
        over the entities of those kinds (0 where absent)."""


class Stored(NamedTuple):
    """An entity of a page as the store holds it, not yet made an Entity (Store.entity_of
    does): its id, whether it is a link, and `rows`, its stored values and its links'. Two
    reads giving equal `rows` read the same entity with the same links."""

    id: str
    is_link: bool
    rows: Any


class StoredPage(list[Stored]):
    """A page of Stored as a store read it. A store that keeps pages in memory gives the same
    Page to every reader while its rows stay the same, and a reader never changes it; `made`
    holds what readers made of it (each under its own key), and goes with the page."""

    __slots__ = ("made",)

    def __init__(self, stored: Iterable[Stored] = ()):
        super().__init__(stored)
        self.made: dict[Hashable, Any] = {}


class StoreTx(ABC):
    """One transaction. Methods raise occi.errors.Conflict for a duplicate id."""

    @property
    @abstractmethod
    def jobs(self) -> JobTx:
        """The job queue and server registry in this transaction."""

    @property
    @abstractmethod
    def usage(self) -> UsageTx:
        """Quota limits and usage in this transaction."""

    @abstractmethod
    def get(self, entity_id: str, *, for_update: bool = False) -> Entity | None:
        """The entity with this id (Resource with its outgoing links, or Link), or None.
        `for_update` locks the row until the transaction ends (SELECT ... FOR UPDATE)."""

    @abstractmethod
    def get_many(self, entity_ids: Iterable[str]) -> dict[str, Entity]:
        """The entities with these ids that exist (id -> entity), in a constant number of
        statements."""

    @abstractmethod
    def query(self, q: Query) -> list[Entity]:
        """Entities matching q, resources with their links: a constant number of statements
        whatever the page size (never one per entity)."""

    def locations(self, q: Query) -> list[str]:
        """The locations of the entities matching q, in the order and page of `query`: what a
        collection rendered as locations needs, without the entities and their links."""
        return [e.location for e in self.query(q) if e.location]

    def stored_page(self, q: Query) -> list[Stored]:
        """query()'s entities (q has a limit: a page) as Stored, for a caller that keeps
        what it made of an entity while its rows stay the same."""
        return [Stored(e.id or "", e.is_link, e) for e in self.query(q)]

    @abstractmethod
    def count(self, q: Query) -> int:
        """How many entities match q (offset/limit ignored)."""

    @abstractmethod
    def count_by_kind_state(self) -> dict[tuple[str, str | None], int]:
        """How many entities there are of each kind in each state: (kind id, the value of the
        attribute occi.<kind term>.state, None where it has none) -> count. One statement."""

    @abstractmethod
    def insert(
        self,
        entity: Entity,
        *,
        project_id: str | None = None,
        fresh: bool = False,
        placement: Placement | None = None,
    ) -> None:
        """Store a new entity (its `id` and `location` are set) owned by `project_id` (None: the
        `default` project), placed where `placement` says (occi.inventory.placement). A Resource's `links` are NOT inserted by this call: the service
        inserts each link itself. `fresh`: the id was made by the server (a new uuid), so the
        unique constraint alone answers a conflict, with no savepoint to tell which one."""

    @abstractmethod
    def update(self, entity: Entity) -> None:
        """Replace the stored title, summary, mixins, attributes (and source/target/target_kind
        of a link) of the entity with this id; links of a resource are left as they are."""

    def record_attributes(
        self, entity: Entity, changes: dict[str, Any], *, platform_ref: str | None = None
    ) -> bool | None:
        """Store `changes` (attribute -> value) into `entity` as last seen (its `version`)
        without reading it again, with the backend's `platform_ref` when not None (see
        record_platform_ref); None when it moved on since (the caller reads and updates it),
        else whether links touch it. A store may always answer None."""
        return None

    def record_and_finish(
        self,
        entity: Entity,
        changes: dict[str, Any],
        job: Job,
        result: dict[str, Any],
        *,
        platform_ref: str | None = None,
    ) -> tuple[bool | None, bool]:
        """record_attributes, then, when it stored them, the running `job` of its owner done
        with `result` (JobTx.finish) and the job's audit event (add_event): (what
        record_attributes answered, whether the job was recorded done). Nothing of the job
        when the attributes were not stored (None)."""
        linked = self.record_attributes(entity, changes, platform_ref=platform_ref)
        if linked is None:
            return None, False
        assert job.owner is not None, "only a claimed job is finished"
        finished = self.jobs.finish(job.id, job.owner, result)
        if finished and job.event is not None:
            self.add_event(job.event)
        return linked, finished

    def record_alone(
        self,
        entity: Entity,
        changes: dict[str, Any],
        job: Job,
        result: dict[str, Any],
        *,
        platform_ref: str | None = None,
    ) -> bool:
        """record_and_finish as one statement atomic on its own, in a transaction begun with
        `single=True`, for an entity no link touches: True when everything was stored, False
        with nothing changed when the store cannot (then record in a transaction)."""
        return False

    def add_event(self, values: dict[str, Any]) -> None:
        """Store one audit event (occi.identity.audit.event_values)."""
        raise NotImplementedError

    def record_platform_ref(self, entity_id: str, ref: str) -> None:
        """Keep the backend's private reference to the entity's platform object in its
        placement (Placement.platform_ref: handed to backends, never rendered)."""
        raise NotImplementedError

    @abstractmethod
    def delete(self, entity_ids: Iterable[str]) -> list[str]:
        """Delete these entities and every link whose source or target is one of them.
        Returns the ids of the links deleted along the way."""

    @abstractmethod
    def links_touching(self, entity_ids: Iterable[str]) -> list[Entity]:
        """Links whose source or target is one of these resources."""

    @abstractmethod
    def associate(self, mixin_id: str, entity_ids: Iterable[str]) -> None:
        """Add the mixin to these entities (no-op where present)."""

    @abstractmethod
    def dissociate(
        self,
        mixin_id: str,
        entity_ids: Iterable[str] | None = None,
        *,
        project_id: str | None = None,
    ) -> None:
        """Remove the mixin from these entities, or when None from every entity (of
        `project_id` when given, else of every project)."""

    @abstractmethod
    def categories_version(self) -> int:
        """A counter that changes whenever the categories change (user mixins, new templates):
        every server process keys its registry cache on it."""

    @abstractmethod
    def bump_categories_version(self) -> None:
        """Tell every server that the categories changed."""

    @abstractmethod
    def take_lease(self, name: str, seconds: float) -> bool:
        """Take a named lease shared by all servers for `seconds`; False while another server
        holds it (used so that one server at a time reconciles with the platform)."""

    @abstractmethod
    def user_mixins(self, project_id: str | None = None) -> list[Mixin]:
        """Client-defined mixins (user_defined=True) of `project_id` (None: of every project),
        oldest first."""

    @abstractmethod
    def user_mixins_by_project(self) -> dict[str, list[Mixin]]:
        """Every project's client-defined mixins (project id -> its mixins, oldest first), in
        one statement."""

    @abstractmethod
    def add_user_mixin(self, mixin: Mixin, *, project_id: str | None = None) -> None:
        """Define a user mixin owned by `project_id` (None: the `default` project); Conflict
        when its id or location is taken in that project."""

    @abstractmethod
    def delete_user_mixin(self, project_id: str, mixin_id: str) -> bool:
        """Remove a user mixin of `project_id` and its associations with that project's
        entities; False when the project has none of that id."""


class Store(ABC):
    @abstractmethod
    def begin(
        self, *, readonly: bool = False, single: bool = False
    ) -> AbstractContextManager[StoreTx]:
        """A transaction: commits when the block ends normally, rolls back on an exception.
        `readonly=True` promises no writes, so readers need not queue behind writers."""

    def locations(self, q: Query, *, fresh: bool = False) -> list[str]:
        """StoreTx.locations in a single-statement read of its own. A store may answer from
        memory (a cache it keeps correct); `fresh=True` always reads the database."""
        with self.begin(readonly=True, single=True) as tx:
            return tx.locations(q)

    def stored_page(self, q: Query, *, fresh: bool = False) -> list[Stored]:
        """StoreTx.stored_page in a read transaction of its own (`fresh` as for locations)."""
        with self.begin(readonly=True) as tx:
            return tx.stored_page(q)

    def stored_stream(self, q: Query, batch: int = 500) -> Iterator[Stored]:
        """Every match of q as Stored (offset/limit ignored), streamed like iter_all: for a
        caller that keeps what it made of an entity while its rows stay the same."""
        for e in self.iter_all(q, batch):
            yield Stored(e.id or "", e.is_link, e)

    def fingerprint(self, rows: Any) -> Any:
        """What a caller keeps of a Stored's `rows` to tell, by ==, whether a later read gave
        the same rows (the rows themselves here; a store may answer something smaller)."""
        return rows

    def entity_of(self, rows: Any) -> Entity:
        """The entity of a Stored's `rows` (with its links), a new object on every call."""
        assert isinstance(rows, Entity)  # StoreTx.stored_page's
        return copy.deepcopy(rows)

    def get_one(self, entity_id: str, *, fresh: bool = False) -> Entity | None:
        """One entity with its links, outside any transaction. A store may answer from memory
        (a cache it keeps correct); `fresh=True` always reads the database."""
        with self.begin(readonly=True, single=True) as tx:
            return tx.get(entity_id)

    @abstractmethod
    def upgrade(self) -> None:
        """Create or upgrade the schema to the newest migration (Alembic)."""

    def categories_signal(self) -> int | None:
        """A cheap token that changes whenever the categories version may have changed (no SQL).
        None when the store cannot tell: callers then read the version from SQL."""
        return None

    @abstractmethod
    def ping(self) -> bool:
        """True when the database answers."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections."""

    def iter_all(self, q: Query, batch: int = 500) -> Iterator[Entity]:
        """Stream every match in batches (used for whole-collection renderings)."""
        offset = q.offset
        while True:
            with self.begin(readonly=True) as tx:
                page = tx.query(
                    Query(q.kinds, q.mixin, q.attributes, q.source, offset, batch, q.project)
                )
            yield from page
            if len(page) < batch:
                return
            offset += batch
