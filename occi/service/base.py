"""What every room of the service shares: the store, the backend, the settings, the job runner.

The rooms (categories, reads, work, links, entities, actions, mixins) each add their methods on
top of this, one above the other, and occi.service.Service is the whole.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Mapping
from typing import Any

from backends.base import Backend
from occi import errors
from occi.context import RequestContext
from occi.inventory.pool import Pool
from occi.jobs.execution import Executor
from occi.jobs.reconcile import Reconciler
from occi.jobs.runner import JobRunner, JobSettings
from occi.model import Entity, Mixin
from occi.registry import Registry
from occi.store.base import Store

#: what only reads; every other action writes (create, update, delete, act, associate,
#: dissociate, define_mixin, remove_mixin)
READ_ACTIONS = frozenset({"read"})
#: how many projects' registries a process keeps (each is small; the oldest goes first)
REGISTRIES_KEPT = 256


class ServiceBase:
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
    ):
        self.store = store
        #: the inventory map and each cluster's backend (occi.inventory.pool)
        self.pool = Pool(store, backend)
        #: how a compute's host is chosen (occi.inventory.placement.STRATEGIES)
        self.placement_strategy = placement_strategy
        #: the zone of a create that names none (empty: the first zone by name)
        self.default_zone = default_zone
        #: a project's limits where it has none of its own (Settings.default_quotas)
        self.default_quotas: dict[str, int] = dict(default_quotas or {})
        self.backend = backend
        self.max_page_size = max_page_size
        self.job_settings = job_settings or JobSettings()
        self.runner: JobRunner | None = None
        self._local = threading.local()
        #: project id (None: the system's view of every project) -> (categories version,
        #: the token of the sources it was built from, its registry); see Categories.registry
        self._registry_cache: dict[str | None, tuple[int, object, Registry]] = {}
        #: what every project's registry is built from: (version, when read, the backend's
        #: templates, each project's user mixins, a token that changes only with them)
        self._registry_source: (
            tuple[int, float, list[Mixin], dict[str, list[Mixin]], object] | None
        ) = None
        self._registry_version: int | None = None
        self._registry_checked = float("-inf")
        self._registry_signal: int | None = None
        #: pages' entities as rendered, while they stay the same (Reads.render_page)
        self._pieces: dict[tuple[Hashable, str], tuple[Any, Registry, bytes]] = {}
        self._pieces_lock = threading.Lock()

    def _authorize(self, ctx: RequestContext, action: str, kind: str | None = None) -> None:
        """The one place where the service decides whether `ctx` may do `action` ("read",
        "create", "update", "delete", "act", "associate", "dissociate", "define_mixin",
        "remove_mixin") on entities of `kind` (a kind id; None for the whole model or for a
        collection of several kinds). Forbidden when it may not.

        The system's work and global administrators may do everything; `read` needs a role on
        the project (member or reader), everything else `member`. Which entities a context
        sees is not decided here: every read and write is scoped to `ctx.project` (see
        _visible). Every public method calls this first, so it also records `ctx` as the
        context of the call under way on this thread (_acting)."""
        self._local.ctx = ctx
        if ctx.is_admin:
            return
        allowed = ctx.can_read if action in READ_ACTIONS else ctx.can_write
        if allowed:
            return
        project = ctx.project_name or ctx.project or "(none)"
        what = action.replace("_", " ") + (f" {kind}" if kind else "")
        if ctx.can_read:  # a reader
            held = sorted(r for r in ctx.roles if r)
            plural = "s" if len(held) > 1 else ""
            raise errors.Forbidden(
                f"the role{plural} {' and '.join(held)} in project {project} may only read: "
                f"{what} needs the role member there; ask an administrator of project "
                f"{project} for it",
                code="read_only_role",
            )
        raise errors.Forbidden(
            f"you hold no role in project {project}, so you cannot {what} there; ask an "
            f"administrator for the role member (or reader, to read) in project {project}",
            code="no_role",
        )

    def authorize(self, ctx: RequestContext, action: str, kind: str | None = None) -> None:
        """Forbidden unless `ctx` may do `action` (as _authorize): for the EC2 front's records
        (occi.service.ec2_records), for a DryRun, which asks without doing, and for a front
        that asks before costly work of its own (making a key pair)."""
        self._authorize(ctx, action, kind)

    def _acting(self) -> RequestContext | None:
        """The context of the public call under way on this thread (set by _authorize)."""
        return getattr(self._local, "ctx", None)

    def _project(self) -> str | None:
        """The project the call under way works in (None: the system's, every project)."""
        ctx = self._acting()
        return ctx.project if ctx is not None else None

    @staticmethod
    def _visible(project: str | None, entity: Entity | None) -> Entity | None:
        """`entity`, or None when it belongs to another project than `project` (None: the
        system, which sees every project): to a context, another project's entity is exactly
        as absent as one that does not exist."""
        if entity is None or project is None or entity.project == project:
            return entity
        return None

    #: carries out claimed jobs on the backend, and brings stored states in line with the
    #: platform (occi.jobs); made by occi.service.Service
    executor: Executor
    reconciler: Reconciler
