"""Content negotiation and OCCI version checks: which rendering reads the request, which answers.

Touches only header strings and the rendering registry.
"""

from __future__ import annotations

import re

import rendering
from occi import errors
from rendering.base import Rendering

#: the OCCI default when a client accepts anything (GFD.185: text/plain)
DEFAULT_TYPE = "text/plain"
WILDCARDS = {"*/*": DEFAULT_TYPE, "text/*": DEFAULT_TYPE, "application/*": "application/occi+json"}
OCCI_VERSION = (1, 2)
_VERSION_RE = re.compile(r"OCCI/(\d+)\.(\d+)", re.IGNORECASE)
#: longest version component read as a number (a longer one is no version)
_MAX_VERSION_DIGITS = 9


def parse_accept(header: str) -> list[tuple[str, float]]:
    """Media ranges with their q values, best first (ties keep the client's order)."""
    items: list[tuple[str, float, int]] = []
    for i, part in enumerate(header.split(",")):
        fields = [f.strip() for f in part.split(";")]
        mt = fields[0].lower()
        if not mt:
            continue
        q = 1.0
        for f in fields[1:]:
            if f.lower().startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    raise errors.BadRequest(
                        f"Accept: the quality value in {part.strip()!r} is not a number"
                    ) from None
                if not 0.0 <= q <= 1.0:
                    raise errors.BadRequest(f"Accept: quality values go from 0 to 1, not {q}")
        items.append((mt, q, i))
    items.sort(key=lambda t: (-t[1], t[2]))
    return [(mt, q) for mt, q, _ in items]


_CHOSEN: dict[str, Rendering] = {}


def choose_rendering(accept: str | None) -> Rendering:
    """The rendering for a response, or NotAcceptable naming what the server offers.
    Clients send the same few Accept values over and over: the answers are remembered."""
    if accept is not None:
        hit = _CHOSEN.get(accept)
        if hit is not None:
            return hit
    r = _choose(accept)
    if accept is not None and len(_CHOSEN) < 256:
        _CHOSEN[accept] = r
    return r


def _choose(accept: str | None) -> Rendering:
    if not accept or not accept.strip():
        return rendering.require(DEFAULT_TYPE)
    for mt, q in parse_accept(accept):
        if q <= 0:
            continue
        mt = WILDCARDS.get(mt, mt)
        r = rendering.for_media_type(mt)
        if r is not None:
            return r
    raise errors.NotAcceptable(
        f"none of the media types in Accept ({accept.strip()[:200]}) can be served; "
        f"this server renders {', '.join(rendering.MEDIA_TYPES)}"
    )


def request_rendering(content_type: str | None, has_body: bool) -> Rendering:
    """The rendering that parses the request: by Content-Type, text/plain when none is given."""
    if not content_type or not content_type.strip():
        return rendering.require(DEFAULT_TYPE)
    mt = content_type.split(";", 1)[0].strip().lower()
    r = rendering.for_media_type(mt)
    if r is None:
        if mt == "application/x-www-form-urlencoded":
            # what curl -d sends unless told otherwise: read it as text/plain
            return rendering.require(DEFAULT_TYPE)
        raise errors.UnsupportedMediaType(
            f"Content-Type {mt} cannot be read; send one of {', '.join(rendering.MEDIA_TYPES)}"
        )
    return r


def check_version(user_agent: str | None) -> None:
    """501 when the client announces an OCCI version above 1.2 (GFD.223)."""
    if not user_agent:
        return
    for m in _VERSION_RE.finditer(user_agent):
        if max(len(m.group(1)), len(m.group(2))) > _MAX_VERSION_DIGITS:
            raise errors.BadRequest(
                f"User-Agent: {m.group()[:40]}... is not an OCCI version; send e.g. OCCI/1.2"
            )
        version = (int(m.group(1)), int(m.group(2)))
        if version > OCCI_VERSION:
            raise errors.NotImplementedYet(
                f"this server speaks OCCI/1.2; the client asked for OCCI/{version[0]}.{version[1]}"
            )
