"""Fixtures for API tests: the real app (store, simulator backend) behind falcon's TestClient."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from falcon import testing

from occi.api.wsgi import build
from occi.settings import Settings

INFRA = "http://schemas.ogf.org/occi/infrastructure#"
JSON = "application/occi+json"


class Api:
    """A thin client: JSON by default, text when asked, always through the real WSGI app."""

    def __init__(self, client: testing.TestClient, service):
        self.client = client
        self.service = service

    def request(
        self, method, path, *, body=None, headers=None, accept=JSON, ctype=None, params=None
    ):
        h = {"Accept": accept} if accept else {}
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            ctype = ctype or JSON
        if ctype:
            h["Content-Type"] = ctype
        h.update(headers or {})
        return self.client.simulate_request(method, path, body=body, headers=h, params=params)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def delete(self, path, body=None, **kw):
        return self.request("DELETE", path, body=body, **kw)

    def create(self, kind, attributes=None, mixins=(), links=(), **extra):
        doc = {
            "kind": INFRA + kind,
            "attributes": attributes or {},
            "mixins": list(mixins),
            **extra,
        }
        if links:
            doc["links"] = list(links)
        r = self.post(f"/{kind}/", doc)
        assert r.status_code == 201, r.text
        return r

    def path_of(self, response) -> str:
        return urlsplit(response.headers["location"]).path

    def count(self, collection: str) -> int:
        r = self.get(collection)
        assert r.status_code == 200, r.text
        doc = r.json
        return len(doc.get("resources", [])) + len(doc.get("links", []))


@pytest.fixture
def settings(tmp_path):
    return Settings.from_mapping(
        {
            "database_url": f"sqlite:///{tmp_path}/api.db",
            "auth": "none",
            "max_body": 65536,
            "max_page_size": 50,
        }
    )


@pytest.fixture
def api(settings):
    app, service = build(settings, upgrade=True)
    yield Api(testing.TestClient(app), service)
    if service.runner is not None:
        service.runner.stop()
    service.store.close()
    service.backend.close()
