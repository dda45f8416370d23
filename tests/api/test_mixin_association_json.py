"""Associating entities with a mixin in JSON with GFD.223's entity collection rendering:
GFD.226 resources and links named by "kind" and "id" only (the schema requires no location)."""

from __future__ import annotations

import pytest

from tests.api.conftest import INFRA

CRTP = "http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#"
TAG = "http://example.com/occi/tags#"


def _ref(doc: dict) -> dict:
    """An entity as GFD.226 names it: kind and id, nothing else."""
    return {"kind": doc["kind"], "id": doc["id"]}


def _members(api, path: str) -> set[str]:
    doc = api.get(path).json
    return {e["id"] for e in doc.get("resources", []) + doc.get("links", [])}


@pytest.fixture
def tagged(api):
    r = api.post("/-/", {"mixins": [{"scheme": TAG, "term": "web", "location": "/tags/web/"}]})
    assert r.status_code == 200, r.text
    net = api.path_of(api.create("network"))
    computes = [
        api.create(
            "compute", links=[{"kind": INFRA + "networkinterface", "target": {"location": net}}]
        ).json
        for _ in range(3)
    ]
    link = computes[0]["links"][0]
    return computes, link


def test_post_put_delete_on_a_user_mixin_by_kind_and_id(api, tagged):
    (a, b, c), link = tagged
    r = api.post("/tags/web/", {"resources": [_ref(a), _ref(b)], "links": [_ref(link)]})
    assert r.status_code == 200, r.text
    assert _members(api, "/tags/web/") == {a["id"], b["id"], link["id"]}
    assert TAG + "web" in api.get(f"/compute/{a['id']}").json["mixins"]
    r = api.put("/tags/web/", {"resources": [_ref(c)]})
    assert r.status_code == 200, r.text
    assert _members(api, "/tags/web/") == {c["id"]}
    api.post("/tags/web/", {"resources": [_ref(a)]})
    r = api.delete("/tags/web/", {"resources": [_ref(c)]})
    assert r.status_code == 200, r.text
    assert _members(api, "/tags/web/") == {a["id"]}
    # a whole rendering from GET works as it is (it carries kind and id)
    r = api.post("/tags/web/", {"resources": [api.get(f"/compute/{b['id']}").json]})
    assert r.status_code == 200, r.text
    assert _members(api, "/tags/web/") == {a["id"], b["id"]}


def test_template_association_by_kind_and_id(api, tagged):
    (a, b, _), _ = tagged
    r = api.post("/mixin/resource_tpl/large/", {"resources": [_ref(a)]})
    assert r.status_code == 200, r.text
    doc = api.get(f"/compute/{a['id']}").json
    assert CRTP + "large" in doc["mixins"] and doc["attributes"]["occi.compute.cores"] == 4
    r = api.put("/mixin/resource_tpl/small/", {"resources": [_ref(a), _ref(b)]})
    assert r.status_code == 200, r.text
    assert _members(api, "/mixin/resource_tpl/small/") == {a["id"], b["id"]}
    assert CRTP + "large" not in api.get(f"/compute/{a['id']}").json["mixins"]
    r = api.delete("/mixin/resource_tpl/small/", {"resources": [_ref(b)]})
    assert r.status_code == 200, r.text
    assert _members(api, "/mixin/resource_tpl/small/") == {a["id"]}


def test_kind_and_id_that_name_nothing_get_a_400(api, tagged):
    (a, _, _), _ = tagged
    r = api.post("/tags/web/", {"resources": [{"kind": INFRA + "storage", "id": a["id"]}]})
    assert r.status_code == 400 and "no entity exists at /storage/" in r.text
    r = api.post("/tags/web/", {"resources": [{"kind": "http://x.org/y#z", "id": a["id"]}]})
    assert r.status_code == 400 and "not a kind" in r.text
    r = api.post("/tags/web/", {"resources": [{"kind": INFRA + "compute"}]})
    assert r.status_code == 400 and '"kind" and an "id"' in r.json["error"]["message"]
