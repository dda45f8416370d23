"""The JSON rendering (GFD.226): golden renderings, parsing of spec and peer documents, errors.

Regenerate the golden files with `OCCI_REGEN_GOLDEN=1 pytest tests/test_rendering_json.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from occi import infrastructure as infra
from occi.model import (
    ENUM,
    INTEGER,
    NUMBER,
    STRING,
    ActionInvocation,
    AttributeDef,
    CategoryCollection,
    Link,
    Mixin,
    Resource,
)
from occi.registry import Registry
from rendering.base import Context, Message, ParseError
from rendering.json_rendering import JsonRendering, attribute_description

DATA = Path(__file__).parent / "data" / "json"
EXAMPLES = DATA / "examples"
BASE = "http://localhost:8080"
CTX = Context(BASE)
R = JsonRendering()
REGEN = os.environ.get("OCCI_REGEN_GOLDEN") == "1"


def body_of(rendered) -> bytes:
    b = rendered.body
    return b if isinstance(b, bytes) else b"".join(b)


def msg(doc, base: str = BASE) -> Message:
    if isinstance(doc, (dict, list)):
        doc = json.dumps(doc)
    if isinstance(doc, str):
        doc = doc.encode("utf-8")
    return Message(headers={"content-type": "application/occi+json"}, body=doc, base_url=base)


def example(name: str) -> Message:
    return msg((EXAMPLES / name).read_bytes(), base="http://example.org:8080")


def check_golden(name: str, rendered) -> dict:
    assert rendered.content_type == "application/occi+json"
    raw = body_of(rendered)
    doc = json.loads(raw.decode("utf-8"))
    path = DATA / name
    if REGEN:
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert path.exists(), f"no golden file {name}: run with OCCI_REGEN_GOLDEN=1"
    assert doc == json.loads(path.read_text(encoding="utf-8")), f"differs from golden {name}"
    return doc


# ------------------------------------------------------------------ test data
def compute() -> Resource:
    nic = Link(
        kind=infra.NETWORKINTERFACE.id,
        id="nic-1",
        title="public",
        mixins=[infra.IPNETWORKINTERFACE.id],
        attributes={
            "occi.networkinterface.interface": "eth0",
            "occi.networkinterface.mac": "02:00:93:e4:f2:a3",
            "occi.networkinterface.address": "192.168.0.10",
            "occi.networkinterface.allocation": "static",
            "occi.networkinterface.state": "active",
        },
        location="/link/networkinterface/nic-1",
        source="/compute/c-1",
        target="/network/n-1",
        source_kind=infra.COMPUTE.id,
        target_kind=infra.NETWORK.id,
    )
    return Resource(
        kind=infra.COMPUTE.id,
        id="c-1",
        title="web server ünicode",
        summary="the front end",
        mixins=["http://localhost:8080/occi/os_tpl#debian12", infra.CRTP_TEMPLATES[0].id],
        attributes={
            "occi.compute.cores": 2,
            "occi.compute.memory": 4.0,
            "occi.compute.architecture": "x64",
            "occi.compute.hostname": "web",
            "occi.compute.state": "active",
            "occi.compute.state.message": None,
            "com.example.tags": ["a", "b"],
            "com.example.meta": {"k": "v", "n": 1},
            "com.example.flag": True,
        },
        location="/compute/c-1",
        actions=[infra.STOP.id, infra.RESTART.id, infra.SUSPEND.id, infra.SAVE.id],
        links=[nic],
    )


def storagelink() -> Link:
    return Link(
        kind=infra.STORAGELINK.id,
        id="sl-1",
        attributes={"occi.storagelink.deviceid": "vdb", "occi.storagelink.state": "inactive"},
        location="/link/storagelink/sl-1",
        source="/compute/c-1",
        target="http://other.example.org/storage/s-9",
        source_kind=infra.COMPUTE.id,
    )


def storage(i: int) -> Resource:
    return Resource(
        kind=infra.STORAGE.id,
        id=f"s-{i}",
        title=f"disk {i}",
        attributes={"occi.storage.size": float(i), "occi.storage.state": "online"},
        location=f"/storage/s-{i}",
        actions=[infra.OFFLINE.id],
    )


# ------------------------------------------------------------------ golden renderings
def test_golden_query_interface():
    doc = check_golden("query_interface.json", R.render_categories(Registry().collection(), CTX))
    assert set(doc) == {"kinds", "mixins", "actions"}
    compute_kind = next(k for k in doc["kinds"] if k["term"] == "compute")
    assert compute_kind["parent"] == "http://schemas.ogf.org/occi/core#resource"
    assert compute_kind["location"] == "/compute/"
    cores = compute_kind["attributes"]["occi.compute.cores"]
    assert cores["type"] == "number" and cores["pattern"]["type"] == "integer"
    assert cores["pattern"]["minimum"] == 1 and cores["default"] == 1
    arch = compute_kind["attributes"]["occi.compute.architecture"]
    assert arch["type"] == "string" and arch["pattern"]["enum"] == ["x86", "x64"]
    assert "occi.core.id" in compute_kind["attributes"]  # inherited attributes included
    entity = next(k for k in doc["kinds"] if k["term"] == "entity")
    assert "location" not in entity and "parent" not in entity
    for m in doc["mixins"]:
        assert m["location"]
    for a in doc["actions"]:
        assert set(a) <= {"term", "scheme", "title", "attributes"}


def test_golden_compute_with_inline_link():
    doc = check_golden("compute.json", R.render_entity(compute(), CTX))
    assert doc["id"] == "c-1"
    assert doc["location"] == BASE + "/compute/c-1"
    assert doc["attributes"]["occi.core.id"] == "c-1"
    assert doc["attributes"]["occi.core.title"] == "web server ünicode"
    assert "occi.compute.state.message" not in doc["attributes"]
    assert doc["attributes"]["com.example.meta"] == {"k": "v", "n": 1}
    (link,) = doc["links"]
    assert link["source"] == {"location": "/compute/c-1", "kind": infra.COMPUTE.id}
    assert link["target"] == {"location": "/network/n-1", "kind": infra.NETWORK.id}
    assert link["attributes"]["occi.core.target"] == "/network/n-1"


def test_rendered_bytes_are_compact_utf8():
    raw = body_of(R.render_entity(compute(), CTX))
    assert "ünicode".encode() in raw
    assert b"\n" not in raw and b'": ' not in raw


def test_golden_link():
    doc = check_golden("link.json", R.render_entity(storagelink(), CTX))
    assert doc["target"] == {"location": "http://other.example.org/storage/s-9"}
    assert "links" not in doc and "summary" not in doc


def test_golden_collection():
    doc = check_golden(
        "collection.json",
        R.render_entities([storage(1), storagelink(), storage(2)], CTX),
    )
    assert [r["id"] for r in doc["resources"]] == ["s-1", "s-2"]
    assert [lk["id"] for lk in doc["links"]] == ["sl-1"]


def test_golden_locations():
    check_golden("locations.json", R.render_locations(["/compute/a", "/storage/b"], CTX))


def test_golden_error():
    doc = check_golden(
        "error.json",
        R.render_error(
            400, "Bad Request", "occi.compute.cores must be an integer", CTX, "bad_request"
        ),
    )
    assert doc["error"]["code"] == 400


def test_golden_mixin():
    check_golden("mixin_small.json", R.render_mixin(infra.CRTP_TEMPLATES[0], CTX))


def test_render_ok_and_empty_collection():
    assert body_of(R.render_ok(CTX)) == b"{}"
    assert json.loads(body_of(R.render_entities([], CTX))) == {"resources": [], "links": []}


def test_media_types():
    assert R.media_types[0] == "application/occi+json"
    assert "application/json" in R.media_types


# ------------------------------------------------------------------ round trips
def test_roundtrip_resource():
    original = compute()
    (parsed,) = R.parse_entities(msg(body_of(R.render_entity(original, CTX))))
    assert isinstance(parsed, Resource)
    assert parsed.kind == original.kind and parsed.id == original.id
    assert parsed.title == original.title and parsed.summary == original.summary
    assert parsed.mixins == original.mixins
    expected = {k: v for k, v in original.attributes.items() if v is not None}
    assert parsed.attributes == expected
    (link,) = parsed.links
    olink = original.links[0]
    assert isinstance(link, Link)
    for f in (
        "kind",
        "id",
        "title",
        "mixins",
        "attributes",
        "source",
        "target",
        "source_kind",
        "target_kind",
        "location",
    ):
        assert getattr(link, f) == getattr(olink, f), f


def test_roundtrip_link():
    original = storagelink()
    (parsed,) = R.parse_entities(msg(body_of(R.render_entity(original, CTX))))
    assert isinstance(parsed, Link)
    for f in (
        "kind",
        "id",
        "title",
        "mixins",
        "attributes",
        "source",
        "target",
        "source_kind",
        "target_kind",
    ):
        assert getattr(parsed, f) == getattr(original, f), f


def test_roundtrip_categories():
    coll = Registry().collection()
    refs = R.parse_categories(msg(body_of(R.render_categories(coll, CTX))))
    assert [r.id for r in refs] == [c.id for c in coll]
    by_id = {r.id: r for r in refs}
    ck = by_id[infra.COMPUTE.id]
    assert ck.cls == "kind" and ck.location == "/compute/" and ck.rel == [infra.RESOURCE.id]
    assert ck.attributes == infra.COMPUTE.all_attributes()
    small = by_id[infra.CRTP_TEMPLATES[0].id]
    assert small.cls == "mixin" and small.rel == [infra.RESOURCE_TPL.id]
    assert small.applies == [infra.COMPUTE.id]
    assert small.attributes == dict(infra.CRTP_TEMPLATES[0].attributes)
    stop = by_id[infra.STOP.id]
    assert stop.cls == "action" and stop.attributes == dict(infra.STOP.attributes)


def test_attribute_description_shapes():
    assert attribute_description(AttributeDef("a", INTEGER, minimum=0, maximum=9)) == {
        "mutable": True,
        "required": False,
        "type": "number",
        "pattern": {
            "$schema": "http://json-schema.org/draft-04/schema#",
            "type": "integer",
            "minimum": 0,
            "maximum": 9,
        },
    }
    d = attribute_description(AttributeDef("b", ENUM, enum=("x", "y"), default="x"))
    assert d["type"] == "string" and d["pattern"]["enum"] == ["x", "y"] and d["default"] == "x"
    d = attribute_description(AttributeDef("c", STRING, pattern=r"\S+", description="d"))
    assert d["pattern"]["pattern"] == r"\S+" and d["description"] == "d"
    d = attribute_description(AttributeDef("e", NUMBER))
    assert "pattern" not in d and d["type"] == "number"


# ------------------------------------------------------------------ streaming
def test_streaming_10000_entities():
    def gen():
        for i in range(10_000):
            if i % 1000 == 7:
                yield storagelink()
            else:
                yield storage(i)

    rendered = R.render_entities(gen(), CTX)
    assert not isinstance(rendered.body, bytes)
    chunks = list(rendered.body)
    assert len(chunks) > 10
    assert max(len(c) for c in chunks) < 64 * 1024
    streamed = json.loads(b"".join(chunks))
    whole = {
        "resources": [json.loads(body_of(R.render_entity(e, CTX))) for e in gen() if not e.is_link],
        "links": [json.loads(body_of(R.render_entity(e, CTX))) for e in gen() if e.is_link],
    }
    assert streamed == whole
    assert len(streamed["resources"]) == 9990 and len(streamed["links"]) == 10


def test_streaming_links_first():
    doc = json.loads(body_of(R.render_entities([storagelink(), storage(1)], CTX)))
    assert len(doc["links"]) == 1 and len(doc["resources"]) == 1


# ------------------------------------------------------------------ parsing: spec examples
def test_parse_gfd226_resource():
    (res,) = R.parse_entities(example("gfd226__resource.fixed.json"))
    assert isinstance(res, Resource)
    assert res.kind == infra.COMPUTE.id
    assert res.id == "urn:uuid:996ad860-2a9a-504f-8861-aeafd0b2ae29"
    assert res.attributes["com.example.occi.templates.myosmixin"] == {"mykey": "myvalue"}
    assert res.attributes["occi.compute.cores"] == 2
    (link,) = res.links
    assert link.kind == infra.NETWORKINTERFACE.id
    assert link.target == "/network/b7d55bf4-7057-5113-85c8-141871bf7635"
    assert link.target_kind == infra.NETWORK.id
    assert link.source == "/compute/996ad860-2a9a-504f-8861-aeafd0b2ae29"
    assert link.attributes["occi.networkinterface.mac"] == "00:80:41:ae:fd:7e"


def test_parse_gfd226_link():
    (link,) = R.parse_entities(example("gfd226__link.fixed.json"))
    assert isinstance(link, Link) and link.id == "urn:uuid:22fe83ae-a20f-54fc-b436-cec85c94c5e8"
    assert link.source_kind == infra.COMPUTE.id and link.mixins == [infra.IPNETWORKINTERFACE.id]


def test_parse_gfd226_action_invocation():
    inv = R.parse_action(example("gfd226__action_invocation.fixed.json"))
    assert inv == ActionInvocation(infra.STOP.id, {"method": "graceful"})


def test_parse_gfd226_categories():
    (kind,) = R.parse_categories(example("gfd226__kind.fixed.json"))
    assert kind.cls == "kind" and kind.id == infra.COMPUTE.id and kind.location == "/compute/"
    assert kind.rel == [infra.RESOURCE.id]
    assert kind.attributes["occi.compute.hostname"].pattern == r"\S+"
    assert kind.attributes["occi.compute.state"].mutable is False
    assert kind.attributes["occi.compute.state"].default == "inactive"
    (mixin,) = R.parse_categories(example("gfd226__mixin.fixed.json"))
    assert mixin.cls == "mixin" and mixin.rel == [infra.RESOURCE_TPL.id]
    assert mixin.applies == [infra.COMPUTE.id] and mixin.title == "MediumVM"
    speed = mixin.attributes["occi.compute.speed"]
    assert speed.type == NUMBER and speed.default == 2.8
    assert speed.mutable is False and speed.required is False  # GFD.226 defaults
    (action,) = R.parse_categories(example("gfd226__action.fixed.json"))
    assert action.id == infra.STOP.id and action.attributes["method"].default == "poweroff"


def test_broken_spec_examples_rejected_with_position():
    # the verbatim GFD.226 link example has `"location:"/network/...`
    broken = '{"target": {"location:"/network/b7", "kind":"x"}}'
    with pytest.raises(ParseError, match=r"line 1, column \d+"):
        R.parse_entities(msg(broken))


# ------------------------------------------------------------------ parsing: peers' documents
def test_parse_rocci_instance():
    (res,) = R.parse_entities(example("rOCCI__instance.json"))
    assert res.id == "89878" and res.title == "my_compute"
    assert res.summary.startswith("Instantiated with rOCCI-server")
    assert not any(k.startswith("occi.core.") for k in res.attributes)
    assert len(res.links) == 2
    for link in res.links:
        assert link.source == "/compute/89878"
        assert not any(k.startswith("occi.core.") for k in link.attributes)
    assert res.links[0].title == "38d42ca1-f4e9-5b5c-98de-37eb2d26301a"


def test_parse_rocci_action_and_category_identifiers():
    inv = R.parse_action(example("rOCCI__action_instance.json"))
    assert inv.action == infra.SUSPEND.id and inv.attributes == {"method": "suspend"}
    refs = R.parse_categories(example("rOCCI__categories.json"))
    assert [r.id for r in refs][:2] == [infra.IPNETWORK.id, infra.IPNETWORKINTERFACE.id]
    assert all(r.cls == "mixin" for r in refs)


@pytest.mark.parametrize(
    "name", ["rOCCI__model.json", "rOCCI__model.alt.json", "erlang-occi__renderers_categories.json"]
)
def test_parse_peer_models(name):
    doc = json.loads((EXAMPLES / name).read_text())
    refs = R.parse_categories(example(name))
    assert len(refs) == sum(len(doc.get(k, [])) for k in ("kinds", "mixins", "actions"))
    for r in refs:
        assert r.cls in ("kind", "mixin", "action")


def test_rocci_regex_patterns_translated():
    refs = R.parse_categories(example("rOCCI__model.json"))
    save = next(r for r in refs if r.term == "save" and r.cls == "action")
    import re

    assert re.fullmatch(save.attributes["name"].pattern, "abc123")
    assert not re.fullmatch(save.attributes["name"].pattern, "a b")


def test_parse_erlang_entities():
    (res,) = R.parse_entities(example("erlang-occi__parsers_compute_a.json"))
    assert res.id == "compute1" and res.summary == "A super computer"
    assert res.attributes["occi.compute.speed"] == 1.5
    (link,) = R.parse_entities(example("erlang-occi__parsers_core_link.json"))
    assert isinstance(link, Link) and (link.source, link.target) == ("/myresource0", "/myresource1")
    (netif,) = R.parse_entities(example("erlang-occi__parsers_netif_link.json"))
    assert netif.attributes["occi.networkinterface.allocation"] == "static"
    (res,) = R.parse_entities(example("erlang-occi__parsers_resource_link.json"))
    assert res.links[0].target == "http://example.org/another_resource1"
    assert res.links[0].source is None
    (core,) = R.parse_entities(example("erlang-occi__parsers_core_resource.json"))
    assert core.kind == infra.RESOURCE.id


@pytest.mark.parametrize(
    "name",
    [
        "erlang-occi__renderers_compute_a.json",
        "erlang-occi__renderers_compute_b.json",
        "erlang-occi__renderers_core_resource.json",
        "erlang-occi__renderers_netif.json",
    ],
)
def test_parse_erlang_rendered_entities(name):
    (ent,) = R.parse_entities(example(name))
    assert ent.id and "occi.core.id" not in ent.attributes
    if name.endswith("netif.json"):
        assert isinstance(ent, Link) and ent.source == "/mycompute"  # made relative
        assert ent.target_kind == infra.NETWORK.id


def test_parse_erlang_user_mixin():
    (ref,) = R.parse_categories(example("erlang-occi__parsers_user_mixin.json"))
    assert ref.cls == "mixin" and ref.term == "mymixin0"
    assert ref.location == "http://localhost:8080/categories/mymixin0"  # other host: absolute
    (ref,) = R.parse_categories(
        msg((EXAMPLES / "erlang-occi__parsers_user_mixin.json").read_bytes())
    )
    assert ref.location == "/categories/mymixin0"


def test_erlang_empty_string_as_empty_array():
    # erocci renders "" as [] (the same term in Erlang): accepted for titles and descriptions
    doc = {
        "mixins": [
            {
                "scheme": "http://x#",
                "term": "debian6",
                "title": [],
                "location": "/d/",
                "attributes": {"a": {"type": "string", "description": []}},
            }
        ]
    }
    (ref,) = R.parse_categories(msg(doc))
    assert ref.title == "" and ref.attributes["a"].description == ""
    with pytest.raises(ParseError, match="title must be a string"):
        R.parse_categories(msg({"scheme": "http://x#", "term": "t", "title": ["x"]}))


def test_parse_erlang_invoke():
    inv = R.parse_action(example("erlang-occi__parsers_invoke.json"))
    assert inv.action == infra.STOP.id


# ------------------------------------------------------------------ bulk association forms
def test_locations_three_forms():
    expected = ["/compute/a", "/compute/b"]
    erocci = {"resources": [{"location": BASE + "/compute/a"}, {"location": "/compute/b"}]}
    mart = {"locations": ["/compute/a", BASE + "/compute/b"]}
    rocci = [BASE + "/compute/a", "/compute/b"]
    objects = [{"location": "/compute/a"}, {"location": "/compute/b"}]
    for doc in (erocci, mart, rocci, objects):
        assert R.parse_locations(msg(doc)) == expected
    assert R.parse_locations(msg(b"")) == []


def test_locations_erlang_collection_and_roundtrip():
    got = R.parse_locations(example("erlang-occi__parsers_collection.fixed.json"))
    assert got == ["/resource0", "/resource1"]
    got = R.parse_locations(example("erlang-occi__renderers_bounded_collection.json"))
    assert got == ["/resource1", "/resource0"]
    rendered = R.render_locations(["/compute/a"], CTX)
    assert R.parse_locations(msg(body_of(rendered))) == ["/compute/a"]


def test_locations_errors():
    with pytest.raises(ParseError, match=r"locations\[1\] must be a location string"):
        R.parse_locations(msg({"locations": ["/a", 3]}))
    with pytest.raises(
        ParseError, match=r'resources\[0\] needs a "location", or a "kind" and an "id"'
    ):
        R.parse_locations(msg({"resources": [{"kind": "x"}]}))
    with pytest.raises(ParseError, match="must list locations"):
        R.parse_locations(msg({"foo": 1}))


# ------------------------------------------------------------------ occi.core.* placement
def test_core_attributes_in_attributes_move_to_fields():
    doc = {
        "kind": infra.STORAGELINK.id,
        "attributes": {
            "occi.core.id": "x1",
            "occi.core.title": "t",
            "occi.core.source": BASE + "/compute/c",
            "occi.core.target": "/storage/s",
            "occi.core.target.kind": infra.STORAGE.id,
            "occi.storagelink.deviceid": "vdc",
        },
    }
    (link,) = R.parse_entities(msg(doc))
    assert isinstance(link, Link)
    assert (link.id, link.title, link.source, link.target) == (
        "x1",
        "t",
        "/compute/c",
        "/storage/s",
    )
    assert link.target_kind == infra.STORAGE.id
    assert link.attributes == {"occi.storagelink.deviceid": "vdc"}


def test_core_top_level_wins():
    doc = {
        "kind": infra.COMPUTE.id,
        "id": "top",
        "title": "top title",
        "summary": "top summary",
        "attributes": {
            "occi.core.id": "attr",
            "occi.core.title": "attr title",
            "occi.core.summary": "attr summary",
            "occi.compute.cores": 3,
        },
    }
    (res,) = R.parse_entities(msg(doc))
    assert (res.id, res.title, res.summary) == ("top", "top title", "top summary")
    assert res.attributes == {"occi.compute.cores": 3}
    doc = {"kind": infra.COMPUTE.id, "attributes": {"occi.core.summary": "s", "occi.core.id": "i"}}
    (res,) = R.parse_entities(msg(doc))
    assert (res.id, res.summary) == ("i", "s")


def test_source_target_plain_strings_and_missing_kind():
    (link,) = R.parse_entities(msg({"source": BASE + "/compute/c", "target": "/network/n"}))
    assert isinstance(link, Link) and link.kind == ""
    assert (link.source, link.target) == ("/compute/c", "/network/n")


def test_entity_collections_and_arrays():
    body = {
        "resources": [{"kind": infra.COMPUTE.id, "id": "a"}],
        "links": [{"kind": infra.LINK.id, "id": "l", "target": "/compute/a"}],
    }
    ents = R.parse_entities(msg(body))
    assert [type(e) for e in ents] == [Resource, Link]
    ents = R.parse_entities(msg([{"kind": infra.COMPUTE.id}, {"source": "/a", "target": "/b"}]))
    assert [type(e) for e in ents] == [Resource, Link]
    (res,) = R.parse_entities(msg({"kind": infra.COMPUTE.id, "links": [{"target": "/network/n"}]}))
    assert isinstance(res, Resource) and res.links[0].target == "/network/n"
    # a bare links collection
    ents = R.parse_entities(msg({"links": [{"target": "/x", "source": "/y"}]}))
    assert [type(e) for e in ents] == [Link]
    assert R.parse_entities(msg(b"  ")) == []


def test_inline_link_rel_and_location():
    doc = {
        "kind": infra.COMPUTE.id,
        "links": [
            {
                "kind": infra.NETWORKINTERFACE.id,
                "rel": infra.NETWORK.id,
                "location": BASE + "/link/networkinterface/x",
                "target": {"location": "/network/n"},
            }
        ],
    }
    (res,) = R.parse_entities(msg(doc))
    link = res.links[0]
    assert link.rel == infra.NETWORK.id and link.location == "/link/networkinterface/x"


def test_entity_actions_and_location_ignored():
    (res,) = R.parse_entities(
        msg({"kind": infra.COMPUTE.id, "actions": [infra.STOP.id], "location": "/compute/z"})
    )
    assert res.actions == [] and res.location is None


def test_parse_action_variants():
    assert R.parse_action(msg(b"")) == ActionInvocation(None, {})
    assert R.parse_action(msg({"attributes": {"method": "hot"}})) == ActionInvocation(
        None, {"method": "hot"}
    )
    with pytest.raises(ParseError, match="action must be a string"):
        R.parse_action(msg({"action": 5}))
    with pytest.raises(ParseError, match="attributes must be a JSON object"):
        R.parse_action(msg({"action": infra.STOP.id, "attributes": ["method"]}))


# ------------------------------------------------------------------ categories input
def test_user_mixin_definition_and_collections():
    mixin_doc = {
        "location": "/mymixins/my_mixin3/",
        "scheme": "http://occiware.org/occi/tags#",
        "term": "my_mixin3",
        "attributes": {},
        "title": "my mixin tag 3",
    }
    (ref,) = R.parse_categories(msg(mixin_doc))
    assert ref.cls == "mixin" and ref.location == "/mymixins/my_mixin3/"
    (ref,) = R.parse_categories(msg({"mixins": [mixin_doc]}))
    assert ref.cls == "mixin" and ref.title == "my mixin tag 3"
    refs = R.parse_categories(msg([mixin_doc, infra.COMPUTE.id]))
    assert [r.id for r in refs] == ["http://occiware.org/occi/tags#my_mixin3", infra.COMPUTE.id]
    (ref,) = R.parse_categories(msg({"scheme": "http://x#", "term": "y"}))
    assert ref.cls is None
    assert R.parse_categories(msg(b"")) == []


def test_attribute_definitions_parsed():
    doc = {
        "scheme": "http://x#",
        "term": "t",
        "location": "/t/",
        "attributes": {
            "i": {"type": "number", "pattern": {"type": "integer", "minimum": 1, "maximum": 8}},
            "e": {"type": "string", "pattern": {"enum": ["a", "b"]}, "default": "a"},
            "s": {"type": "string", "pattern": "^[a-z]+$", "mutable": True, "required": True},
            "b": {"type": "boolean"},
            "o": {"type": "object"},
            "a": {"type": "array"},
            "d": {},
        },
    }
    (ref,) = R.parse_categories(msg(doc))
    a = ref.attributes
    assert (a["i"].type, a["i"].minimum, a["i"].maximum) == (INTEGER, 1, 8)
    assert (a["e"].type, a["e"].enum, a["e"].default) == (ENUM, ("a", "b"), "a")
    assert a["s"].pattern == "^[a-z]+$" and a["s"].mutable and a["s"].required
    assert [a[k].type for k in "boa"] == ["boolean", "object", "array"]
    assert a["d"] == AttributeDef("d", STRING, mutable=False, required=False)


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"scheme": "http://x#"}, r"term is missing"),
        ({"term": "t"}, r"scheme is missing"),
        ({"mixins": [{"scheme": "s#", "term": 1}]}, r"mixins\[0\]\.term must be a string"),
        ({"mixins": "nope"}, r"mixins must be an array"),
        ({"scheme": "s#", "term": "t", "depends": "x"}, r"depends must be an array of strings"),
        (
            {"scheme": "s#", "term": "t", "attributes": {"a.b": {"type": "float"}}},
            r'attributes\["a\.b"\]\.type must be one of',
        ),
        (
            {"scheme": "s#", "term": "t", "attributes": {"a": {"pattern": "(["}}},
            r"attributes\.a\.pattern is not a valid regular expression",
        ),
        (
            {"scheme": "s#", "term": "t", "attributes": {"a": {"mutable": "yes"}}},
            r"attributes\.a\.mutable must be true or false",
        ),
        (
            {"scheme": "s#", "term": "t", "attributes": {"a": 3}},
            r"attributes\.a must be a JSON object",
        ),
        (["no-hash"], r"\[0\]: 'no-hash' is not a category identifier"),
        (3, "the body must be a JSON object"),
    ],
)
def test_category_errors(doc, message):
    with pytest.raises(ParseError, match=message):
        R.parse_categories(msg(doc))


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "doc, message",
    [
        ({"kind": 5}, r"^kind must be a string, not a number"),
        ({"kind": "k", "mixins": "m"}, r"^mixins must be an array of strings"),
        ({"kind": "k", "mixins": ["m", 2]}, r"^mixins\[1\] must be a string"),
        ({"kind": "k", "attributes": []}, r"^attributes must be a JSON object, not an array"),
        ({"kind": "k", "id": 7}, r"^id must be a string"),
        (
            {"kind": "k", "attributes": {"occi.core.id": 3}},
            r'attributes\["occi\.core\.id"\] must be a string',
        ),
        ({"kind": "k", "links": {}}, r"^links must be an array of link objects"),
        ({"kind": "k", "links": ["x"]}, r"^links\[0\] must be a JSON object"),
        (
            {"kind": "k", "links": [{"target": {"location": 1}}]},
            r"^links\[0\]\.target\.location must be a string",
        ),
        ({"kind": "k", "links": [{"target": ["x"]}]}, r"^links\[0\]\.target must be an object"),
        (
            {"resources": [{"kind": "k", "source": {"kind": 2}}]},
            r"^resources\[0\]\.source\.kind must be a string",
        ),
        ({"resources": {}}, r"^resources must be an array"),
        ([{"kind": 1}], r"^\[0\]\.kind must be a string"),
        ("a string", r"^the body must be a JSON object"),
    ],
)
def test_entity_errors(doc, message):
    with pytest.raises(ParseError, match=message):
        R.parse_entities(msg(json.dumps(doc)))


@pytest.mark.parametrize(
    "body, message",
    [
        (b'{"kind": "x",}', r"not valid JSON: .* at line 1, column 14"),
        (b'{"kind": "x"\n "mixins": []}', r"line 2, column 2"),
        (b"{", r"not valid JSON"),
        (b'{"kind": "\xff\xfe"}', r"not UTF-8: invalid byte 0xff at offset 10"),
        (b'{"attributes": {"a": NaN}}', r"NaN is not a JSON number"),
    ],
)
def test_broken_json(body, message):
    for parse in (R.parse_entities, R.parse_categories, R.parse_action, R.parse_locations):
        with pytest.raises(ParseError, match=message):
            parse(msg(body))


def test_deep_nesting():
    ok = {"kind": "k", "attributes": {"a": json.loads("[" * 50 + "]" * 50)}}
    (res,) = R.parse_entities(msg(ok))
    assert res.attributes["a"]
    too_deep = b'{"kind":"k","attributes":{"a":' + b"[" * 70 + b"]" * 70 + b"}}"
    with pytest.raises(ParseError, match="nested too deeply"):
        R.parse_entities(msg(too_deep))
    absurd = b"[" * 200_000 + b"]" * 200_000
    with pytest.raises(ParseError, match="nested too deeply"):
        R.parse_entities(msg(absurd))


def test_utf8_bom_and_unicode_accepted():
    body = "\ufeff" + json.dumps({"kind": infra.COMPUTE.id, "title": "été"}, ensure_ascii=False)
    (res,) = R.parse_entities(msg(body.encode("utf-8")))
    assert res.title == "été"


def test_parse_attribute_filter_empty():
    assert R.parse_attribute_filter(msg({"kind": "x"})) == {}


def test_render_user_mixin_roundtrip():
    m = Mixin(
        "http://localhost:8080/occi/tags#",
        "blue",
        "Blue things",
        location="/mixin/tags/blue/",
        user_defined=True,
    )
    doc = json.loads(body_of(R.render_mixin(m, CTX)))
    assert doc == {
        "term": "blue",
        "scheme": "http://localhost:8080/occi/tags#",
        "title": "Blue things",
        "attributes": {},
        "actions": [],
        "depends": [],
        "applies": [],
        "location": "/mixin/tags/blue/",
    }
    (ref,) = R.parse_categories(msg(doc))
    assert (ref.id, ref.cls, ref.location) == (m.id, "mixin", m.location)


def test_categories_subset_render():
    coll = CategoryCollection(kinds=[infra.COMPUTE], mixins=[], actions=[infra.START])
    doc = json.loads(body_of(R.render_categories(coll, CTX)))
    assert doc["mixins"] == [] and doc["actions"][0]["attributes"] == {}
