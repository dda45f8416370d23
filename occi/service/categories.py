"""The service's categories: the cached registry, the query interface, the users' mixins (and
the images users saved, which are recorded with them), category lookups by id or term."""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Iterable
from typing import Any

from backends.base import BackendFault
from occi import errors
from occi import infrastructure as infra
from occi.context import DEFAULT_PROJECT, RequestContext
from occi.inventory import placement
from occi.model import (
    Category,
    CategoryCollection,
    CategoryRef,
    Kind,
    Mixin,
    PatternError,
    compile_pattern,
    valid_attribute_name,
)
from occi.registry import Registry
from occi.service.base import REGISTRIES_KEPT, ServiceBase
from occi.service.locations import (
    MAX_LOCATION,
    RESERVED_PATHS,
    RESERVED_SCHEME,
    URI_RE,
    relative,
    reserved_path,
    valid_location,
)
from occi.store.base import StoreTx

log = logging.getLogger(__name__)


def _content(mixins: list[Mixin]) -> list[tuple[Any, ...]]:
    """Everything the mixins hold, field by field (Category's == compares ids only)."""
    return [dataclasses.astuple(m) for m in mixins]


class Categories(ServiceBase):
    #: seconds a cached registry is trusted even when the version did not move (templates can
    #: appear on the platform without going through this server, e.g. images in a pool)
    registry_ttl = 30.0
    #: the store signals category changes (occi.store.base.Store.categories_signal); the
    #: version is read from SQL anyway after this many seconds, in case a signal was missed
    registry_check = 5.0

    def registry(self, tx: StoreTx | None = None, project: str | None = None) -> Registry:
        """The categories `project` sees now: standard, the backend's templates (less the
        images other projects saved), its own user mixins. `project` None is the system's
        view: every project's user mixins (the oldest of one id wins) and every template.

        Cached per process and project, keyed on the store's categories version: one small
        query per request instead of rebuilding from the backend and the user mixin table;
        the backend's templates and the user mixins are read once for all projects."""
        cached = self._registry_cache.get(project)
        now = time.monotonic()
        signal = self.store.categories_signal()
        if (
            cached is not None
            and signal is not None
            and signal == self._registry_signal
            and now - self._registry_checked < self.registry_check
            and cached[0] == self._registry_version
        ):
            return cached[2]
        if tx is None:
            with self.store.begin(readonly=True) as t:
                return self.registry(t, project)
        version = tx.categories_version()
        self._registry_checked = now
        self._registry_signal = signal
        self._registry_version = version
        source = self._registry_source
        if source is None or source[0] != version or now - source[1] >= self.registry_ttl:
            provider = self._provider_mixins() + self._zone_mixins(tx, version)
            by_project = tx.user_mixins_by_project()
            if (
                source is not None
                and source[0] == version
                and _content(source[2]) == _content(provider)
                and {p: _content(ms) for p, ms in source[3].items()}
                == {p: _content(ms) for p, ms in by_project.items()}
            ):
                # read again after registry_ttl and found the same: the registries built from
                # it stay (the same objects: what pages kept of their entities stays valid)
                source = (version, now, source[2], source[3], source[4])
            else:
                source = (version, now, provider, by_project, object())
            self._registry_source = source
        if cached is not None and cached[0] == version and cached[1] is source[4]:
            return cached[2]
        reg = self._project_registry(source[2], source[3], project)
        kept = self._registry_cache
        if project not in kept and len(kept) >= REGISTRIES_KEPT:
            kept.pop(next(iter(kept)), None)
        kept[project] = (version, source[4], reg)
        return reg

    def _project_registry(
        self, provider: list[Mixin], by_project: dict[str, list[Mixin]], project: str | None
    ) -> Registry:
        if project is None:
            return Registry(provider, [m for ms in by_project.values() for m in ms])
        own = by_project.get(project, [])
        # an image a project saved is listed by the backend as a template: others do not see it
        theirs = {
            m.id
            for p, ms in by_project.items()
            if p != project
            for m in ms
            if self._is_saved_image(m)
        }
        theirs -= {m.id for m in own if self._is_saved_image(m)}
        return Registry([m for m in provider if m.id not in theirs], own)

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

    def _zone_mixins(self, tx: StoreTx, version: int) -> list[Mixin]:
        """One mixin per zone of the inventory (read again with the other sources of the
        registry: a change of the inventory bumps the categories version)."""
        snap = self.pool.reload(tx, version)
        return placement.zone_mixins(self.zone_scheme, [z.name for z in snap.zones_by_name()])

    @property
    def zone_scheme(self) -> str:
        return placement.zone_scheme(self.backend.name)

    # ------------------------------------------------------------------ query interface
    def categories(
        self, ctx: RequestContext, filters: Iterable[CategoryRef] = ()
    ) -> CategoryCollection:
        """The categories the filters name (all of them, without filters)."""
        self._authorize(ctx, "read")
        reg = self.registry(project=ctx.project)
        refs = list(filters)
        for ref in refs:
            if reg.category(ref.id) is None:
                raise errors.NotFound(f"no category {ref.id} is defined here")
        return reg.collection(refs)

    def add_user_mixins(self, ctx: RequestContext, refs: list[CategoryRef]) -> list[Mixin]:
        self._authorize(ctx, "define_mixin")
        if not refs:
            raise errors.BadRequest(
                'send at least one mixin definition: Category: term; scheme="..."; '
                'class="mixin"; location="/my_mixin/"'
            )
        out = []
        with self.store.begin() as tx:
            reg = self.registry(tx, ctx.project)
            taken = set(reg.locations())
            source = self._registry_source
            provider = source[2] if source is not None else self._provider_mixins()
            templates = {m.scheme for m in provider if not m.scheme.startswith(RESERVED_SCHEME)}
            for ref in refs:
                if ref.scheme in templates:
                    # the platform reads its templates by scheme (another project's saved
                    # image among them, which this project does not see)
                    raise errors.BadRequest(
                        f"the scheme {ref.scheme} is the provider's, for its templates; use a "
                        "scheme of your own, e.g. http://example.com/occi/my_stuff#"
                    )
                mixin = self._user_mixin(ref, reg, taken)
                tx.add_user_mixin(mixin, project_id=ctx.project)
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
            raise errors.Conflict(f"the category {ref.id} already exists", code="category_exists")
        location = ref.location or f"/mixin/user/{ref.term}/"
        location = relative(location)
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
                f"({', '.join(RESERVED_PATHS)}); choose another path",
                code="location_taken",
            )
        if location in taken or self._location_clashes(location, reg):
            raise errors.Conflict(
                f"the location {location} is already in use", code="location_taken"
            )
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

    def remove_user_mixins(self, ctx: RequestContext, refs: list[CategoryRef]) -> None:
        """Remove user mixins, and images users saved (the platform image goes too)."""
        self._authorize(ctx, "remove_mixin")
        if not refs:
            raise errors.BadRequest("name the mixin to remove with a Category (term, scheme)")
        project = ctx.project or DEFAULT_PROJECT
        with self.store.begin() as tx:
            reg = self.registry(tx, ctx.project)
            saved = {m.id: m for m in tx.user_mixins(project) if self._is_saved_image(m)}
            images = []
            for ref in refs:
                cat = reg.category(ref.id)
                if cat is None:
                    raise errors.NotFound(f"no mixin {ref.id} is defined")
                if ref.id in saved:
                    images.append(saved[ref.id])
                elif not (isinstance(cat, Mixin) and cat.user_defined):
                    raise errors.Forbidden(
                        f"{ref.id} is defined by the provider and cannot be removed",
                        code="provider_category",
                    )
                tx.delete_user_mixin(project, ref.id)
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
                    + "; give the full scheme#term",
                    code="ambiguous_category",
                )
            cat = matches[0] if matches else None
        if cat is None:
            raise unknown(f"no category {name!r} is defined here")
        return cat

    def category_refs(self, ctx: RequestContext, names: Iterable[str]) -> list[CategoryRef]:
        """Query-interface filters given as terms or type identifiers (`?category=`)."""
        self._authorize(ctx, "read")
        reg = self.registry(project=ctx.project)
        refs = []
        for name in names:
            cat = self._resolve_category(reg, name, unknown=errors.NotFound)
            refs.append(CategoryRef(cat.scheme, cat.term, cat.cls))
        return refs
