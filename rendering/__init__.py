"""Renderings of the OCCI model, one module per media-type family; pure (imports occi.model only).

`for_media_type` maps a media type to its Rendering; `MEDIA_TYPES` lists what the server speaks,
in order of preference for a client that accepts anything.
"""

from __future__ import annotations

from rendering.base import Context, Message, ParseError, Rendered, Rendering, Unrenderable
from rendering.json_rendering import JsonRendering
from rendering.rdf_rendering import JsonLdRendering, RdfXmlRendering, TurtleRendering
from rendering.text import TextOcci, TextPlain, UriList
from rendering.xml_rendering import XmlRendering

_RENDERINGS: list[Rendering] = [
    TextPlain(),
    TextOcci(),
    UriList(),
    JsonRendering(),
    XmlRendering(),
    TurtleRendering(),
    JsonLdRendering(),
    RdfXmlRendering(),
]
_BY_TYPE: dict[str, Rendering] = {mt: r for r in _RENDERINGS for mt in r.media_types}

#: media types in order of preference (text/plain first: the OCCI default for */*)
MEDIA_TYPES: tuple[str, ...] = tuple(_BY_TYPE)


def for_media_type(media_type: str) -> Rendering | None:
    """The rendering for a bare media type (no parameters), or None."""
    return _BY_TYPE.get(media_type.strip().lower())


def require(media_type: str) -> Rendering:
    """The rendering for one of MEDIA_TYPES, as written there (the server's own choices, such
    as its default text/plain); KeyError for any other."""
    return _BY_TYPE[media_type]


__all__ = [
    "Context",
    "Message",
    "ParseError",
    "Rendered",
    "Rendering",
    "Unrenderable",
    "MEDIA_TYPES",
    "for_media_type",
    "require",
]
