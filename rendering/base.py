"""The contract every rendering implements: bytes and headers <-> the neutral model.

Pure code: imports only occi.model. No falcon, no SQL. The API picks a Rendering by media type,
hands parsers a Message and sends back what renderers return.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from occi.model import (
    ActionInvocation,
    CategoryCollection,
    CategoryRef,
    Entity,
    EntityRef,
    Mixin,
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


def relative_location(location: str, base_url: str) -> str:
    """A location with the service root stripped: 'http://h:1/compute/x' -> '/compute/x'.

    Locations on other hosts (third-party link targets) stay absolute.
    """
    loc = location.strip()
    if base_url and loc.startswith(base_url):
        rest = loc[len(base_url) :]
        return rest if rest.startswith("/") else "/" + rest
    return loc


class Rendering(ABC):
    """One family of media types. Parsers are liberal, renderers strict."""

    #: media types this rendering answers to; the first is what it emits as Content-Type
    media_types: tuple[str, ...] = ()

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
    def parse_locations(self, msg: Message) -> list[str | EntityRef]:
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
    def render_error(self, status: int, reason: str, message: str, ctx: Context) -> Rendered:
        """An error with a message a person can act on."""
