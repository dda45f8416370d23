"""OCCI JSON rendering (GFD.226, ``application/occi+json``): bytes <-> the neutral model.

Parsing is liberal, rendering strict. Decisions where GFD.226 is silent or defective
(see NOTES.md section 5):

* ``occi.core.*`` attributes. Rendered both as the top-level members the spec defines (``id``,
  ``title``, ``summary``, ``source``/``target``) and inside ``attributes`` (``occi.core.id``,
  ``occi.core.title``, ``occi.core.summary``, ``occi.core.source``, ``occi.core.target``,
  ``occi.core.source.kind``, ``occi.core.target.kind``), as rOCCI and erocci do: clients of
  either school find them. On input both places are accepted; they go to the model's fields
  and never stay in ``attributes``; the top-level member wins when both are given.
* Members. ``mixins``, ``attributes`` and ``actions`` are always rendered (possibly empty),
  and so are a resource's ``links``; ``title``, ``summary`` and ``kind`` of a source/target
  are left out when unknown. Entities carry ``location`` (absolute URL), as erocci does; the
  GFD.226 schema's ``additionalProperties:false`` would not allow it, but clients need it to
  address an entity they found in a collection. ``source``/``target`` locations are rendered
  as stored (paths below the service root, like rOCCI; third-party targets stay absolute).
* Attribute values keep their JSON types; attributes without a value (None) are left out.
* Categories. Kinds render ``attributes`` (all, inherited included), ``actions`` (the kind's
  own), ``parent`` and ``location``; mixins ``attributes``, ``actions``, ``depends``,
  ``applies`` and ``location``; actions ``attributes``. Arrays and ``attributes`` always
  appear, possibly empty. The query interface is ``{"kinds":[…],"mixins":[…],"actions":[…]}``
  with all three keys.
* Attribute descriptions. ``integer`` renders as type ``"number"`` with a JSON Schema pattern
  ``{"type":"integer"}``; ``enum`` as ``"string"`` with ``{"type":"string","enum":[…]}``; a
  string regex as ``{"type":"string","pattern":…}``; bounds as ``minimum``/``maximum``. On
  input the pattern may also be a bare regex string (rOCCI); Ruby's POSIX bracket classes
  (``[[:alnum:]]``) are translated.
* Entity collections are ``{"resources":[…],"links":[…]}``, both keys always, streamed: the
  body is a generator of bytes chunks. The kind of entity that comes first is written as it
  arrives; entities of the other kind (rare: only mixin collections mix them) are buffered as
  rendered JSON and written after. Chunks are flushed at about 32 KiB, so memory holds at most
  that plus one entity, except for the buffered minority.
* Locations (``render_locations``) are ``{"locations":[absolute URLs]}``; on input the three
  bulk forms in use are accepted (erocci ``{"resources":[{"location":…}]}``, MartServer
  ``{"locations":[…]}``, rOCCI bare array, of strings or of objects with ``location``).
* ``render_ok`` is ``{}``; errors are ``{"error":{"code":…,"reason":…,"message":…,
  "error_code":…}}``: ``code`` is the HTTP status, ``error_code`` the machine-readable code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from occi.model import (
    ARRAY,
    BOOLEAN,
    CORE_ATTRIBUTES,
    ENUM,
    INTEGER,
    MAX_NUMBER_TEXT,
    NUMBER,
    OBJECT,
    STRING,
    Action,
    ActionInvocation,
    AttributeDef,
    Category,
    CategoryCollection,
    CategoryRef,
    Entity,
    EntityRef,
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
from rendering.schema_validation import validate_json

CONTENT_TYPE = "application/occi+json"
JSON_SCHEMA = "http://json-schema.org/draft-04/schema#"
MAX_DEPTH = 64
CHUNK_SIZE = 32 * 1024

_TYPE_NAMES = {
    "string": STRING,
    "number": NUMBER,
    "boolean": BOOLEAN,
    "bool": BOOLEAN,
    "array": ARRAY,
    "list": ARRAY,
    "object": OBJECT,
    "hash": OBJECT,
    "integer": INTEGER,
    "int": INTEGER,
    "enum": ENUM,
}

_POSIX_CLASSES = {
    "alnum": "A-Za-z0-9",
    "alpha": "A-Za-z",
    "digit": "0-9",
    "xdigit": "0-9A-Fa-f",
    "upper": "A-Z",
    "lower": "a-z",
    "space": r"\s",
    "blank": r" \t",
    "word": r"\w",
    "punct": r"!-/:-@\[-`{-~",
    "cntrl": r"\x00-\x1f\x7f",
    "print": r"\x20-\x7e",
    "graph": r"\x21-\x7e",
}
_POSIX_RE = re.compile(r"\[:(" + "|".join(_POSIX_CLASSES) + r"):\]")
_RUBY_NO_FLAGS_RE = re.compile(r"\(\?-[mix]{1,3}:")

_CORE_ATTRS = CORE_ATTRIBUTES
_ENTITY_KEYS = {
    "kind",
    "id",
    "mixins",
    "attributes",
    "title",
    "summary",
    "source",
    "target",
    "actions",
    "location",
}
_CATEGORY_KEYS = ("kinds", "mixins", "actions")


# ====================================================================== helpers (parsing)
def _fail_constant(name: str) -> Any:
    raise ParseError(f"{name} is not a JSON number; send a finite number")


def _bounded_int(text: str) -> int | float:
    """A JSON integer; one of more than MAX_NUMBER_TEXT digits is read as a float (Python
    refuses int() of more than 4300 digits, and no attribute holds more than 64 bits): the
    attribute's type then refuses it with its name, or check_parsed as not finite."""
    if len(text) > MAX_NUMBER_TEXT:
        return float(text)
    return int(text)


def _load(msg: Message) -> Any:
    """The body as a JSON value, or None when the body is empty."""
    body = msg.body or b""
    try:
        text = body.decode("utf-8-sig") if isinstance(body, (bytes, bytearray)) else str(body)
    except UnicodeDecodeError as exc:
        raise ParseError(
            f"the body is not UTF-8: invalid byte 0x{body[exc.start]:02x} at offset {exc.start}"
        ) from None
    if not text.strip():
        return None
    try:
        value = json.loads(text, parse_constant=_fail_constant, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except RecursionError:
        raise ParseError(
            f"the JSON body is nested too deeply (more than {MAX_DEPTH} levels)"
        ) from None
    except ValueError as exc:  # e.g. an integer literal of thousands of digits
        raise ParseError(f"the body has a value JSON cannot carry here: {exc}") from None
    _check_depth(value)
    return value


def _check_depth(value: Any) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ParseError(f"the JSON body is nested too deeply (more than {MAX_DEPTH} levels)")
        if isinstance(v, dict):
            stack.extend((c, depth + 1) for c in v.values() if isinstance(c, (dict, list)))
        elif isinstance(v, list):
            stack.extend((c, depth + 1) for c in v if isinstance(c, (dict, list)))


def _key(path: str, name: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return f"{path}.{name}" if path else name
    return f"{path}[{json.dumps(name)}]"


def _where(path: str) -> str:
    return path or "the body"


def _obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParseError(f"{_where(path)} must be a JSON object, not {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _opt_str(obj: dict[str, Any], name: str, path: str, text: bool = False) -> str | None:
    """An optional string member. `text` members (titles, descriptions) also accept an empty
    array as the empty string: Erlang peers (erocci) render "" as [] (same term in Erlang)."""
    v = obj.get(name)
    if v is None:
        return None
    if text and v == []:
        return ""
    if not isinstance(v, str):
        raise ParseError(f"{_key(path, name)} must be a string, not {_json_type(v)}")
    return v


def _opt_bool(obj: dict[str, Any], name: str, path: str, default: bool) -> bool:
    v = obj.get(name)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise ParseError(f"{_key(path, name)} must be true or false, not {_json_type(v)}")
    return v


def _str_list(obj: dict[str, Any], name: str, path: str) -> list[str]:
    v = obj.get(name)
    if v is None:
        return []
    p = _key(path, name)
    if not isinstance(v, list):
        raise ParseError(f"{p} must be an array of strings, not {_json_type(v)}")
    for i, item in enumerate(v):
        if not isinstance(item, str):
            raise ParseError(f"{p}[{i}] must be a string, not {_json_type(item)}")
    return list(v)


def _opt_obj(obj: dict[str, Any], name: str, path: str) -> dict[str, Any]:
    v = obj.get(name)
    if v is None:
        return {}
    return dict(_obj(v, _key(path, name)))


def _list(value: Any, path: str, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ParseError(f"{_where(path)} must be an array of {what}, not {_json_type(value)}")
    return value


def _python_regex(pattern: str, path: str) -> str:
    """The regex as Python reads it (POSIX bracket classes translated); ParseError if invalid."""
    converted = _POSIX_RE.sub(lambda m: _POSIX_CLASSES[m.group(1)], pattern)
    # rOCCI's Ruby patterns come as (?-mix:...): flags switched off, which is the default
    converted = _RUBY_NO_FLAGS_RE.sub("(?:", converted)
    try:
        compile_pattern(converted)
    except PatternError as exc:
        raise ParseError(f"{path} is not a valid regular expression: {exc}") from None
    return converted


# ====================================================================== parsing: entities
def _endpoint(value: Any, path: str, base_url: str) -> tuple[str | None, str | None]:
    """A link's source/target: {"location": str, "kind": str} or a plain string."""
    if value is None:
        return None, None
    if isinstance(value, str):
        return relative_location(value, base_url), None
    if not isinstance(value, dict):
        raise ParseError(
            f'{path} must be an object {{"location": ..., "kind": ...}} or a string, '
            f"not {_json_type(value)}"
        )
    loc = _opt_str(value, "location", path)
    kind = _opt_str(value, "kind", path)
    return (relative_location(loc, base_url) if loc is not None else None), kind


def _core_attr(attributes: dict[str, Any], name: str, path: str) -> str | None:
    v = attributes.pop(name, None)
    if v is None:
        return None
    if not isinstance(v, str):
        where = _key(_key(path, "attributes"), name)
        raise ParseError(f"{where} must be a string, not {_json_type(v)}")
    return v


def _parse_entity(
    value: Any, path: str, base_url: str, as_link: bool | None = None, inline: bool = False
) -> Entity:
    obj = _obj(value, path)
    kind = _opt_str(obj, "kind", path) or ""
    mixins = _str_list(obj, "mixins", path)
    attributes = _opt_obj(obj, "attributes", path)
    core = {name: _core_attr(attributes, name, path) for name in _CORE_ATTRS}

    ent_id = _opt_str(obj, "id", path) or core["occi.core.id"]
    title = _opt_str(obj, "title", path, text=True)
    if title is None:
        title = core["occi.core.title"]

    src_loc, src_kind = _endpoint(obj.get("source"), _key(path, "source"), base_url)
    tgt_loc, tgt_kind = _endpoint(obj.get("target"), _key(path, "target"), base_url)
    if src_loc is None and core["occi.core.source"] is not None:
        src_loc = relative_location(core["occi.core.source"], base_url)
    if tgt_loc is None and core["occi.core.target"] is not None:
        tgt_loc = relative_location(core["occi.core.target"], base_url)
    src_kind = src_kind or core["occi.core.source.kind"]
    tgt_kind = tgt_kind or core["occi.core.target.kind"]

    is_link = (
        as_link
        if as_link is not None
        else ("source" in obj or "target" in obj or src_loc is not None or tgt_loc is not None)
    )
    if is_link:
        link = Link(
            kind=kind,
            id=ent_id,
            title=title,
            mixins=mixins,
            attributes=attributes,
            source=src_loc,
            target=tgt_loc,
            source_kind=src_kind,
            target_kind=tgt_kind,
        )
        if inline:
            link.rel = _opt_str(obj, "rel", path)
            loc = _opt_str(obj, "location", path)
            link.location = relative_location(loc, base_url) if loc is not None else None
        return link

    summary = _opt_str(obj, "summary", path, text=True)
    if summary is None:
        summary = core["occi.core.summary"]
    res = Resource(
        kind=kind, id=ent_id, title=title, mixins=mixins, attributes=attributes, summary=summary
    )
    links = obj.get("links")
    if links is not None:
        lpath = _key(path, "links")
        for i, item in enumerate(_list(links, lpath, "link objects")):
            inline_link = _parse_entity(item, f"{lpath}[{i}]", base_url, True, inline=True)
            assert isinstance(inline_link, Link)
            res.links.append(inline_link)
    return res


# ====================================================================== parsing: categories
def _parse_attribute_def(name: str, value: Any, path: str) -> AttributeDef:
    desc = _obj(value, path)
    tname = _opt_str(desc, "type", path)
    if tname is None:
        atype = STRING
    else:
        found = _TYPE_NAMES.get(tname.strip().lower())
        if found is None:
            raise ParseError(
                f"{_key(path, 'type')} must be one of string, number, boolean, array, object, "
                f"not {tname!r}"
            )
        atype = found
    regex: str | None = None
    enum: tuple[str, ...] = ()
    minimum = maximum = None
    pattern = desc.get("pattern")
    ppath = _key(path, "pattern")
    if isinstance(pattern, str):
        regex = _python_regex(pattern, ppath) if pattern else None
    elif isinstance(pattern, dict):
        ptype = _opt_str(pattern, "type", ppath)
        if ptype == "integer":
            atype = INTEGER
        elif ptype == "number" and atype == INTEGER:
            atype = NUMBER
        if "enum" in pattern:
            enum_values = _list(pattern["enum"], _key(ppath, "enum"), "values")
            enum = tuple(str(v) for v in enum_values)
            atype = ENUM
        p = _opt_str(pattern, "pattern", ppath)
        if p:
            regex = _python_regex(p, _key(ppath, "pattern"))
        for bound in ("minimum", "maximum"):
            b = pattern.get(bound)
            if b is not None and (isinstance(b, bool) or not isinstance(b, (int, float))):
                raise ParseError(f"{_key(ppath, bound)} must be a number, not {_json_type(b)}")
        minimum, maximum = pattern.get("minimum"), pattern.get("maximum")
    elif pattern is not None:
        raise ParseError(
            f"{ppath} must be a JSON Schema object or a regex string, not {_json_type(pattern)}"
        )
    return AttributeDef(
        name=name,
        type=atype,
        mutable=_opt_bool(desc, "mutable", path, False),
        required=_opt_bool(desc, "required", path, False),
        default=desc.get("default"),
        description=_opt_str(desc, "description", path, text=True),
        pattern=regex,
        enum=enum,
        minimum=minimum,
        maximum=maximum,
    )


def _parse_category(value: Any, path: str, base_url: str, cls: str | None) -> CategoryRef:
    if isinstance(value, str):  # a bare type identifier (rOCCI category_identifiers)
        try:
            pair = split_type_id(value)
        except ValueError as exc:
            raise ParseError(f"{_where(path)}: {exc}") from None
        return CategoryRef(scheme=pair[0], term=pair[1], cls=cls)
    obj = _obj(value, path)
    term = _opt_str(obj, "term", path)
    scheme = _opt_str(obj, "scheme", path)
    if not term or not scheme:
        missing = "term" if not term else "scheme"
        raise ParseError(f"{_key(path, missing)} is missing: a category needs a scheme and a term")
    if cls is None:
        if "parent" in obj:
            cls = "kind"
        elif any(k in obj for k in ("depends", "applies", "location")):
            cls = "mixin"
    location = _opt_str(obj, "location", path)
    rel = _str_list(obj, "depends", path)
    parent = _opt_str(obj, "parent", path)
    if parent:
        rel.append(parent)
    attributes: dict[str, AttributeDef] = {}
    apath = _key(path, "attributes")
    for name, desc in _opt_obj(obj, "attributes", path).items():
        attributes[name] = _parse_attribute_def(name, desc, _key(apath, name))
    return CategoryRef(
        scheme=scheme,
        term=term,
        cls=cls,
        title=_opt_str(obj, "title", path, text=True),
        location=relative_location(location, base_url) if location is not None else None,
        rel=rel,
        applies=_str_list(obj, "applies", path),
        attributes=attributes,
    )


def _validated(parsed: Any, doc: Any, definition: str) -> Any:
    """`parsed`, once the document also fits the schema's request `definition`
    (schemas/occi-1.2.schema.json). The member checks above run first for their precise
    messages; the schema then refuses what they let through (a wrong type in a member the
    model ignores, an unknown member), naming the path."""
    validate_json(doc, definition)
    return parsed


# ====================================================================== rendering helpers
#: compact JSON, built once (json.dumps with options builds an encoder per call)
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
#: entities encoded together by one call of the encoder in a streamed collection
_STREAM_BATCH = 64


def _dumps(obj: Any) -> bytes:
    return _ENCODER.encode(obj).encode("utf-8")


def _items(objs: list[Any]) -> bytes:
    """The JSON of `objs` without the array's brackets: its items joined by commas."""
    return _ENCODER.encode(objs)[1:-1].encode("utf-8")


def _schema(type_name: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"$schema": JSON_SCHEMA, "type": type_name}
    out.update({k: v for k, v in extra.items() if v is not None})
    return out


def attribute_description(d: AttributeDef) -> dict[str, Any]:
    """The GFD.226 attribute description of an attribute definition."""
    out: dict[str, Any] = {"mutable": d.mutable, "required": d.required}
    pattern: dict[str, Any] | None = None
    bounds = {"minimum": d.minimum, "maximum": d.maximum}
    if d.type == INTEGER:
        out["type"] = "number"
        pattern = _schema("integer", **bounds)
    elif d.type == NUMBER:
        out["type"] = "number"
        if d.minimum is not None or d.maximum is not None:
            pattern = _schema("number", **bounds)
    elif d.type == ENUM:
        out["type"] = "string"
        pattern = _schema("string", enum=list(d.enum), pattern=d.pattern)
    elif d.type == STRING:
        out["type"] = "string"
        if d.pattern:
            pattern = _schema("string", pattern=d.pattern)
    else:
        out["type"] = d.type
    if pattern is not None:
        out["pattern"] = pattern
    if d.default is not None:
        out["default"] = d.default
    if d.description is not None:
        out["description"] = d.description
    return out


def _attr_descs(defs: dict[str, AttributeDef] | Any) -> dict[str, Any]:
    return {name: attribute_description(d) for name, d in defs.items()}


def _head(c: Category) -> dict[str, Any]:
    out: dict[str, Any] = {"term": c.term, "scheme": c.scheme}
    if c.title is not None:
        out["title"] = c.title
    return out


def kind_object(k: Kind) -> dict[str, Any]:
    out = _head(k)
    out["attributes"] = _attr_descs(k.all_attributes())
    out["actions"] = [a.id for a in k.actions]
    if k.parent is not None:
        out["parent"] = k.parent.id
    if k.location is not None:
        out["location"] = k.location
    return out


def mixin_object(m: Mixin) -> dict[str, Any]:
    out = _head(m)
    out["attributes"] = _attr_descs(m.attributes)
    out["actions"] = [a.id for a in m.actions]
    out["depends"] = list(m.depends)
    out["applies"] = list(m.applies)
    if m.location is not None:
        out["location"] = m.location
    return out


def action_object(a: Action) -> dict[str, Any]:
    out = _head(a)
    out["attributes"] = _attr_descs(a.attributes)
    return out


def _values(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k: attributes[k] for k in sorted(attributes) if attributes[k] is not None}


def _endpoint_object(location: str, kind: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"location": location}
    if kind:
        out["kind"] = kind
    return out


def link_object(link: Link, ctx: Context) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    core = {
        "occi.core.id": link.id,
        "occi.core.title": link.title,
        "occi.core.source": link.source,
        "occi.core.target": link.target,
        "occi.core.source.kind": link.source_kind,
        "occi.core.target.kind": link.target_kind,
    }
    attrs.update({k: v for k, v in core.items() if v is not None})
    attrs.update(_values({k: v for k, v in link.attributes.items() if k not in core}))
    out: dict[str, Any] = {
        "kind": link.kind,
        "mixins": list(link.mixins),
        "attributes": attrs,
        "actions": list(link.actions),
    }
    if link.id is not None:
        out["id"] = link.id
    if link.title is not None:
        out["title"] = link.title
    if link.source is not None:
        out["source"] = _endpoint_object(link.source, link.source_kind)
    if link.target is not None:
        out["target"] = _endpoint_object(link.target, link.target_kind)
    if link.location is not None:
        out["location"] = ctx.url(link.location)
    return out


#: a resource's attributes that are its fields, rendered first
_RESOURCE_CORE = frozenset(("occi.core.id", "occi.core.title", "occi.core.summary"))


def resource_object(res: Resource, ctx: Context) -> dict[str, Any]:
    # written out rather than through dicts of dicts: every entity of a collection comes here
    attrs: dict[str, Any] = {}
    if res.id is not None:
        attrs["occi.core.id"] = res.id
    if res.title is not None:
        attrs["occi.core.title"] = res.title
    if res.summary is not None:
        attrs["occi.core.summary"] = res.summary
    values = res.attributes
    for k in sorted(values):
        v = values[k]
        if v is not None and k not in _RESOURCE_CORE:
            attrs[k] = v
    out: dict[str, Any] = {
        "kind": res.kind,
        "mixins": list(res.mixins),
        "attributes": attrs,
        "actions": list(res.actions),
    }
    if res.id is not None:
        out["id"] = res.id
    if res.title is not None:
        out["title"] = res.title
    if res.summary is not None:
        out["summary"] = res.summary
    out["links"] = [link_object(lk, ctx) for lk in res.links]
    if res.location is not None:
        out["location"] = ctx.url(res.location)
    return out


def entity_object(entity: Entity, ctx: Context) -> dict[str, Any]:
    if isinstance(entity, Link):
        return link_object(entity, ctx)
    if isinstance(entity, Resource):
        return resource_object(entity, ctx)
    return resource_object(entity.as_resource(), ctx)  # a bare Entity: no summary, links


_RESOURCES_FIRST = (b'{"resources":[', b'],"links":[')


def _stream_pieces(pieces: Iterable[tuple[bool, bytes]]) -> Iterator[bytes]:
    """Rendered entities (is_link, bytes) written as _stream_entities writes entities: the
    list of the first one's sort streamed in chunks, the other sort kept for the end."""
    it = iter(pieces)
    first = next(it, None)
    if first is None:
        yield b'{"resources":[],"links":[]}'
        return
    streamed_links = first[0]
    keys = (b'{"links":[', b'],"resources":[') if streamed_links else _RESOURCES_FIRST
    buf = bytearray(keys[0])
    buf += first[1]
    other: list[bytes] = []
    for is_link, piece in it:
        if is_link == streamed_links:
            buf += b","
            buf += piece
            if len(buf) >= CHUNK_SIZE:
                yield bytes(buf)
                buf.clear()
        else:
            other.append(piece)
    buf += keys[1]
    buf += b",".join(other)
    buf += b"]}"
    yield bytes(buf)


def _stream_entities(entities: Iterable[Entity], ctx: Context) -> Iterator[bytes]:
    it = iter(entities)
    first = next(it, None)
    if first is None:
        yield b'{"resources":[],"links":[]}'
        return
    streamed_links = first.is_link
    keys = (
        (b'{"links":[', b'],"resources":[')
        if streamed_links
        else (b'{"resources":[', b'],"links":[')
    )
    buf = bytearray(keys[0])
    other: list[bytes] = []  # rendered entities of the other kind, written at the end
    batch: list[dict[str, Any]] = []  # entity objects encoded together, in order
    other_batch: list[dict[str, Any]] = []
    streamed = False
    entity: Entity | None = first
    while entity is not None:
        if entity.is_link == streamed_links:
            batch.append(entity_object(entity, ctx))
            if len(batch) >= _STREAM_BATCH:
                if streamed:
                    buf += b","
                buf += _items(batch)
                batch.clear()
                streamed = True
                if len(buf) >= CHUNK_SIZE:
                    yield bytes(buf)
                    buf.clear()
        else:
            other_batch.append(entity_object(entity, ctx))
            if len(other_batch) >= _STREAM_BATCH:
                other.append(_items(other_batch))
                other_batch.clear()
        entity = next(it, None)
    if batch:
        if streamed:
            buf += b","
        buf += _items(batch)
    if other_batch:
        other.append(_items(other_batch))
    buf += keys[1]
    for i, data in enumerate(other):
        if i:
            buf += b","
        buf += data
        if len(buf) >= CHUNK_SIZE:
            yield bytes(buf)
            buf.clear()
    buf += b"]}"
    yield bytes(buf)


# ====================================================================== the rendering
class JsonRendering(Rendering):
    media_types = ("application/occi+json", "application/json")

    # ------------------------------------------------------------------ parsing
    def parse_entities(self, msg: Message) -> list[Entity]:
        doc = _load(msg)
        base = msg.base_url
        if doc is None:
            return []
        if isinstance(doc, list):
            parsed = [_parse_entity(v, f"[{i}]", base) for i, v in enumerate(doc)]
            return _validated(parsed, doc, "request_entities")
        if not isinstance(doc, dict):
            raise ParseError(
                "the body must be a JSON object (an entity, or a collection "
                '{"resources":[...],"links":[...]}) or an array of entities, '
                f"not {_json_type(doc)}"
            )
        is_collection = (
            bool(doc)
            and set(doc) <= {"resources", "links"}
            and ("resources" in doc or isinstance(doc.get("links"), list))
        )
        if not is_collection:
            return _validated([_parse_entity(doc, "", base)], doc, "request_entities")
        out: list[Entity] = []
        for key, as_link in (("resources", False), ("links", True)):
            if doc.get(key) is None:
                continue
            for i, v in enumerate(_list(doc[key], key, "entity objects")):
                out.append(_parse_entity(v, f"{key}[{i}]", base, as_link or None))
        return _validated(out, doc, "request_entities")

    def parse_action(self, msg: Message) -> ActionInvocation:
        doc = _load(msg)
        if doc is None:
            return ActionInvocation(action=None)
        obj = _obj(doc, "")
        return _validated(
            ActionInvocation(
                action=_opt_str(obj, "action", "") or None,
                attributes=_opt_obj(obj, "attributes", ""),
            ),
            doc,
            "request_action_invocation",
        )

    def parse_categories(self, msg: Message) -> list[CategoryRef]:
        doc = _load(msg)
        base = msg.base_url
        if doc is None:
            return []
        if isinstance(doc, list):
            refs = [_parse_category(v, f"[{i}]", base, None) for i, v in enumerate(doc)]
            return _validated(refs, doc, "request_categories")
        obj = _obj(doc, "")
        if "term" in obj or "scheme" in obj or not any(k in obj for k in _CATEGORY_KEYS):
            return _validated([_parse_category(obj, "", base, None)], doc, "request_categories")
        out: list[CategoryRef] = []
        for key in _CATEGORY_KEYS:
            if obj.get(key) is None:
                continue
            cls = key[:-1]
            for i, v in enumerate(_list(obj[key], key, "category objects")):
                out.append(_parse_category(v, f"{key}[{i}]", base, cls))
        return _validated(out, doc, "request_categories")

    def parse_locations(self, msg: Message) -> list[str | EntityRef]:
        doc = _load(msg)
        if doc is None:
            return []
        items: list[tuple[str, Any]] = []
        if isinstance(doc, list):
            items = [(f"[{i}]", v) for i, v in enumerate(doc)]
        elif isinstance(doc, dict):
            keys = [k for k in ("locations", "resources", "links") if doc.get(k) is not None]
            if not keys:
                if "location" in doc:
                    items = [("", doc)]
                else:
                    raise ParseError(
                        'the body must list locations: {"locations":[...]}, '
                        '{"resources":[{"location":...}]} or an array of locations'
                    )
            for key in keys:
                items.extend(
                    (f"{key}[{i}]", v) for i, v in enumerate(_list(doc[key], key, "locations"))
                )
        else:
            raise ParseError(
                f"the body must be a JSON object or array of locations, not {_json_type(doc)}"
            )
        out: list[str | EntityRef] = []
        for path, v in items:
            if isinstance(v, dict):
                loc = _opt_str(v, "location", path)
                if loc is None:
                    # GFD.223's entity collection rendering: GFD.226 resources and links
                    # carry "kind" and "id"; the service resolves them with its registry
                    kind = _opt_str(v, "kind", path)
                    ident = _opt_str(v, "id", path)
                    if kind is None or ident is None:
                        raise ParseError(
                            f'{_where(path)} needs a "location", or a "kind" and an "id"'
                        )
                    out.append(EntityRef(kind, ident))
                    continue
            elif isinstance(v, str):
                loc = v
            else:
                raise ParseError(
                    f'{_where(path)} must be a location string or an object with "location", '
                    f"not {_json_type(v)}"
                )
            out.append(relative_location(loc, msg.base_url))
        return _validated(out, doc, "request_locations")

    # ------------------------------------------------------------------ rendering
    def _rendered(self, obj: Any) -> Rendered:
        return Rendered(CONTENT_TYPE, body=_dumps(obj))

    def render_categories(self, categories: CategoryCollection, ctx: Context) -> Rendered:
        return self._rendered(
            {
                "kinds": [kind_object(k) for k in categories.kinds],
                "mixins": [mixin_object(m) for m in categories.mixins],
                "actions": [action_object(a) for a in categories.actions],
            }
        )

    def render_entity(self, entity: Entity, ctx: Context) -> Rendered:
        return self._rendered(entity_object(entity, ctx))

    def render_entities(self, entities: Iterable[Entity], ctx: Context) -> Rendered:
        return Rendered(CONTENT_TYPE, body=_stream_entities(entities, ctx))

    renders_pieces = True

    def render_piece(self, entity: Entity, ctx: Context) -> bytes:
        return _dumps(entity_object(entity, ctx))

    def render_pieces(self, pieces: Iterable[tuple[bool, bytes]], ctx: Context) -> Rendered:
        # as _stream_entities writes them: the list of the first entity's sort first
        if not isinstance(pieces, list):  # a whole collection: streamed
            return Rendered(CONTENT_TYPE, body=_stream_pieces(pieces))
        first: list[bytes] = []
        other: list[bytes] = []
        first_is_link: bool | None = None
        for is_link, piece in pieces:
            if first_is_link is None:
                first_is_link = is_link
            (first if is_link == first_is_link else other).append(piece)
        keys = (b'{"links":[', b'],"resources":[') if first_is_link else _RESOURCES_FIRST
        body = b"".join((keys[0], b",".join(first), keys[1], b",".join(other), b"]}"))
        return Rendered(CONTENT_TYPE, body=body)

    def render_locations(self, locations: Iterable[str], ctx: Context) -> Rendered:
        return self._rendered({"locations": [ctx.url(loc) for loc in locations]})

    def render_mixin(self, mixin: Mixin, ctx: Context) -> Rendered:
        return self._rendered(mixin_object(mixin))

    def render_ok(self, ctx: Context) -> Rendered:
        return Rendered(CONTENT_TYPE, body=b"{}")

    def render_error(
        self, status: int, reason: str, message: str, ctx: Context, error_code: str | None = None
    ) -> Rendered:
        message, reason = safe_text(message), safe_text(reason)
        doc: dict[str, object] = {"code": status, "reason": reason, "message": message}
        if error_code:
            doc["error_code"] = safe_text(error_code)
        return self._rendered({"error": doc})


__all__ = ["JsonRendering", "CONTENT_TYPE", "attribute_description"]
