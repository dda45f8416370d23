"""The WSGI entry point gunicorn loads (`occi.api.wsgi:application`), built from settings.

Each worker process builds its own store connections and backend after the fork.
"""

from __future__ import annotations

import logging

import falcon

from occi.api.app import create_app
from occi.plugins import load_backend
from occi.service import Service
from occi.settings import Settings
from occi.store import make_store


def build(settings: Settings, *, upgrade: bool = False) -> tuple[falcon.App, Service]:
    store = make_store(settings.database_url)
    if upgrade:
        store.upgrade()
    backend = load_backend(settings.backend, settings.backend_settings())
    service = Service(store, backend, max_page_size=settings.max_page_size)
    app = create_app(service, max_body=settings.max_body, base_url=settings.base_url)
    return app, service


def _application() -> falcon.App:
    settings = Settings.load()
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    return build(settings)[0]


application = _application()
