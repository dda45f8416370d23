"""HTTP conditional requests on an entity: its ETag (its version), If-Match, If-None-Match."""

from __future__ import annotations

from occi import errors
from occi.model import Entity


def check_preconditions(entity: Entity, if_match: str | None, if_none_match: str | None) -> None:
    """HTTP conditional requests on an entity: If-Match with its ETag, If-None-Match: *."""
    tag = etag(entity)
    if if_match is not None:
        wanted = [t.strip() for t in if_match.split(",")]
        if "*" not in wanted and tag not in wanted and f"W/{tag}" not in wanted:
            raise errors.PreconditionFailed(
                f"{entity.location} has changed: its ETag is {tag}, the request expected "
                f"{if_match.strip()}; GET it again and retry"
            )
    if if_none_match is not None and if_none_match.strip() == "*":
        raise errors.PreconditionFailed(f"If-None-Match: * but {entity.location} exists")


def etag(entity: Entity) -> str:
    return f'"{entity.version or 0}"'
