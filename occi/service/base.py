"""What every room of the service shares: the store, the backend, the settings, the job runner.

The rooms (categories, reads, work, links, entities, actions, mixins) each add their methods on
top of this, one above the other, and occi.service.Service is the whole.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from backends.base import Backend
from occi.context import RequestContext
from occi.jobs.execution import Executor
from occi.jobs.reconcile import Reconciler
from occi.jobs.runner import JobRunner, JobSettings
from occi.registry import Registry
from occi.store.base import Store


class ServiceBase:
    def __init__(
        self,
        store: Store,
        backend: Backend,
        *,
        max_page_size: int = 1000,
        job_settings: JobSettings | None = None,
        default_quotas: Mapping[str, int] | None = None,
    ):
        self.store = store
        #: a project's limits where it has none of its own (Settings.default_quotas)
        self.default_quotas: dict[str, int] = dict(default_quotas or {})
        self.backend = backend
        self.max_page_size = max_page_size
        self.job_settings = job_settings or JobSettings()
        self.runner: JobRunner | None = None
        self._local = threading.local()
        self._registry_cache: tuple[int, float, Registry] | None = None
        self._registry_checked = float("-inf")
        self._registry_signal: int | None = None

    def _authorize(self, ctx: RequestContext, action: str, kind: str | None = None) -> None:
        """The one place where the service will decide whether `ctx` may do `action` ("read",
        "create", "update", "delete", "act", "associate", "dissociate", "define_mixin",
        "remove_mixin") on entities of `kind` (a kind id; None for the whole model or for a
        collection of several kinds). Identities are not there yet: everything is allowed."""
        return None

    #: carries out claimed jobs on the backend, and brings stored states in line with the
    #: platform (occi.jobs); made by occi.service.Service
    executor: Executor
    reconciler: Reconciler
