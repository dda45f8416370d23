"""The OCCI text renderings (GFD.229, GFD.185): text/plain, text/occi and text/uri-list.

text/plain and text/occi carry the same data: a list of fields (`Category`, `Link`,
`X-OCCI-Attribute`, `X-OCCI-Location`) with a value each. text/plain puts one field per line in
the body; text/occi puts them in HTTP headers, one header per field name with the values joined
by ", ". The core of this module turns documents into (field-name, value) pairs and pairs back
into documents; the two renderings differ only in where the pairs travel.

Parsers are liberal (trailing `;`, bare or quoted class, extra parameters, line continuations,
repeated or comma-joined headers, CRLF or LF); renderers are strict and follow the ABNF.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from occi.model import (
    CORE_ATTRIBUTES,
    MAX_NUMBER_TEXT,
    TERM_RE,
    Action,
    ActionInvocation,
    AttributeDef,
    Category,
    CategoryCollection,
    CategoryRef,
    Entity,
    Kind,
    Link,
    Mixin,
    Resource,
    valid_attribute_name,
)
from rendering.base import (
    LIMITS,
    Context,
    Message,
    ParseError,
    Rendered,
    Rendering,
    Unrenderable,
    all_header_safe,
    header_safe,
    relative_location,
    safe_text,
)

CATEGORY = "Category"
LINK = "Link"
ATTRIBUTE = "X-OCCI-Attribute"
LOCATION = "X-OCCI-Location"
FIELD_NAMES = (CATEGORY, LINK, ATTRIBUTE, LOCATION)
_CANONICAL = {n.lower(): n for n in FIELD_NAMES}

Pair = tuple[str, str]

_FIELD_LINE_RE = re.compile(r"^([A-Za-z0-9!#$%&'*+.^_`|~-]+)[ \t]*:[ \t]*(.*)$")
_KNOWN_FIELD_RE = re.compile(r"^(?:category|link|x-occi-attribute|x-occi-location)[ \t]*:", re.I)
_BARE_URI_RE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.\-]*://\S*|/\S*)$")
_INT_RE = re.compile(r"^[+-]?\d+$")
_FLOAT_RE = re.compile(r"^[+-]?(?:\d+\.\d*|\.\d+|\d+(?=[eE]))(?:[eE][+-]?\d+)?$")
_PARAM_START_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*\s*=")
_ATTR_DEF_RE = re.compile(r"([^\s{}]+)(?:\{([^}]*)\})?")
_CORE_ATTRIBUTES = CORE_ATTRIBUTES


def _excerpt(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ============================================================================ rendering helpers
_PLAIN_QUOTED = re.compile(r'[^\x00-\x1f"\\]*')
_CONTROL = re.compile(r"[\x00-\x1f]")


def quote(value: str) -> str:
    """An RFC 7230 quoted-string. CR, LF and TAB become \\r, \\n, \\t so that a value never breaks a
    line or a header (this parser reads them back; other parsers see the letter)."""
    if _PLAIN_QUOTED.fullmatch(value):  # the common case: nothing to escape
        return f'"{value}"'
    out = value.replace("\\", "\\\\").replace('"', '\\"')
    out = out.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    out = _CONTROL.sub(" ", out)
    return f'"{out}"'


def format_value(value: Any) -> str:
    """An attribute value as the ABNF wants it: strings quoted, numbers and booleans bare."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text or "E" in text:
            if value != value or value in (float("inf"), float("-inf")):
                return quote(text)
            text = format(Decimal(text), "f")
        if "." not in text:
            text += ".0"
        return text
    if isinstance(value, (list, tuple, dict)):
        return quote(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
    return quote(str(value))


def _split_id(type_id: str) -> tuple[str, str]:
    i = type_id.rfind("#")
    if i < 0:
        i = type_id.rfind("/")
    return type_id[: i + 1], type_id[i + 1 :]


def _attribute_list(defs: Iterable[AttributeDef]) -> str:
    parts = []
    for d in defs:
        props = [p for p, on in (("immutable", not d.mutable), ("required", d.required)) if on]
        parts.append(d.name + ("{" + " ".join(props) + "}" if props else ""))
    return " ".join(parts)


def category_value(cat: Category) -> str:
    """The full Category value of a kind, mixin or action (query interface, mixin rendering)."""
    parts = [cat.term, f"scheme={quote(cat.scheme)}", f'class="{cat.cls}"']
    if cat.title:
        parts.append(f"title={quote(cat.title)}")
    rel: str | None = None
    location: str | None = None
    defs: list[AttributeDef] = list(cat.attributes.values())
    actions: list[Action] = []
    if isinstance(cat, Kind):
        rel = cat.parent.id if cat.parent is not None else None
        location = cat.location
        defs = list(cat.all_attributes().values())
        actions = cat.all_actions()
    elif isinstance(cat, Mixin):
        rel = cat.depends[0] if cat.depends else None  # GFD.229: only the first depends
        location = cat.location
        actions = list(cat.actions)
    if rel:
        parts.append(f"rel={quote(rel)}")
    if location:
        parts.append(f"location={quote(location)}")
    if defs:
        parts.append(f"attributes={quote(_attribute_list(defs))}")
    if actions:
        parts.append(f"actions={quote(' '.join(a.id for a in actions))}")
    return "; ".join(parts)


def _short_category(type_id: str, cls: str) -> str:
    scheme, term = _split_id(type_id)
    return f'{term}; scheme={quote(scheme)}; class="{cls}"'


def _inline_link_value(link: Link) -> str:
    parts = [f"<{link.target or ''}>"]
    rel = link.rel or link.target_kind
    if rel:
        parts.append(f"rel={quote(rel)}")
    if link.location:
        parts.append(f"self={quote(link.location)}")
    cats = [c for c in [link.kind, *link.mixins] if c]
    if cats:
        parts.append(f"category={quote(' '.join(cats))}")
    attributes = link.core_values() + sorted(link.attributes.items())
    parts.extend(f"{name}={format_value(v)}" for name, v in attributes if v is not None)
    return "; ".join(parts)


def entity_pairs(entity: Entity) -> list[Pair]:
    """The fields of one entity: categories, links, action links, attributes (GFD.229 order)."""
    pairs: list[Pair] = []
    if entity.kind:
        pairs.append((CATEGORY, _short_category(entity.kind, "kind")))
    pairs.extend((CATEGORY, _short_category(m, "mixin")) for m in entity.mixins)
    if isinstance(entity, Resource):
        pairs.extend((LINK, _inline_link_value(link)) for link in entity.links)
    if entity.location:
        for action_id in entity.actions:
            _, term = _split_id(action_id)
            pairs.append((LINK, f"<{entity.location}?action={term}>; rel={quote(action_id)}"))
    core: list[tuple[str, Any]] = [("occi.core.id", entity.id), ("occi.core.title", entity.title)]
    if isinstance(entity, Resource):
        core.append(("occi.core.summary", entity.summary))
    if isinstance(entity, Link):
        core.extend(entity.core_values()[2:])
    for name, value in core + sorted(entity.attributes.items()):
        if value is not None:
            pairs.append((ATTRIBUTE, f"{name}={format_value(value)}"))
    return pairs


def categories_pairs(categories: CategoryCollection) -> list[Pair]:
    return [(CATEGORY, category_value(c)) for c in categories]


def locations_pairs(locations: Iterable[str], ctx: Context) -> list[Pair]:
    return [(LOCATION, url) for url in ctx.urls(locations)]


def _entity_locations(entities: Iterable[Entity]) -> Iterator[str]:
    for e in entities:
        if e.location:
            yield e.location


# ============================================================================ parsing helpers
def _decode_body(body: bytes) -> str:
    if isinstance(body, str):  # tolerate a str body from a careless caller
        return body
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("latin-1")
    return text.lstrip("\ufeff")


def _header_text(value: str) -> str:
    """WSGI hands header values over as latin-1; recover UTF-8 sent on the wire."""
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        return value
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return value


def _wire_header(value: str) -> str:
    """The reverse of _header_text: a str whose latin-1 encoding is the UTF-8 of `value`."""
    return value.encode("utf-8").decode("latin-1")


def logical_lines(text: str) -> list[str]:
    """Body lines with continuations joined: a line ending in `\\` continues on the next line,
    and a line starting with whitespace continues the previous one (header folding)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[list[str]] = []  # each logical line as its parts, joined once at the end
    pending_backslash = False
    for raw in lines:
        line = raw.strip()
        if not line:  # a blank line ends any continuation
            pending_backslash = False
            out.append([])
            continue
        folded = raw[:1].isspace() and not _KNOWN_FIELD_RE.match(line)  # indented whole body
        pending = line.endswith("\\")
        if pending:
            line = line[:-1].rstrip()
        if (pending_backslash or folded) and out and out[-1]:
            out[-1].append(line)
        else:
            out.append([line])
        pending_backslash = pending
    return [joined for parts in out if (joined := " ".join(p for p in parts if p))]


def body_pairs(text: str, *, allow_ok: bool = True) -> list[Pair]:
    """(lower-case field name, value) pairs from body text; bare URI lines are locations."""
    pairs: list[Pair] = []
    for line in logical_lines(text):
        if line.startswith("#"):
            continue
        if allow_ok and line.upper() == "OK":
            continue
        if _BARE_URI_RE.match(line):
            pairs.append((LOCATION.lower(), line))
            continue
        m = _FIELD_LINE_RE.match(line)
        if not m:
            raise ParseError(
                f"cannot read the line {_excerpt(line)!r}: each line must be 'Name: value' "
                f"with Name one of {', '.join(FIELD_NAMES)}"
            )
        name = m.group(1).lower()
        if name not in _CANONICAL:
            raise ParseError(
                f"unknown field {m.group(1)!r} in the line {_excerpt(line)!r}: expected one of "
                f"{', '.join(FIELD_NAMES)}"
            )
        pairs.append((name, m.group(2)))
    return pairs


def header_pairs(headers: Any) -> list[Pair]:
    pairs: list[Pair] = []
    for name, value in headers.items():
        lname = name.lower()
        if lname in _CANONICAL and value is not None:
            pairs.append((lname, _unfold(_header_text(str(value)))))
    return pairs


def _unfold(text: str) -> str:
    """A header value with its line folds (optional `\\`, blanks, CR LF, blanks) made one space.
    Plain string operations: time linear in the value whatever its blanks."""
    if "\n" not in text:
        return text
    lines = text.split("\n")
    out = []
    for i, line in enumerate(lines):
        if i < len(lines) - 1:
            line = line.removesuffix("\r").rstrip(" \t").removesuffix("\\")
        if i > 0:
            line = line.lstrip(" \t")
        out.append(line)
    return " ".join(out)


def split_outside(text: str, sep: str, *, angle: bool = False) -> list[str]:
    """Split on `sep` outside double-quoted strings (and outside <...> when `angle`)."""
    parts: list[str] = []
    buf: list[str] = []
    in_quote = escaped = in_angle = False
    for c in text:
        if in_quote:
            buf.append(c)
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_quote = False
            continue
        if in_angle:
            buf.append(c)
            if c == ">":
                in_angle = False
            continue
        if c == '"':
            in_quote = True
        elif angle and c == "<":
            in_angle = True
        elif c == sep:
            parts.append("".join(buf))
            buf = []
            continue
        buf.append(c)
    if in_quote:
        raise ParseError(f"unbalanced double quote in {_excerpt(text)!r}: close the quoted string")
    if in_angle:
        raise ParseError(f"unclosed '<' in {_excerpt(text)!r}: write the URI as <uri>")
    parts.append("".join(buf))
    return parts


def _unescape(inner: str) -> str:
    out: list[str] = []
    it = iter(inner)
    specials = {"n": "\n", "r": "\r", "t": "\t"}
    for c in it:
        if c == "\\":
            nxt = next(it, "")
            out.append(specials.get(nxt, nxt))
        else:
            out.append(c)
    return "".join(out)


def _read_quoted(text: str, context: str) -> tuple[str, str]:
    """`text` starts with a quote: (unescaped content, what follows the closing quote)."""
    escaped = False
    for i in range(1, len(text)):
        c = text[i]
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == '"':
            return _unescape(text[1:i]), text[i + 1 :].strip().strip(";").strip()
    raise ParseError(f"unbalanced double quote in {_excerpt(context)!r}: close the quoted string")


def read_value(raw: str, context: str) -> tuple[str, bool]:
    """A parameter or attribute value: (text, was_quoted). Trailing `;` and spaces are dropped."""
    text = raw.strip()
    if text.startswith('"'):
        value, rest = _read_quoted(text, context)
        if rest:
            raise ParseError(
                f"unexpected text {_excerpt(rest, 30)!r} after the quoted value in "
                f"{_excerpt(context)!r}: separate parameters with ';' and values with ','"
            )
        return value, True
    text = text.rstrip(";").strip()
    if '"' in text:
        raise ParseError(f"stray double quote in {_excerpt(context)!r}: quote the whole value")
    return text, False


def typed_value(text: str, quoted: bool) -> Any:
    """Quoted -> str (a quoted JSON array/object -> list/dict); bare -> bool, int, float or str."""
    if quoted:
        if text[:1] in "[{" and text[-1:] in "]}":
            try:
                decoded = json.loads(text)
            except RecursionError:
                raise ParseError(
                    f"the JSON value {_excerpt(text, 30)!r} is nested too deeply"
                ) from None
            except ValueError:
                return text
            if isinstance(decoded, (list, dict)):
                return decoded
        return text
    if text in ("true", "false"):
        return text == "true"
    if _INT_RE.match(text):
        # an integer of thousands of digits is no 64-bit number (and Python refuses int() of
        # more than 4300): it stays text, for the attribute's type to judge
        return int(text) if len(text) <= MAX_NUMBER_TEXT else text
    if _FLOAT_RE.match(text):
        return float(text)
    return text


def _params(segments: list[str], context: str) -> list[tuple[str, str, bool]]:
    """`name=value` segments -> (name, value, was_quoted); empty segments are skipped."""
    out: list[tuple[str, str, bool]] = []
    queue = deque(segments)
    limit = LIMITS.get().parameters
    if len(queue) > limit + 1:  # a trailing ';' leaves one empty segment
        _too_many_parameters(context, limit)
    while queue:
        if len(out) >= limit:
            _too_many_parameters(context, limit)
        seg = queue.popleft().strip()
        if not seg:
            continue
        if seg.startswith('"') and seg.endswith('"') and len(seg) > 1 and "=" in seg:
            inner, _ = read_value(seg, context)  # tolerate GFD.185's `"class=kind"`
            if '"' not in inner:
                seg = inner
        name, eq, value = seg.partition("=")
        name = name.strip()
        if not eq or not name or " " in name:
            raise ParseError(
                f"parameter {_excerpt(seg, 40)!r} in {_excerpt(context)!r} is not name=value"
            )
        value = value.strip()
        if value.startswith('"'):
            text, rest = _read_quoted(value, context)
            quoted = True
            if rest:
                # GFD.229's example forgets a ';' between two parameters: read the next one
                if not _PARAM_START_RE.match(rest):
                    raise ParseError(
                        f"unexpected text {_excerpt(rest, 30)!r} after the quoted value in "
                        f"{_excerpt(context)!r}: separate parameters with ';'"
                    )
                queue.appendleft(rest)
        else:
            text, quoted = read_value(value, context)
        out.append((name, text, quoted))
    return out


def _too_many_parameters(context: str, limit: int) -> None:
    raise ParseError(
        f"{_excerpt(context)!r} has more than {limit} parameters: send fewer "
        "(the server's max_text_parameters setting)"
    )


@dataclass
class ParsedCategory:
    term: str
    scheme: str
    cls: str | None
    params: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.scheme + self.term


def parse_category_value(value: str) -> ParsedCategory:
    segments = split_outside(value, ";")
    term = segments[0].strip()
    if not term or "=" in term or '"' in term:
        raise ParseError(
            f"Category {_excerpt(value)!r} must start with a term, e.g. 'compute; scheme=...'"
        )
    if not TERM_RE.match(term):
        raise ParseError(
            f"Category term {_excerpt(term, 40)!r} is invalid: use letters, digits, '-', '_', '.'"
        )
    params: dict[str, str] = {}
    for name, text, _ in _params(segments[1:], value):
        params[name.lower()] = text
    scheme = params.pop("scheme", "").strip()
    if not scheme:
        raise ParseError(
            f'Category {_excerpt(value)!r} has no scheme: add scheme="...#" after the term'
        )
    cls = params.pop("class", None)
    if cls is not None:
        cls = cls.strip().lower()
        if cls not in ("kind", "mixin", "action"):
            raise ParseError(f"Category {term!r} has class={cls!r}: use kind, mixin or action")
    return ParsedCategory(term, scheme, cls, params)


@dataclass
class ParsedLink:
    uri: str
    params: dict[str, str]
    attributes: dict[str, Any]

    @property
    def is_action(self) -> bool:
        """An action link (`<uri?action=term>; rel="...action#term"`), not an inline link: a
        link to a resource carries its category or self, whatever its rel names."""
        if re.search(r"[?&]action=", self.uri):
            return True
        if "category" in self.params or "self" in self.params:
            return False
        return "/action#" in self.params.get("rel", "")


def parse_link_value(value: str) -> ParsedLink:
    segments = split_outside(value, ";", angle=True)
    head = segments[0].strip()
    if not (head.startswith("<") and head.endswith(">")):
        raise ParseError(f"Link {_excerpt(value)!r} must start with <uri>, e.g. </network/123>")
    params: dict[str, str] = {}
    attributes: dict[str, Any] = {}
    for name, text, quoted in _params(segments[1:], value):
        lname = name.lower()
        if lname in ("rel", "self", "category", "title"):
            params[lname] = text
        else:
            _check_attribute_name(name, value)
            attributes[name] = typed_value(text, quoted)
    return ParsedLink(head[1:-1].strip(), params, attributes)


def _check_attribute_name(name: str, context: str) -> None:
    if not valid_attribute_name(name):
        raise ParseError(
            f"invalid attribute name {_excerpt(name, 40)!r} in {_excerpt(context)!r}: write "
            "lower-case components joined by '.', each a letter then letters, digits, '-' or '_' "
            "(e.g. com.example.tier)"
        )


def parse_attribute_value(value: str) -> tuple[str, Any]:
    name, eq, rest = value.partition("=")
    name = name.strip()
    if not eq:
        raise ParseError(
            f"X-OCCI-Attribute {_excerpt(value)!r} has no '=': write name=value, "
            'e.g. occi.compute.cores=2 or occi.core.title="web"'
        )
    _check_attribute_name(name, value)
    text, quoted = read_value(rest, value)
    return name, typed_value(text, quoted)


def parse_attribute_defs(text: str, context: str) -> dict[str, AttributeDef]:
    defs: dict[str, AttributeDef] = {}
    pos = 0
    for m in _ATTR_DEF_RE.finditer(text):
        if text[pos : m.start()].strip():
            break
        pos = m.end()
        name = m.group(1)
        _check_attribute_name(name, context)
        props = set((m.group(2) or "").split())
        defs[name] = AttributeDef(
            name, mutable="immutable" not in props, required="required" in props
        )
    if text[pos:].strip():
        raise ParseError(
            f"cannot read the attribute list {_excerpt(text, 60)!r} in {_excerpt(context)!r}: "
            "write names separated by spaces, each optionally followed by {immutable required}"
        )
    return defs


@dataclass
class Document:
    """All fields of a request, parsed into their parts, in order of appearance."""

    categories: list[ParsedCategory] = field(default_factory=list)
    links: list[ParsedLink] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    locations: list[str] = field(default_factory=list)


def parse_pairs(pairs: Iterable[Pair]) -> Document:
    doc = Document()
    for name, value in pairs:
        name = name.lower()
        angle = name in ("link", "x-occi-location")
        for element in split_outside(value, ",", angle=angle):
            element = element.strip()
            if not element:
                continue
            if name == "category":
                doc.categories.append(parse_category_value(element))
            elif name == "link":
                doc.links.append(parse_link_value(element))
            elif name == "x-occi-attribute":
                attr, val = parse_attribute_value(element)
                doc.attributes[attr] = val
            elif name == "x-occi-location":
                loc = element.strip().strip("<>").strip()
                if loc:
                    doc.locations.append(loc)
    return doc


def _as_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _relative(value: Any, base_url: str) -> str | None:
    text = _as_str(value)
    return relative_location(text, base_url) if text else text


def _inline_link(pl: ParsedLink, base_url: str) -> Link:
    cats = pl.params.get("category", "").split()
    attributes = dict(pl.attributes)
    core = {n: attributes.pop(n) for n in _CORE_ATTRIBUTES if n in attributes}
    attributes.pop("occi.core.summary", None)
    return Link(
        kind=cats[0] if cats else "",
        mixins=cats[1:],
        id=_as_str(core.get("occi.core.id")),
        title=_as_str(core.get("occi.core.title")),
        attributes=attributes,
        location=_relative(pl.params.get("self"), base_url),
        source=_relative(core.get("occi.core.source"), base_url),
        target=relative_location(pl.uri, base_url)
        if pl.uri
        else _relative(core.get("occi.core.target"), base_url),
        source_kind=_as_str(core.get("occi.core.source.kind")),
        target_kind=_as_str(core.get("occi.core.target.kind")),
        rel=pl.params.get("rel") or None,
    )


def document_entity(doc: Document, base_url: str) -> Entity:
    kinds = [c for c in doc.categories if c.cls == "kind"]
    if len(kinds) > 1:
        raise ParseError(
            "an entity has exactly one kind, but the request names "
            + ", ".join(k.id for k in kinds)
        )
    mixins: list[str] = []
    for c in doc.categories:
        if c.cls is None:
            raise ParseError(f'Category {c.id!r} has no class: add class="kind" or class="mixin"')
        if c.cls == "action":
            raise ParseError(
                f"Category {c.id!r} is an action: invoke it with POST <entity>?action={c.term}"
            )
        if c.cls == "mixin" and c.id not in mixins:
            mixins.append(c.id)
    attributes = dict(doc.attributes)
    core = {n: attributes.pop(n) for n in _CORE_ATTRIBUTES if n in attributes}
    common: dict[str, Any] = {
        "kind": kinds[0].id if kinds else "",
        "id": _as_str(core.get("occi.core.id")),
        "title": _as_str(core.get("occi.core.title")),
        "mixins": mixins,
        "attributes": attributes,
    }
    if "occi.core.source" in core or "occi.core.target" in core:
        return Link(
            **common,
            source=_relative(core.get("occi.core.source"), base_url),
            target=_relative(core.get("occi.core.target"), base_url),
            source_kind=_as_str(core.get("occi.core.source.kind")),
            target_kind=_as_str(core.get("occi.core.target.kind")),
        )
    links = [_inline_link(pl, base_url) for pl in doc.links if not pl.is_action]
    return Resource(**common, summary=_as_str(core.get("occi.core.summary")), links=links)


def document_action(doc: Document) -> ActionInvocation:
    actions = [c for c in doc.categories if c.cls == "action"]
    if len(actions) > 1:
        raise ParseError(
            "an action invocation names one action, but the request names "
            + ", ".join(a.id for a in actions)
        )
    if not actions:
        unclassed = [c for c in doc.categories if c.cls is None]
        if len(unclassed) == 1 and len(doc.categories) == 1:
            actions = unclassed
        elif doc.categories:
            raise ParseError(
                'an action invocation needs a Category with class="action", e.g. '
                'Category: stop; scheme="http://schemas.ogf.org/occi/infrastructure/compute/'
                'action#"; class="action"'
            )
    return ActionInvocation(actions[0].id if actions else None, dict(doc.attributes))


def document_category_refs(doc: Document, base_url: str) -> list[CategoryRef]:
    refs = []
    for c in doc.categories:
        p = c.params
        context = f"Category: {c.term}; scheme={c.scheme}"
        location = p.get("location")
        refs.append(
            CategoryRef(
                scheme=c.scheme,
                term=c.term,
                cls=c.cls,
                title=p.get("title"),
                location=relative_location(location, base_url) if location else None,
                rel=p.get("rel", "").split(),
                attributes=parse_attribute_defs(p.get("attributes", ""), context),
            )
        )
    return refs


# ============================================================================ the renderings
class _FieldRendering(Rendering):
    """text/plain and text/occi: the same pairs, in the body or in headers."""

    content_type = ""
    locations_only = True

    # -- where the pairs travel (subclasses decide)
    def _gather(self, msg: Message) -> list[Pair]:
        raise NotImplementedError

    def _emit(self, pairs: list[Pair]) -> Rendered:
        raise NotImplementedError

    def _document(self, msg: Message) -> Document:
        return parse_pairs(self._gather(msg))

    # -- parsing
    def parse_entities(self, msg: Message) -> list[Entity]:
        return [document_entity(self._document(msg), msg.base_url)]

    def parse_action(self, msg: Message) -> ActionInvocation:
        return document_action(self._document(msg))

    def parse_categories(self, msg: Message) -> list[CategoryRef]:
        return document_category_refs(self._document(msg), msg.base_url)

    def parse_locations(self, msg: Message) -> list[str]:
        return [relative_location(loc, msg.base_url) for loc in self._document(msg).locations]

    def parse_attribute_filter(self, msg: Message) -> dict[str, object]:
        return dict(self._document(msg).attributes)

    # -- rendering
    def render_categories(self, categories: CategoryCollection, ctx: Context) -> Rendered:
        return self._emit(categories_pairs(categories))

    def render_entity(self, entity: Entity, ctx: Context) -> Rendered:
        return self._emit(entity_pairs(entity))

    def render_entities(self, entities: Iterable[Entity], ctx: Context) -> Rendered:
        return self._emit(locations_pairs(_entity_locations(entities), ctx))

    def render_locations(self, locations: Iterable[str], ctx: Context) -> Rendered:
        return self._emit(locations_pairs(locations, ctx))

    def render_mixin(self, mixin: Mixin, ctx: Context) -> Rendered:
        return self._emit([(CATEGORY, category_value(mixin))])

    def render_ok(self, ctx: Context) -> Rendered:
        return Rendered(self.content_type, [], b"OK\n")

    def render_error(
        self, status: int, reason: str, message: str, ctx: Context, error_code: str | None = None
    ) -> Rendered:
        text = safe_text(message or reason or str(status))
        return Rendered(self.content_type, [], (text.rstrip("\n") + "\n").encode("utf-8"))


class TextPlain(_FieldRendering):
    """text/plain (alias text/occi+plain): one field per body line."""

    media_types = ("text/plain", "text/occi+plain")
    content_type = "text/plain; charset=utf-8"

    def _gather(self, msg: Message) -> list[Pair]:
        return body_pairs(_decode_body(msg.body)) + header_pairs(msg.headers)

    def render_locations(self, locations: Iterable[str], ctx: Context) -> Rendered:
        # a page of locations: one field per line, written in a few string operations
        urls = ctx.urls(locations)
        if not urls or not all_header_safe(urls):
            return self._emit(locations_pairs(urls, Context()))
        lead = LOCATION + ": "
        body = lead + ("\n" + lead).join(urls) + "\n"
        return Rendered(self.content_type, [], body.encode("utf-8"))

    def _emit(self, pairs: list[Pair]) -> Rendered:
        if all_header_safe(value for _, value in pairs):  # the usual case: nothing to replace
            body = "".join(f"{name}: {value}\n" for name, value in pairs)
        else:
            body = "".join(f"{name}: {header_safe(value)}\n" for name, value in pairs)
        return Rendered(self.content_type, [], body.encode("utf-8"))


class TextOcci(_FieldRendering):
    """text/occi: the fields travel in HTTP headers, one comma-joined header per field name."""

    media_types = ("text/occi",)
    content_type = "text/occi"

    def _gather(self, msg: Message) -> list[Pair]:
        pairs = header_pairs(msg.headers)
        text = _decode_body(msg.body).strip()
        if text and text.upper() != "OK":
            pairs += body_pairs(text)
        return pairs

    def _emit(self, pairs: list[Pair]) -> Rendered:
        grouped: dict[str, list[str]] = {}
        for name, value in pairs:
            grouped.setdefault(name, []).append(value)
        headers = [
            (name, _wire_header(header_safe(", ".join(values)))) for name, values in grouped.items()
        ]
        return Rendered(self.content_type, headers, b"OK\n")


class UriList(Rendering):
    """text/uri-list (RFC 2483): locations only, one absolute URI per line."""

    media_types = ("text/uri-list",)
    content_type = "text/uri-list"
    locations_only = True

    def _refuse(self, what: str) -> ParseError:
        return ParseError(
            f"text/uri-list carries only locations, not {what}: send text/plain, text/occi or "
            "application/occi+json"
        )

    def parse_entities(self, msg: Message) -> list[Entity]:
        raise self._refuse("entities")

    def parse_action(self, msg: Message) -> ActionInvocation:
        raise self._refuse("an action invocation")

    def parse_categories(self, msg: Message) -> list[CategoryRef]:
        raise self._refuse("categories")

    def parse_locations(self, msg: Message) -> list[str]:
        out = []
        for line in _decode_body(msg.body).replace("\r\n", "\n").replace("\r", "\n").split("\n"):
            line = line.strip()
            if line and not line.startswith("#"):
                out.append(relative_location(line, msg.base_url))
        return out

    def _lines(self, locations: Iterable[str], ctx: Context) -> Rendered:
        urls = ctx.urls(locations)
        body = "\r\n".join(urls) + "\r\n" if urls else ""
        return Rendered(self.content_type, [], body.encode("utf-8"))

    def render_entities(self, entities: Iterable[Entity], ctx: Context) -> Rendered:
        return self._lines(_entity_locations(entities), ctx)

    def render_locations(self, locations: Iterable[str], ctx: Context) -> Rendered:
        return self._lines(locations, ctx)

    def render_categories(self, categories: CategoryCollection, ctx: Context) -> Rendered:
        raise Unrenderable("text/uri-list cannot carry the query interface")

    def render_entity(self, entity: Entity, ctx: Context) -> Rendered:
        raise Unrenderable("text/uri-list cannot carry an entity, only locations")

    def render_mixin(self, mixin: Mixin, ctx: Context) -> Rendered:
        raise Unrenderable("text/uri-list cannot carry a mixin, only locations")

    def render_ok(self, ctx: Context) -> Rendered:
        return Rendered(self.content_type, [], b"")

    def render_error(
        self, status: int, reason: str, message: str, ctx: Context, error_code: str | None = None
    ) -> Rendered:
        text = safe_text(message or reason or str(status))
        return Rendered("text/plain; charset=utf-8", [], (text.rstrip("\n") + "\n").encode())


__all__ = ["TextPlain", "TextOcci", "UriList"]
