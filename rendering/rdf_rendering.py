"""RDF renderings via rdflib: ``text/turtle``, ``application/ld+json``, ``application/rdf+xml``.

Pure: imports the model (and its static infrastructure categories), rdflib and the XML safety
helpers; no falcon, no SQL. One graph builder and one graph reader serve the three media types,
which differ only in rdflib's serializer/parser. No OCCI RDF vocabulary exists; this one is
defined in schemas/occi.ttl (namespace ``http://schemas.ogf.org/occi/rdf#``, prefix ``occi``):

* Kinds are ``occi:Kind`` and ``rdfs:Class`` with ``rdfs:subClassOf`` their parent; mixins
  ``occi:Mixin`` (and classes) with ``occi:depends``/``occi:applies``; actions ``occi:Action``.
  Categories carry ``occi:term``, ``occi:scheme``, ``occi:title``, ``occi:location`` (relative
  path), ``occi:action`` and ``occi:attribute`` nodes (``occi:Attribute``: ``occi:name``,
  ``occi:property``, ``occi:type``, ``occi:mutable``, ``occi:required``, ``occi:default``,
  ``occi:description``, ``occi:pattern``, ``occi:enum`` (an RDF list), ``occi:minimum``,
  ``occi:maximum``). Kinds list all their attributes (inherited too) and their own actions.
* Entities are nodes named by their absolute URL (a blank node when they have none) typed by
  ``occi:Resource``/``occi:Link``, their kind and their mixins, with ``occi:kind``/``occi:mixin``
  as well so a reader need not know which type is the kind. ``occi:id``, ``occi:title``,
  ``occi:summary`` hold the core attributes (and, as in JSON, ``occi.core.*`` also appear as
  attribute properties). Other attributes are properties
  ``<http://schemas.ogf.org/occi/attribute#NAME>`` with typed literals (xsd:integer,
  xsd:double, xsd:boolean, xsd:string; arrays and objects as rdf:JSON). Links are nodes with
  ``occi:source``/``occi:target`` (absolute IRIs), ``occi:sourceKind``/``occi:targetKind``;
  a resource points at its links with ``occi:link``. Applicable actions: ``occi:action``.
* A collection is an ``occi:Collection`` node whose ``occi:member`` are the entities (also how
  locations are rendered); an action invocation an ``occi:ActionInvocation`` with
  ``occi:action`` and attribute properties; an error an ``occi:Error`` with ``occi:code``,
  ``occi:reason``, ``occi:message``; ``render_ok`` the empty graph.

Parsing is liberal: the kind of an entity is its ``occi:kind``, else the one rdf:type that is a
standard kind or is declared ``occi:Kind`` in the body; other types are mixins. A node with
``occi:source``/``occi:target`` (or typed ``occi:Link``) is a link. JSON-LD bodies may not refer
to remote contexts (nothing is fetched); RDF/XML bodies go through the same DOCTYPE/entity
refusal as the XML rendering.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import warnings
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from typing import Any
from urllib.parse import quote, unquote

from occi import infrastructure
from occi.model import (
    ARRAY,
    BOOLEAN,
    CORE,
    CORE_ATTRIBUTES,
    ENUM,
    INFRA,
    INTEGER,
    NUMBER,
    OBJECT,
    STRING,
    Action,
    ActionInvocation,
    AttributeDef,
    CategoryCollection,
    CategoryRef,
    Entity,
    Kind,
    Link,
    Mixin,
    PatternError,
    Resource,
    compile_pattern,
    split_type_id,
)
from rendering.base import (
    Context,
    Message,
    ParseError,
    Rendered,
    Rendering,
    relative_location,
    safe_text,
)

OCCI_NS = "http://schemas.ogf.org/occi/rdf#"
ATTR_NS = "http://schemas.ogf.org/occi/attribute#"
MAX_DEPTH = 64

_CORE_ATTRS = CORE_ATTRIBUTES
_STANDARD_KINDS = frozenset(k.id for k in infrastructure.KINDS)
_LINK_KINDS = frozenset(k.id for k in infrastructure.KINDS if k.is_a(infrastructure.LINK))


def _rdf():
    import rdflib

    return rdflib


class _WhileParsing(logging.Filter):
    """Drops rdflib's records about literals it cannot convert (a warning with a traceback
    each) while this thread parses a request: the reader checks every value itself and the
    client gets a 400 naming it, so the traceback says nothing the server needs to know."""

    def __init__(self) -> None:
        super().__init__()
        self.active = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(self.active, "on", False):
            return True
        return not str(record.msg).startswith("Failed to convert Literal")


_QUIET = _WhileParsing()
logging.getLogger("rdflib.term").addFilter(_QUIET)


class _Vocab:
    """rdflib terms of the vocabulary, made on first use (rdflib loads lazily)."""

    def __init__(self) -> None:
        rdflib = _rdf()
        self.O = rdflib.Namespace(OCCI_NS)
        self.A = rdflib.Namespace(ATTR_NS)
        self.RDF, self.RDFS, self.XSD = rdflib.RDF, rdflib.RDFS, rdflib.XSD
        self.type_iris = {
            STRING: self.XSD.string,
            INTEGER: self.XSD.integer,
            NUMBER: self.XSD.double,
            BOOLEAN: self.XSD.boolean,
            ENUM: self.O["Enumeration"],
            ARRAY: self.O["Array"],
            OBJECT: self.O["Object"],
        }
        self.iri_types = {str(v): k for k, v in self.type_iris.items()}
        for name in ("float", "decimal"):
            self.iri_types[str(self.XSD[name])] = NUMBER
        for name in ("int", "long", "short", "nonNegativeInteger", "positiveInteger"):
            self.iri_types[str(self.XSD[name])] = INTEGER
        self.iri_types[str(self.XSD.anyURI)] = STRING

        class ExactDouble(rdflib.Literal):  # type: ignore[name-defined]
            """An xsd:double Turtle writes in full: rdflib's shorthand keeps 6 digits."""

            def _literal_n3(self, use_plain: bool = False, qname_callback: Any = None) -> str:
                return super()._literal_n3(False, qname_callback)

        self.ExactDouble = ExactDouble


_V: _Vocab | None = None


def _v() -> _Vocab:
    global _V
    if _V is None:
        _V = _Vocab()
    return _V


def attribute_property(name: str) -> str:
    """The IRI of the RDF property for an OCCI attribute name."""
    return ATTR_NS + quote(name, safe="-._~")


def _new_graph():
    rdflib = _rdf()
    g = rdflib.Graph()
    g.bind("occi", OCCI_NS)
    g.bind("attr", ATTR_NS)
    g.bind("core", CORE)
    g.bind("infra", INFRA)
    g.bind("xsd", str(rdflib.XSD))
    g.bind("rdfs", str(rdflib.RDFS))
    return g


# ====================================================================== values
def _literal(value: Any, as_type: str | None = None):
    rdflib = _rdf()
    v = _v()
    if isinstance(value, bool):
        return rdflib.Literal(value, datatype=v.XSD.boolean)
    if as_type == NUMBER and isinstance(value, int):
        value = float(value)
    if as_type == INTEGER and isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return rdflib.Literal(value, datatype=v.XSD.integer)
    if isinstance(value, float):
        if math.isnan(value):
            lexical = "NaN"
        elif math.isinf(value):
            lexical = "INF" if value > 0 else "-INF"
        else:
            lexical = repr(value)
        return v.ExactDouble(lexical, datatype=v.XSD.double)
    if isinstance(value, (list, dict)):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        return rdflib.Literal(text, datatype=v.RDF.JSON)
    return rdflib.Literal(str(value), datatype=v.XSD.string)


def _python(term: Any, where: str) -> Any:
    rdflib = _rdf()
    v = _v()
    if isinstance(term, rdflib.URIRef):
        return str(term)
    if not isinstance(term, rdflib.Literal):
        raise ParseError(f"{where} must be a literal value, not a blank node")
    dt = str(term.datatype) if term.datatype is not None else None
    text = str(term)
    try:
        if dt == str(v.RDF.JSON):
            return json.loads(text)
        kind = v.iri_types.get(dt) if dt else STRING
        if kind == INTEGER:
            return int(text.strip())
        if kind == NUMBER:
            s = text.strip()
            return float({"INF": "inf", "-INF": "-inf"}.get(s, s))
        if kind == BOOLEAN:
            s = text.strip()
            if s in ("true", "1"):
                return True
            if s in ("false", "0"):
                return False
            raise ValueError(s)
    except (ValueError, RecursionError):
        raise ParseError(f"{where}: {text[:40]!r} is not a valid {dt}") from None
    return text


# ====================================================================== graph building
class GraphBuilder:
    """Adds OCCI documents to an rdflib graph."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.g = _new_graph()
        self.v = _v()

    def _iri(self, location: str):
        return _rdf().URIRef(self.ctx.url(location))

    # -------------------------------------------------------------- categories
    def _category(self, c: Any, cls_term: str):
        rdflib = _rdf()
        g, V = self.g, self.v.O
        node = rdflib.URIRef(c.id)
        g.add((node, self.v.RDF.type, V[cls_term]))
        g.add((node, V["term"], _literal(c.term)))
        g.add((node, V["scheme"], _literal(c.scheme)))
        if c.title is not None:
            g.add((node, V["title"], _literal(c.title)))
        return node

    def attribute(self, node: Any, d: AttributeDef) -> None:
        rdflib = _rdf()
        g, V = self.g, self.v.O
        a = rdflib.BNode()
        g.add((node, V["attribute"], a))
        g.add((a, self.v.RDF.type, V["Attribute"]))
        g.add((a, V["name"], _literal(d.name)))
        g.add((a, V["property"], rdflib.URIRef(attribute_property(d.name))))
        g.add((a, V["type"], self.v.type_iris.get(d.type, self.v.XSD.string)))
        g.add((a, V["mutable"], _literal(d.mutable)))
        g.add((a, V["required"], _literal(d.required)))
        if d.default is not None:
            g.add((a, V["default"], _literal(d.default, d.type)))
        if d.description is not None:
            g.add((a, V["description"], _literal(d.description)))
        if d.pattern:
            g.add((a, V["pattern"], _literal(d.pattern)))
        if d.type == ENUM:
            lst = rdflib.BNode()
            rdflib.collection.Collection(g, lst, [_literal(e) for e in d.enum])
            g.add((a, V["enum"], lst))
        if d.minimum is not None:
            g.add((a, V["minimum"], _literal(d.minimum, d.type)))
        if d.maximum is not None:
            g.add((a, V["maximum"], _literal(d.maximum, d.type)))

    def kind(self, k: Kind) -> None:
        rdflib = _rdf()
        node = self._category(k, "Kind")
        g, V = self.g, self.v.O
        g.add((node, self.v.RDF.type, self.v.RDFS.Class))
        if k.parent is not None:
            g.add((node, self.v.RDFS.subClassOf, rdflib.URIRef(k.parent.id)))
        if k.location is not None:
            g.add((node, V["location"], _literal(k.location)))
        for a in k.actions:
            g.add((node, V["action"], rdflib.URIRef(a.id)))
        for d in k.all_attributes().values():
            self.attribute(node, d)

    def mixin(self, m: Mixin) -> None:
        rdflib = _rdf()
        node = self._category(m, "Mixin")
        g, V = self.g, self.v.O
        g.add((node, self.v.RDF.type, self.v.RDFS.Class))
        for d in m.depends:
            g.add((node, V["depends"], rdflib.URIRef(d)))
        for a in m.applies:
            g.add((node, V["applies"], rdflib.URIRef(a)))
        if m.location is not None:
            g.add((node, V["location"], _literal(m.location)))
        for action in m.actions:
            g.add((node, V["action"], rdflib.URIRef(action.id)))
        for spec in m.attributes.values():
            self.attribute(node, spec)

    def action(self, a: Action) -> None:
        node = self._category(a, "Action")
        for d in a.attributes.values():
            self.attribute(node, d)

    def categories(self, coll: CategoryCollection) -> None:
        for k in coll.kinds:
            self.kind(k)
        for m in coll.mixins:
            self.mixin(m)
        for a in coll.actions:
            self.action(a)

    # -------------------------------------------------------------- entities
    def _values(self, node: Any, core: list[tuple[str, Any]], attributes: dict[str, Any]) -> None:
        rdflib = _rdf()
        g = self.g
        values = [(k, val) for k, val in core if val is not None]
        values += [
            (k, attributes[k])
            for k in sorted(attributes)
            if attributes[k] is not None and k not in _CORE_ATTRS
        ]
        for name, value in values:
            g.add((node, rdflib.URIRef(attribute_property(name)), _literal(value)))

    def _entity_head(self, e: Entity, cls_term: str):
        rdflib = _rdf()
        g, V, RDF = self.g, self.v.O, self.v.RDF
        node = self._iri(e.location) if e.location is not None else rdflib.BNode()
        g.add((node, RDF.type, V[cls_term]))
        if e.kind:
            g.add((node, RDF.type, rdflib.URIRef(e.kind)))
            g.add((node, V["kind"], rdflib.URIRef(e.kind)))
        for m in e.mixins:
            g.add((node, RDF.type, rdflib.URIRef(m)))
            g.add((node, V["mixin"], rdflib.URIRef(m)))
        if e.id is not None:
            g.add((node, V["id"], _literal(e.id)))
        if e.title is not None:
            g.add((node, V["title"], _literal(e.title)))
        for a in e.actions:
            g.add((node, V["action"], rdflib.URIRef(a)))
        return node

    def link(self, link: Link):
        rdflib = _rdf()
        g, V = self.g, self.v.O
        node = self._entity_head(link, "Link")
        if link.source is not None:
            g.add((node, V["source"], self._iri(link.source)))
        if link.target is not None:
            g.add((node, V["target"], self._iri(link.target)))
        if link.source_kind:
            g.add((node, V["sourceKind"], rdflib.URIRef(link.source_kind)))
        if link.target_kind:
            g.add((node, V["targetKind"], rdflib.URIRef(link.target_kind)))
        if link.rel:
            g.add((node, V["rel"], rdflib.URIRef(link.rel)))
        core = link.core_values()
        self._values(node, core, link.attributes)
        return node

    def resource(self, res: Resource):
        g, V = self.g, self.v.O
        node = self._entity_head(res, "Resource")
        if res.summary is not None:
            g.add((node, V["summary"], _literal(res.summary)))
        core = [
            ("occi.core.id", res.id),
            ("occi.core.title", res.title),
            ("occi.core.summary", res.summary),
        ]
        self._values(node, core, res.attributes)
        for link in res.links:
            g.add((node, V["link"], self.link(link)))
        return node

    def entity(self, e: Entity):
        if isinstance(e, Link):
            return self.link(e)
        if isinstance(e, Resource):
            return self.resource(e)
        return self.resource(e.as_resource())

    def collection(self, members: Iterable[Any]) -> None:
        rdflib = _rdf()
        node = rdflib.BNode()
        self.g.add((node, self.v.RDF.type, self.v.O["Collection"]))
        for m in members:
            self.g.add((node, self.v.O["member"], m))

    def error(self, status: int, reason: str, message: str, error_code: str | None) -> None:
        rdflib = _rdf()
        g, V = self.g, self.v.O
        node = rdflib.BNode()
        g.add((node, self.v.RDF.type, V["Error"]))
        g.add((node, V["code"], _literal(int(status))))
        if error_code:
            g.add((node, V["errorCode"], _literal(safe_text(error_code))))
        g.add((node, V["reason"], _literal(reason)))
        g.add((node, V["message"], _literal(message)))

    def invocation(self, inv: ActionInvocation) -> None:
        rdflib = _rdf()
        node = rdflib.BNode()
        self.g.add((node, self.v.RDF.type, self.v.O["ActionInvocation"]))
        if inv.action:
            self.g.add((node, self.v.O["action"], rdflib.URIRef(inv.action)))
        self._values(node, [], inv.attributes)


# ====================================================================== graph reading
class GraphReader:
    """Reads OCCI documents out of an rdflib graph."""

    def __init__(self, g: Any, base_url: str) -> None:
        self.g = g
        self.base_url = base_url
        self.v = _v()

    def _str(self, node: Any, pred: Any, where: str) -> str | None:
        values = list(self.g.objects(node, pred))
        if not values:
            return None
        if len(values) > 1:
            raise ParseError(f"{where} has several values for {pred}; give one")
        value = _python(values[0], where)
        return value if isinstance(value, str) else json.dumps(value)

    def _rel(self, value: str | None) -> str | None:
        return relative_location(value, self.base_url) if value is not None else None

    # -------------------------------------------------------------- entities
    def _declared_kinds(self) -> set[str]:
        return {str(s) for s in self.g.subjects(self.v.RDF.type, self.v.O["Kind"])}

    def _is_entity(self, node: Any, kinds: AbstractSet[str]) -> bool:
        g, V = self.g, self.v.O
        types = {str(t) for t in g.objects(node, self.v.RDF.type)}
        if types & {OCCI_NS + "Resource", OCCI_NS + "Link", OCCI_NS + "Entity"}:
            return True
        if types & kinds:
            return True
        return any((node, p, None) in g for p in (V["kind"], V["source"], V["target"]))

    def entity_nodes(self) -> list[Any]:
        g, V = self.g, self.v.O
        kinds = _STANDARD_KINDS | self._declared_kinds()
        members = [m for m in g.objects(None, V["member"]) if self._is_entity(m, kinds)]
        if members:
            return sorted(set(members), key=str)
        subjects = {s for s in g.subjects() if self._is_entity(s, kinds)}
        inline = set(g.objects(None, V["link"]))
        if not subjects:
            # a partial update may name no kind: any node with attribute values or titles
            subjects = {
                s
                for s, p in g.subject_predicates()
                if str(p).startswith(ATTR_NS)
                or p in (V["title"], V["summary"], V["mixin"], V["id"])
            }
        return sorted(subjects - inline, key=str)

    def entity(self, node: Any, inline: bool = False) -> Entity:
        rdflib = _rdf()
        g, V, RDF = self.g, self.v.O, self.v.RDF
        where = f"<{node}>" if isinstance(node, rdflib.URIRef) else "the entity"
        kinds = _STANDARD_KINDS | self._declared_kinds()
        types = sorted(str(t) for t in g.objects(node, RDF.type))
        named = sorted(str(k) for k in g.objects(node, V["kind"]))
        if len(named) > 1:
            raise ParseError(f"{where} names several kinds ({', '.join(named)}): give one")
        if named:
            kind = named[0]
        else:
            typed = [t for t in types if t in kinds]
            if len(typed) > 1:
                raise ParseError(
                    f"{where} is typed by several kinds ({', '.join(typed)}): "
                    "an entity has exactly one kind"
                )
            kind = typed[0] if typed else ""
        vocabulary = (OCCI_NS, str(self.v.RDFS), str(RDF), "http://www.w3.org/2002/07/owl#")
        mixins = {str(m) for m in g.objects(node, V["mixin"])}
        mixins |= {t for t in types if t != kind and not t.startswith(vocabulary)}
        attributes: dict[str, Any] = {}
        for p, o in g.predicate_objects(node):
            ps = str(p)
            if not ps.startswith(ATTR_NS):
                continue
            name = unquote(ps[len(ATTR_NS) :])
            if name in attributes:
                raise ParseError(f"{where} has several values for the attribute {name}; give one")
            attributes[name] = _python(o, f"{where} attribute {name}")
        core = {n: attributes.pop(n, None) for n in _CORE_ATTRS}
        core = {
            n: (c if c is None or isinstance(c, str) else json.dumps(c)) for n, c in core.items()
        }

        def field(pred: Any, name: str) -> str | None:
            v = self._str(node, pred, where)
            return v if v is not None else core[name]

        common: dict[str, Any] = {
            "kind": kind,
            "id": field(V["id"], "occi.core.id"),
            "title": field(V["title"], "occi.core.title"),
            "mixins": sorted(mixins),
            "attributes": attributes,
        }
        is_link = (
            OCCI_NS + "Link" in types
            or (node, V["source"], None) in g
            or (node, V["target"], None) in g
            or core["occi.core.source"] is not None
            or core["occi.core.target"] is not None
            or (kind in _LINK_KINDS and OCCI_NS + "Resource" not in types)
        )
        if is_link:
            link = Link(
                **common,
                source=self._rel(field(V["source"], "occi.core.source")),
                target=self._rel(field(V["target"], "occi.core.target")),
                source_kind=field(V["sourceKind"], "occi.core.source.kind"),
                target_kind=field(V["targetKind"], "occi.core.target.kind"),
            )
            if inline:
                link.rel = self._str(node, V["rel"], where)
                if isinstance(node, rdflib.URIRef):
                    link.location = self._rel(str(node))
            return link
        res = Resource(**common, summary=field(V["summary"], "occi.core.summary"))
        links: list[Link] = []
        for n in g.objects(node, V["link"]):
            lk = self.entity(n, inline=True)
            if not isinstance(lk, Link):
                raise ParseError(f"{where}: every occi:link must be a link (with occi:target)")
            links.append(lk)
        res.links = sorted(
            links,
            key=lambda lk: (
                lk.target or "",
                lk.kind,
                lk.id or "",  # type: ignore[attr-defined]
                lk.location or "",
            ),
        )
        return res

    def entities(self) -> list[Entity]:
        return [self.entity(n) for n in self.entity_nodes()]

    # -------------------------------------------------------------- others
    def action(self) -> ActionInvocation:
        g, V = self.g, self.v.O
        nodes = list(g.subjects(self.v.RDF.type, V["ActionInvocation"]))
        if not nodes:
            nodes = list({s for s in g.subjects(V["action"], None)})
        if len(nodes) > 1:
            raise ParseError("the body holds several action invocations: send one")
        if not nodes:
            if len(g):
                raise ParseError("the body holds no occi:ActionInvocation")
            return ActionInvocation(action=None)
        node = nodes[0]
        actions = [str(a) for a in g.objects(node, V["action"])]
        if len(actions) > 1:
            raise ParseError("an action invocation names one occi:action")
        attributes: dict[str, Any] = {}
        for p, o in g.predicate_objects(node):
            if str(p).startswith(ATTR_NS):
                name = unquote(str(p)[len(ATTR_NS) :])
                attributes[name] = _python(o, f"the action parameter {name}")
        return ActionInvocation(action=actions[0] if actions else None, attributes=attributes)

    def _attribute_def(self, a: Any, where: str) -> AttributeDef:
        rdflib = _rdf()
        g, V = self.g, self.v.O
        name = self._str(a, V["name"], where)
        if name is None:
            prop = g.value(a, V["property"])
            if prop is None or not str(prop).startswith(ATTR_NS):
                raise ParseError(f"{where}: an occi:Attribute needs an occi:name")
            name = unquote(str(prop)[len(ATTR_NS) :])
        where = f"{where} attribute {name}"
        t = g.value(a, V["type"])
        atype = self.v.iri_types.get(str(t)) if t is not None else STRING
        if atype is None:
            raise ParseError(f"{where}: unknown occi:type <{t}>")
        enum: tuple[str, ...] = ()
        lst = g.value(a, V["enum"])
        if lst is not None:
            enum = tuple(str(x) for x in rdflib.collection.Collection(g, lst))
            atype = ENUM

        def value(pred: Any) -> Any:
            o = g.value(a, pred)
            return None if o is None else _python(o, where)

        def flag(pred: Any, default: bool) -> bool:
            v = value(pred)
            return default if v is None else bool(v)

        pattern = value(V["pattern"])
        if pattern is not None:
            try:
                compile_pattern(str(pattern))
            except PatternError as exc:
                raise ParseError(f"{where}: occi:pattern is not a valid regex: {exc}") from None
        return AttributeDef(
            name=name,
            type=atype,
            mutable=flag(V["mutable"], True),
            required=flag(V["required"], False),
            default=value(V["default"]),
            description=value(V["description"]),
            pattern=pattern,
            enum=enum,
            minimum=value(V["minimum"]),
            maximum=value(V["maximum"]),
        )

    def categories(self) -> list[CategoryRef]:
        g, V = self.g, self.v.O
        out: list[CategoryRef] = []
        for cls, term in (("kind", "Kind"), ("mixin", "Mixin"), ("action", "Action")):
            for node in sorted(set(g.subjects(self.v.RDF.type, V[term])), key=str):
                where = f"<{node}>"
                scheme = self._str(node, V["scheme"], where)
                t = self._str(node, V["term"], where)
                if scheme is None or t is None:
                    try:
                        scheme, t = split_type_id(str(node))
                    except ValueError as exc:
                        raise ParseError(f"{where}: {exc}") from None
                if cls == "kind":
                    rel = sorted(str(p) for p in g.objects(node, self.v.RDFS.subClassOf))
                else:
                    rel = sorted(str(p) for p in g.objects(node, V["depends"]))
                location = self._str(node, V["location"], where)
                attributes = {}
                for a in g.objects(node, V["attribute"]):
                    d = self._attribute_def(a, where)
                    attributes[d.name] = d
                out.append(
                    CategoryRef(
                        scheme=scheme,
                        term=t,
                        cls=cls,
                        title=self._str(node, V["title"], where),
                        location=self._rel(location),
                        rel=rel,
                        applies=sorted(str(p) for p in g.objects(node, V["applies"])),
                        attributes=dict(sorted(attributes.items())),
                    )
                )
        return out

    def locations(self) -> list[str]:
        rdflib = _rdf()
        g, V = self.g, self.v.O
        members = list(g.objects(None, V["member"]))
        if not members:
            members = [n for n in self.entity_nodes()]
        for m in members:
            if not isinstance(m, rdflib.URIRef):
                raise ParseError("every location must be an IRI, not a blank node")
        return [relative_location(str(m), self.base_url) for m in sorted(set(members), key=str)]


# ====================================================================== body reading
def _check_json_depth(value: Any) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ParseError(
                f"the JSON-LD body is nested too deeply (more than {MAX_DEPTH} levels)"
            )
        if isinstance(v, dict):
            for k, c in v.items():
                if k in ("@context", "@import") and _has_remote(c):
                    raise ParseError(
                        "the JSON-LD body refers to a remote context: contexts must be given "
                        "inline (this server fetches nothing)"
                    )
                if isinstance(c, (dict, list)):
                    stack.append((c, depth + 1))
        elif isinstance(v, list):
            stack.extend((c, depth + 1) for c in v if isinstance(c, (dict, list)))


def _has_remote(ctx: Any) -> bool:
    if isinstance(ctx, str):
        return True
    if isinstance(ctx, list):
        return any(_has_remote(c) for c in ctx)
    if isinstance(ctx, dict):
        return "@import" in ctx
    return False


def _decode(body: bytes | str) -> str:
    if isinstance(body, str):
        return body
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(
            f"the body is not UTF-8: invalid byte 0x{body[exc.start]:02x} at offset {exc.start}"
        ) from None


# ====================================================================== the renderings
class _RdfRendering(Rendering):
    """One media type of the RDF family: subclasses name rdflib's format."""

    rdf_format = ""
    label = ""

    # ------------------------------------------------------------------ parsing
    def _check(self, body: bytes) -> str:
        """Format-specific safety checks; returns the text to parse."""
        return _decode(body)

    def _graph(self, msg: Message):
        body = msg.body or b""
        if not body.strip():
            return _new_graph()
        text = self._check(body)
        g = _new_graph()
        base = (msg.base_url.rstrip("/") + "/") if msg.base_url else None
        _QUIET.active.on = True
        try:
            with warnings.catch_warnings():  # rdflib's JSON-LD parser warns about itself
                warnings.simplefilter("ignore", DeprecationWarning)
                # and about literals it cannot convert: the reader refuses them with a 400
                warnings.filterwarnings("ignore", "Parsing weird boolean", UserWarning)
                g.parse(data=text, format=self.rdf_format, publicID=base)
        except RecursionError:
            raise ParseError(f"the {self.label} body is nested too deeply") from None
        except ParseError:
            raise
        except Exception as exc:  # rdflib raises many types for bad syntax
            text = " ".join(str(exc).split())
            text = text if len(text) <= 300 else text[:297] + "..."
            raise ParseError(f"the body is not valid {self.label}: {text}") from None
        finally:
            _QUIET.active.on = False
        return g

    def parse_entities(self, msg: Message) -> list[Entity]:
        return GraphReader(self._graph(msg), msg.base_url).entities()

    def parse_action(self, msg: Message) -> ActionInvocation:
        return GraphReader(self._graph(msg), msg.base_url).action()

    def parse_categories(self, msg: Message) -> list[CategoryRef]:
        return GraphReader(self._graph(msg), msg.base_url).categories()

    def parse_locations(self, msg: Message) -> list[str]:
        return GraphReader(self._graph(msg), msg.base_url).locations()

    # ------------------------------------------------------------------ rendering
    def serialize(self, g: Any) -> bytes:
        out = g.serialize(format=self.rdf_format, encoding="utf-8")
        return out if isinstance(out, bytes) else out.encode("utf-8")

    def _rendered(self, b: GraphBuilder) -> Rendered:
        try:
            body = self.serialize(b.g)
        except Exception as exc:  # e.g. an attribute name RDF/XML cannot make a QName of
            from rendering.base import Unrenderable

            raise Unrenderable(f"{self.media_types[0]} cannot carry this document: {exc}") from None
        return Rendered(self.media_types[0], body=body)

    def render_categories(self, categories: CategoryCollection, ctx: Context) -> Rendered:
        b = GraphBuilder(ctx)
        b.categories(categories)
        return self._rendered(b)

    def render_entity(self, entity: Entity, ctx: Context) -> Rendered:
        b = GraphBuilder(ctx)
        b.entity(entity)
        return self._rendered(b)

    def render_entities(self, entities: Iterable[Entity], ctx: Context) -> Rendered:
        b = GraphBuilder(ctx)
        b.collection([b.entity(e) for e in entities])
        return self._rendered(b)

    def render_locations(self, locations: Iterable[str], ctx: Context) -> Rendered:
        b = GraphBuilder(ctx)
        b.collection([b._iri(loc) for loc in locations])
        return self._rendered(b)

    def render_mixin(self, mixin: Mixin, ctx: Context) -> Rendered:
        b = GraphBuilder(ctx)
        b.mixin(mixin)
        return self._rendered(b)

    def render_ok(self, ctx: Context) -> Rendered:
        return self._rendered(GraphBuilder(ctx))

    def render_error(
        self, status: int, reason: str, message: str, ctx: Context, error_code: str | None = None
    ) -> Rendered:
        b = GraphBuilder(ctx)
        b.error(status, safe_text(reason), safe_text(message), error_code)
        return self._rendered(b)


class TurtleRendering(_RdfRendering):
    media_types = ("text/turtle",)
    rdf_format = "turtle"
    label = "Turtle"


JSONLD_CONTEXT = {
    "occi": OCCI_NS,
    "attr": ATTR_NS,
    "core": CORE,
    "infra": INFRA,
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
}


class JsonLdRendering(_RdfRendering):
    media_types = ("application/ld+json",)
    rdf_format = "json-ld"
    label = "JSON-LD"

    def _check(self, body: bytes) -> str:
        text = _decode(body)
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"the body is not valid JSON-LD: {exc}") from None
        _check_json_depth(doc)
        return text

    def serialize(self, g: Any) -> bytes:
        out = g.serialize(format="json-ld", context=JSONLD_CONTEXT, indent=2, encoding="utf-8")
        return out if isinstance(out, bytes) else out.encode("utf-8")


class RdfXmlRendering(_RdfRendering):
    media_types = ("application/rdf+xml",)
    rdf_format = "xml"
    label = "RDF/XML"

    def _check(self, body: bytes) -> str:
        from rendering.xml_rendering import check_safe_xml

        check_safe_xml(body)
        return _decode(body)


__all__ = [
    "TurtleRendering",
    "JsonLdRendering",
    "RdfXmlRendering",
    "GraphBuilder",
    "GraphReader",
    "OCCI_NS",
    "ATTR_NS",
    "attribute_property",
]
