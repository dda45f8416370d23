"""Paths and identifiers a client gives: entity ids, collection paths, the server's reserved paths.

Pure functions and patterns; the service's rooms check what they are given with them.
"""

from __future__ import annotations

import re

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}\Z")
#: one segment of a collection path (one quantifier: matched in linear time)
_SEGMENT_RE = re.compile(r"[A-Za-z0-9_.\-~]{1,255}\Z")
#: longest mixin location accepted
MAX_LOCATION = 1024
URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"]+\Z")
RESERVED_SCHEME = "http://schemas.ogf.org/occi/"
#: paths the server answers itself, the one list of them: no user mixin sits at or below one
#: (the query interface, the health check, and the paths of the provider's own services)
RESERVED_PATHS = ("/-/", "/.well-known/", "/healthz", "/metrics", "/console/", "/ec2/")


def reserved_path(path: str) -> bool:
    """True when `path` is one of RESERVED_PATHS or lies below one."""
    for reserved in RESERVED_PATHS:
        stem = reserved.rstrip("/")
        if path == stem or path.startswith(stem + "/"):
            return True
    return False


def valid_location(location: str) -> bool:
    """A collection path: /seg/.../ with segments of letters, digits, '-', '_', '.', '~', and no
    dot segments ('.' or '..', which a client or proxy would resolve to another path)."""
    if len(location) > MAX_LOCATION or not location.startswith("/") or location == "/":
        return False
    if not location.endswith("/"):
        return False
    return all(
        _SEGMENT_RE.match(seg) and seg not in (".", "..") for seg in location[1:-1].split("/")
    )


def relative(location: str) -> str:
    """Locations arrive relative to the service root already (the renderings strip it)."""
    return location.strip()
