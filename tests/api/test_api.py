"""The OCCI HTTP verb matrix through the real app (store on SQLite, simulator backend)."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import INFRA, JSON

CRTP = "http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#"
OS_TPL = "http://occi.simulator.local/os_tpl#"
#: the zone the server placed a compute in (the embedded one-cluster shorthand's)
ZONE = "http://occi.simulator.local/availability_zone#default"
ACTION = "http://schemas.ogf.org/occi/infrastructure/compute/action#"
TEXT_COMPUTE_KIND = f'compute; scheme="{INFRA}"; class="kind"'


def attrs(api, path):
    r = api.get(path)
    assert r.status_code == 200, r.text
    return r.json["attributes"]


# ---------------------------------------------------------------- discovery
def test_query_interface_json_lists_every_standard_category(api):
    r = api.get("/-/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/occi+json")
    doc = r.json
    kinds = {k["scheme"] + k["term"]: k for k in doc["kinds"]}
    for term in ("compute", "storage", "network", "networkinterface", "storagelink"):
        assert INFRA + term in kinds
    assert kinds[INFRA + "compute"]["location"] == "/compute/"
    assert kinds[INFRA + "compute"]["parent"] == "http://schemas.ogf.org/occi/core#resource"
    cores = kinds[INFRA + "compute"]["attributes"]["occi.compute.cores"]
    assert cores["mutable"] is True and cores["type"] == "number"
    mixins = {m["scheme"] + m["term"] for m in doc["mixins"]}
    assert {
        CRTP + "small",
        CRTP + "medium",
        CRTP + "large",
        INFRA + "os_tpl",
        INFRA + "resource_tpl",
        OS_TPL + "debian12",
    } <= mixins
    actions = {a["scheme"] + a["term"] for a in doc["actions"]}
    assert {ACTION + t for t in ("start", "stop", "restart", "suspend", "save")} <= actions


def test_query_interface_text_and_well_known_mirror(api):
    a = api.get("/-/", accept="text/plain")
    b = api.get("/.well-known/org/ogf/occi/-/", accept="text/plain")
    assert a.status_code == b.status_code == 200
    assert a.text == b.text
    assert (
        'Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; class="kind"'
        in a.text
    )
    assert 'location="/compute/"' in a.text


def test_query_interface_category_filter(api):
    r = api.get("/-/", headers={"Category": f'storage; scheme="{INFRA}"; class="kind"'})
    assert r.status_code == 200
    kinds = [k["term"] for k in r.json["kinds"]]
    assert kinds == ["storage"]
    assert {a["term"] for a in r.json["actions"]} == {"online", "offline"}
    assert api.get("/-/", params={"category": "network"}).json["kinds"][0]["term"] == "network"


def test_server_header_and_accept_advertised(api):
    r = api.get("/-/")
    assert "OCCI/1.2" in r.headers["server"]
    for mt in ("text/plain", "text/occi", "text/uri-list", "application/occi+json"):
        assert mt in r.headers["accept"]


def test_star_accept_gives_text_plain(api):
    r = api.get("/-/", accept="*/*")
    assert r.headers["content-type"].startswith("text/plain")
    r = api.get("/-/", accept=None)
    assert r.headers["content-type"].startswith("text/plain")


# ---------------------------------------------------------------- create and templates
def test_create_compute_with_templates(api):
    r = api.create(
        "compute",
        {"occi.core.title": "web", "occi.compute.hostname": "web1"},
        mixins=[CRTP + "medium", OS_TPL + "debian12"],
    )
    assert r.status.startswith("201 Created")
    assert r.headers["location"].startswith("http://")
    path = api.path_of(r)
    assert path.startswith("/compute/")
    doc = api.get(path).json
    a = doc["attributes"]
    assert a["occi.compute.cores"] == 2 and a["occi.compute.memory"] == 2.0
    assert a["occi.compute.state"] == "inactive"
    assert a["occi.compute.hostname"] == "web1"
    assert doc["title"] == "web"
    assert set(doc["mixins"]) == {CRTP + "medium", OS_TPL + "debian12", ZONE}
    assert ACTION + "start" in doc["actions"]


def test_resource_template_overrides_client_sizes(api):
    r = api.create("compute", {"occi.compute.cores": 8}, mixins=[CRTP + "small"])
    assert attrs(api, api.path_of(r))["occi.compute.cores"] == 1


def test_create_in_text_plain_with_headers_like_curl(api):
    r = api.post(
        "/compute/",
        body="",
        accept="text/plain",
        ctype="text/plain",
        headers={
            "Category": f'{TEXT_COMPUTE_KIND}, large; scheme="{CRTP}"; class="mixin"',
            "X-OCCI-Attribute": 'occi.core.title="db", occi.compute.hostname="db1"',
        },
    )
    assert r.status_code == 201, r.text
    path = api.path_of(r)
    text = api.get(path, accept="text/plain").text
    assert "X-OCCI-Attribute: occi.compute.cores=4" in text
    assert 'X-OCCI-Attribute: occi.compute.hostname="db1"' in text
    assert "?action=start>" in text


def test_text_occi_renders_in_headers(api):
    r = api.create("compute", {"occi.compute.cores": 3})
    g = api.get(api.path_of(r), accept="text/occi")
    assert g.status_code == 200
    assert g.text.strip() == "OK"
    assert "occi.compute.cores=3" in g.headers["x-occi-attribute"]
    assert "compute" in g.headers["category"]


def test_client_supplied_id_is_honoured_and_unique(api):
    r = api.create("compute", {"occi.core.id": "vm-42"})
    assert api.path_of(r) == "/compute/vm-42"
    r2 = api.post("/compute/", {"kind": INFRA + "compute", "id": "vm-42"})
    assert r2.status_code == 409
    assert "vm-42" in r2.json["error"]["message"]


# ---------------------------------------------------------------- actions and states
def test_compute_lifecycle_actions(api):
    path = api.path_of(api.create("compute"))
    r = api.post(path, {"action": ACTION + "start"}, params={"action": "start"})
    assert r.status_code == 200, r.text
    assert r.json["attributes"]["occi.compute.state"] == "active"
    r = api.post(
        path,
        {"action": ACTION + "suspend", "attributes": {"method": "suspend"}},
        params={"action": "suspend"},
    )
    assert r.json["attributes"]["occi.compute.state"] == "suspended"
    r = api.post(path, None, params={"action": "start"})
    assert r.json["attributes"]["occi.compute.state"] == "active"
    r = api.post(
        path,
        body="",
        ctype="text/plain",
        params={"action": "stop"},
        headers={
            "Category": f'stop; scheme="{ACTION}"; class="action"',
            "X-OCCI-Attribute": 'method="poweroff"',
        },
    )
    assert r.status_code == 200, r.text
    assert attrs(api, path)["occi.compute.state"] == "inactive"


def test_impossible_transition_is_409_and_state_unchanged(api):
    path = api.path_of(api.create("compute"))
    r = api.post(path, {"action": ACTION + "suspend"}, params={"action": "suspend"})
    assert r.status_code == 409
    assert r.json["error"]["message"]
    assert attrs(api, path)["occi.compute.state"] == "inactive"


def test_bad_action_parameter_and_unknown_action(api):
    path = api.path_of(api.create("compute"))
    api.post(path, None, params={"action": "start"})
    r = api.post(
        path,
        {"action": ACTION + "stop", "attributes": {"method": "explode"}},
        params={"action": "stop"},
    )
    assert r.status_code == 400 and "method" in r.json["error"]["message"]
    r = api.post(path, None, params={"action": "fly"})
    assert r.status_code == 400 and "start" in r.json["error"]["message"]
    assert attrs(api, path)["occi.compute.state"] == "active"


def test_save_returns_new_os_template(api):
    path = api.path_of(api.create("compute", mixins=[OS_TPL + "debian12"]))
    api.post(path, None, params={"action": "start"})
    r = api.post(
        path,
        {"action": ACTION + "save", "attributes": {"name": "golden"}},
        params={"action": "save"},
    )
    assert r.status_code == 200, r.text
    mixin = r.json
    assert INFRA + "os_tpl" in mixin["depends"]
    new_id = mixin["scheme"] + mixin["term"]
    listed = {m["scheme"] + m["term"] for m in api.get("/-/").json["mixins"]}
    assert new_id in listed
    r = api.create("compute", mixins=[new_id])
    assert new_id in api.get(api.path_of(r)).json["mixins"]


def test_collection_action(api):
    paths = [api.path_of(api.create("compute")) for _ in range(3)]
    r = api.post("/compute/", {"action": ACTION + "start"}, params={"action": "start"})
    assert r.status_code == 200, r.text
    assert all(attrs(api, p)["occi.compute.state"] == "active" for p in paths)


def test_storage_and_network(api):
    r = api.post("/storage/", {"kind": INFRA + "storage", "attributes": {}})
    assert r.status_code == 400 and "occi.storage.size" in r.json["error"]["message"]
    sp = api.path_of(api.create("storage", {"occi.storage.size": 10.0}))
    assert attrs(api, sp)["occi.storage.state"] == "offline"
    assert (
        api.post(sp, None, params={"action": "online"}).json["attributes"]["occi.storage.state"]
        == "online"
    )
    r = api.post(sp, {"attributes": {"occi.storage.size": 20}})
    assert r.status_code == 200, r.text
    assert attrs(api, sp)["occi.storage.size"] == 20.0
    netmix = "http://schemas.ogf.org/occi/infrastructure/network#ipnetwork"
    np_ = api.path_of(
        api.create(
            "network",
            {"occi.network.address": "10.0.0.0/24", "occi.network.vlan": 12},
            mixins=[netmix],
        )
    )
    a = attrs(api, np_)
    assert a["occi.network.state"] == "inactive" and a["occi.network.address"] == "10.0.0.0/24"
    assert (
        api.post(np_, None, params={"action": "up"}).json["attributes"]["occi.network.state"]
        == "active"
    )
    assert (
        api.post(np_, None, params={"action": "down"}).json["attributes"]["occi.network.state"]
        == "inactive"
    )


# ---------------------------------------------------------------- links
def test_inline_links_on_create_and_rendering_on_source(api):
    net = api.path_of(api.create("network"))
    disk = api.path_of(api.create("storage", {"occi.storage.size": 5}))
    r = api.create(
        "compute",
        links=[
            {"kind": INFRA + "networkinterface", "target": {"location": net}},
            {"target": {"location": disk}, "attributes": {"occi.storagelink.mountpoint": "/data"}},
        ],
    )
    doc = api.get(api.path_of(r)).json
    kinds = sorted(ln["kind"] for ln in doc["links"])
    assert kinds == [INFRA + "networkinterface", INFRA + "storagelink"]
    nic = next(ln for ln in doc["links"] if ln["kind"].endswith("networkinterface"))
    assert nic["target"]["location"] == net
    assert nic["attributes"]["occi.networkinterface.mac"]
    assert api.count("/link/networkinterface/") == 1
    text = api.get(api.path_of(r), accept="text/plain").text
    assert f"Link: <{net}>" in text


def test_inline_link_in_text_link_header(api):
    net = api.path_of(api.create("network"))
    r = api.post(
        "/compute/",
        body="",
        ctype="text/plain",
        accept="text/plain",
        headers={
            "Category": TEXT_COMPUTE_KIND,
            "Link": f'<{net}>; rel="{INFRA}network"; category="{INFRA}networkinterface"; '
            'occi.networkinterface.mac="00:11:22:33:44:55"',
        },
    )
    assert r.status_code == 201, r.text
    doc = api.get(api.path_of(r)).json
    assert doc["links"][0]["attributes"]["occi.networkinterface.mac"] == "00:11:22:33:44:55"


def test_link_creation_and_validation(api):
    comp = api.path_of(api.create("compute"))
    disk = api.path_of(api.create("storage", {"occi.storage.size": 1}))
    r = api.post(
        "/link/storagelink/",
        {"kind": INFRA + "storagelink", "source": {"location": comp}, "target": {"location": disk}},
    )
    assert r.status.startswith("201 Created"), r.text
    link = api.get(api.path_of(r)).json
    assert link["source"]["location"] == comp and link["target"]["location"] == disk
    assert link["attributes"]["occi.storagelink.deviceid"]
    bad = api.post(
        "/link/storagelink/",
        {"kind": INFRA + "storagelink", "source": {"location": comp}, "target": {"location": comp}},
    )
    assert bad.status_code == 400
    missing = api.post(
        "/link/storagelink/",
        {
            "kind": INFRA + "storagelink",
            "source": {"location": comp},
            "target": {"location": "/storage/nope"},
        },
    )
    assert missing.status_code == 400
    api.delete(disk)
    assert api.get(api.path_of(r)).status_code == 404
    assert api.get(comp).json.get("links", []) == []


# ---------------------------------------------------------------- update and replace
def test_partial_update_changes_only_what_is_given(api):
    path = api.path_of(
        api.create("compute", {"occi.compute.hostname": "a", "occi.compute.cores": 2})
    )
    r = api.post(path, {"attributes": {"occi.compute.cores": 4}})
    assert r.status_code == 200, r.text
    a = attrs(api, path)
    assert a["occi.compute.cores"] == 4 and a["occi.compute.hostname"] == "a"


def test_put_creates_then_replaces_keeping_links(api):
    r = api.put(
        "/compute/fixed-1",
        {"kind": INFRA + "compute", "attributes": {"occi.compute.hostname": "one"}},
    )
    assert r.status.startswith("201 Created"), r.text
    assert r.headers["location"].endswith("/compute/fixed-1")
    net = api.path_of(api.create("network"))
    api.post(
        "/link/networkinterface/",
        {
            "kind": INFRA + "networkinterface",
            "source": {"location": "/compute/fixed-1"},
            "target": {"location": net},
        },
    )
    full = api.get("/compute/fixed-1").json
    full["attributes"]["occi.compute.hostname"] = "two"
    full.pop("links")
    r = api.put("/compute/fixed-1", full)  # repeats immutable attributes with current values
    assert r.status_code == 200, r.text
    doc = api.get("/compute/fixed-1").json
    assert doc["attributes"]["occi.compute.hostname"] == "two"
    assert len(doc["links"]) == 1


def test_changing_immutable_attribute_is_refused(api):
    path = api.path_of(api.create("compute"))
    r = api.post(path, {"attributes": {"occi.compute.state": "active"}})
    assert r.status_code == 403
    assert "immutable" in r.json["error"]["message"]
    assert attrs(api, path)["occi.compute.state"] == "inactive"
    r = api.post(path, {"kind": INFRA + "storage"})
    assert r.status_code == 400


def test_an_immutable_attribute_is_given_once(api):
    # one rule for creation and replacement: an immutable value is given once. At creation a
    # server-set one (with a default) may only be repeated; the state message is the server's
    r = api.post(
        "/compute/", {"kind": INFRA + "compute", "attributes": {"occi.compute.state": "active"}}
    )
    assert r.status_code == 403, r.text
    assert "immutable" in r.json["error"]["message"]
    assert api.count("/compute/") == 0
    made = api.create("compute", {"occi.compute.state.message": "made by hand"})
    assert made.json["attributes"].get("occi.compute.state.message") != "made by hand"
    path = api.path_of(api.create("compute", {"occi.compute.state": "inactive"}))
    r = api.post(path, {"attributes": {"occi.compute.state.message": "made by hand"}})
    assert r.status_code == 403, r.text


# ---------------------------------------------------------------- user mixins and mixin collections
def test_user_mixin_lifecycle(api):
    r = api.post(
        "/-/",
        body="",
        ctype="text/plain",
        headers={
            "Category": 'my_stuff; scheme="http://example.com/occi/my_stuff#"; class="mixin"; '
            'location="/my_stuff/"'
        },
    )
    assert r.status_code == 200, r.text
    mid = "http://example.com/occi/my_stuff#my_stuff"
    assert mid in {m["scheme"] + m["term"] for m in api.get("/-/").json["mixins"]}
    a, b, c = (api.path_of(api.create("compute")) for _ in range(3))
    r = api.post(
        "/my_stuff/",
        body="",
        ctype="text/plain",
        headers={"X-OCCI-Location": f"http://falconframework.org{a}, {b}"},
    )
    assert r.status_code == 200, r.text
    assert mid in api.get(a).json["mixins"]
    assert sorted(
        e["location"].split("//", 1)[1].split("/", 1)[1]
        for e in api.get("/my_stuff/").json["resources"]
    ) == sorted([a[1:], b[1:]])
    r = api.put("/my_stuff/", {"locations": [c]})
    assert r.status_code == 200, r.text
    assert mid not in api.get(a).json["mixins"] and mid in api.get(c).json["mixins"]
    r = api.delete("/my_stuff/", body=json.dumps([c]), ctype=JSON)
    assert r.status_code == 200
    assert mid not in api.get(c).json["mixins"]
    api.post("/my_stuff/", {"locations": [a]})
    r = api.delete("/-/", {"scheme": "http://example.com/occi/my_stuff#", "term": "my_stuff"})
    assert r.status_code == 200, r.text
    assert mid not in api.get(a).json["mixins"]
    assert api.get("/my_stuff/").status_code == 404


def test_provider_mixin_cannot_be_deleted_or_redefined(api):
    r = api.delete("/-/", {"scheme": CRTP, "term": "small"})
    assert r.status_code == 403
    r = api.post("/-/", {"scheme": INFRA, "term": "mine", "location": "/mine/"})
    assert r.status_code == 400 and "reserved" in r.json["error"]["message"]
    r = api.post("/-/", {"scheme": "http://ex.com/a#", "term": "x", "location": "/compute/"})
    assert r.status_code == 409


def test_resource_template_association_resizes(api):
    path = api.path_of(api.create("compute", mixins=[CRTP + "small"]))
    r = api.post("/mixin/resource_tpl/large/", {"locations": [path]})
    assert r.status_code == 200, r.text
    doc = api.get(path).json
    assert doc["attributes"]["occi.compute.cores"] == 4
    assert CRTP + "large" in doc["mixins"] and CRTP + "small" not in doc["mixins"]


# ---------------------------------------------------------------- listing, filtering, pagination
def test_filters_and_pagination(api):
    for i in range(7):
        api.create("compute", {"occi.compute.cores": 1 + i % 2})
    api.create("storage", {"occi.storage.size": 1})
    assert api.count("/compute/") == 7
    assert api.count("/") == 8
    r = api.get("/compute/", params={"attribute": "occi.compute.cores", "value": "2"})
    assert len(r.json["resources"]) == 3
    r = api.get("/compute/", headers={"X-OCCI-Attribute": "occi.compute.cores=1"})
    assert len(r.json["resources"]) == 4
    r = api.get("/", params={"category": "storage"})
    assert len(r.json["resources"]) == 1
    pages = [
        api.get("/compute/", params={"page": p, "number": 3}).json["resources"]
        for p in (1, 2, 3, 4)
    ]
    assert [len(p) for p in pages] == [3, 3, 1, 0]
    ids = [e["id"] for p in pages for e in p]
    assert len(set(ids)) == 7
    r = api.get("/compute/", params={"page": 1, "number": 51})
    assert r.status_code == 413
    text = api.get("/compute/", accept="text/plain").text
    assert text.count("X-OCCI-Location: http://") == 7
    uris = api.get("/compute/", accept="text/uri-list").text.split()
    assert len(uris) == 7 and all(u.startswith("http://") for u in uris)


def test_delete_entity_and_collection(api):
    p = api.path_of(api.create("compute"))
    assert api.delete(p).status_code == 200
    assert api.get(p).status_code == 404
    for _ in range(3):
        api.create("compute")
    assert api.delete("/compute/").status_code == 200
    assert api.count("/compute/") == 0


# ---------------------------------------------------------------- protocol errors
def test_version_acceptance_and_methods(api):
    r = api.get("/-/", headers={"User-Agent": "future-client/1.0 OCCI/1.3"})
    assert r.status_code == 501
    r = api.get("/-/", headers={"User-Agent": "curl/8 OCCI/1.1"})
    assert r.status_code == 200
    r = api.get("/-/", accept="image/png")
    assert r.status.startswith("406 Not Acceptable")
    r = api.put("/compute/")
    assert r.status.startswith("405 Method Not Allowed")
    assert "POST" in r.headers["allow"]
    r = api.get("/compute/nothing-here")
    assert r.status.startswith("404 Not Found")
    assert r.json["error"]["code"] == 404
    r = api.get("/compute/" + "x", accept="text/uri-list")
    assert r.status_code in (404, 406)


@pytest.mark.parametrize(
    "body, ctype, fragment",
    [
        ('{"kind": "http://schemas.ogf.org/occi/infrastructure#compute", ', JSON, ""),
        ('{"kind": "http://example.com/nope#thing"}', JSON, "nope"),
        (
            '{"kind": "http://schemas.ogf.org/occi/infrastructure#compute", "attributes": {"occi.compute.cores": "many"}}',
            JSON,
            "occi.compute.cores",
        ),
        (
            '{"kind": "http://schemas.ogf.org/occi/infrastructure#compute", "attributes": {"occi.compute.bogus": 1}}',
            JSON,
            "occi.compute.bogus",
        ),
        (
            '{"kind": "http://schemas.ogf.org/occi/infrastructure#compute", "mixins": ["http://schemas.ogf.org/occi/infrastructure/network#ipnetwork"]}',
            JSON,
            "apply",
        ),
        (
            '{"kind": "http://schemas.ogf.org/occi/infrastructure#compute", "mixins": ["http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#small", "http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#large"]}',
            JSON,
            "one",
        ),
        ("[1, 2", JSON, ""),
        (
            '{"kind": "http://schemas.ogf.org/occi/infrastructure#compute", "attributes": {"occi.compute.memory": 1'
            + "0" * 400
            + "}}",
            JSON,
            "occi.compute.memory",
        ),
        (
            '{"kind": "http://schemas.ogf.org/occi/infrastructure#storage", "attributes": {"occi.storage.size": 1'
            + "0" * 5000
            + "}}",
            JSON,
            "",
        ),
        (
            'Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; class="kind"\nLink: <<>>;;',
            "text/plain",
            "",
        ),
        ("\xff\xfe", JSON, ""),
        ('Category: compute; class="kind"', "text/plain", "scheme"),
        (
            'Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; class="kind"\nX-OCCI-Attribute: occi.compute.cores',
            "text/plain",
            "",
        ),
    ],
)
def test_bad_input_is_4xx_in_client_rendering_and_changes_nothing(api, body, ctype, fragment):
    before = api.count("/")
    r = api.post("/compute/", body=body, ctype=ctype)
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"].startswith("application/occi+json")
    err = r.json["error"]
    assert err["code"] == r.status_code
    assert fragment in err["message"]
    assert api.count("/") == before


def test_bad_input_text_rendering_and_unknown_content_type(api):
    r = api.post("/compute/", body="<compute/>", ctype="image/png", accept="text/plain")
    assert r.status_code == 415
    assert r.headers["content-type"].startswith("text/plain")
    assert "Content-Type" in r.text


def test_oversized_body_is_413(api):
    big = json.dumps({"kind": INFRA + "compute", "title": "x" * 70000})
    r = api.post("/compute/", body=big, ctype=JSON)
    assert r.status.startswith("413")
    assert api.count("/") == 0


def test_inline_link_failure_rolls_back_the_resource(api):
    before = api.count("/")
    r = api.post(
        "/compute/",
        {
            "kind": INFRA + "compute",
            "links": [
                {"target": {"location": "/network/absent"}, "kind": INFRA + "networkinterface"}
            ],
        },
    )
    assert r.status_code == 400
    assert api.count("/") == before


def test_core_link_to_a_third_party_uri(api):
    comp = api.path_of(api.create("compute"))
    r = api.post(
        "/link/",
        {
            "kind": "http://schemas.ogf.org/occi/core#link",
            "source": {"location": comp},
            "target": {"location": "https://other.example.org/storage/9"},
        },
    )
    assert r.status_code == 201, r.text
    doc = api.get(comp).json
    assert doc["links"][0]["target"]["location"] == "https://other.example.org/storage/9"


def test_percent_encoded_path_is_decoded_once(api):
    r = api.put("/compute/a%252Fb", {"kind": INFRA + "compute"})
    assert r.status_code == 400  # '%' is not allowed in an id; never read as /compute/a/b
