"""Links: a link's source and target checked and completed against the store, and the queue a
link's work waits in (its source resource's)."""

from __future__ import annotations

from occi import errors
from occi import infrastructure as infra
from occi.model import Kind, Link, Resource, stored_id
from occi.registry import Registry
from occi.service.locations import URI_RE, relative
from occi.service.work import Work
from occi.store.base import StoreTx


class Links(Work):
    def _bind_link(self, tx: StoreTx, reg: Registry, link: Link, kind: Kind) -> None:
        """Check and complete a link's source and target against the store."""
        if not link.source:
            raise errors.BadRequest("a link needs occi.core.source: the location of a resource")
        if not link.target:
            raise errors.BadRequest("a link needs occi.core.target: a location or URI")
        link.source = relative(link.source)
        link.target = relative(link.target)
        if not (link.target.startswith("/") or URI_RE.match(link.target)):
            raise errors.BadRequest(
                f"occi.core.target {link.target!r} must be a location here (/network/...) "
                "or an absolute URI"
            )
        source = self._resource_at(tx, link.source, "source")
        if source is None:
            raise errors.BadRequest(f"occi.core.source {link.source} is not a resource here")
        link.source_kind = source.kind
        target = (
            self._resource_at(tx, link.target, "target") if link.target.startswith("/") else None
        )
        if link.target.startswith("/") and target is None:
            raise errors.BadRequest(f"occi.core.target {link.target} is not a resource here")
        if target is not None:
            link.target_kind = target.kind
            self._check_same_zone(link, source, target)
        expectations = {
            infra.NETWORKINTERFACE.id: (infra.COMPUTE, infra.NETWORK),
            infra.STORAGELINK.id: (infra.COMPUTE, infra.STORAGE),
        }
        if kind.id in expectations:
            src_kind, tgt_kind = expectations[kind.id]
            if not reg.kinds[source.kind].is_a(src_kind):
                raise errors.BadRequest(f"a {kind.term} link starts at a {src_kind.term} resource")
            if target is None or not reg.kinds[target.kind].is_a(tgt_kind):
                raise errors.BadRequest(f"a {kind.term} link points at a {tgt_kind.term} resource")

    def _check_same_zone(self, link: Link, source: Resource, target: Resource) -> None:
        """A link joins resources of one zone (a compute reaches the networks and storage of
        its own zone only)."""
        zones = [r.placement.zone_id if r.placement is not None else None for r in (source, target)]
        if None in zones or zones[0] == zones[1]:
            return
        known = self.pool.snapshot().zones
        src, tgt = (known[z].name if z in known else z for z in zones)
        raise errors.BadRequest(
            f"{link.source} is in zone {src} and {link.target} in zone {tgt}: a link joins "
            "resources of one zone; create the resource in the same zone",
            code="cross_zone_link",
        )

    def _resource_at(self, tx: StoreTx, location: str, role: str) -> Resource | None:
        """The resource at `location` in the project of the call under way; None when there
        is none (or it is another project's: a link never joins two projects)."""
        e = tx.get(location.rsplit("/", 1)[-1]) if location.startswith("/") else None
        e = self._visible(self._project(), e)
        if e is None or e.location != location or not isinstance(e, Resource):
            return None
        return e

    @staticmethod
    def _link_key(link: Link) -> str:
        """Link operations queue behind the source resource's (a NIC waits for its VM)."""
        return (link.source or "").rsplit("/", 1)[-1] or stored_id(link)
