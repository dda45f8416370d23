"""What the service keeps for the EC2 front beside the entities: key pairs, tags, and each
instance's record and tombstone. Every call takes the request context first, is authorized
here and sees only the context's project; the rows' SQL is occi.store.ec2_rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from occi.context import DEFAULT_PROJECT, RequestContext
from occi.store.ec2_rows import InstanceRecord, KeyPair, Records

if TYPE_CHECKING:
    from occi.service.base import ServiceBase

__all__ = ["Ec2Records", "InstanceRecord", "KeyPair"]

#: resource id -> its tags (key -> value)
Tags = dict[str, dict[str, str]]


class _TooMany(Exception):
    """Raised inside a transaction to roll it back: a resource would pass its tag limit."""


class Ec2Records:
    """The EC2 records of `service`'s store (Service.ec2_records)."""

    def __init__(self, service: ServiceBase):
        self._service = service

    @contextmanager
    def _rows(self, ctx: RequestContext, action: str, readonly: bool = False) -> Iterator[Records]:
        """Authorize `action`, then the rows of the context's project in one transaction."""
        self._service.authorize(ctx, action)
        with self._service.store.begin(readonly=readonly) as tx:
            yield Records.of(tx, ctx.project or DEFAULT_PROJECT)

    # ------------------------------------------------------------------ key pairs
    def keypairs(self, ctx: RequestContext) -> list[KeyPair]:
        """The project's key pairs, by name."""
        with self._rows(ctx, "read", readonly=True) as rows:
            return rows.keypairs()

    def add_keypair(
        self, ctx: RequestContext, pair: KeyPair, tags: Sequence[tuple[str, str]] = ()
    ) -> bool:
        """Keep the pair and its tags; False (and nothing kept) when the project has a pair of
        that name already."""
        with self._rows(ctx, "create") as rows:
            if not rows.add_keypair(pair):
                return False
            if tags:
                rows.set_tags([pair.id], list(tags))
        return True

    def delete_keypairs(self, ctx: RequestContext, name: str | None, pair_id: str | None) -> None:
        """Delete the project's pairs of that name or that id, with their tags (none: done)."""
        with self._rows(ctx, "delete") as rows:
            for p in rows.keypairs():
                if p.name == name or p.id == pair_id:
                    rows.delete_keypair(p.id)

    # ------------------------------------------------------------------ tags
    def tags(self, ctx: RequestContext, resource_ids: Iterable[str] | None = None) -> Tags:
        """Resource id -> its tags (every tagged resource of the project when None)."""
        with self._rows(ctx, "read", readonly=True) as rows:
            return rows.tags(None if resource_ids is None else list(resource_ids))

    def set_tags(
        self,
        ctx: RequestContext,
        resource_ids: Iterable[str],
        tags: Sequence[tuple[str, str]],
        most: int | None = None,
    ) -> bool:
        """Set the tags on the resources; False (and none of them kept) when a resource would
        then have more than `most` tags."""
        ids = list(resource_ids)
        try:
            with self._rows(ctx, "update") as rows:
                rows.set_tags(ids, list(tags))
                if most is not None and any(len(t) > most for t in rows.tags(ids).values()):
                    raise _TooMany
        except _TooMany:
            return False
        return True

    def delete_tags(
        self,
        ctx: RequestContext,
        resource_ids: Iterable[str],
        tags: list[tuple[str, str | None]] | None = None,
    ) -> None:
        """Remove the tags (a key with a value only when it has that value), or every tag of
        the resources when `tags` is None or empty."""
        with self._rows(ctx, "update") as rows:
            rows.delete_tags(list(resource_ids), tags)

    # ------------------------------------------------------------------ instances
    def record_instances(
        self,
        ctx: RequestContext,
        records: list[InstanceRecord],
        tagged: Sequence[str] = (),
        tags: Sequence[tuple[str, str]] = (),
    ) -> dict[str, InstanceRecord]:
        """Record instances just launched, the tags on their EC2 ids `tagged`; returns every
        instance record of the project by entity id."""
        with self._rows(ctx, "create") as rows:
            for r in records:
                rows.record_instance(r)
            if tags and tagged:
                rows.set_tags(list(tagged), list(tags))
            return rows.instances()

    def instances(self, ctx: RequestContext) -> tuple[dict[str, InstanceRecord], Tags]:
        """The project's instance records by entity id (tombstones included) and its tags."""
        with self._rows(ctx, "read", readonly=True) as rows:
            return rows.instances(), rows.tags()

    def tidy_instances(
        self, ctx: RequestContext, expired: datetime, stale: Iterable[str]
    ) -> tuple[dict[str, InstanceRecord], Tags]:
        """Forget tombstones terminated before `expired` (with their tags) and the records of
        `stale`, instances deleted through OCCI; then as `instances`. Housekeeping a listing
        does, so authorized as a read: what goes was no longer to be seen."""
        with self._rows(ctx, "read") as rows:
            rows.purge(expired)
            rows.forget(list(stale))
            return rows.instances(), rows.tags()

    def terminate_instance(
        self,
        ctx: RequestContext,
        entity_id: str,
        snapshot: dict[str, Any],
        fallback: InstanceRecord,
    ) -> None:
        """Keep the tombstone of an instance terminated now (its last description); `fallback`
        is its record when it has none yet."""
        with self._rows(ctx, "delete") as rows:
            rows.terminate(entity_id, snapshot, fallback)
