"""The schemas in schemas/ are themselves valid: the XSD compiles, the vocabulary loads, the JSON
schema is a valid draft-07 schema; golden documents fit them; incoming JSON is checked."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from lxml import etree
from rdflib import Graph, URIRef
from rdflib.namespace import RDF, RDFS

from rendering.base import Message, ParseError
from rendering.json_rendering import JsonRendering
from rendering.rdf_rendering import OCCI_NS
from rendering.schema_validation import (
    JSON_SCHEMA_FILE,
    SCHEMA_DIR,
    VOCABULARY_FILE,
    XSD_FILE,
    json_errors,
    json_schema,
    validate_json,
    xml_errors,
)

DATA = Path(__file__).parent / "data"
EXAMPLES = DATA / "json" / "examples"
REQUEST_DEFINITIONS = {
    "erlang-occi__parsers_collection.fixed.json": "request_locations",
    "erlang-occi__parsers_invoke.json": "request_action_invocation",
    "gfd226__action_invocation.fixed.json": "request_action_invocation",
    "rOCCI__action_instance.json": "request_action_invocation",
}


def test_files_present_and_documented():
    for f in (XSD_FILE, JSON_SCHEMA_FILE, VOCABULARY_FILE, SCHEMA_DIR / "occi-xs-facets.xsd"):
        assert f.exists()
        assert f.name in (SCHEMA_DIR / "README.md").read_text()


def test_xsd_is_a_valid_xml_schema():
    doc = etree.parse(str(XSD_FILE))
    schema = etree.XMLSchema(doc)
    assert doc.getroot().get("targetNamespace") == "http://schemas.ogf.org/occi"
    ok = etree.fromstring(b'<ok xmlns="http://schemas.ogf.org/occi"/>')
    assert schema.validate(ok)
    assert not schema.validate(etree.fromstring(b'<nope xmlns="http://schemas.ogf.org/occi"/>'))


def test_vocabulary_loads_in_rdflib():
    g = Graph().parse(VOCABULARY_FILE, format="turtle")
    for term in ("Kind", "Mixin", "Action", "Attribute", "Resource", "Link"):
        assert (URIRef(OCCI_NS + term), RDF.type, RDFS.Class) in g
    for prop in (
        "source",
        "target",
        "depends",
        "applies",
        "action",
        "attribute",
        "location",
        "id",
        "title",
        "summary",
        "mixin",
        "kind",
        "link",
        "member",
    ):
        assert (URIRef(OCCI_NS + prop), RDF.type, RDF.Property) in g


def test_every_vocabulary_term_the_renderings_use_is_declared():
    from occi.registry import Registry
    from rendering.base import Context
    from rendering.rdf_rendering import TurtleRendering
    from tests.test_rendering_json import compute, storagelink

    vocab = Graph().parse(VOCABULARY_FILE, format="turtle")
    declared = {str(s) for s in vocab.subjects() if str(s).startswith(OCCI_NS)}
    r, ctx = TurtleRendering(), Context("http://h")
    used: set[str] = set()
    for rendered in (
        r.render_categories(Registry().collection(), ctx),
        r.render_entity(compute(), ctx),
        r.render_entity(storagelink(), ctx),
        r.render_entities([compute()], ctx),
        r.render_error(400, "B", "m", ctx),
    ):
        for triple in Graph().parse(data=rendered.body, format="turtle"):
            used |= {str(t) for t in triple if str(t).startswith(OCCI_NS)}
    assert used <= declared, used - declared


def test_json_schema_is_valid_draft7():
    schema = json_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    assert jsonschema.validators.validator_for(schema) is jsonschema.Draft7Validator


@pytest.mark.parametrize("name", sorted(p.name for p in (DATA / "json").glob("*.json")))
def test_golden_json_documents_validate(name):
    assert json_errors(json.loads((DATA / "json" / name).read_text())) == []


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_peer_and_spec_examples_fit_the_request_definitions(name):
    doc = json.loads((EXAMPLES / name).read_text())
    if name in REQUEST_DEFINITIONS:
        definition = REQUEST_DEFINITIONS[name]
    elif any(k in name for k in ("categor", "model", "mixin", "kind", "gfd226__action.")):
        definition = "request_categories"
    else:
        definition = "request_entities"
    assert json_errors(doc, definition) == []


@pytest.mark.parametrize("name", sorted(p.name for p in (DATA / "xml").glob("*.xml")))
def test_golden_xml_documents_validate(name):
    assert xml_errors(etree.parse(str(DATA / "xml" / name)).getroot()) == []


def test_strict_definitions_catch_gfd226_defects_fixed():
    # the appendix allowed only number/string/boolean defaults and mixed the description
    # with the name map; the corrected schema takes an array default and refuses a nested map
    kind = {"term": "t", "scheme": "s#", "attributes": {"a": {"type": "array", "default": [1]}}}
    assert json_errors(kind, "kind") == []
    nested = {"term": "t", "scheme": "s#", "attributes": {"a": {"b": {"type": "string"}}}}
    assert json_errors(nested, "kind")
    assert json_errors({"kind": "k", "id": "i", "location": "http://h/k/i"}, "resource") == []
    assert json_errors({"error": {"code": 99, "message": "m"}}, "error")


@pytest.mark.parametrize(
    "doc, path",
    [
        ({"kind": "k", "actions": [1]}, r"^actions\[0\] does not fit"),
        ({"resources": [{"kind": "k", "location": 5}]}, r"^resources\[0\]\.location does not fit"),
        ({"kind": "k", "colour": "red"}, r"'colour' was unexpected"),
        ({"kind": "k", "links": [{"target": "/x", "foo": 1}]}, r"^links\[0\] does not fit"),
    ],
)
def test_incoming_json_refused_with_path(doc, path):
    with pytest.raises(ParseError, match=path):
        JsonRendering().parse_entities(Message(body=json.dumps(doc).encode()))


def test_validate_json_helper_names_the_definition_path():
    with pytest.raises(ParseError, match=r"mixins\[0\].*'scheme' is a required property"):
        validate_json({"mixins": [{"term": "t"}]}, "request_categories")
    with pytest.raises(KeyError):
        validate_json({}, "no_such_definition")
