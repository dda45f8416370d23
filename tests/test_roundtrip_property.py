"""Property: for every document type and every rendering, render -> parse -> render gives the
same document (byte for byte; for RDF, the same graph). Entities, categories, invocations and
locations are generated with hypothesis.

What a parser is not meant to read back is put back before the second rendering: the
location and applicable actions of a top-level entity are assigned by the server, never taken
from a request body.
"""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdflib import Graph
from rdflib.compare import isomorphic

from occi.model import (
    ARRAY,
    BOOLEAN,
    ENUM,
    INTEGER,
    NUMBER,
    OBJECT,
    STRING,
    Action,
    ActionInvocation,
    AttributeDef,
    CategoryCollection,
    Kind,
    Link,
    Mixin,
    Resource,
    split_type_id,
)
from rendering.base import Context, Message
from rendering.json_rendering import JsonRendering
from rendering.rdf_rendering import JsonLdRendering, RdfXmlRendering, TurtleRendering
from rendering.text import TextOcci, TextPlain
from rendering.xml_rendering import XmlRendering

pytestmark = pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")

BASE = "http://localhost:8080"
CTX = Context(BASE)
RDF = [TurtleRendering(), JsonLdRendering(), RdfXmlRendering()]
DOCUMENT_RENDERINGS = [JsonRendering(), XmlRendering(), *RDF]
ENTITY_RENDERINGS = [TextPlain(), TextOcci(), *DOCUMENT_RENDERINGS]
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ================================================================== strategies
slug = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=8)
term = st.builds(
    lambda a, b: a + b,
    st.sampled_from(string.ascii_lowercase),
    st.text(string.ascii_lowercase + string.digits + "_-", max_size=8),
)
scheme = st.builds(lambda s: f"http://example.com/{s}#", slug)
type_id = st.builds(lambda s, t: s + t, scheme, term)
# GFD.185: components of a lower-case letter then letters, digits, '-', '_', joined by '.'
attr_component = st.builds(
    lambda a, b: a + b,
    st.sampled_from(string.ascii_lowercase),
    st.text(string.ascii_lowercase + string.digits + "_-", max_size=5),
)
attr_name = st.builds(
    lambda parts: "com.example." + ".".join(parts), st.lists(attr_component, min_size=1, max_size=3)
)
# text XML 1.0 can carry and that no rendering reads as something else (a string that looks
# like a JSON array is an array in the text rendering)
text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    max_size=20,
).filter(lambda s: not (s[:1] in "[{" and s[-1:] in "]}"))
ws_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\t\n"), max_size=20
).filter(lambda s: not (s[:1] in "[{" and s[-1:] in "]}"))
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
scalar = st.one_of(st.integers(-(2**53), 2**53), finite, st.booleans(), text)
value = st.one_of(
    scalar,
    st.lists(scalar, max_size=3),
    st.dictionaries(st.text(string.ascii_letters, min_size=1, max_size=5), scalar, max_size=3),
)
attributes = st.dictionaries(attr_name, value, max_size=5)
location = st.builds(
    lambda k, s: f"/{k}/{s}", st.sampled_from(["compute", "network", "storage"]), slug
)
target = location | st.builds(lambda s: f"http://other.example.org/storage/{s}", slug)


@st.composite
def links(draw, source: str | None = None, inline: bool = False):
    return Link(
        kind=draw(type_id),
        id=draw(st.none() | slug),
        title=draw(st.none() | ws_text),
        mixins=draw(st.lists(type_id, max_size=2, unique=True)),
        attributes=draw(attributes),
        location=draw(st.none() | st.builds(lambda s: f"/link/inline/{s}", slug))
        if inline
        else draw(st.builds(lambda s: f"/link/l/{s}", slug)),
        source=source if source is not None else draw(location),
        target=draw(target),
        source_kind=draw(st.none() | type_id),
        target_kind=draw(st.none() | type_id),
    )


@st.composite
def resources(draw):
    loc = draw(location)
    inline = draw(st.lists(links(source=loc, inline=True), max_size=2))
    seen: set[str] = set()
    unique = []
    for lk in inline:  # one node per link location in RDF
        if lk.location is None or lk.location not in seen:
            seen.add(lk.location or "")
            unique.append(lk)
    return Resource(
        kind=draw(type_id),
        id=draw(st.none() | slug),
        title=draw(st.none() | ws_text),
        summary=draw(st.none() | ws_text),
        mixins=draw(st.lists(type_id, max_size=3, unique=True)),
        attributes=draw(attributes),
        location=loc,
        actions=draw(st.lists(type_id, max_size=2, unique=True)),
        links=unique,
    )


@st.composite
def attribute_defs(draw):
    t = draw(st.sampled_from([STRING, INTEGER, NUMBER, BOOLEAN, ENUM, ARRAY, OBJECT]))
    defaults = {
        STRING: text,
        INTEGER: st.integers(-1000, 1000),
        NUMBER: finite,
        BOOLEAN: st.booleans(),
        ENUM: text,
        ARRAY: st.lists(scalar, max_size=2),
        OBJECT: st.dictionaries(st.sampled_from("abc"), scalar, max_size=2),
    }
    enum = (
        tuple(
            draw(
                st.lists(
                    st.text(string.ascii_letters, min_size=1, max_size=5),
                    min_size=1,
                    max_size=3,
                    unique=True,
                )
            )
        )
        if t == ENUM
        else ()
    )
    bounds = st.integers(-100, 100) if t == INTEGER else finite
    numeric = t in (INTEGER, NUMBER)
    return AttributeDef(
        name=draw(attr_name),
        type=t,
        mutable=draw(st.booleans()),
        required=draw(st.booleans()),
        default=draw(st.none() | (st.sampled_from(enum) if t == ENUM else defaults[t])),
        description=draw(st.none() | text),
        pattern=draw(st.none() | st.sampled_from(["[a-z]+", r"\S+", "x|y"]))
        if t in (STRING, ENUM)
        else None,
        enum=enum,
        minimum=draw(st.none() | bounds) if numeric else None,
        maximum=draw(st.none() | bounds) if numeric else None,
    )


def defs_map(draw_list):
    return {d.name: d for d in draw_list}


@st.composite
def collections(draw):
    seen: set[str] = set()

    def fresh(ident):
        if ident in seen:
            return False
        seen.add(ident)
        return True

    kinds = [
        Kind(
            *split_type_id(i),
            title=draw(st.none() | text),
            attributes=defs_map(draw(st.lists(attribute_defs(), max_size=3))),
            parent=(Kind(*split_type_id(p)) if (p := draw(st.none() | type_id)) else None),
            location=draw(st.none() | st.builds(lambda s: f"/{s}/", slug)),
        )
        for i in draw(st.lists(type_id, max_size=2))
        if fresh(i)
    ]
    mixins = [
        Mixin(
            *split_type_id(i),
            title=draw(st.none() | text),
            attributes=defs_map(draw(st.lists(attribute_defs(), max_size=3))),
            depends=tuple(draw(st.lists(type_id, max_size=2, unique=True))),
            applies=tuple(draw(st.lists(type_id, max_size=2, unique=True))),
            location=draw(st.none() | st.builds(lambda s: f"/mixin/{s}/", slug)),
        )
        for i in draw(st.lists(type_id, max_size=2))
        if fresh(i)
    ]
    actions = [
        Action(
            *split_type_id(i),
            title=draw(st.none() | text),
            attributes=defs_map(draw(st.lists(attribute_defs(), max_size=2))),
        )
        for i in draw(st.lists(type_id, max_size=2))
        if fresh(i)
    ]
    return CategoryCollection(kinds, mixins, actions)


# ================================================================== helpers
def body(rendered) -> bytes:
    b = rendered.body
    return b if isinstance(b, bytes) else b"".join(b)


def message(r, rendered) -> Message:
    headers: dict[str, str] = {}
    for name, v in rendered.headers:
        headers[name.lower()] = f"{headers[name.lower()]}, {v}" if name.lower() in headers else v
    return Message(headers=headers, body=body(rendered), base_url=BASE)


def typed(value):
    """A value with the Python type of every scalar made explicit (True != 1 != 1.0)."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


def same(r, a, b) -> None:
    if r in RDF:
        ga = Graph().parse(data=body(a), format=r.rdf_format)
        gb = Graph().parse(data=body(b), format=r.rdf_format)
        assert isomorphic(ga, gb), (
            f"{r.media_types[0]}:\n{body(a).decode()}\n---\n{body(b).decode()}"
        )
    else:
        assert (body(a), a.headers) == (body(b), b.headers), r.media_types[0]


def as_categories(refs) -> CategoryCollection:
    coll = CategoryCollection()
    for ref in refs:
        if ref.cls == "kind":
            parent = Kind(*split_type_id(ref.rel[0])) if ref.rel else None
            coll.kinds.append(
                Kind(
                    ref.scheme,
                    ref.term,
                    ref.title,
                    ref.attributes,
                    parent=parent,
                    location=ref.location,
                )
            )
        elif ref.cls == "mixin":
            coll.mixins.append(
                Mixin(
                    ref.scheme,
                    ref.term,
                    ref.title,
                    ref.attributes,
                    depends=tuple(ref.rel),
                    applies=tuple(ref.applies),
                    location=ref.location,
                )
            )
        else:
            coll.actions.append(Action(ref.scheme, ref.term, ref.title, ref.attributes))
    return coll


# ================================================================== properties
@pytest.mark.parametrize("r", ENTITY_RENDERINGS, ids=lambda r: r.media_types[0])
@SETTINGS
@given(entity=st.one_of(resources(), links()))
def test_entity_roundtrip(r, entity):
    first = r.render_entity(entity, CTX)
    (parsed,) = r.parse_entities(message(r, first))
    assert type(parsed) is type(entity)
    assert (parsed.kind, parsed.id, parsed.title) == (entity.kind, entity.id, entity.title)
    assert typed(parsed.attributes) == typed(entity.attributes)  # values keep their types
    assert sorted(parsed.mixins) == sorted(entity.mixins)
    parsed.location, parsed.actions = entity.location, entity.actions  # server-assigned
    same(r, first, r.render_entity(parsed, CTX))


@pytest.mark.parametrize("r", DOCUMENT_RENDERINGS, ids=lambda r: r.media_types[0])
@SETTINGS
@given(
    entities=st.lists(st.one_of(resources(), links()), max_size=3, unique_by=lambda e: e.location)
)
def test_collection_roundtrip(r, entities):
    for i, e in enumerate(entities):
        e.id = f"e{i}"  # to pair parsed entities with the originals
    first = r.render_entities(entities, CTX)
    first = type(first)(first.content_type, first.headers, body(first))
    parsed = r.parse_entities(message(r, first))
    originals = {e.id: e for e in entities}
    if r in RDF:  # a graph has no order
        assert sorted(e.id for e in parsed) == sorted(originals)
    else:
        assert [e.id for e in parsed if not e.is_link] == [e.id for e in entities if not e.is_link]
        assert [e.id for e in parsed if e.is_link] == [e.id for e in entities if e.is_link]
    for p in parsed:
        p.location, p.actions = originals[p.id].location, originals[p.id].actions
    second = r.render_entities(parsed, CTX)
    if isinstance(r, JsonRendering):  # {"links":…,"resources":…} or the other way round
        assert json.loads(body(first)) == json.loads(body(second))
    else:
        same(r, first, second)


@pytest.mark.parametrize("r", DOCUMENT_RENDERINGS, ids=lambda r: r.media_types[0])
@SETTINGS
@given(coll=collections())
def test_categories_roundtrip(r, coll):
    first = r.render_categories(coll, CTX)
    refs = r.parse_categories(message(r, first))
    assert sorted(x.id for x in refs) == sorted(c.id for c in coll)
    same(r, first, r.render_categories(as_categories(refs), CTX))
    for m in coll.mixins:
        one = r.render_mixin(m, CTX)
        same(
            r,
            one,
            r.render_mixin(as_categories(r.parse_categories(message(r, one))).mixins[0], CTX),
        )


@pytest.mark.parametrize("r", [*DOCUMENT_RENDERINGS, TextPlain()], ids=lambda r: r.media_types[0])
@SETTINGS
@given(locations=st.lists(location, max_size=4, unique=True))
def test_locations_roundtrip(r, locations):
    first = r.render_locations(locations, CTX)
    parsed = r.parse_locations(message(r, first))
    assert sorted(parsed) == sorted(locations)
    same(r, first, r.render_locations(parsed if r not in RDF else locations, CTX))


@pytest.mark.parametrize("r", [XmlRendering(), *RDF], ids=lambda r: r.media_types[0])
@SETTINGS
@given(action=type_id, params=st.dictionaries(attr_name, scalar, max_size=3))
def test_action_invocation_parses_back(r, action, params):
    """The XML and RDF renderings also carry invocations (what a client sends)."""
    from lxml import etree

    if r in RDF:
        from rendering.rdf_rendering import GraphBuilder

        b = GraphBuilder(CTX)
        b.invocation(ActionInvocation(action, params))
        data = r.serialize(b.g)
    else:
        scheme, term_ = split_type_id(action)
        root = etree.Element(
            "{http://schemas.ogf.org/occi}action",
            scheme=scheme,
            term=term_,
            nsmap={None: "http://schemas.ogf.org/occi", "xs": "http://www.w3.org/2001/XMLSchema"},
        )
        from rendering.xml_rendering import _value_el

        for name, v in params.items():
            _value_el(root, name, v)
        data = etree.tostring(root)
    assert r.parse_action(Message(body=data, base_url=BASE)) == ActionInvocation(action, params)
