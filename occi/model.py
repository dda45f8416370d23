"""The neutral OCCI model: categories (Kind, Mixin, Action, attribute definitions) and entities.

Every rendering parses to these types and renders from them; nothing here knows a media type,
HTTP, SQL or a hypervisor. Pure data with a little validation help.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import re2

CORE = "http://schemas.ogf.org/occi/core#"
INFRA = "http://schemas.ogf.org/occi/infrastructure#"

# Attribute value types. JSON renders integer and enum as "number" and "string" with a pattern.
STRING = "string"
INTEGER = "integer"
NUMBER = "number"
BOOLEAN = "boolean"
ENUM = "enum"
ARRAY = "array"
OBJECT = "object"
ATTRIBUTE_TYPES = (STRING, INTEGER, NUMBER, BOOLEAN, ENUM, ARRAY, OBJECT)

TERM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*\Z")
#: GFD.185: attribute-name = attr-component *( "." attr-component ),
#: attr-component = LOALPHA *( LOALPHA / DIGIT / "-" / "_" )
ATTRIBUTE_NAME_RE = re.compile(r"[a-z][a-z0-9_\-]*(?:\.[a-z][a-z0-9_\-]*)*\Z")
#: longest attribute name accepted (the model's own are under 60 characters)
MAX_ATTRIBUTE_NAME = 255

#: integers travel as 64-bit signed numbers (SQL BIGINT, JSON readers of other languages)
MIN_INTEGER, MAX_INTEGER = -(2**63), 2**63 - 1
#: longest number written as text that a parser converts (sign, digits, point, exponent);
#: int() of thousands of digits is refused by Python and costs quadratic time before that
MAX_NUMBER_TEXT = 64
#: longest attribute `pattern` accepted
MAX_PATTERN = 1024


def valid_attribute_name(name: object) -> bool:
    """True when `name` is an OCCI attribute name (GFD.185 grammar, bounded length)."""
    return (
        isinstance(name, str)
        and len(name) <= MAX_ATTRIBUTE_NAME
        and ATTRIBUTE_NAME_RE.match(name) is not None
    )


class PatternError(ValueError):
    """An attribute pattern that cannot be checked in linear time (or is not a regex)."""


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
_RE2_OPTIONS.max_mem = 8 << 20


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Any:
    """`pattern` compiled by RE2, which matches in time linear in the input whatever the
    pattern (no backtracking: `(a+)+b` is as fast as `a+b`). Raise PatternError for what RE2
    does not offer (back-references, look-around) or for a pattern too long or too big."""
    if len(pattern) > MAX_PATTERN:
        raise PatternError(f"the pattern is longer than {MAX_PATTERN} characters")
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise PatternError(
            f"{detail} (patterns are RE2 regular expressions: no back-references or look-around)"
        ) from None
    except (TypeError, UnicodeError, OverflowError) as exc:
        raise PatternError(str(exc)) from None


def integer_text(text: str) -> int:
    """int(text) for a number written as text, refusing more than MAX_NUMBER_TEXT characters
    before converting (ValueError)."""
    text = text.strip()
    if len(text) > MAX_NUMBER_TEXT:
        raise ValueError(f"a number of more than {MAX_NUMBER_TEXT} characters")
    return int(text)


class AttributeValueError(ValueError):
    """A value does not fit its attribute definition; the message says why, for a person."""


@dataclass(frozen=True)
class AttributeDef:
    """One attribute of a category: its name and the properties OCCI Core gives it."""

    name: str
    type: str = STRING
    mutable: bool = True
    required: bool = False
    default: Any = None
    description: str | None = None
    pattern: str | None = None  # an ERE/Python regex for string values
    enum: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    def coerce(self, value: Any) -> Any:
        """Return `value` converted to this attribute's type, or raise AttributeValueError.

        Text renderings deliver numbers as strings sometimes ("2"), booleans as "true"; JSON
        delivers native types. Both end up as the same Python value.
        """
        t = self.type
        try:
            if t in (STRING, ENUM):
                if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                    raise AttributeValueError(f"{self.name} must be a string")
                value = str(value) if not isinstance(value, str) else value
                if t == ENUM and self.enum and value not in self.enum:
                    raise AttributeValueError(
                        f"{self.name} must be one of {', '.join(self.enum)}, not {_shown(value)}"
                    )
                if self.pattern and not _pattern_matches(self.name, self.pattern, value):
                    raise AttributeValueError(
                        f"{self.name} value {_shown(value)} does not match the pattern {self.pattern}"
                    )
                return value
            if t == INTEGER:
                if isinstance(value, bool):
                    raise AttributeValueError(f"{self.name} must be an integer")
                if isinstance(value, float):
                    if not value.is_integer():
                        raise AttributeValueError(f"{self.name} must be an integer, not {value}")
                    value = int(value)
                elif isinstance(value, str):
                    value = integer_text(value)
                elif not isinstance(value, int):
                    raise AttributeValueError(f"{self.name} must be an integer")
                if not MIN_INTEGER <= value <= MAX_INTEGER:
                    raise AttributeValueError(
                        f"{self.name} must be a 64-bit integer (from -2^63 to 2^63-1)"
                    )
                return self._bounded(value)
            if t == NUMBER:
                if isinstance(value, bool):
                    raise AttributeValueError(f"{self.name} must be a number")
                if isinstance(value, str):
                    value = float(value.strip())
                elif isinstance(value, int):
                    value = float(value)
                elif not isinstance(value, float):
                    raise AttributeValueError(f"{self.name} must be a number")
                if math.isnan(value) or math.isinf(value):
                    raise AttributeValueError(f"{self.name} must be a finite number")
                return self._bounded(value)
            if t == BOOLEAN:
                if isinstance(value, bool):
                    return value
                if isinstance(value, str) and value.lower() in ("true", "false"):
                    return value.lower() == "true"
                raise AttributeValueError(f"{self.name} must be true or false")
            if t == ARRAY:
                if isinstance(value, (list, tuple)):
                    return list(value)
                raise AttributeValueError(f"{self.name} must be an array")
            if t == OBJECT:
                if isinstance(value, dict):
                    return value
                raise AttributeValueError(f"{self.name} must be an object")
        except (TypeError, ValueError, OverflowError) as exc:
            if isinstance(exc, AttributeValueError):
                raise
            shown = _shown(value)
            raise AttributeValueError(f"{self.name} must be of type {t}, not {shown}") from None
        return value

    def _bounded(self, value: float) -> float:
        if self.minimum is not None and value < self.minimum:
            raise AttributeValueError(f"{self.name} must be at least {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            raise AttributeValueError(f"{self.name} must be at most {self.maximum:g}")
        return value


def _shown(value: Any) -> str:
    """A short repr for messages (a huge int's repr would hit Python's digit limit)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return "a number of more than 60 digits"
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def _pattern_matches(name: str, pattern: str, value: str) -> bool:
    try:
        compiled = compile_pattern(pattern)
    except PatternError as exc:
        raise AttributeValueError(f"{name} has a pattern that cannot be checked: {exc}") from None
    return compiled.fullmatch(value) is not None


def attrs(*defs: AttributeDef) -> dict[str, AttributeDef]:
    return {d.name: d for d in defs}


@dataclass(frozen=True, eq=False)
class Category:
    """Kind, Mixin and Action share this: a scheme and a term, whose concatenation is the id."""

    scheme: str
    term: str
    title: str | None = None
    attributes: Mapping[str, AttributeDef] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.scheme + self.term

    cls = "category"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Category) and other.cls == self.cls and other.id == self.id

    def __hash__(self) -> int:
        return hash((self.cls, self.id))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"


@dataclass(frozen=True, eq=False, repr=False)
class Action(Category):
    cls = "action"


@dataclass(frozen=True, eq=False, repr=False)
class Kind(Category):
    parent: Kind | None = None
    actions: tuple[Action, ...] = ()
    location: str | None = None  # path relative to the service root, e.g. "/compute/"

    cls = "kind"

    def lineage(self) -> list[Kind]:
        """This kind and its ancestors, nearest first."""
        out: list[Kind] = []
        k: Kind | None = self
        while k is not None:
            out.append(k)
            k = k.parent
        return out

    def is_a(self, other: Kind | str) -> bool:
        oid = other if isinstance(other, str) else other.id
        return any(k.id == oid for k in self.lineage())

    def all_attributes(self) -> dict[str, AttributeDef]:
        """Attributes of this kind and its ancestors (the child's definition wins)."""
        out: dict[str, AttributeDef] = {}
        for k in reversed(self.lineage()):
            out.update(k.attributes)
        return out

    def all_actions(self) -> list[Action]:
        out: list[Action] = []
        for k in reversed(self.lineage()):
            out.extend(k.actions)
        return out


@dataclass(frozen=True, eq=False, repr=False)
class Mixin(Category):
    depends: tuple[str, ...] = ()  # mixin type identifiers
    applies: tuple[str, ...] = ()  # kind type identifiers; empty = applies to any entity
    actions: tuple[Action, ...] = ()
    location: str | None = None
    user_defined: bool = False  # True for client-defined mixins (deletable through /-/)

    cls = "mixin"


#: the attributes OCCI Core makes fields of an entity (its id, title, summary, link ends)
CORE_ATTRIBUTES = (
    "occi.core.id",
    "occi.core.title",
    "occi.core.summary",
    "occi.core.source",
    "occi.core.target",
    "occi.core.source.kind",
    "occi.core.target.kind",
)


@dataclass
class Placement:
    """Where an entity lives: its zone, the cluster whose backend drives it, the host it runs
    on (with the host's platform address, e.g. a libvirt URI) and what it reserved there, and
    the backend's private reference to its platform object. Kept in SQL beside the entity,
    handed to backends, never rendered to users."""

    zone_id: str | None = None
    cluster_id: str | None = None
    host_id: str | None = None
    host_name: str | None = None
    host_uri: str | None = None
    reserved_cores: int | None = None
    reserved_memory_mb: int | None = None
    platform_ref: str | None = None


@dataclass
class Entity:
    """An entity as it crosses the rendering boundary.

    `kind` and `mixins` are type identifiers (scheme+term). `attributes` holds every attribute
    that is not one of the model's first-class fields (so no occi.core.id/title/summary/source/
    target here: those are fields). `location` is the entity's path below the service root.
    `actions` lists the type identifiers of the actions applicable now (filled for rendering).
    """

    kind: str
    id: str | None = None
    title: str | None = None
    mixins: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    location: str | None = None
    actions: list[str] = field(default_factory=list)
    #: the stored revision (bumped on every change; the HTTP ETag); None before it is stored
    version: int | None = field(default=None, compare=False)
    #: the id of the project that owns it (the store's); None before it is stored
    project: str | None = field(default=None, compare=False)
    #: where it lives (zone, cluster, host, the backend's private reference); never rendered
    placement: Placement | None = field(default=None, compare=False, repr=False)

    is_link = False

    def as_resource(self) -> Resource:
        """A bare entity as a resource without summary or links (how renderings show it)."""
        if isinstance(self, Resource):
            return self
        return Resource(
            kind=self.kind,
            id=self.id,
            title=self.title,
            mixins=self.mixins,
            attributes=self.attributes,
            location=self.location,
            actions=self.actions,
        )


@dataclass
class Resource(Entity):
    summary: str | None = None
    links: list[Link] = field(default_factory=list)


@dataclass
class Link(Entity):
    """A link. `source` and `target` are locations (paths below the root or absolute URIs)."""

    source: str | None = None
    target: str | None = None
    source_kind: str | None = None
    target_kind: str | None = None
    # For inline links in a Link header: the rel (target resource type identifiers).
    rel: str | None = None

    is_link = True

    def core_values(self) -> list[tuple[str, str | None]]:
        """The link's core attributes as (name, value), id and title first (GFD.185 order)."""
        return [
            ("occi.core.id", self.id),
            ("occi.core.title", self.title),
            ("occi.core.source", self.source),
            ("occi.core.target", self.target),
            ("occi.core.source.kind", self.source_kind),
            ("occi.core.target.kind", self.target_kind),
        ]


def stored_id(entity: Entity) -> str:
    """The id of an entity the store holds (or one about to be stored): only an entity a client
    sent has none yet, and the service gives it one before storing it."""
    assert entity.id is not None, f"a stored {entity.kind} entity has no id"
    return entity.id


@dataclass
class ActionInvocation:
    """The body of POST ?action=: the action's type identifier (or only its term) and parameters."""

    action: str | None  # type identifier; None when the client gave no category
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class CategoryCollection:
    """The query interface content."""

    kinds: list[Kind] = field(default_factory=list)
    mixins: list[Mixin] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)

    def __iter__(self) -> Iterator[Category]:
        yield from self.kinds
        yield from self.mixins
        yield from self.actions


@dataclass
class CategoryRef:
    """A category named in a request: a filter on /-/ or a mixin definition/removal.

    Parsers fill whatever the client sent; the service decides what is required.
    """

    scheme: str
    term: str
    cls: str | None = None  # "kind", "mixin", "action" or None when the client did not say
    title: str | None = None
    location: str | None = None
    rel: list[str] = field(default_factory=list)  # depends (mixin) / parent (kind)
    applies: list[str] = field(default_factory=list)
    attributes: dict[str, AttributeDef] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.scheme + self.term


@dataclass(frozen=True)
class EntityRef:
    """An entity named by its kind and id, without a location: GFD.226's entity collection
    rendering in a mixin association. The service finds it through its registry and store."""

    kind: str
    id: str


def split_type_id(type_id: str) -> tuple[str, str]:
    """Split `scheme#term` into (scheme-with-#, term); raise ValueError when there is no '#'."""
    i = type_id.rfind("#")
    if i < 0 or i == len(type_id) - 1:
        raise ValueError(f"{type_id!r} is not a category identifier (scheme#term)")
    return type_id[: i + 1], type_id[i + 1 :]
