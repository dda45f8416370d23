"""Conditional requests on an entity, as the service sees them: the versions a client expects.

A front parses its own conditions (the OCCI front: HTTP ETags, If-Match, If-None-Match) into an
Expected; the service checks it against the stored entity's version in the writing transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from occi import errors
from occi.model import Entity


@dataclass(frozen=True)
class Expected:
    """What a request expects of the entity it writes.

    `versions`: the entity must exist at one of these versions (HTTP If-Match with ETags);
    `exists`: True, it must exist (If-Match: *); False, it must not (If-None-Match: *)."""

    versions: frozenset[int] | None = None
    exists: bool | None = None

    @classmethod
    def of(cls, versions: Iterable[int]) -> Expected:
        return cls(versions=frozenset(versions))


def version(entity: Entity) -> int:
    """The entity's version: it grows with every stored change (the OCCI front's ETag)."""
    return entity.version or 0


def check_expected(entity: Entity | None, expected: Expected | None, where: str) -> None:
    """PreconditionFailed when the entity at `where` (None: nothing there) is not as expected."""
    if expected is None:
        return
    if entity is None:
        if expected.exists or expected.versions is not None:
            raise errors.PreconditionFailed(
                f"the request expects an entity at {where}, and nothing exists there",
                code="not_there",
            )
        return
    if expected.exists is False:
        raise errors.PreconditionFailed(
            f"the request expects nothing at {where}, and an entity exists there",
            code="already_there",
        )
    if expected.versions is not None and version(entity) not in expected.versions:
        wanted = ", ".join(f'"{v}"' for v in sorted(expected.versions)) or "another version"
        raise errors.PreconditionFailed(
            f'{where} has changed: its version (its ETag) is "{version(entity)}", the request '
            f"expected {wanted}; GET it again and retry",
            code="version_mismatch",
        )
