"""The contract every rendering implements: bytes and headers <-> the neutral model.

Pure code: imports only occi.model. No falcon, no SQL. The API picks a Rendering by media type,
hands parsers a Message and sends back what renderers return.

Also what every parser lets in, whatever its media type: `check_parsed` (run on the result of
each parse_* method) refuses NUL, lone surrogates, malformed attribute names and more than the
request `Limits`; `safe_text` and `header_safe` keep renderers from failing on, or emitting,
what cannot travel.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from occi.model import (
    MAX_ATTRIBUTE_NAME,
    ActionInvocation,
    AttributeDef,
    CategoryCollection,
    CategoryRef,
    Entity,
    EntityRef,
    Mixin,
    valid_attribute_name,
)


class ParseError(ValueError):
    """The request body or headers could not be read; the message tells the client what to fix."""


class Unrenderable(ValueError):
    """This media type cannot carry that document (e.g. an entity as text/uri-list)."""


@dataclass
class Message:
    """A request as a parser sees it.

    `headers` maps lower-case header names to their value; a header sent several times arrives
    as one comma-joined value (parsers split on commas outside quotes). `base_url` is the
    service root, e.g. "http://127.0.0.1:8080", so that absolute locations can be made relative.
    """

    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    base_url: str = ""


@dataclass
class Rendered:
    """What a renderer produces: the Content-Type, extra headers, and the body.

    `body` is bytes, or an iterable of bytes chunks for streamed collections.
    """

    content_type: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | Iterable[bytes] = b""


@dataclass
class Context:
    """What renderers need besides the document: the service root for absolute URLs."""

    base_url: str = ""

    def url(self, location: str) -> str:
        """Absolute URL for a location below the root (absolute URLs pass through)."""
        if "://" in location:
            return location
        return self.base_url + location

    def urls(self, locations: Iterable[str]) -> list[str]:
        """url() of each of `locations`: a page of them in a few string operations."""
        locs = list(locations)
        base = self.base_url
        if not base:
            return locs  # url() leaves every location as it is
        if "://" not in "\n".join(locs):  # none absolute (the usual case)
            return [base + loc for loc in locs]
        return [self.url(loc) for loc in locs]


def relative_location(location: str, base_url: str) -> str:
    """A location with the service root stripped: 'http://h:1/compute/x' -> '/compute/x'.

    Locations on other hosts (third-party link targets) stay absolute.
    """
    loc = location.strip()
    if base_url and loc.startswith(base_url):
        rest = loc[len(base_url) :]
        return rest if rest.startswith("/") else "/" + rest
    return loc


# ---------------------------------------------------------------------- what parsers let in
@dataclass(frozen=True)
class Limits:
    """How much one request may ask a parser to read (the server's max_* settings)."""

    #: parameters in one Category or Link value of a text rendering
    parameters: int = 64
    #: categories in one request: mixin definitions, query filters, an entity's kind and mixins
    categories: int = 100
    #: attributes in one entity, action invocation or category definition
    attributes: int = 200


#: the limits of the request being parsed (the API sets them per request; defaults otherwise)
DEFAULT_LIMITS = Limits()
LIMITS: ContextVar[Limits] = ContextVar("occi_parse_limits", default=DEFAULT_LIMITS)


#: characters no parsed string may hold: NUL (PostgreSQL text and jsonb cannot store it) and
#: lone surrogates (not Unicode scalar values: they cannot be encoded as UTF-8 to answer)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
#: deepest nesting of values (lists, objects) a parser hands on
MAX_VALUE_DEPTH = 64


def _shown(text: str) -> str:
    return safe_text(text[:40] + ("..." if len(text) > 40 else ""))


def _check_string(text: str, where: str) -> None:
    m = _UNSTORABLE.search(text)
    if m is None:
        return
    c = m.group()
    what = "a NUL character" if c == "\x00" else f"a lone surrogate (U+{ord(c):04X})"
    raise ParseError(
        f"{where} {_shown(text)!r} holds {what}: send text of Unicode characters without NUL"
    )


def _check_name(name: object, where: str) -> None:
    if not valid_attribute_name(name):
        shown = _shown(name) if isinstance(name, str) else repr(name)
        raise ParseError(
            f"{where} {shown!r} is not an attribute name: write lower-case components joined "
            f"by '.', each a letter then letters, digits, '-' or '_' (e.g. com.example.tier), "
            f"at most {MAX_ATTRIBUTE_NAME} characters"
        )


def check_parsed(value: Any) -> Any:
    """`value` (what a parser produced) once every string in it is storable, every number
    finite and every attribute name fits the OCCI grammar; ParseError otherwise. Walks without
    recursion, to a bounded depth, so a hostile document costs time linear in its size."""
    limits = LIMITS.get()
    categories = 0
    stack: list[tuple[Any, int, str]] = [(value, 0, "the text")]
    while stack:
        v, depth, where = stack.pop()
        if depth > MAX_VALUE_DEPTH:
            raise ParseError(f"the request is nested too deeply (more than {MAX_VALUE_DEPTH})")
        if isinstance(v, str):
            _check_string(v, where)
        elif isinstance(v, float):
            if math.isnan(v) or math.isinf(v):
                raise ParseError(f"{where}: {v} is not a finite number")
        elif isinstance(v, (list, tuple)):
            stack.extend((x, depth + 1, where) for x in v)
        elif isinstance(v, dict):
            for k, x in v.items():
                if isinstance(k, str):
                    _check_string(k, "the name")
                stack.append((x, depth + 1, where))
        elif isinstance(v, (Entity, ActionInvocation)):
            _check_count(len(v.attributes), limits.attributes, "attributes", "max_attributes")
            if isinstance(v, Entity):
                categories += 1 + len(v.mixins)
            for name, x in v.attributes.items():
                _check_name(name, "the attribute name")
                stack.append((x, depth + 1, f"attribute {name}"))
            stack.extend(
                (getattr(v, f.name), depth + 1, f.name)
                for f in dataclasses.fields(v)
                if f.name != "attributes"
            )
        elif isinstance(v, CategoryRef):
            categories += 1
            _check_count(len(v.attributes), limits.attributes, "attributes", "max_attributes")
            for name, d in v.attributes.items():
                _check_name(name, "the attribute name")
                if isinstance(d, AttributeDef):
                    _check_name(d.name, "the attribute name")
            stack.extend((getattr(v, f.name), depth + 1, f.name) for f in dataclasses.fields(v))
        elif isinstance(v, AttributeDef):
            stack.extend(
                (getattr(v, f.name), depth + 1, f"attribute {v.name} {f.name}")
                for f in dataclasses.fields(v)
            )
        _check_count(categories, limits.categories, "categories", "max_categories")
    return value


def _check_count(count: int, limit: int, what: str, setting: str) -> None:
    if count > limit:
        raise ParseError(
            f"the request names more than {limit} {what}: send them in several requests "
            f"(the server's {setting} setting)"
        )


def _checked(parse: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(parse)
    def parse_and_check(self: Rendering, msg: Message) -> Any:
        return check_parsed(parse(self, msg))

    parse_and_check.__wrapped_by_check__ = True  # type: ignore[attr-defined]
    return parse_and_check


_PARSERS = (
    "parse_entities",
    "parse_action",
    "parse_categories",
    "parse_locations",
    "parse_attribute_filter",
)

#: C0 controls and DEL: never inside an HTTP header value or a text/plain field line
_HEADER_UNSAFE = re.compile("[\x00-\x1f\x7f]")


def safe_text(text: str) -> str:
    """`text` encodable as UTF-8 (for error messages that quote
    what the client sent): lone surrogates are written as \\udXXX escapes."""
    if not _UNSTORABLE.search(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def header_safe(value: str) -> str:
    """A header value (or text/plain field value) that cannot break its line: control
    characters become spaces. Parsers refuse them in names; this is the last line of defence
    for anything stored before they did."""
    return _HEADER_UNSAFE.sub(" ", safe_text(value))


def all_header_safe(values: Iterable[str]) -> bool:
    """True when header_safe would leave every one of `values` as it is: one scan of them
    all, instead of two per value (a page of locations is hundreds of values)."""
    text = "".join(values)
    if text.isascii():  # no surrogate; the only unprintable ASCII are C0 controls and DEL
        return text.isprintable()
    return not _HEADER_UNSAFE.search(text) and not _UNSTORABLE.search(text)


class Rendering(ABC):
    """One family of media types. Parsers are liberal, renderers strict.

    Every parse_* method a subclass defines is wrapped by `check_parsed`: whatever a rendering
    reads, no NUL or lone surrogate and no malformed attribute name gets past it."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _PARSERS:
            fn = cls.__dict__.get(name)
            if fn is not None and not getattr(fn, "__wrapped_by_check__", False):
                setattr(cls, name, _checked(fn))

    #: media types this rendering answers to; the first is what it emits as Content-Type
    media_types: tuple[str, ...] = ()
    #: True when render_entities prints only the entities' locations (as render_locations
    #: does): the API then reads only the locations of a collection
    locations_only: bool = False
    #: True when a collection can be rendered from its entities rendered one by one
    #: (render_piece), which a caller may keep and reuse while an entity stays the same
    renders_pieces: bool = False

    # ------------------------------------------------------------------ parsing
    @abstractmethod
    def parse_entities(self, msg: Message) -> list[Entity]:
        """Entities in a create/update body: one, or several from a collection rendering.

        Each is a Resource, or a Link when the rendering carries a source or target.
        occi.core.id/title/summary/source/target(.kind) go to the model's fields, never into
        `attributes`. Inline links of a Resource go to `Resource.links` with `rel`, `target`,
        `kind` (the link category, None when absent), mixins and attributes.
        """

    @abstractmethod
    def parse_action(self, msg: Message) -> ActionInvocation:
        """The body of POST ?action=."""

    @abstractmethod
    def parse_categories(self, msg: Message) -> list[CategoryRef]:
        """Categories in a query-interface request: filters on GET, mixin definitions on POST,
        mixins to remove on DELETE. Empty list when there are none."""

    @abstractmethod
    def parse_locations(self, msg: Message) -> Sequence[str | EntityRef]:
        """Entity locations (mixin collection association), made relative to msg.base_url, or
        EntityRefs for entities a rendering names by kind and id."""

    def parse_attribute_filter(self, msg: Message) -> dict[str, object]:
        """X-OCCI-Attribute filters on a collection GET (header renderings only)."""
        return {}

    # ------------------------------------------------------------------ rendering
    @abstractmethod
    def render_categories(self, categories: CategoryCollection, ctx: Context) -> Rendered:
        """The query interface."""

    @abstractmethod
    def render_entity(self, entity: Entity, ctx: Context) -> Rendered:
        """One entity: kind, mixins, attributes, applicable actions, and a resource's links."""

    @abstractmethod
    def render_entities(self, entities: Iterable[Entity], ctx: Context) -> Rendered:
        """An entity collection (may be rendered as locations only, as text does)."""

    def render_piece(self, entity: Entity, ctx: Context) -> bytes:
        """One entity of a collection, alone (renders_pieces): a function of the entity,
        its applicable actions and ctx only."""
        raise NotImplementedError

    def render_pieces(self, pieces: Iterable[tuple[bool, bytes]], ctx: Context) -> Rendered:
        """The collection of render_piece's pieces, each with whether its entity is a link:
        what render_entities renders of the same entities, byte for byte."""
        raise NotImplementedError

    @abstractmethod
    def render_locations(self, locations: Iterable[str], ctx: Context) -> Rendered:
        """A list of locations, e.g. after a create of several entities."""

    @abstractmethod
    def render_mixin(self, mixin: Mixin, ctx: Context) -> Rendered:
        """One mixin: a user mixin definition, or the os_tpl a save action produced."""

    @abstractmethod
    def render_ok(self, ctx: Context) -> Rendered:
        """A success without a document (e.g. POST to /-/, DELETE)."""

    @abstractmethod
    def render_error(
        self, status: int, reason: str, message: str, ctx: Context, error_code: str | None = None
    ) -> Rendered:
        """An error with a message a person can act on; `error_code` is its machine-readable
        code (occi.errors), which document renderings carry beside the HTTP status."""
