"""OCCI semantics: registry checks, defaults, templates, links, mixin collections, actions.

The service takes neutral model objects from the API, checks them against the category registry,
persists them through the store and has the backend carry them out. It raises occi.errors and
never imports falcon or SQLAlchemy.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from backends.base import (
    Backend,
    BackendFault,
    InvalidTransition,
    NotFoundOnPlatform,
    Outcome,
    Unreachable,
    Unsupported,
)
from occi import errors, validation
from occi import infrastructure as infra
from occi import states as machines
from occi.jobs.runner import JobRunner, JobSettings
from occi.model import (
    CORE_ATTRIBUTES,
    ActionInvocation,
    Category,
    CategoryCollection,
    CategoryRef,
    Entity,
    EntityRef,
    Kind,
    Link,
    Mixin,
    PatternError,
    Resource,
    compile_pattern,
    valid_attribute_name,
)
from occi.registry import Registry
from occi.store.base import Job, Query, Store, StoreTx

log = logging.getLogger(__name__)

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}\Z")
#: one segment of a collection path (one quantifier: matched in linear time)
_SEGMENT_RE = re.compile(r"[A-Za-z0-9_.\-~]{1,255}\Z")
#: longest mixin location accepted
MAX_LOCATION = 1024
URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"]+\Z")
RESERVED_SCHEME = "http://schemas.ogf.org/occi/"
#: paths the server answers itself, the one list of them: no user mixin sits at or below one
#: (the query interface, the health check, and the paths of the provider's own services)
RESERVED_PATHS = ("/-/", "/.well-known/", "/healthz", "/metrics", "/console/", "/ec2/")


def reserved_path(path: str) -> bool:
    """True when `path` is one of RESERVED_PATHS or lies below one."""
    for reserved in RESERVED_PATHS:
        stem = reserved.rstrip("/")
        if path == stem or path.startswith(stem + "/"):
            return True
    return False


def valid_location(location: str) -> bool:
    """A collection path: /seg/.../ with segments of letters, digits, '-', '_', '.', '~', and no
    dot segments ('.' or '..', which a client or proxy would resolve to another path)."""
    if len(location) > MAX_LOCATION or not location.startswith("/") or location == "/":
        return False
    if not location.endswith("/"):
        return False
    return all(
        _SEGMENT_RE.match(seg) and seg not in (".", "..") for seg in location[1:-1].split("/")
    )


CORE_FIELDS = frozenset(CORE_ATTRIBUTES)


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


class _LostJob(Exception):
    """The job's lease passed to another server: this server's result must not be stored."""


def _at(path: str, read: Callable[[str], Entity | None]) -> Entity:
    """The entity `read` finds by the id that ends path, if it lives at path; else 404."""
    entity_id = path.rsplit("/", 1)[-1]
    entity = read(entity_id) if entity_id else None
    if entity is None or entity.location != path:
        raise errors.NotFound(f"nothing exists at {path}")
    return entity


def _stored_id(entity: Entity) -> str:
    """The id of an entity the store holds (or one about to be stored): only an entity a client
    sent has none yet, and the service gives it one before storing it."""
    assert entity.id is not None, f"a stored {entity.kind} entity has no id"
    return entity.id


def _owner(job: Job) -> str:
    """The server holding a claimed job: only claimed jobs are executed, finished or failed."""
    assert job.owner is not None, f"job {job.id} is not claimed"
    return job.owner


def check_preconditions(entity: Entity, if_match: str | None, if_none_match: str | None) -> None:
    """HTTP conditional requests on an entity: If-Match with its ETag, If-None-Match: *."""
    tag = etag(entity)
    if if_match is not None:
        wanted = [t.strip() for t in if_match.split(",")]
        if "*" not in wanted and tag not in wanted and f"W/{tag}" not in wanted:
            raise errors.PreconditionFailed(
                f"{entity.location} has changed: its ETag is {tag}, the request expected "
                f"{if_match.strip()}; GET it again and retry"
            )
    if if_none_match is not None and if_none_match.strip() == "*":
        raise errors.PreconditionFailed(f"If-None-Match: * but {entity.location} exists")


def etag(entity: Entity) -> str:
    return f'"{entity.version or 0}"'


@dataclass
class Filter:
    """What a collection request narrows to (header and query-string filters together)."""

    categories: list[str] = field(default_factory=list)  # type ids or bare terms
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Page:
    number: int | None = None  # items per page; None = the whole collection
    page: int = 1  # 1-based


class Service:
    #: seconds a cached registry is trusted even when the version did not move (templates can
    #: appear on the platform without going through this server, e.g. images in a pool)
    registry_ttl = 30.0
    #: the store signals category changes (occi.store.base.Store.categories_signal); the
    #: version is read from SQL anyway after this many seconds, in case a signal was missed
    registry_check = 5.0

    def __init__(
        self,
        store: Store,
        backend: Backend,
        *,
        max_page_size: int = 1000,
        job_settings: JobSettings | None = None,
    ):
        self.store = store
        self.backend = backend
        self.max_page_size = max_page_size
        self.job_settings = job_settings or JobSettings()
        self.runner: JobRunner | None = None
        self._local = threading.local()
        self._registry_cache: tuple[int, float, Registry] | None = None
        self._registry_checked = float("-inf")
        self._registry_signal: int | None = None

    # ================================================================== registry
    def registry(self, tx: StoreTx | None = None) -> Registry:
        """The categories now: standard, the backend's templates, the users' mixins.

        Cached per process and keyed on the store's categories version: one small query per
        request instead of rebuilding from the backend and the user mixin table."""
        cached = self._registry_cache
        now = time.monotonic()
        signal = self.store.categories_signal()
        if (
            cached is not None
            and signal is not None
            and signal == self._registry_signal
            and now - self._registry_checked < self.registry_check
        ):
            return cached[2]
        if tx is None:
            with self.store.begin(readonly=True) as t:
                return self.registry(t)
        version = tx.categories_version()
        self._registry_checked = now
        self._registry_signal = signal
        if cached is not None and cached[0] == version and now - cached[1] < self.registry_ttl:
            return cached[2]
        reg = Registry(self._provider_mixins(), tx.user_mixins())
        self._registry_cache = (version, now, reg)
        return reg

    def _categories_changed(self, tx: StoreTx) -> None:
        """Tell every server (through the shared version) and this process (at once)."""
        tx.bump_categories_version()
        self._registry_checked = float("-inf")

    def _provider_mixins(self) -> list[Mixin]:
        try:
            return self.backend.provider_mixins()
        except BackendFault as exc:
            log.warning("backend templates unavailable: %s", exc)
            return []

    # ================================================================== query interface
    def categories(self, filters: Iterable[CategoryRef] = ()) -> CategoryCollection:
        reg = self.registry()
        refs = list(filters)
        for ref in refs:
            if reg.category(ref.id) is None:
                raise errors.NotFound(f"no category {ref.id} is defined here")
        return reg.collection(refs)

    def add_user_mixins(self, refs: list[CategoryRef]) -> list[Mixin]:
        if not refs:
            raise errors.BadRequest(
                'send at least one mixin definition: Category: term; scheme="..."; '
                'class="mixin"; location="/my_mixin/"'
            )
        out = []
        with self.store.begin() as tx:
            reg = self.registry(tx)
            taken = set(reg.locations())
            for ref in refs:
                mixin = self._user_mixin(ref, reg, taken)
                tx.add_user_mixin(mixin)
                assert mixin.location is not None  # _user_mixin always gives it one
                taken.add(mixin.location)
                out.append(mixin)
            self._categories_changed(tx)
        self._registry_checked = float("-inf")  # committed: the next request rebuilds
        return out

    def _user_mixin(self, ref: CategoryRef, reg: Registry, taken: set[str]) -> Mixin:
        if ref.cls not in (None, "mixin"):
            raise errors.BadRequest(
                f"only mixins can be defined by clients; {ref.id} has class {ref.cls}"
            )
        if ref.scheme.startswith(RESERVED_SCHEME):
            raise errors.BadRequest(
                f"the scheme {ref.scheme} is reserved for the OCCI specification; "
                "use a scheme of your own, e.g. http://example.com/occi/my_stuff#"
            )
        if (
            not ref.scheme.endswith("#")
            or "://" not in ref.scheme
            or len(ref.scheme) > MAX_LOCATION
            or not URI_RE.match(ref.scheme)
        ):
            raise errors.BadRequest(
                f"a mixin scheme must be a URI ending in '#' (no spaces or control characters), "
                f"not {ref.scheme[:80]!r}"
            )
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", ref.term or ""):
            raise errors.BadRequest(f"mixin term {ref.term!r} is not a valid term")
        if reg.category(ref.id) is not None:
            raise errors.Conflict(f"the category {ref.id} already exists")
        location = ref.location or f"/mixin/user/{ref.term}/"
        location = self._relative(location)
        if not location.endswith("/"):
            location += "/"
        if not valid_location(location):
            raise errors.BadRequest(
                f"mixin location {location[:80]!r} must be a path such as /my_stuff/ "
                "(segments of letters, digits, '-', '_', '.', no '.' or '..' segment, "
                "ending in '/')"
            )
        if reserved_path(location):
            raise errors.Conflict(
                f"the location {location} is reserved by the server "
                f"({', '.join(RESERVED_PATHS)}); choose another path"
            )
        if location in taken or self._location_clashes(location, reg):
            raise errors.Conflict(f"the location {location} is already in use")
        for dep in ref.rel:
            if dep not in reg.mixins:
                raise errors.BadRequest(f"mixin {ref.id} depends on {dep}, which is not defined")
        for app in ref.applies:
            if app not in reg.kinds:
                raise errors.BadRequest(f"mixin {ref.id} applies to {app}, which is not a kind")
        for name, d in ref.attributes.items():
            if not valid_attribute_name(name) or d.name != name:
                raise errors.BadRequest(
                    f"attribute name {name[:80]!r} is invalid: write lower-case components "
                    "joined by '.', each a letter then letters, digits, '-' or '_'"
                )
            if d.pattern is not None:
                try:
                    compile_pattern(d.pattern)
                except PatternError as exc:
                    raise errors.BadRequest(f"attribute {name}: pattern: {exc}") from None
            if name.startswith("occi."):
                raise errors.BadRequest(
                    f"attribute {name}: the occi. prefix is reserved; "
                    "use your reverse domain name, e.g. com.example.tier"
                )
        return Mixin(
            ref.scheme,
            ref.term,
            ref.title,
            dict(ref.attributes),
            depends=tuple(ref.rel),
            applies=tuple(ref.applies),
            location=location,
            user_defined=True,
        )

    @staticmethod
    def _location_clashes(location: str, reg: Registry) -> bool:
        # A mixin collection must not shadow a kind collection or sit inside one, where entity
        # paths live (/compute/xyz/ would be ambiguous).
        for loc, cat in reg.locations().items():
            if isinstance(cat, Kind) and location.startswith(loc) and loc != "/":
                return True
        return False

    def remove_user_mixins(self, refs: list[CategoryRef]) -> None:
        """Remove user mixins, and images users saved (the platform image goes too)."""
        if not refs:
            raise errors.BadRequest("name the mixin to remove with a Category (term, scheme)")
        with self.store.begin() as tx:
            reg = self.registry(tx)
            saved = {m.id: m for m in tx.user_mixins() if self._is_saved_image(m)}
            images = []
            for ref in refs:
                cat = reg.category(ref.id)
                if cat is None:
                    raise errors.NotFound(f"no mixin {ref.id} is defined")
                if ref.id in saved:
                    images.append(saved[ref.id])
                elif not (isinstance(cat, Mixin) and cat.user_defined):
                    raise errors.Forbidden(
                        f"{ref.id} is defined by the provider and cannot be removed"
                    )
                tx.delete_user_mixin(ref.id)
            for image in images:  # last, so that a refusal above leaves the platform alone
                try:
                    self.backend.delete_image(image)
                except BackendFault as exc:
                    raise errors.Conflict(
                        f"the image {image.id} cannot be deleted: {exc}"
                    ) from None
            self._categories_changed(tx)
        self._registry_checked = float("-inf")

    @staticmethod
    def _is_saved_image(mixin: Mixin) -> bool:
        return infra.OS_TPL.id in mixin.depends

    def _record_saved_image(self, tx: StoreTx, mixin: Mixin) -> None:
        """An image made by `save` belongs to whoever saved it: it is recorded with the user
        mixins (the backend still lists it as a template), so that it can be deleted."""
        if any(m.id == mixin.id for m in tx.user_mixins()):
            return
        try:
            tx.add_user_mixin(mixin)
        except errors.Conflict as exc:  # its location is taken by a user mixin
            log.warning("saved image %s is not recorded as the user's: %s", mixin.id, exc)

    # ================================================================== reading
    def get(self, path: str, *, fresh: bool = False) -> Entity:
        """The entity at path. The store may answer from its cache of recent reads (see
        occi.store.cache); `fresh=True` reads the database."""
        reg = self.registry()  # from memory, normally
        entity = _at(path, lambda entity_id: self.store.get_one(entity_id, fresh=fresh))
        return self._present(entity, reg)

    def _load(self, tx: StoreTx, path: str, *, for_update: bool = False) -> Entity:
        return _at(path, lambda entity_id: tx.get(entity_id, for_update=for_update))

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

    def _query(self, reg: Registry, path: str, flt: Filter) -> Query:
        target = self.collection_target(path, reg)
        q = Query()
        kinds: set[str] | None = None
        if isinstance(target, Kind):
            kinds = {k.id for k in reg.kinds.values() if k.is_a(target)}
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
                sub = {k.id for k in reg.kinds.values() if k.is_a(cat)}
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
        q.attributes = validation.filter_attributes(reg, flt.attributes)
        return q

    @staticmethod
    def _resolve_category(
        reg: Registry, name: str, unknown: type[errors.OcciError] = errors.BadRequest
    ) -> Category:
        """A category by type identifier, or by bare term when that is unambiguous."""
        cat: Category | None = reg.category(name)
        if cat is None and "#" not in name:
            matches = [c for c in reg.collection() if c.term == name]
            if len(matches) > 1:
                raise errors.Conflict(
                    f"category term {name!r} is ambiguous: "
                    + ", ".join(c.id for c in matches)
                    + "; give the full scheme#term"
                )
            cat = matches[0] if matches else None
        if cat is None:
            raise unknown(f"no category {name!r} is defined here")
        return cat

    def category_refs(self, names: Iterable[str]) -> list[CategoryRef]:
        """Query-interface filters given as terms or type identifiers (`?category=`)."""
        reg = self.registry()
        refs = []
        for name in names:
            cat = self._resolve_category(reg, name, unknown=errors.NotFound)
            refs.append(CategoryRef(cat.scheme, cat.term, cat.cls))
        return refs

    def list_collection(
        self, path: str, flt: Filter, page: Page
    ) -> tuple[Iterator[Entity], Registry]:
        """The collection at `path`: a page (one query) or, without a page size, a stream."""
        with self.store.begin(readonly=True) as tx:
            reg = self.registry(tx)
            q = self._query(reg, path, flt)
            if page.number is not None:
                if page.number > self.max_page_size:
                    raise errors.PayloadTooLarge(
                        f"number={page.number} is above the largest page of "
                        f"{self.max_page_size} entities; ask for fewer"
                    )
                q.offset = (page.page - 1) * page.number
                q.limit = page.number
                items = tx.query(q)
                return iter([self._present(e, reg) for e in items]), reg
        return (self._present(e, reg) for e in self.store.iter_all(q)), reg

    # ================================================================== creating
    def create(self, collection: str, entities: list[Entity]) -> list[Entity]:
        """POST on a kind collection: create each entity (and a resource's inline links)."""
        if not entities:
            raise errors.BadRequest("the request carries no entity to create")
        created: list[Entity] = []
        self._begin_work()
        with self.store.begin() as tx:
            reg = self.registry(tx)
            target = self.collection_target(collection, reg)
            if isinstance(target, Mixin):
                raise errors.BadRequest(
                    f"{collection} is a mixin collection: POST locations there to associate "
                    "the mixin; create entities in their kind's collection"
                )
            for e in entities:
                created.append(self._create_one(tx, reg, e, target, entity_id=None))
        self._settle()  # a failed creation answers 502/503 with the entity's Location
        return self._refresh(created)

    def _create_one(
        self, tx: StoreTx, reg: Registry, e: Entity, target: Kind | None, entity_id: str | None
    ) -> Entity:
        kind = self._kind_of(reg, e, target)
        if entity_id is None:
            entity_id = e.id or str(uuid.uuid4())
        elif e.id and e.id != entity_id:
            raise errors.BadRequest(
                f"occi.core.id {e.id!r} differs from the id in the URL ({entity_id!r})"
            )
        if not ID_RE.match(entity_id):
            raise errors.BadRequest(
                f"occi.core.id {entity_id!r} must be 1-128 letters, digits, '-', '_', '.' or ':'"
            )
        if tx.get(entity_id) is not None:
            raise errors.IdTaken(f"an entity with occi.core.id {entity_id} already exists")
        mixins = validation.check_mixins(reg, kind, e.mixins)
        attributes = validation.entity_attributes(reg, kind, mixins, e.attributes).attributes
        location = f"{kind.location}{entity_id}"
        if kind.is_a(infra.LINK):
            link = Link(kind.id, entity_id, e.title, mixins, attributes, location)
            if isinstance(e, Link):
                link.source, link.target = e.source, e.target
                link.target_kind = e.target_kind
            self._bind_link(tx, reg, link, kind)
            if kind != infra.LINK:  # a plain core link is a relation only: nothing to attach
                self._note(link, kind, "attaching")
            tx.insert(link)
            if kind != infra.LINK:
                self._submit(tx, self._link_key(link), "link", entity_id)
            return self._present(link, reg)
        if isinstance(e, Link):
            raise errors.BadRequest(f"{kind.id} is a resource kind: it takes no source or target")
        res = Resource(kind.id, entity_id, e.title, mixins, attributes, location)
        res.summary = e.summary if isinstance(e, Resource) else None
        self._note(res, kind, "creating")
        tx.insert(res)
        self._submit(tx, entity_id, "create", entity_id)
        for inline in e.links if isinstance(e, Resource) else []:
            res.links.append(self._create_inline_link(tx, reg, res, inline))
        return self._present(res, reg)

    def _kind_of(self, reg: Registry, e: Entity, target: Kind | None) -> Kind:
        if e.kind:
            kind = reg.kinds.get(e.kind)
            if kind is None:
                other = reg.category(e.kind)
                what = f"a {other.cls}, not a kind" if other else "not defined here"
                raise errors.BadRequest(f"{e.kind} is {what}")
            if target is not None and kind != target:
                raise errors.BadRequest(
                    f"{kind.id} entities are created in {kind.location}, not in {target.location}"
                )
        else:
            # GFD.223: a creation carries a full entity rendering, Kind included (only inline
            # links take theirs from the target, in _create_inline_link)
            term = target.term if target is not None else "compute"
            scheme = target.scheme if target is not None else infra.COMPUTE.scheme
            raise errors.BadRequest(
                f"the rendering has no Kind, so it is not a full entity: say which kind to "
                f'create, e.g. Category: {term}; scheme="{scheme}"; class="kind" '
                f'(JSON: "kind": "{scheme}{term}")'
            )
        if kind.location is None or kind is infra.ENTITY:
            raise errors.BadRequest(f"{kind.id} cannot be instantiated")
        return kind

    # ------------------------------------------------------------------ links
    def _bind_link(self, tx: StoreTx, reg: Registry, link: Link, kind: Kind) -> None:
        """Check and complete a link's source and target against the store."""
        if not link.source:
            raise errors.BadRequest("a link needs occi.core.source: the location of a resource")
        if not link.target:
            raise errors.BadRequest("a link needs occi.core.target: a location or URI")
        link.source = self._relative(link.source)
        link.target = self._relative(link.target)
        if not (link.target.startswith("/") or URI_RE.match(link.target)):
            raise errors.BadRequest(
                f"occi.core.target {link.target!r} must be a location here (/network/...) "
                "or an absolute URI"
            )
        source = self._resource_at(tx, link.source, "source")
        if source is None:
            raise errors.BadRequest(f"occi.core.source {link.source} is not a resource here")
        link.source_kind = source.kind
        target = (
            self._resource_at(tx, link.target, "target") if link.target.startswith("/") else None
        )
        if link.target.startswith("/") and target is None:
            raise errors.BadRequest(f"occi.core.target {link.target} is not a resource here")
        if target is not None:
            link.target_kind = target.kind
        expectations = {
            infra.NETWORKINTERFACE.id: (infra.COMPUTE, infra.NETWORK),
            infra.STORAGELINK.id: (infra.COMPUTE, infra.STORAGE),
        }
        if kind.id in expectations:
            src_kind, tgt_kind = expectations[kind.id]
            if not reg.kinds[source.kind].is_a(src_kind):
                raise errors.BadRequest(f"a {kind.term} link starts at a {src_kind.term} resource")
            if target is None or not reg.kinds[target.kind].is_a(tgt_kind):
                raise errors.BadRequest(f"a {kind.term} link points at a {tgt_kind.term} resource")

    def _resource_at(self, tx: StoreTx, location: str, role: str) -> Resource | None:
        e = tx.get(location.rsplit("/", 1)[-1]) if location.startswith("/") else None
        if e is None or e.location != location or not isinstance(e, Resource):
            return None
        return e

    def _create_inline_link(
        self, tx: StoreTx, reg: Registry, source: Resource, inline: Entity
    ) -> Link:
        if not isinstance(inline, Link):
            raise errors.BadRequest("an inline link needs a target")
        kind_id = inline.kind
        target_loc = self._relative(inline.target or "")
        target = self._resource_at(tx, target_loc, "target") if target_loc.startswith("/") else None
        if not kind_id:
            if target is not None and reg.kinds[target.kind].is_a(infra.NETWORK):
                kind_id = infra.NETWORKINTERFACE.id
            elif target is not None and reg.kinds[target.kind].is_a(infra.STORAGE):
                kind_id = infra.STORAGELINK.id
            else:
                kind_id = infra.LINK.id
        kind = reg.kinds.get(kind_id)
        if kind is None or not kind.is_a(infra.LINK):
            raise errors.BadRequest(f"inline link category {kind_id} is not a link kind")
        spec = Link(
            kind.id,
            inline.id,
            inline.title,
            list(inline.mixins),
            dict(inline.attributes),
            source=source.location,
            target=target_loc,
            target_kind=inline.target_kind,
        )
        link = self._create_one(tx, reg, spec, kind, entity_id=None)
        assert isinstance(link, Link)  # kind is a link kind: _create_one made a Link
        return link

    @staticmethod
    def _link_key(link: Link) -> str:
        """Link operations queue behind the source resource's (a NIC waits for its VM)."""
        return (link.source or "").rsplit("/", 1)[-1] or _stored_id(link)

    @staticmethod
    def _note(entity: Entity, kind: Kind, message: str) -> None:
        """Say in the state message what is under way."""
        name = f"occi.{kind.term}.state.message"
        if name in kind.all_attributes():
            entity.attributes[name] = message

    # ================================================================== jobs
    # Hypervisor work is queued as job rows in the request's transaction, so it happens only
    # if the request's changes are stored, and any server can finish it. After the commit the
    # request runs its jobs itself when they are free (the fast path), or waits for them up to
    # the configured time, then answers with the state so far.

    def attach_runner(self, runner: JobRunner) -> None:
        self.runner = runner

    def _begin_work(self) -> None:
        self._local.jobs = []

    def _submit(self, tx: StoreTx, key: str, operation: str, target: str, **params: Any) -> str:
        job_id = tx.jobs.enqueue(
            key, operation, {"target": target, **params}, self.job_settings.max_attempts
        )
        self._local.__dict__.setdefault("jobs", []).append(job_id)
        return job_id

    def _submit_many(self, tx: StoreTx, jobs: list[tuple[str, str, str, dict[str, Any]]]) -> None:
        """Queue many jobs (key, operation, target, params) with one statement."""
        ids = tx.jobs.enqueue_many(
            [(key, op, {"target": target, **params}) for key, op, target, params in jobs],
            self.job_settings.max_attempts,
        )
        self._local.__dict__.setdefault("jobs", []).extend(ids)

    def _runner(self) -> JobRunner:
        if self.runner is None:  # no background threads: run every job in the request
            runner = JobRunner(self.store, self.execute, self.job_settings)
            runner._register()
            self.runner = runner
        return self.runner

    def _settle(self, *, raise_failures: bool = True) -> dict[str, Job]:
        ids = self._local.__dict__.pop("jobs", [])
        if not ids:
            return {}
        jobs = self._runner().settle(ids)
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
        """The entities as stored now (after their jobs), ready to render."""
        with self.store.begin(readonly=True) as tx:
            reg = self.registry(tx)
            fresh = tx.get_many(e.id for e in entities if e.id)
            return [self._present(fresh.get(e.id or "", e), reg) for e in entities]

    def execute(self, job: Job, runner: JobRunner) -> None:
        """Carry out one claimed job on the backend and store what it did."""
        target_id = job.params.get("target", job.entity_id)
        with self.store.begin(readonly=True) as tx:
            entity = tx.get(target_id)
            links = tx.links_touching([target_id]) if job.operation == "delete" else []
            source = target = None
            if isinstance(entity, Link):
                source = self._resource_by_location(tx, entity.source)
                target = self._resource_by_location(tx, entity.target)
        if entity is None:  # deleted meanwhile: nothing left to do
            self._finish(job, runner, None, None)
            return
        if not runner.still_mine(job):
            return
        try:
            outcome = self._call_backend(job, entity, links, source, target)
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
                with self.store.begin() as tx:
                    tx.jobs.retry(job.id, _owner(job), message, runner.backoff(job.attempts))
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
    ) -> Outcome:
        op, p = job.operation, job.params
        b = self.backend
        if op == "create":
            assert isinstance(entity, Resource)  # links are made by "link" jobs
            return b.create(entity)
        if op == "update":
            assert isinstance(entity, Resource)  # a link's update has no platform work
            return b.update(entity, p.get("changed", {}))
        if op == "action":
            assert isinstance(entity, Resource)  # only resource kinds have actions
            return b.action(entity, p["action"], p.get("params", {}))
        if op == "link":
            assert isinstance(entity, Link)  # queued by _create_one for links only
            if source is None:
                raise NotFoundOnPlatform(f"the source {entity.source} of the link is gone")
            return b.link(entity, source, target)
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
            b.unlink(old)
            return b.link(entity, source, target) if source is not None else Outcome()
        if op == "delete":
            if isinstance(entity, Link):
                if entity.kind != infra.LINK.id:
                    b.unlink(entity)
            else:
                # links pointing here from other resources are detached from those; the
                # entity's own links (its NICs and disks) go with it in backend.delete
                for ln in links:
                    if ln.kind != infra.LINK.id and getattr(ln, "source", None) != entity.location:
                        self._detach_for_delete(entity, ln)
                b.delete(entity)
            return Outcome()
        raise Unsupported(f"unknown job operation {op}")

    def _detach_for_delete(self, entity: Entity, link: Entity) -> None:
        """Detach a link of another resource pointing at `entity` before `entity` goes (a
        storage attached to a compute). Where the platform cannot detach it now, the delete is
        refused with what to do, and nothing changes."""
        try:
            self.backend.unlink(link)  # type: ignore[arg-type]
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
            seen = self.backend.observe(entity)
        except BackendFault:
            return None
        if goal and any(n.endswith(".state") and v == goal for n, v in seen.attributes.items()):
            return seen
        return None

    def _finish(
        self, job: Job, runner: JobRunner, entity: Entity | None, outcome: Outcome | None
    ) -> None:
        result: dict[str, Any] = {}
        try:
            with self.store.begin() as tx:
                if entity is not None and job.operation == "delete":
                    tx.delete([_stored_id(entity)])
                elif entity is not None and outcome is not None:
                    current = tx.get(_stored_id(entity), for_update=True)
                    if current is not None and outcome.attributes:
                        current.attributes.update(outcome.attributes)
                        tx.update(current)
                        self._derive_link_states(tx, current)
                    if outcome.mixin is not None:
                        self._record_saved_image(tx, outcome.mixin)
                        self._categories_changed(tx)
                        result["mixin"] = outcome.mixin.id
                if not tx.jobs.finish(job.id, _owner(job), result):
                    raise _LostJob
        except _LostJob:
            log.warning("job %s was taken over by another server; its result is dropped", job.id)

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
                current = tx.get(_stored_id(entity), for_update=True)
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
                    self._derive_link_states(tx, current)
                if not tx.jobs.fail(job.id, _owner(job), message, {"fault": fault}):
                    raise _LostJob
        except _LostJob:
            log.warning("job %s was taken over by another server", job.id)

    # ================================================================== reconciliation
    def reconcile(self, entity_ids: Iterable[str] | None = None, batch: int = 200) -> int:
        """Bring stored states in line with what the platform reports (events name entities;
        the periodic pass walks all of them). Entities with work queued are left alone: their
        jobs will say. Returns how many entities changed."""
        changed = 0
        if entity_ids is not None:
            ids = list(entity_ids)
            with self.store.begin(readonly=True) as tx:
                found = list(tx.get_many(ids).values())
            return self._reconcile_batch(found)
        offset = 0
        while True:
            with self.store.begin(readonly=True) as tx:
                page = tx.query(Query(offset=offset, limit=batch))
            changed += self._reconcile_batch(page)
            if len(page) < batch:
                return changed
            offset += batch

    def _reconcile_batch(self, entities: list[Entity]) -> int:
        if not entities:
            return 0
        with self.store.begin(readonly=True) as tx:
            unfinished = tx.jobs.unfinished([_stored_id(e) for e in entities])
        stored = {e.id: e.attributes for e in entities}
        busy = {j.entity_id for j in unfinished} | {j.params.get("target") for j in unfinished}
        seen: dict[str, dict[str, Any]] = {}
        for e in entities:
            e_id = _stored_id(e)
            if e_id in busy or e.kind == infra.LINK.id or e.kind == infra.RESOURCE.id:
                continue
            try:
                seen[e_id] = self._observed(e)
            except NotFoundOnPlatform as exc:
                kind = self.registry().kinds.get(e.kind)
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
                diff = {k: v for k, v in attributes.items() if current.attributes.get(k) != v}
                if diff:
                    log.info("reconciled %s: %s", current.location, diff)
                    current.attributes.update(diff)
                    tx.update(current)
                    self._derive_link_states(tx, current)
                    changed += 1
        return changed

    def _observed(self, e: Entity) -> dict[str, Any]:
        """What the platform reports for e; a link's state comes from the resources it joins
        (_derive_link_states), so only the platform's `error` (or its end) is taken from it."""
        seen = self.backend.observe(e).attributes
        attr = machines.LINK_STATE_ATTRS.get(e.kind)
        if attr and "error" not in (seen.get(attr), e.attributes.get(attr)):
            seen = {k: v for k, v in seen.items() if k not in (attr, attr + ".message")}
        return seen

    def _derive_link_states(self, tx: StoreTx, entity: Entity) -> None:
        """After a state change: store the GFD.224 state (occi.states.link_state) of every link
        joining the resource, or of the link itself unless the platform put it in error."""
        if isinstance(entity, Link):
            attr = machines.LINK_STATE_ATTRS.get(entity.kind)
            links = [entity] if attr and entity.attributes.get(attr) != "error" else []
        else:
            links = [ln for ln in tx.links_touching([entity.id or ""]) if isinstance(ln, Link)]
        links = [ln for ln in links if ln.kind in machines.LINK_STATE_ATTRS]
        if not links:
            return
        reg = self.registry(tx)
        ends = tx.get_many(
            loc.rsplit("/", 1)[-1]
            for ln in links
            for loc in (ln.source, ln.target)
            if loc and loc.startswith("/")
        )
        ends[entity.id or ""] = entity
        for ln in links:
            side = []
            for loc in (ln.source, ln.target):
                e = (
                    ends.get((loc or "").rsplit("/", 1)[-1])
                    if (loc or "").startswith("/")
                    else None
                )
                kind = reg.kinds.get(e.kind) if e is not None and e.location == loc else None
                machine = machines.machine_for(kind) if kind is not None else None
                state = e.attributes.get(machine.state_attr) if e and machine else None
                side.append((kind, state))
            state, message = machines.link_state(side[0][0], side[0][1], side[1][0], side[1][1])
            attr = machines.LINK_STATE_ATTRS[ln.kind]
            # an inactive link says what it waits for, even when it was inactive before
            waits = state == "inactive" and ln.attributes.get(attr + ".message") != message
            if ln.attributes.get(attr) != state or waits:
                ln.attributes[attr] = state
                ln.attributes[attr + ".message"] = message
                tx.update(ln)

    def _resource_by_location(self, tx: StoreTx, location: str | None) -> Resource | None:
        if not location or not location.startswith("/"):
            return None
        e = tx.get(location.rsplit("/", 1)[-1])
        return e if isinstance(e, Resource) and e.location == location else None

    # ================================================================== updating
    def put(
        self, path: str, e: Entity, if_match: str | None = None, if_none_match: str | None = None
    ) -> tuple[Entity, bool]:
        """PUT on an entity path: create it there, or replace it (links stay).

        Concurrent PUTs of one new id are each a create-or-replace: the one whose insert finds
        the id taken (another PUT stored it after this one looked, which PostgreSQL allows)
        does it again, and so replaces what the other stored."""
        for attempt in range(2):
            self._begin_work()  # jobs queued by a rolled-back attempt are gone with it
            try:
                with self.store.begin() as tx:
                    result, created = self._put(tx, path, e, if_match, if_none_match)
                break
            except errors.IdTaken:
                if attempt:
                    raise
                log.info("PUT %s: created meanwhile by another request; replacing it", path)
        self._settle()  # a failed creation answers 502/503 with the entity's Location
        return self._refresh([result])[0], created

    def _put(
        self, tx: StoreTx, path: str, e: Entity, if_match: str | None, if_none_match: str | None
    ) -> tuple[Entity, bool]:
        reg = self.registry(tx)
        entity_id = path.rsplit("/", 1)[-1]
        existing = tx.get(entity_id, for_update=True)
        if existing is not None and existing.location == path:
            check_preconditions(existing, if_match, if_none_match)
        elif if_match is not None:
            raise errors.PreconditionFailed(f"If-Match: nothing exists at {path}")
        if existing is None:
            kind = reg.kind_for_path(path)
            if kind is None:
                raise errors.NotFound(f"{path} is not inside a kind collection")
            if isinstance(e, Resource) and e.links:
                raise errors.BadRequest("PUT does not create links: POST them to a link collection")
            return self._create_one(tx, reg, e, kind, entity_id=entity_id), True
        if existing.location != path:
            raise errors.Conflict(f"occi.core.id {entity_id} is used at {existing.location}")
        return self._replace(tx, reg, existing, e, full=True), False

    def update(self, path: str, e: Entity, if_match: str | None = None) -> Entity:
        """POST on an entity path: partial update (given attributes change, mixins are added)."""
        self._begin_work()
        with self.store.begin() as tx:
            reg = self.registry(tx)
            existing = self._load(tx, path, for_update=True)
            check_preconditions(existing, if_match, None)
            if isinstance(e, Resource) and e.links:
                raise errors.BadRequest(
                    "links cannot be added by updating a resource: POST them to a link collection"
                )
            result = self._replace(tx, reg, existing, e, full=False)
        self._settle()
        return self._refresh([result])[0]

    def _replace(
        self, tx: StoreTx, reg: Registry, cur: Entity, new: Entity, *, full: bool
    ) -> Entity:
        kind = reg.kinds[cur.kind]
        cur_id = _stored_id(cur)
        prev = dict(cur.attributes)
        if new.kind and new.kind != cur.kind:
            raise errors.BadRequest(
                f"the kind of an entity cannot change ({cur.kind} given as {new.kind})"
            )
        if new.id and new.id != cur.id:
            raise errors.Forbidden(f"occi.core.id is immutable ({cur.id})")
        if full:
            mixin_ids = validation.check_mixins(reg, kind, new.mixins)
        else:
            mixin_ids = validation.added_mixins(reg, kind, cur.mixins, new.mixins)
        checked = validation.entity_attributes(
            reg,
            kind,
            mixin_ids,
            new.attributes,
            current=cur.attributes,
            current_mixins=cur.mixins,
            full=full,
        )
        for mid in checked.dropped:
            log.info("%s: direct resize drops resource template %s", cur.location, mid)
        changed = checked.changed
        cur.attributes = checked.attributes
        cur.mixins = checked.mixins
        if full or new.title is not None:
            cur.title = new.title
        if isinstance(cur, Resource) and isinstance(new, Resource):
            if full or new.summary is not None:
                cur.summary = new.summary
        if isinstance(cur, Link) and isinstance(new, Link):
            moved = False
            for attr in ("source", "target"):
                val = getattr(new, attr)
                if val and self._relative(val) != getattr(cur, attr):
                    setattr(cur, attr, self._relative(val))
                    moved = True
            if moved:
                old_source = old_target = None
                stored = tx.get(cur_id)
                if isinstance(stored, Link):
                    old_source, old_target = stored.source, stored.target
                self._bind_link(tx, reg, cur, kind)
                if kind != infra.LINK:
                    self._submit(
                        tx,
                        self._link_key(cur),
                        "relink",
                        cur_id,
                        old_source=old_source,
                        old_target=old_target,
                    )
        previous = {n: prev.get(n) for n in changed}
        tx.update(cur)
        if changed and not kind.is_a(infra.LINK):
            self._submit(tx, cur_id, "update", cur_id, changed=changed, previous=previous)
        return self._present(cur, reg)

    # ================================================================== deleting
    def delete(self, path: str, if_match: str | None = None) -> None:
        self._begin_work()
        with self.store.begin() as tx:
            entity = self._load(tx, path, for_update=True)
            check_preconditions(entity, if_match, None)
            self._delete_entities(tx, [entity])
        self._settle()

    def delete_collection(self, path: str, flt: Filter) -> int:
        with self.store.begin() as tx:
            reg = self.registry(tx)
            target = self.collection_target(path, reg)
            if isinstance(target, Mixin):
                raise errors.BadRequest("use DELETE with locations to dissociate a mixin")
            q = self._query(reg, path, flt)
            entities = tx.query(q)
            self._begin_work()
            self._submit_many(
                tx,
                [
                    (
                        self._link_key(e) if isinstance(e, Link) else _stored_id(e),
                        "delete",
                        _stored_id(e),
                        {},
                    )
                    for e in entities
                ],
            )
        self._settle()
        return len(entities)

    def _delete_entities(self, tx: StoreTx, entities: list[Entity]) -> None:
        """Queue the deletion: the job removes the platform objects, then the rows (with every
        link touching them). Until then the entities say they are being deleted."""
        reg = self.registry(tx)
        for e in entities:
            kind = reg.kinds.get(e.kind)
            if kind is not None:
                self._note(e, kind, "deleting")
                tx.update(e)
            e_id = _stored_id(e)
            key = self._link_key(e) if isinstance(e, Link) else e_id
            self._submit(tx, key, "delete", e_id)

    # ================================================================== actions
    def act(
        self, path: str, term: str, inv: ActionInvocation, if_match: str | None = None
    ) -> Entity | Mixin:
        self._begin_work()
        with self.store.begin() as tx:
            reg = self.registry(tx)
            entity = self._load(tx, path, for_update=True)
            check_preconditions(entity, if_match, None)
            queued = self._queued_actions(tx, [entity])
            action, params = validation.check_action(
                reg, entity, term, inv, queued.get(entity.id or "", [])
            )
            job_id = self._run_action(tx, reg, entity, action.term, params)
        jobs = self._settle()
        job = jobs.get(job_id)
        if job is not None and job.status == "done" and job.result and job.result.get("mixin"):
            self._registry_checked = float("-inf")  # the job may have run in another process
            mixin = self.registry().mixins.get(job.result["mixin"])
            if mixin is not None:
                return mixin
        return self._refresh([entity])[0]

    def act_on_collection(
        self, path: str, term: str, inv: ActionInvocation, flt: Filter
    ) -> list[Entity]:
        with self.store.begin() as tx:
            reg = self.registry(tx)
            entities = tx.query(self._query(reg, path, flt))
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
                    f"{len(refused)} of {len(entities)} members cannot {term}, so none was "
                    "changed: " + "; ".join(refused)
                )
            self._begin_work()
            # one statement for the whole collection; each job reports into its entity
            self._submit_many(
                tx,
                [
                    (
                        _stored_id(e),
                        "action",
                        _stored_id(e),
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
        out: dict[str, list[str]] = {}
        for job in tx.jobs.unfinished([e.id for e in entities if e.id]):
            if job.operation == "action":
                out.setdefault(job.params.get("target", job.entity_id), []).append(
                    job.params.get("action", "")
                )
        return out

    def _run_action(self, tx: StoreTx, reg: Registry, entity: Entity, term: str, params) -> str:
        kind = reg.kinds[entity.kind]
        self._note(entity, kind, f"{term} requested")
        tx.update(entity)
        entity_id = _stored_id(entity)
        return self._submit(tx, entity_id, "action", entity_id, action=term, params=params)

    # ================================================================== mixin collections
    def associate(
        self, path: str, locations: Sequence[str | EntityRef], *, replace_all: bool = False
    ) -> list[Entity]:
        self._begin_work()
        members = self._associate(path, locations, replace_all)
        self._settle()
        return self._refresh(members)

    def _associate(
        self, path: str, locations: Sequence[str | EntityRef], replace_all: bool
    ) -> list[Entity]:
        with self.store.begin() as tx:
            reg = self.registry(tx)
            mixin = self._mixin_at(reg, path)
            targets = self._entities_at(tx, locations)
            for e in targets:
                kind = reg.kinds[e.kind]
                if not reg.applies(mixin, kind):
                    raise errors.BadRequest(f"mixin {mixin.id} does not apply to {e.location}")
            if replace_all:
                keep = {e.id for e in targets}
                current = tx.query(Query(mixin=mixin.id))
                tx.dissociate(mixin.id, [_stored_id(e) for e in current if e.id not in keep])
            fam = reg.template_family(mixin)
            for e in targets:
                if mixin.id in e.mixins:
                    continue
                if fam is not None or any(d.default is not None for d in mixin.attributes.values()):
                    # templates replace their predecessor and may resize: a full update
                    patch = (
                        Resource(e.kind, mixins=[mixin.id])
                        if not isinstance(e, Link)
                        else Link(e.kind, mixins=[mixin.id])
                    )
                    self._replace(tx, reg, e, patch, full=False)
                else:
                    tx.associate(mixin.id, [_stored_id(e)])
            members = tx.query(Query(mixin=mixin.id))
            return [self._present(e, reg) for e in members]

    def dissociate(self, path: str, locations: Sequence[str | EntityRef] | None) -> None:
        with self.store.begin() as tx:
            reg = self.registry(tx)
            mixin = self._mixin_at(reg, path)
            if locations is None:
                tx.dissociate(mixin.id, None)
                return
            targets = self._entities_at(tx, locations)
            tx.dissociate(mixin.id, [_stored_id(e) for e in targets])

    def _mixin_at(self, reg: Registry, path: str) -> Mixin:
        cat = self.collection_target(path, reg)
        if not isinstance(cat, Mixin):
            raise errors.MethodNotAllowed(
                f"{path} is not a mixin collection", allowed=["GET", "POST", "DELETE", "HEAD"]
            )
        return cat

    def _entities_at(self, tx: StoreTx, locations: Sequence[str | EntityRef]) -> list[Entity]:
        """The entities at `locations`: paths below the root, or EntityRefs (kind and id, from
        GFD.226 entity collections) resolved through the kind's location."""
        if not locations:
            raise errors.BadRequest("send the locations of the entities (X-OCCI-Location)")
        reg = self.registry(tx)
        paths = []
        for x in locations:
            if isinstance(x, EntityRef):
                kind = reg.kinds.get(x.kind)
                if kind is None or not kind.location:
                    raise errors.BadRequest(f"{x.kind} is not a kind of this server")
                paths.append(kind.location + x.id)
            else:
                paths.append(self._relative(x))
        found = tx.get_many(loc.rsplit("/", 1)[-1] for loc in paths if loc.startswith("/"))
        out = []
        for loc in paths:
            e = found.get(loc.rsplit("/", 1)[-1])
            if e is None or e.location != loc:
                raise errors.BadRequest(f"no entity exists at {loc}")
            out.append(e)
        return out

    # ================================================================== helpers
    @staticmethod
    def _relative(location: str) -> str:
        """Locations arrive relative to the service root already (the renderings strip it)."""
        return location.strip()
