"""The client's text/plain reader and writer (occi/client/textplain.py) against the server's own
renderings: what the server renders as text/plain reads back as its JSON rendering says, and
what the client writes parses to the entity the JSON body would have made."""

from __future__ import annotations

import json

import pytest

from occi import infrastructure as infra
from occi.client import textplain
from occi.registry import Registry
from rendering.base import Message
from rendering.json_rendering import JsonRendering
from tests.test_rendering_text import CTX, PLAIN, compute_with_mixins, compute_with_nic, storagelink

JSON = JsonRendering()


def _body(rendered) -> str:
    body = rendered.body
    return (body if isinstance(body, bytes) else b"".join(body)).decode()


@pytest.mark.parametrize("make", [compute_with_mixins, compute_with_nic, storagelink])
def test_an_entity_reads_as_the_json_rendering_says(make):
    doc = json.loads(_body(JSON.render_entity(make(), CTX)))
    text = _body(PLAIN.render_entity(make(), CTX))
    read = textplain.parse_entity(text, doc["location"], CTX.base_url)
    for key in ("kind", "id", "location"):
        assert read[key] == doc[key], key
    assert sorted(read["mixins"]) == sorted(doc["mixins"])
    assert read.get("title") == doc.get("title")
    core = {k: v for k, v in doc["attributes"].items() if not k.startswith("occi.core.")}
    assert {k: v for k, v in read["attributes"].items() if k in core} == core
    assert sorted(read["actions"]) == sorted(doc["actions"])
    got = [(ln["kind"], ln["location"], ln["target"]["location"]) for ln in read["links"]]
    want = [(ln["kind"], ln["location"], ln["target"]["location"]) for ln in doc.get("links", [])]
    assert got == want
    if "source" in doc:
        assert read["source"]["location"] == doc["source"]["location"]
        assert read["target"]["location"] == doc["target"]["location"]


def test_the_query_interface_reads_as_the_json_rendering_says():
    categories = Registry().collection()
    doc = json.loads(_body(JSON.render_categories(categories, CTX)))
    read = textplain.parse_categories(_body(PLAIN.render_categories(categories, CTX)))
    for group in ("kinds", "mixins", "actions"):
        ids = [c["scheme"] + c["term"] for c in read[group]]
        assert ids == [c["scheme"] + c["term"] for c in doc[group]], group
    for mine, theirs in zip(read["mixins"], doc["mixins"], strict=True):
        assert mine.get("location") == theirs.get("location")
        assert mine["depends"] == theirs["depends"]
        assert mine.get("title") == theirs.get("title")
    for mine, theirs in zip(read["kinds"], doc["kinds"], strict=True):
        assert sorted(mine["actions"]) == sorted(theirs["actions"])
        assert set(mine["attributes"]) == set(theirs["attributes"])


def test_what_the_client_writes_parses_to_what_json_makes():
    doc = {
        "kind": infra.COMPUTE.id,
        "mixins": ["http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#small"],
        "attributes": {
            "occi.core.title": 'a "quoted", comma, title',
            "occi.compute.cores": 2,
            "occi.compute.memory": 1.5,
            "occi.compute.hostname": "h\\1",
        },
        "links": [
            {
                "kind": infra.NETWORKINTERFACE.id,
                "target": {"location": "/network/n1", "kind": infra.NETWORK.id},
            }
        ],
    }
    (from_text,) = PLAIN.parse_entities(Message(body=textplain.render_entity(doc).encode()))
    (from_json,) = JSON.parse_entities(Message(body=json.dumps(doc).encode()))
    assert from_text.kind == from_json.kind and from_text.title == from_json.title
    assert from_text.mixins == from_json.mixins
    assert from_text.attributes == from_json.attributes
    assert [(ln.kind, ln.target) for ln in from_text.links] == [
        (ln.kind, ln.target) for ln in from_json.links
    ]
    action = PLAIN.parse_action(
        Message(body=textplain.render_action(infra.START.id, {"method": "graceful"}).encode())
    )
    assert (action.action, action.attributes) == (infra.START.id, {"method": "graceful"})
    locations = PLAIN.parse_locations(
        Message(body=textplain.render_locations(["http://h/compute/a", "/compute/b"]).encode())
    )
    assert [str(x) for x in locations] == ["http://h/compute/a", "/compute/b"]
