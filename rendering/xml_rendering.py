"""OCCI XML rendering (``application/occi+xml``, also ``application/xml``): bytes <-> the model.

Pure: imports the model, lxml and the schema helper; no falcon, no SQL. No XML rendering was
ever standardised; shapes follow the OGF draft (GWD-R 2014) and erocci where they agree, in
the namespace ``http://schemas.ogf.org/occi``, and schemas/occi.xsd pins them down. Semantics
mirror the JSON rendering:

* Entities. ``<resource id title href>`` / ``<link id title href source target>`` with
  ``<kind>``, ``<mixin>``, ``<summary>``, ``<attribute name value type>``, inline ``<link>``
  and applicable ``<action>`` children. ``href`` is the absolute URL; source/target are rendered
  as stored (paths below the root). ``occi.core.*`` appear both as the XML attributes/elements
  the draft defines and as ``<attribute>`` children (as erocci does); on input both places are
  read, the first wins, and they never stay in the model's attributes.
* Attribute values are strings in ``value``; non-strings carry ``type`` (``xs:integer``,
  ``xs:double``, ``xs:boolean``, or ``array``/``object`` in the OCCI namespace with JSON text).
  An untyped value stays a string: the service converts it by the attribute's definition.
* Categories (``<capabilities>``, ``<kind>``, ``<mixin>``): kinds carry ``<parent>``, all
  attribute definitions (inherited too) and references to their own actions; mixins
  ``<depends>``/``<applies>``; actions (top level of capabilities) their parameters.
  An attribute definition is ``<attribute name type immutable use default description>``
  with an ``<xs:restriction>`` for enumerations, patterns and bounds, as erocci renders them.
* Collections are ``<collection>`` with resources and links in arrival order, streamed.
  Locations are ``<locations><location>URL</location>…</locations>``; bulk association also
  accepts erocci's ``<collection><resource href="…"/></collection>``.
* Action invocation: ``<action scheme term><attribute name value/></action>`` (the draft's).
* ``render_ok`` is ``<ok/>``; errors ``<error code reason>message</error>``.

Safety: no DTD (a DOCTYPE or ENTITY declaration is refused before parsing), no entity
resolution, no network, depth at most 64; then schemas/occi.xsd validates the document.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from typing import Any

from occi.model import (
    ARRAY,
    BOOLEAN,
    CORE_ATTRIBUTES,
    ENUM,
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
from rendering.schema_validation import safe_xml_parser, validate_xml

NS = "http://schemas.ogf.org/occi"
XS = "http://www.w3.org/2001/XMLSchema"
NSMAP = {None: NS, "xs": XS}
CONTENT_TYPE = "application/occi+xml"
MAX_DEPTH = 64
CHUNK_SIZE = 32 * 1024

_CORE_ATTRS = CORE_ATTRIBUTES
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_HOSTILE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)

# type names (local part of the QName) -> model types
_TYPE_NAMES = {
    "string": STRING,
    "anyuri": STRING,
    "token": STRING,
    "normalizedstring": STRING,
    "integer": INTEGER,
    "int": INTEGER,
    "long": INTEGER,
    "short": INTEGER,
    "nonnegativeinteger": INTEGER,
    "positiveinteger": INTEGER,
    "double": NUMBER,
    "float": NUMBER,
    "decimal": NUMBER,
    "number": NUMBER,
    "boolean": BOOLEAN,
    "bool": BOOLEAN,
    "array": ARRAY,
    "list": ARRAY,
    "object": OBJECT,
    "hash": OBJECT,
    "enum": ENUM,
}
_TYPE_QNAMES = {
    STRING: "xs:string",
    ENUM: "xs:string",
    INTEGER: "xs:integer",
    NUMBER: "xs:double",
    BOOLEAN: "xs:boolean",
    ARRAY: "array",
    OBJECT: "object",
}


def _etree():
    from lxml import etree

    return etree


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def _text(value: str) -> str:
    """The text with characters XML 1.0 cannot carry replaced by U+FFFD."""
    return _XML_INVALID.sub("\ufffd", value)


def _split(type_id: str) -> tuple[str, str]:
    i = type_id.rfind("#")
    if i < 0:
        i = type_id.rfind("/")
    return type_id[: i + 1], type_id[i + 1 :]


# ====================================================================== values
def _format_number(value: Any, as_type: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if as_type == INTEGER and isinstance(value, (int, float)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, float) or (as_type == NUMBER and isinstance(value, int)):
        f = float(value)
        if math.isnan(f):
            return "NaN"
        if math.isinf(f):
            return "INF" if f > 0 else "-INF"
        return repr(f)
    return str(value)


def _lexical(value: Any, as_type: str | None = None) -> tuple[str, str | None]:
    """(lexical form, type QName or None for a plain string)."""
    if isinstance(value, bool):
        return ("true" if value else "false"), "xs:boolean"
    if isinstance(value, int):
        return str(value), "xs:integer"
    if isinstance(value, float):
        return _format_number(value, NUMBER), "xs:double"
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")), "array"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")), "object"
    return str(value), None


def _local(qname: str | None) -> str:
    return (qname or "").rpartition(":")[2].rpartition("}")[2].strip().lower()


def _typed(text: str, type_name: str | None, where: str) -> Any:
    """A lexical value read by its type name (local part of a QName)."""
    t = _TYPE_NAMES.get(_local(type_name)) if type_name else STRING
    if t is None:
        raise ParseError(
            f"{where}: unknown type {type_name!r}; use xs:string, xs:integer, "
            "xs:double, xs:boolean, array or object"
        )
    try:
        if t == INTEGER:
            return int(text.strip())
        if t == NUMBER:
            s = text.strip()
            return float({"INF": "inf", "-INF": "-inf"}.get(s, s))
        if t == BOOLEAN:
            s = text.strip()
            if s in ("true", "1"):
                return True
            if s in ("false", "0"):
                return False
            raise ValueError(s)
        if t in (ARRAY, OBJECT):
            v = json.loads(text)
            if not isinstance(v, list if t == ARRAY else dict):
                raise ValueError(text)
            return v
    except (ValueError, RecursionError):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ParseError(f"{where}: {shown!r} is not a valid {t}") from None
    return text


# ====================================================================== rendering helpers
def _el(parent: Any, tag: str, **attrs: Any) -> Any:
    etree = _etree()
    el = (
        etree.SubElement(parent, _q(tag))
        if parent is not None
        else etree.Element(_q(tag), nsmap=NSMAP)
    )
    for k, v in attrs.items():
        if v is not None:
            el.set(k, _text(str(v)))
    return el


def _ref(parent: Any, tag: str, type_id: str) -> Any:
    scheme, term = _split(type_id)
    return _el(parent, tag, scheme=scheme, term=term)


def _value_el(parent: Any, name: str, value: Any) -> None:
    text, qname = _lexical(value)
    _el(parent, "attribute", name=name, value=text, type=qname)


def _attribute_spec(parent: Any, d: AttributeDef) -> None:
    el = _el(
        parent,
        "attribute",
        name=d.name,
        type=_TYPE_QNAMES.get(d.type, "xs:string"),
        immutable="false" if d.mutable else "true",
        use="required" if d.required else "optional",
    )
    if d.default is not None:
        if d.type in (INTEGER, NUMBER):
            el.set("default", _format_number(d.default, d.type))
        else:
            el.set("default", _text(_lexical(d.default)[0]))
    if d.description is not None:
        el.set("description", _text(d.description))
    facets: list[tuple[str, str]] = []
    if d.type == ENUM:
        facets.extend(("enumeration", v) for v in d.enum)
    if d.pattern and d.type in (STRING, ENUM):
        facets.append(("pattern", d.pattern))
    if d.type in (INTEGER, NUMBER):
        if d.minimum is not None:
            facets.append(("minInclusive", _format_number(d.minimum, d.type)))
        if d.maximum is not None:
            facets.append(("maxInclusive", _format_number(d.maximum, d.type)))
    if facets or d.type == ENUM:
        etree = _etree()
        r = etree.SubElement(el, f"{{{XS}}}restriction")
        r.set("base", _TYPE_QNAMES[d.type])
        for tag, v in facets:
            etree.SubElement(r, f"{{{XS}}}{tag}").set("value", _text(str(v)))


def _category_attrs(c: Any) -> dict[str, Any]:
    return {"term": c.term, "scheme": c.scheme, "title": c.title}


def kind_element(k: Kind, parent: Any = None) -> Any:
    el = _el(parent, "kind", **_category_attrs(k), location=k.location)
    if k.parent is not None:
        _ref(el, "parent", k.parent.id)
    for d in k.all_attributes().values():
        _attribute_spec(el, d)
    for a in k.actions:
        _ref(el, "action", a.id)
    return el


def mixin_element(m: Mixin, parent: Any = None) -> Any:
    el = _el(parent, "mixin", **_category_attrs(m), location=m.location)
    for d in m.depends:
        _ref(el, "depends", d)
    for a in m.applies:
        _ref(el, "applies", a)
    for spec in m.attributes.values():
        _attribute_spec(el, spec)
    for action in m.actions:
        _ref(el, "action", action.id)
    return el


def action_element(a: Action, parent: Any = None) -> Any:
    el = _el(parent, "action", **_category_attrs(a))
    for d in a.attributes.values():
        _attribute_spec(el, d)
    return el


def _values(attributes: dict[str, Any], skip: Iterable[str]) -> list[tuple[str, Any]]:
    skipped = set(skip)
    return [
        (k, attributes[k])
        for k in sorted(attributes)
        if attributes[k] is not None and k not in skipped
    ]


def link_element(link: Link, ctx: Context, parent: Any = None) -> Any:
    el = _el(
        parent,
        "link",
        id=link.id,
        title=link.title,
        href=ctx.url(link.location) if link.location is not None else None,
        source=link.source,
        target=link.target,
    )
    if link.kind:
        _ref(el, "kind", link.kind)
    for m in link.mixins:
        _ref(el, "mixin", m)
    core = link.core_values()
    for name, v in [c for c in core if c[1] is not None] + _values(link.attributes, _CORE_ATTRS):
        _value_el(el, name, v)
    for a in link.actions:
        _ref(el, "action", a)
    return el


def resource_element(res: Resource, ctx: Context, parent: Any = None) -> Any:
    el = _el(
        parent,
        "resource",
        id=res.id,
        title=res.title,
        href=ctx.url(res.location) if res.location is not None else None,
    )
    if res.kind:
        _ref(el, "kind", res.kind)
    for m in res.mixins:
        _ref(el, "mixin", m)
    if res.summary is not None:
        _el(el, "summary").text = _text(res.summary)
    core = [
        ("occi.core.id", res.id),
        ("occi.core.title", res.title),
        ("occi.core.summary", res.summary),
    ]
    for name, v in [c for c in core if c[1] is not None] + _values(res.attributes, _CORE_ATTRS):
        _value_el(el, name, v)
    for link in res.links:
        link_element(link, ctx, el)
    for a in res.actions:
        _ref(el, "action", a)
    return el


def entity_element(entity: Entity, ctx: Context, parent: Any = None) -> Any:
    if isinstance(entity, Link):
        return link_element(entity, ctx, parent)
    if isinstance(entity, Resource):
        return resource_element(entity, ctx, parent)
    return resource_element(
        entity.as_resource(),
        ctx,
        parent,
    )


def _serialize(root: Any) -> bytes:
    return _etree().tostring(root, encoding="utf-8", xml_declaration=True, pretty_print=True)


_DECLARATIONS = f' xmlns="{NS}" xmlns:xs="{XS}"'.encode()


def _stream_collection(entities: Iterable[Entity], ctx: Context) -> Iterator[bytes]:
    etree = _etree()
    head = b"<?xml version='1.0' encoding='utf-8'?>\n<collection" + _DECLARATIONS + b">\n"
    buf = bytearray(head)
    for entity in entities:
        data = etree.tostring(entity_element(entity, ctx), encoding="utf-8", pretty_print=True)
        # the declarations are in scope from <collection>: drop the child's repetition
        buf += data.replace(_DECLARATIONS, b"", 1)
        if len(buf) >= CHUNK_SIZE:
            yield bytes(buf)
            buf.clear()
    buf += b"</collection>\n"
    yield bytes(buf)


# ====================================================================== parsing helpers
def check_safe_xml(body: bytes | str) -> Any:
    """Parse `body` safely (no DTD, no entity, no network, bounded depth): its root element,
    or None for an empty body. ParseError for anything hostile or not well-formed."""
    etree = _etree()
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not body or not body.strip():
        return None
    probes = [body]
    if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            probes.append(body.decode("utf-16").encode("utf-8"))
        except UnicodeDecodeError:
            pass
    if any(_HOSTILE.search(p) for p in probes):
        raise ParseError(
            "the XML body declares a DOCTYPE or ENTITY: DTDs and entities are "
            "not accepted; send the document without them"
        )
    try:
        root = etree.fromstring(body, safe_xml_parser())
    except etree.XMLSyntaxError as exc:
        text = str(exc)
        if "depth" in text.lower():
            raise ParseError(
                f"the XML body is nested too deeply (more than {MAX_DEPTH} levels)"
            ) from None
        raise ParseError(f"the body is not well-formed XML: {text}") from None
    if root is None:
        raise ParseError("the body is not an XML document")
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise ParseError("the XML body declares a DOCTYPE: DTDs are not accepted")
    _check_depth(root)
    return root


def load(body: bytes | str) -> Any:
    """The root element of a safe OCCI XML body valid against schemas/occi.xsd, or None for an
    empty body. Elements without a namespace are read as OCCI's (liberal)."""
    root = check_safe_xml(body)
    if root is None:
        return None
    for el in root.iter():
        if isinstance(el.tag, str) and not el.tag.startswith("{"):
            el.tag = _q(el.tag)
    validate_xml(root)
    return root


def _check_depth(root: Any) -> None:
    stack = [(root, 1)]
    while stack:
        el, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ParseError(f"the XML body is nested too deeply (more than {MAX_DEPTH} levels)")
        stack.extend((c, depth + 1) for c in el)


def _tag(el: Any) -> str:
    return el.tag.rpartition("}")[2] if isinstance(el.tag, str) else ""


def _children(el: Any, tag: str) -> list[Any]:
    return [c for c in el if _tag(c) == tag and c.tag.startswith(f"{{{NS}}}")]


def _ref_id(el: Any) -> str:
    return (el.get("scheme") or "") + (el.get("term") or "")


def _first(el: Any, tag: str) -> Any | None:
    found = _children(el, tag)
    return found[0] if found else None


def _attribute_values(el: Any, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in _children(el, "attribute"):
        name = a.get("name")
        value = a.get("value")
        out[name] = (
            None
            if value is None
            else _typed(value, a.get("type"), f"{where}/attribute[@name={name!r}]")
        )
    return out


def _str(v: Any) -> str | None:
    if v is None:
        return None
    return v if isinstance(v, str) else _lexical(v)[0]


def _entity(el: Any, base_url: str, inline: bool = False) -> Entity:
    tag = _tag(el)
    where = tag
    kind_el = _first(el, "kind")
    attributes = _attribute_values(el, where)
    core = {n: _str(attributes.pop(n, None)) for n in _CORE_ATTRS}
    ent_id = el.get("id") if el.get("id") is not None else core["occi.core.id"]
    title = el.get("title") if el.get("title") is not None else core["occi.core.title"]
    common: dict[str, Any] = {
        "kind": _ref_id(kind_el) if kind_el is not None else "",
        "id": ent_id,
        "title": title,
        "mixins": [_ref_id(m) for m in _children(el, "mixin")],
        "attributes": attributes,
    }

    def rel(value: str | None) -> str | None:
        return relative_location(value, base_url) if value is not None else None

    if tag == "link":
        link = Link(
            **common,
            source=rel(
                el.get("source") if el.get("source") is not None else core["occi.core.source"]
            ),
            target=rel(
                el.get("target") if el.get("target") is not None else core["occi.core.target"]
            ),
            source_kind=core["occi.core.source.kind"],
            target_kind=core["occi.core.target.kind"],
        )
        if inline:
            link.rel = el.get("rel")
            link.location = rel(el.get("href"))
        return link
    summary_el = _first(el, "summary")
    summary = (summary_el.text or "") if summary_el is not None else core["occi.core.summary"]
    res = Resource(**common, summary=summary)
    res.links = [_entity(c, base_url, inline=True) for c in _children(el, "link")]  # type: ignore[misc]
    return res


def _attribute_def(el: Any, where: str) -> AttributeDef:
    name = el.get("name")
    where = f"{where}/attribute[@name={name!r}]"
    type_name = el.get("type")
    restriction = next(
        (c for c in el if isinstance(c.tag, str) and c.tag == f"{{{XS}}}restriction"), None
    )
    if type_name is None and restriction is not None:
        type_name = restriction.get("base")
    atype = _TYPE_NAMES.get(_local(type_name)) if type_name else STRING
    if atype is None:
        raise ParseError(
            f"{where}: unknown type {type_name!r}; use xs:string, xs:integer, "
            "xs:double, xs:boolean, array or object"
        )
    enum: list[str] = []
    pattern = minimum = maximum = None
    if restriction is not None:
        for f in restriction:
            if not isinstance(f.tag, str):
                continue
            facet, value = f.tag.rpartition("}")[2], f.get("value")
            if facet == "enumeration":
                enum.append(value)
            elif facet == "pattern":
                pattern = value
                try:
                    compile_pattern(value or "")
                except PatternError as exc:
                    raise ParseError(
                        f"{where}: the pattern is not a valid regular expression: {exc}"
                    ) from None
            elif facet in ("minInclusive", "maxInclusive"):
                bound = _typed(value, "xs:integer" if atype == INTEGER else "xs:double", where)
                if facet == "minInclusive":
                    minimum = bound
                else:
                    maximum = bound
    if enum:
        atype = ENUM
    default: Any = el.get("default")
    if default is not None and atype not in (STRING, ENUM):
        default = _typed(default, _TYPE_QNAMES[atype], f"{where}/@default")
    return AttributeDef(
        name=name,
        type=atype,
        mutable=el.get("immutable", "false").strip() not in ("true", "1"),
        required=el.get("use") == "required",
        default=default,
        description=el.get("description"),
        pattern=pattern,
        enum=tuple(enum),
        minimum=minimum,
        maximum=maximum,
    )


def _category(el: Any, cls: str, base_url: str) -> CategoryRef:
    tag = _tag(el)
    where = f"{tag}[@term={el.get('term')!r}]"
    rel: list[str] = []
    applies: list[str] = []
    if cls == "kind":
        parent = _first(el, "parent")
        if parent is not None:
            rel.append(_ref_id(parent))
    elif cls == "mixin":
        rel = [_ref_id(d) for d in _children(el, "depends")]
        applies = [_ref_id(a) for a in _children(el, "applies")]
    attributes = {}
    for a in _children(el, "attribute"):
        if a.get("value") is not None and a.get("type") is None and a.get("immutable") is None:
            continue  # an invocation parameter value, not a definition
        d = _attribute_def(a, where)
        attributes[d.name] = d
    location = el.get("location")
    return CategoryRef(
        scheme=el.get("scheme") or "",
        term=el.get("term") or "",
        cls=cls,
        title=el.get("title"),
        location=relative_location(location, base_url) if location is not None else None,
        rel=rel,
        applies=applies,
        attributes=attributes,
    )


def _expect(root: Any, tags: tuple[str, ...], what: str) -> str:
    tag = _tag(root)
    if tag not in tags:
        raise ParseError(
            f"the XML body is a <{tag}> document, but {what} is expected: send "
            + " or ".join(f"<{t}>" for t in tags)
        )
    return tag


# ====================================================================== the rendering
class XmlRendering(Rendering):
    media_types = ("application/occi+xml", "application/xml")

    # ------------------------------------------------------------------ parsing
    def parse_entities(self, msg: Message) -> list[Entity]:
        root = load(msg.body)
        if root is None:
            return []
        tag = _expect(root, ("resource", "link", "collection"), "an entity or a collection")
        if tag == "collection":
            return [_entity(c, msg.base_url) for c in root if _tag(c) in ("resource", "link")]
        return [_entity(root, msg.base_url)]

    def parse_action(self, msg: Message) -> ActionInvocation:
        root = load(msg.body)
        if root is None:
            return ActionInvocation(action=None)
        _expect(root, ("action",), "an action invocation")
        term = root.get("term")
        action = (root.get("scheme") or "") + term if term else None
        return ActionInvocation(action=action, attributes=_attribute_values(root, "action"))

    def parse_categories(self, msg: Message) -> list[CategoryRef]:
        root = load(msg.body)
        if root is None:
            return []
        tag = _expect(root, ("capabilities", "kind", "mixin", "action"), "categories")
        if tag != "capabilities":
            return [_category(root, tag, msg.base_url)]
        return [
            _category(c, _tag(c), msg.base_url)
            for c in root
            if _tag(c) in ("kind", "mixin", "action")
        ]

    def parse_locations(self, msg: Message) -> list[str]:
        root = load(msg.body)
        if root is None:
            return []
        tag = _expect(root, ("locations", "collection", "resource", "link"), "locations")
        if tag == "locations":
            raw = [(c.text or "").strip() for c in _children(root, "location")]
        elif tag == "collection":
            raw = [c.get("href") for c in root if _tag(c) in ("resource", "link")]
            if any(r is None for r in raw):
                raise ParseError("every entity in the <collection> needs an href (its location)")
        else:
            raw = [root.get("href")] if root.get("href") else []
        return [relative_location(r, msg.base_url) for r in raw if r]

    # ------------------------------------------------------------------ rendering
    def _rendered(self, root: Any) -> Rendered:
        return Rendered(CONTENT_TYPE, body=_serialize(root))

    def render_categories(self, categories: CategoryCollection, ctx: Context) -> Rendered:
        root = _el(None, "capabilities")
        for k in categories.kinds:
            kind_element(k, root)
        for m in categories.mixins:
            mixin_element(m, root)
        for a in categories.actions:
            action_element(a, root)
        return self._rendered(root)

    def render_entity(self, entity: Entity, ctx: Context) -> Rendered:
        return self._rendered(entity_element(entity, ctx))

    def render_entities(self, entities: Iterable[Entity], ctx: Context) -> Rendered:
        return Rendered(CONTENT_TYPE, body=_stream_collection(entities, ctx))

    def render_locations(self, locations: Iterable[str], ctx: Context) -> Rendered:
        root = _el(None, "locations")
        for loc in locations:
            _el(root, "location").text = _text(ctx.url(loc))
        return self._rendered(root)

    def render_mixin(self, mixin: Mixin, ctx: Context) -> Rendered:
        return self._rendered(mixin_element(mixin))

    def render_ok(self, ctx: Context) -> Rendered:
        return self._rendered(_el(None, "ok"))

    def render_error(
        self, status: int, reason: str, message: str, ctx: Context, error_code: str | None = None
    ) -> Rendered:
        root = _el(None, "error", code=status, reason=safe_text(reason))
        if error_code:
            root.set("errorCode", safe_text(error_code))
        root.text = _text(safe_text(message))
        return self._rendered(root)


__all__ = ["XmlRendering", "CONTENT_TYPE", "NS", "load", "check_safe_xml"]
