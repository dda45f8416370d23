"""The RDF renderings (text/turtle, application/ld+json, application/rdf+xml): golden graphs,
the vocabulary, SPARQL over rendered entities, creating from Turtle/JSON-LD, refusals.

Regenerate the golden files with `OCCI_REGEN_GOLDEN=1 pytest tests/test_rendering_rdf.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.compare import isomorphic

from occi import infrastructure as infra
from occi.model import ActionInvocation, Link, Resource
from occi.registry import Registry
from rendering import for_media_type
from rendering.base import Context, Message, ParseError
from rendering.rdf_rendering import (
    ATTR_NS,
    OCCI_NS,
    JsonLdRendering,
    RdfXmlRendering,
    TurtleRendering,
)
from tests.test_rendering_json import compute, storage, storagelink
from tests.test_rendering_xml import BILLION_LAUGHS

DATA = Path(__file__).parent / "data" / "rdf"
BASE = "http://localhost:8080"
XSD_STRING = URIRef("http://www.w3.org/2001/XMLSchema#string")
CTX = Context(BASE)
REGEN = os.environ.get("OCCI_REGEN_GOLDEN") == "1"
TTL, JSONLD, RDFXML = TurtleRendering(), JsonLdRendering(), RdfXmlRendering()
ALL = [TTL, JSONLD, RDFXML]
PREFIXES = f"""
PREFIX occi: <{OCCI_NS}>
PREFIX attr: <{ATTR_NS}>
PREFIX infra: <{infra.INFRA}>
"""


pytestmark = pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")


def plain(g: Graph) -> Graph:
    """The graph with xsd:string literals as plain literals (the same in RDF 1.1; JSON-LD
    writes them plain)."""
    out = Graph()
    for s, p, o in g:
        if isinstance(o, Literal) and o.datatype == XSD_STRING:
            o = Literal(str(o))
        out.add((s, p, o))
    return out


def msg(body, base: str = BASE) -> Message:
    if isinstance(body, str):
        body = body.encode("utf-8")
    return Message(headers={}, body=body, base_url=base)


def graph(rendered, r=TTL) -> Graph:
    return Graph().parse(data=rendered.body, format=r.rdf_format)


def check_golden(name: str, rendered) -> Graph:
    assert rendered.content_type == "text/turtle"
    g = graph(rendered)
    path = DATA / name
    if REGEN:
        path.write_bytes(rendered.body)
    assert path.exists(), f"no golden file {name}: run with OCCI_REGEN_GOLDEN=1"
    assert isomorphic(g, Graph().parse(path, format="turtle")), f"differs from golden {name}"
    return g


# ------------------------------------------------------------------ golden graphs
def test_golden_query_interface():
    g = check_golden("query_interface.ttl", TTL.render_categories(Registry().collection(), CTX))
    rows = list(
        g.query(
            PREFIXES
            + """
        SELECT ?parent WHERE { infra:compute a occi:Kind ; rdfs:subClassOf ?parent }"""
        )
    )
    assert [str(r[0]) for r in rows] == [infra.RESOURCE.id]
    rows = g.query(
        PREFIXES
        + """
        SELECT ?type ?default WHERE { infra:compute occi:attribute ?a .
          ?a occi:name "occi.compute.cores"^^xsd:string ; occi:type ?type ; occi:default ?default }"""
    )
    ((t, default),) = list(rows)
    assert str(t).endswith("#integer") and default.toPython() == 1
    rows = g.query(
        PREFIXES
        + f"""
        SELECT ?d ?k WHERE {{ <{infra.CRTP_TEMPLATES[0].id}> occi:depends ?d ; occi:applies ?k }}"""
    )
    assert [(str(d), str(k)) for d, k in rows] == [(infra.RESOURCE_TPL.id, infra.COMPUTE.id)]


def test_golden_entities():
    g = check_golden("compute.ttl", TTL.render_entity(compute(), CTX))
    node = URIRef(BASE + "/compute/c-1")
    assert (node, URIRef(OCCI_NS + "kind"), URIRef(infra.COMPUTE.id)) in g
    link = g.value(node, URIRef(OCCI_NS + "link"))
    assert g.value(link, URIRef(OCCI_NS + "target")) == URIRef(BASE + "/network/n-1")
    assert g.value(link, URIRef(OCCI_NS + "source")) == node
    check_golden("link.ttl", TTL.render_entity(storagelink(), CTX))
    check_golden("collection.ttl", TTL.render_entities([storage(1), storagelink()], CTX))
    check_golden(
        "error.ttl", TTL.render_error(404, "Not Found", "no such entity", CTX, "not_found")
    )


def test_media_types_and_formats():
    assert for_media_type("text/turtle") is not None
    assert for_media_type("application/ld+json").media_types == ("application/ld+json",)
    assert for_media_type("application/rdf+xml") is not None
    for r in ALL:
        rendered = r.render_entity(compute(), CTX)
        assert rendered.content_type == r.media_types[0]
        assert isomorphic(
            plain(graph(rendered, r)), plain(graph(TTL.render_entity(compute(), CTX)))
        )
    doc = json.loads(JSONLD.render_entity(compute(), CTX).body)
    assert doc["@context"]["occi"] == OCCI_NS


# ------------------------------------------------------------------ SPARQL
def test_sparql_finds_active_computes_with_more_than_two_cores():
    def vm(i, cores, state):
        return Resource(
            kind=infra.COMPUTE.id,
            id=f"vm{i}",
            location=f"/compute/vm{i}",
            attributes={"occi.compute.cores": cores, "occi.compute.state": state},
        )

    entities = [
        vm(1, 4, "active"),
        vm(2, 1, "active"),
        vm(3, 8, "inactive"),
        vm(4, 3, "active"),
        storage(1),
    ]
    for r in ALL:
        g = graph(r.render_entities(entities, CTX), r)
        rows = g.query(
            PREFIXES
            + """
            SELECT ?c WHERE {
              ?c a infra:compute ; attr:occi.compute.state ?s ; attr:occi.compute.cores ?n .
              FILTER (str(?s) = "active" && ?n > 2)
            } ORDER BY ?c"""
        )
        assert [str(row[0]) for row in rows] == [BASE + "/compute/vm1", BASE + "/compute/vm4"]


# ------------------------------------------------------------------ parsing
TURTLE_CREATE = f"""
@prefix occi: <{OCCI_NS}> .
@prefix attr: <{ATTR_NS}> .
@prefix infra: <{infra.INFRA}> .
<> a infra:compute, <{infra.CRTP_TEMPLATES[0].id}> ;
   occi:title "web" ;
   attr:occi.compute.cores 2 ;
   attr:occi.compute.memory 1.5 ;
   attr:com.example.flag true ;
   attr:com.example.tags "[1,2]"^^<http://www.w3.org/1999/02/22-rdf-syntax-ns#JSON> ;
   occi:link [ a infra:networkinterface ; occi:target </network/n1> ;
               attr:occi.networkinterface.mac "00:11:22:33:44:55" ] .
"""


def test_create_from_turtle():
    (res,) = TTL.parse_entities(msg(TURTLE_CREATE))
    assert isinstance(res, Resource)
    assert res.kind == infra.COMPUTE.id and res.mixins == [infra.CRTP_TEMPLATES[0].id]
    assert res.title == "web"
    assert res.attributes == {
        "occi.compute.cores": 2,
        "occi.compute.memory": 1.5,
        "com.example.flag": True,
        "com.example.tags": [1, 2],
    }
    (link,) = res.links
    assert isinstance(link, Link) and link.kind == infra.NETWORKINTERFACE.id
    assert link.target == "/network/n1"
    assert link.attributes == {"occi.networkinterface.mac": "00:11:22:33:44:55"}


def test_create_from_jsonld():
    doc = {
        "@context": {"occi": OCCI_NS, "attr": ATTR_NS, "infra": infra.INFRA},
        "@type": "infra:storage",
        "occi:title": "disk",
        "attr:occi.storage.size": 10.5,
    }
    (res,) = JSONLD.parse_entities(msg(json.dumps(doc)))
    assert (res.kind, res.title, res.attributes) == (
        infra.STORAGE.id,
        "disk",
        {"occi.storage.size": 10.5},
    )


def test_link_and_action_and_locations():
    body = f"""@prefix occi: <{OCCI_NS}> .
    [] occi:kind <{infra.STORAGELINK.id}> ; occi:source <{BASE}/compute/c> ;
       occi:target <{BASE}/storage/s> ; <{ATTR_NS}occi.storagelink.deviceid> "vdb" ."""
    (link,) = TTL.parse_entities(msg(body))
    assert isinstance(link, Link) and (link.source, link.target) == ("/compute/c", "/storage/s")
    inv = f"""@prefix occi: <{OCCI_NS}> .
    [] a occi:ActionInvocation ; occi:action <{infra.STOP.id}> ; <{ATTR_NS}method> "graceful" ."""
    assert TTL.parse_action(msg(inv)) == ActionInvocation(infra.STOP.id, {"method": "graceful"})
    assert TTL.parse_action(msg(b"")) == ActionInvocation(None)
    for r in ALL:
        rendered = r.render_locations(["/compute/a", "/compute/b"], CTX)
        assert r.parse_locations(msg(rendered.body)) == ["/compute/a", "/compute/b"]


def test_user_mixin_definition_from_turtle():
    body = f"""@prefix occi: <{OCCI_NS}> .
    <http://example.com/tags#blue> a occi:Mixin ; occi:title "Blue" ; occi:location "/tags/blue/" ."""
    (ref,) = TTL.parse_categories(msg(body))
    assert (ref.cls, ref.scheme, ref.term, ref.title, ref.location) == (
        "mixin",
        "http://example.com/tags#",
        "blue",
        "Blue",
        "/tags/blue/",
    )


def test_categories_roundtrip_every_format():
    coll = Registry().collection()
    for r in ALL:
        refs = r.parse_categories(msg(r.render_categories(coll, CTX).body))
        by_id = {x.id: x for x in refs}
        assert set(by_id) == {c.id for c in coll}
        assert by_id[infra.COMPUTE.id].attributes == infra.COMPUTE.all_attributes()
        assert by_id[infra.STOP.id].attributes == dict(infra.STOP.attributes)
        small = by_id[infra.CRTP_TEMPLATES[0].id]
        assert small.rel == [infra.RESOURCE_TPL.id] and small.applies == [infra.COMPUTE.id]


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize(
    "r, body, message",
    [
        (TTL, "[] a <broken", "not valid Turtle"),
        (JSONLD, '{"@context": "http://127.0.0.1:9/x.jsonld", "@type": "x"}', "remote context"),
        (JSONLD, '{"@context": [{"a": "http://a#"}, "http://127.0.0.1:9/x"]}', "remote context"),
        (JSONLD, '{"@context": {"@import": "http://127.0.0.1:9/x"}}', "remote context"),
        (JSONLD, "[" * 100 + "]" * 100, "nested too deeply"),
        (JSONLD, "{", "not valid JSON-LD"),
        (RDFXML, BILLION_LAUGHS, "DOCTYPE"),
        (TTL, b"\xff", "not UTF-8"),
        (TTL, f"[] a <{infra.COMPUTE.id}>, <{infra.STORAGE.id}> .", "exactly one kind"),
    ],
)
def test_bad_bodies(r, body, message):
    with pytest.raises(ParseError, match=message):
        r.parse_entities(msg(body))
