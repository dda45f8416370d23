"""OCCI semantics the client relies on: a creation carries a Kind (GFD.223), a refused request
changes nothing (GFD.224's state machine is checked first), images made by `save` belong to the
user, resource templates and sizes agree."""

from __future__ import annotations

import pytest

from tests.api.conftest import INFRA

ACTION = "http://schemas.ogf.org/occi/infrastructure/compute/action#"
CRTP = "http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#"
OS_TPL = "http://occi.simulator.local/os_tpl#"


def attrs(api, path):
    r = api.get(path)
    assert r.status_code == 200, r.text
    return r.json["attributes"]


def act(api, path, term, **params):
    return api.post(
        path,
        {"action": ACTION + term, "attributes": params},
        params={"action": term},
    )


# ---------------------------------------------------------------- item 7: a Kind is required
KINDLESS = [
    ("text/plain", "", {"X-OCCI-Attribute": 'occi.core.title="web", occi.compute.cores=2'}),
    ("text/occi", "", {"X-OCCI-Attribute": 'occi.core.title="web", occi.compute.cores=2'}),
    (
        "text/plain",
        'X-OCCI-Attribute: occi.core.title="web"\nX-OCCI-Attribute: occi.compute.cores=2\n',
        {},
    ),
    (
        "application/occi+json",
        '{"attributes": {"occi.core.title": "web", "occi.compute.cores": 2}}',
        {},
    ),
    (
        "application/occi+xml",
        '<resource xmlns="http://schemas.ogf.org/occi" title="web"/>',
        {},
    ),
]


@pytest.mark.parametrize(("ctype", "body", "headers"), KINDLESS)
def test_post_without_a_kind_is_400_and_creates_nothing(api, ctype, body, headers):
    r = api.post("/compute/", body=body, ctype=ctype, headers=headers)
    assert r.status_code == 400, r.text
    assert "kind" in r.json["error"]["message"].lower()
    assert api.count("/compute/") == 0


def test_put_of_a_new_entity_without_a_kind_is_400(api):
    r = api.put("/compute/c1", {"attributes": {"occi.core.title": "web"}})
    assert r.status_code == 400, r.text
    assert api.get("/compute/c1").status_code == 404
    r = api.put("/compute/c1", {"kind": INFRA + "compute", "attributes": {}})
    assert r.status_code == 201, r.text


def test_a_kindless_entity_among_several_creates_none(api):
    r = api.post(
        "/compute/",
        {
            "resources": [
                {"kind": INFRA + "compute", "attributes": {"occi.core.title": "a"}},
                {"attributes": {"occi.core.title": "b"}},
            ]
        },
    )
    assert r.status_code == 400, r.text
    assert api.count("/compute/") == 0


def test_inline_links_still_take_their_kind_from_the_target(api):
    net = api.path_of(api.create("network"))
    r = api.create("compute", links=[{"target": {"location": net}}])
    link = api.get(api.path_of(r)).json["links"][0]
    assert link["kind"] == INFRA + "networkinterface"
    # and a partial update of an entity needs no Kind
    path = api.path_of(r)
    r = api.post(path, {"attributes": {"occi.core.title": "renamed"}})
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------- item 15: refused = unchanged
def test_refused_action_changes_nothing(api):
    path = api.path_of(api.create("compute"))
    before = api.get(path)
    r = act(api, path, "stop")
    assert r.status_code == 409, r.text
    assert (
        "inactive" in r.json["error"]["message"] and "needs it active" in r.json["error"]["message"]
    )
    after = api.get(path)
    assert after.headers["etag"] == before.headers["etag"]
    assert after.json["attributes"] == before.json["attributes"]


def test_action_after_queued_actions_is_checked_against_where_they_lead(api):
    path = api.path_of(api.create("compute"))
    assert act(api, path, "start").status_code == 200
    assert act(api, path, "suspend").status_code == 200
    r = act(api, path, "suspend")
    assert r.status_code == 409 and "suspended" in r.json["error"]["message"]
    assert attrs(api, path)["occi.compute.state"] == "suspended"


def test_collection_action_over_mixed_states_changes_no_member(api):
    running = api.path_of(api.create("compute"))
    assert act(api, running, "start").status_code == 200
    idle = [api.path_of(api.create("compute")) for _ in range(2)]
    tags = {p: api.get(p).headers["etag"] for p in (running, *idle)}
    r = act(api, "/compute/", "start")
    assert r.status_code == 409, r.text
    message = r.json["error"]["message"]
    assert running in message and "none was changed" in message
    for p, tag in tags.items():
        assert api.get(p).headers["etag"] == tag
    assert [attrs(api, p)["occi.compute.state"] for p in idle] == ["inactive", "inactive"]
    # once every member can, the collection action goes through
    assert act(api, running, "stop").status_code == 200
    assert act(api, "/compute/", "start").status_code == 200
    assert all(attrs(api, p)["occi.compute.state"] == "active" for p in (running, *idle))


# ---------------------------------------------------------------- item 9: images, templates
def test_saved_image_belongs_to_the_user_and_can_be_deleted(api):
    path = api.path_of(api.create("compute", mixins=[OS_TPL + "debian12"]))
    r = act(api, path, "save", name="mine")
    assert r.status_code == 200, r.text
    image = r.json["scheme"] + r.json["term"]
    made = api.path_of(api.create("compute", mixins=[image]))
    assert image in {m.id for m in api.service.backend.provider_mixins()}

    r = api.delete("/-/", {"scheme": r.json["scheme"], "term": r.json["term"]})
    assert r.status_code == 200, r.text
    assert image not in {m["scheme"] + m["term"] for m in api.get("/-/").json["mixins"]}
    assert image not in {m.id for m in api.service.backend.provider_mixins()}  # platform too
    assert image not in api.get(made).json["mixins"]
    assert api.get("/mixin/os_tpl/mine/").status_code == 404
    # provider images and templates stay protected
    for scheme, term in ((OS_TPL, "debian12"), (CRTP, "small")):
        r = api.delete("/-/", {"scheme": scheme, "term": term})
        assert r.status_code == 403, r.text


def test_template_swap_keeps_immutable_attributes(api):
    path = api.path_of(api.create("compute", mixins=[CRTP + "small"]))
    assert attrs(api, path)["occi.compute.ephemeral_storage.size"] == 10.0
    r = api.post("/mixin/resource_tpl/large/", {"locations": [path]})
    assert r.status_code == 200, r.text
    doc = api.get(path).json
    assert doc["attributes"]["occi.compute.cores"] == 4  # resized
    assert doc["attributes"]["occi.compute.ephemeral_storage.size"] == 10.0  # immutable
    assert CRTP + "large" in doc["mixins"]
    # the same through a full replacement
    body = {**doc, "mixins": [CRTP + "mem_large"]}
    r = api.put(path, body)
    assert r.status_code == 200, r.text
    a = attrs(api, path)
    assert a["occi.compute.memory"] == 16.0 and a["occi.compute.ephemeral_storage.size"] == 10.0


def test_template_swap_does_not_give_an_immutable_attribute_to_a_compute_without_it(api):
    path = api.path_of(api.create("compute"))
    assert api.post("/mixin/resource_tpl/medium/", {"locations": [path]}).status_code == 200
    a = attrs(api, path)
    assert a["occi.compute.cores"] == 2 and "occi.compute.ephemeral_storage.size" not in a


def test_direct_resize_drops_the_resource_template(api):
    path = api.path_of(api.create("compute", mixins=[CRTP + "medium"]))
    # changes that agree with the template, or leave sizes alone, keep it
    assert api.post(path, {"attributes": {"occi.compute.cores": 2}}).status_code == 200
    assert api.post(path, {"attributes": {"occi.compute.hostname": "a1"}}).status_code == 200
    assert CRTP + "medium" in api.get(path).json["mixins"]
    r = api.post(path, {"attributes": {"occi.compute.memory": 6.0}})
    assert r.status_code == 200, r.text
    assert CRTP + "medium" not in r.json["mixins"]
    assert r.json["attributes"]["occi.compute.memory"] == 6.0
    assert CRTP + "medium" not in api.get(path).json["mixins"]
    # the template and a size in one request: the template's size wins, as at creation
    r = api.post(path, {"mixins": [CRTP + "large"], "attributes": {"occi.compute.cores": 8}})
    assert r.status_code == 200, r.text
    assert r.json["attributes"]["occi.compute.cores"] == 4 and CRTP + "large" in r.json["mixins"]


def test_saved_image_is_deleted_on_the_libvirt_test_driver():
    pytest.importorskip("libvirt")
    import uuid

    from occi import infrastructure as infra
    from occi.model import Resource
    from tests.backends.test_contract import libvirt_backend

    b = libvirt_backend()
    try:
        image = next(m.id for m in b.provider_mixins() if infra.OS_TPL.id in m.depends)
        c = Resource(
            infra.COMPUTE.id,
            "u-" + uuid.uuid4().hex[:12],
            mixins=[image],
            attributes={"occi.compute.cores": 1, "occi.compute.memory": 0.25},
        )
        b.create(c)
        term = "sem-" + uuid.uuid4().hex[:8]
        saved = b.action(c, "save", {"name": term}).mixin
        assert saved is not None and saved.id in {m.id for m in b.provider_mixins()}
        b.delete_image(saved)
        assert saved.id not in {m.id for m in b.provider_mixins()}
        b.delete_image(saved)  # gone already is fine
        b.delete(c)
    finally:
        b.close()
