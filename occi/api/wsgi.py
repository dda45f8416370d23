"""The WSGI entry point gunicorn loads (`occi.api.wsgi:application`), built from settings.

Each worker process builds its own store connections and backend after the fork.
"""

from __future__ import annotations

import falcon

from occi.api.app import SERVER, RequestLimits, create_app, with_canonical_headers
from occi.api.auth import AuthMiddleware
from occi.ec2.front import Ec2Front
from occi.identity import audit
from occi.identity.throttle import Throttle
from occi.inventory import shorthand
from occi.inventory.secrets import Cipher
from occi.inventory.service import InventoryService
from occi.jobs.runner import JobRunner
from occi.metrics import configure_logging
from occi.plugins import load_backend
from occi.service import Service
from occi.settings import Settings
from occi.store import make_store

#: seconds between deletions of audit events older than the audit_days setting
AUDIT_PURGE_INTERVAL = 3600.0


def build(
    settings: Settings, *, upgrade: bool = False, server_header: bool = True, run_jobs: bool = True
) -> tuple[falcon.App, Service]:
    """The app and its service. `upgrade`: bring the schema up to date and make or re-sync
    the one-cluster shorthand (occi.inventory.shorthand; `occi-server serve` does both before
    forking). `run_jobs` starts this process's job runner (heartbeats and worker threads);
    without it, requests run their own jobs."""
    store = make_store(settings.database_url, entity_cache=settings.entity_cache)
    if upgrade:  # a fresh or upgraded database (tests): its one-cluster shorthand too
        store.upgrade()
        shorthand.ensure(store, settings)
    backend = load_backend(settings.backend, settings.backend_settings())
    inventory = InventoryService(store, settings)
    service = Service(
        store,
        backend,
        max_page_size=settings.max_page_size,
        job_settings=settings.job_settings(),
        default_quotas=settings.default_quotas(),
        placement_strategy=settings.placement_strategy,
        default_zone=settings.default_zone,
        host_down_after=settings.host_down_after,
    )
    # the clusters' backends get their settings decrypted under this server's key, and a
    # change made through this server's admin API is seen by its next placement at once
    service.pool.settings_of = inventory.cluster_settings
    inventory.on_change = service.pool.invalidate
    # a host's maintenance waits for the moves of its computes, run here where they are free
    inventory.settle = lambda ids, timeout: service._runner().settle(ids, timeout)
    if run_jobs:
        runner = JobRunner(
            store,
            service.execute,
            service.job_settings,
            reconcile=service.reconcile if backend.reconcile_needed else None,
            events=backend.start_events,
        )
        if settings.audit_days > 0:
            runner.add_chore(
                "audit purge",
                AUDIT_PURGE_INTERVAL,
                lambda: audit.purge_if_due(store, settings.audit_days, AUDIT_PURGE_INTERVAL),
            )
        if settings.host_check_interval > 0:
            interval = settings.host_check_interval
            runner.add_chore("host monitor", interval, lambda: service.monitor.run_if_due(interval))
        runner.start()
        service.attach_runner(runner)
    ec2 = Ec2Front(
        service,
        lambda: Cipher.from_settings(settings),  # the key file is read at the first use
        region=settings.ec2_region,
        max_body=settings.max_body,
        base_url=settings.base_url,
        throttle=Throttle(settings.auth_fail_limit, settings.auth_fail_window),
    )
    app = create_app(
        service,
        max_body=settings.max_body,
        base_url=settings.base_url,
        server_header=server_header,
        max_discard=settings.max_discard,
        limits=RequestLimits.from_settings(settings),
        cors_origins=settings.cors_origins,
        auth=AuthMiddleware.from_settings(settings, store),
        inventory=inventory,
        ec2=ec2,
    )
    return app, service


def _application():
    settings = Settings.load()
    configure_logging(settings.log_level)
    app = build(settings, server_header=not _announce_through_gunicorn())[0]
    return with_canonical_headers(app)


def _announce_through_gunicorn() -> bool:
    """GFD.223 wants `OCCI/1.2` in the Server header. gunicorn always writes its own Server
    header first; make that one ours instead of sending two."""
    try:
        import gunicorn.http.wsgi as gunicorn_wsgi
    except ImportError:
        return False
    if not hasattr(gunicorn_wsgi, "SERVER"):
        return False
    gunicorn_wsgi.SERVER = SERVER
    return True


_APP = None


def __getattr__(name: str):
    """`application` is built on first access (gunicorn's, in each worker after the fork), so
    importing this module for `build` starts nothing."""
    global _APP
    if name == "application":
        if _APP is None:
            _APP = _application()
        return _APP
    raise AttributeError(name)
