"""Placement: where a new entity lives, and the capacity it reserves there.

A compute is placed on a host of its zone with room for it: `used + asked <= capacity x the
cluster's overcommit` for cores and memory, host `up` and `enabled`, every required tag carried
by the host or its cluster. The choice and the reservation are ONE guarded statement, run in the
transaction that stores the entity:

    UPDATE hosts SET used_cores = used_cores + :c, used_memory_mb = ..., vms = vms + 1
    WHERE id = (SELECT the best candidate ... LIMIT 1) AND <it still fits>
    RETURNING id, cluster_id, name, uri

The outer condition is what keeps two servers on one PostgreSQL from overbooking a host: under
READ COMMITTED, an UPDATE that waited for another transaction's lock on the row re-checks its
WHERE against the row as that transaction left it. When it matches nothing although candidates
remain (another create took the room meanwhile), it is tried again, a bounded number of times;
when no host has room, the create is refused (occi.errors.NoCapacity, 503) and its transaction
rolls back, so nothing is stored.

Strategies (setting `placement_strategy`): `firstfit` (hosts by name), `leastused` (most free
memory, then cores, first), `random`, `dispersed` (fewest VMs of the same project first).

A compute moved off a host for its maintenance (occi.inventory.maintenance) is placed the same
way, with the Ask limited to its cluster and excluding the host it leaves; `release` gives back
what one compute held on a host.

Storage and networks are placed in a zone and a cluster (the first of the zone by name), with no
host capacity. A resize re-checks the host with the difference (`resize`); a delete releases the
reservation with the row (occi.store.sql.SqlTx.delete).

Tags: a provider template (a resource_tpl mixin) requires tags by declaring the attribute
`TAGS_ATTRIBUTE` with a default: a comma-separated list (`required_tags`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from occi import errors
from occi import infrastructure as infra
from occi.model import TERM_RE, Mixin, Placement
from occi.settings import PLACEMENT_STRATEGIES
from occi.store.base import StoreTx
from occi.store.inventory_sql import clusters, hosts
from occi.store.sql import entities

STRATEGIES = PLACEMENT_STRATEGIES
#: guarded updates tried while candidates remain but others took the room first
ATTEMPTS = 8
#: the attribute by which a provider template requires host or cluster tags
TAGS_ATTRIBUTE = "placement.tags"


@dataclass(frozen=True)
class Ask:
    """What a compute asks of a host."""

    zone_id: str
    zone_name: str
    cores: int
    memory_mb: int
    project: str
    tags: tuple[str, ...] = ()
    #: a move for maintenance stays in its compute's cluster, off the host it leaves
    cluster_id: str | None = None
    excluded_host: str | None = None

    def describe(self) -> str:
        tags = f" with tags {', '.join(self.tags)}" if self.tags else ""
        return f"{self.cores} cores and {self.memory_mb} MB of memory{tags}"


def required_tags(mixins: Iterable[Mixin]) -> tuple[str, ...]:
    """The tags the provider's templates among `mixins` require (their TAGS_ATTRIBUTE's
    default); a user's own mixin requires nothing."""
    out: list[str] = []
    for m in mixins:
        d = None if m.user_defined else m.attributes.get(TAGS_ATTRIBUTE)
        if d is not None and d.default:
            raw = d.default if isinstance(d.default, list | tuple) else str(d.default).split(",")
            out += [str(t).strip() for t in raw if str(t).strip() and str(t).strip() not in out]
    return tuple(out)


def compute_size(attributes: dict[str, Any]) -> tuple[int, int]:
    """Cores and memory (MB) of a compute's attributes (one core, 1 GB when not given)."""
    cores = attributes.get("occi.compute.cores")
    memory = attributes.get("occi.compute.memory")
    cores = 1 if cores is None else cores
    memory = 1.0 if memory is None else memory
    return int(cores), int(round(float(memory) * 1024))


def _fits(cores: Any, memory_mb: Any) -> sa.ColumnElement[bool]:
    """`used + asked <= capacity x overcommit` on the hosts row (overcommit of its cluster)."""
    overcommit = (
        sa.select(clusters.c.cpu_overcommit, clusters.c.memory_overcommit)
        .where(clusters.c.id == hosts.c.cluster_id)
        .correlate(hosts)
    )
    cpu = overcommit.with_only_columns(clusters.c.cpu_overcommit).scalar_subquery()
    mem = overcommit.with_only_columns(clusters.c.memory_overcommit).scalar_subquery()
    return sa.and_(
        hosts.c.used_cores + cores <= hosts.c.cores * cpu,
        hosts.c.used_memory_mb + memory_mb <= hosts.c.memory_mb * mem,
    )


#: the parameters of the prebuilt placement statements (see _statements)
_CORES = sa.bindparam("ask_cores", type_=sa.Integer())
_MEMORY = sa.bindparam("ask_memory_mb", type_=sa.Integer())


def _tag_pattern(tag: str) -> str:
    """A LIKE pattern (escape character '/') finding `tag` in a JSON list of tags."""
    quoted = json.dumps(tag)
    escaped = quoted.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


def _candidates(tags: int, in_cluster: bool, excluding: bool) -> sa.Select[Any]:
    """The hosts with room for an ask of this shape (`tags` required tags, limited to a
    cluster, excluding a host), with the ask's values as parameters."""
    where: list[sa.ColumnElement[bool]] = [
        clusters.c.zone_id == sa.bindparam("ask_zone_id", type_=sa.String()),
        hosts.c.state == "up",
        hosts.c.admin_state == "enabled",
        hosts.c.used_cores + _CORES <= hosts.c.cores * clusters.c.cpu_overcommit,
        hosts.c.used_memory_mb + _MEMORY <= hosts.c.memory_mb * clusters.c.memory_overcommit,
    ]
    for i in range(tags):
        pattern = sa.bindparam(f"tag_{i}", type_=sa.String())
        where.append(
            sa.or_(
                hosts.c.tags.like(pattern, escape="/"),
                clusters.c.tags.like(pattern, escape="/"),
            )
        )
    if in_cluster:
        where.append(hosts.c.cluster_id == sa.bindparam("ask_cluster_id", type_=sa.String()))
    if excluding:
        where.append(hosts.c.id != sa.bindparam("ask_excluded_host", type_=sa.String()))
    joined = hosts.join(clusters, clusters.c.id == hosts.c.cluster_id)
    return sa.select(hosts.c.id).select_from(joined).where(*where)


def _order(strategy: str) -> list[sa.ColumnElement[Any]]:
    if strategy == "leastused":
        return [
            (hosts.c.memory_mb * clusters.c.memory_overcommit - hosts.c.used_memory_mb).desc(),
            (hosts.c.cores * clusters.c.cpu_overcommit - hosts.c.used_cores).desc(),
            hosts.c.name,
        ]
    if strategy == "random":
        return [sa.func.random()]
    if strategy == "dispersed":
        same_project = (
            sa.select(sa.func.count())
            .select_from(entities)
            .where(
                entities.c.host_id == hosts.c.id,
                entities.c.project_id == sa.bindparam("ask_project", type_=sa.String()),
            )
            .correlate(hosts)
            .scalar_subquery()
        )
        return [same_project, hosts.c.name]
    return [hosts.c.name]


@functools.lru_cache(maxsize=64)
def _statements(
    strategy: str, tags: int, in_cluster: bool, excluding: bool
) -> tuple[sa.Update, sa.Select[Any]]:
    """The guarded reservation of the best candidate, and the count of candidates, for asks of
    one shape: built once (building and keying a statement this size costs more than running
    it), run with the ask's values as parameters."""
    candidates = _candidates(tags, in_cluster, excluding)
    chosen = candidates.order_by(*_order(strategy)).limit(1).scalar_subquery()
    reserve = (
        hosts.update()
        # re-checked on the row as a concurrent transaction left it: still room, still up and
        # enabled (an administrator's maintenance that committed first wins)
        .where(
            hosts.c.id == chosen,
            _fits(_CORES, _MEMORY),
            hosts.c.state == "up",
            hosts.c.admin_state == "enabled",
        )
        .values(
            used_cores=hosts.c.used_cores + _CORES,
            used_memory_mb=hosts.c.used_memory_mb + _MEMORY,
            vms=hosts.c.vms + 1,
        )
        .returning(hosts.c.id, hosts.c.cluster_id, hosts.c.name, hosts.c.uri)
    )
    left = sa.select(sa.func.count()).select_from(candidates.subquery())
    return reserve, left


@functools.lru_cache(maxsize=64)
def _placing(strategy: str, tags: int) -> sa.Update:
    """PostgreSQL: the reservation of `_statements` and the stored entity's host in ONE
    statement (the reservation as a data-modifying CTE), so that a create can run it last,
    just before its COMMIT: the host's row is then locked for that statement and the commit
    only, and creates placed on one host queue for it that long."""
    reserve, _ = _statements(strategy, tags, False, False)
    reserved = reserve.cte("reserved")
    return (
        entities.update()
        .where(
            entities.c.id == sa.bindparam("placed_entity", type_=sa.String()),
            # true (the new entity has no host yet); it also joins the CTE's one row to it for
            # SQLAlchemy's check against cartesian products
            entities.c.host_id.is_distinct_from(reserved.c.id),
        )
        .values(host_id=reserved.c.id, cluster_id=reserved.c.cluster_id)
        .returning(reserved.c.id, reserved.c.cluster_id, reserved.c.name, reserved.c.uri)
    )


def defers(tx: StoreTx) -> bool:
    """Whether creates on this store reserve a host last (place_stored): on PostgreSQL, where
    row locks are held to the commit; SQLite's one write lock holds every row alike."""
    return bool(getattr(tx, "conn", None) is not None and tx.conn.dialect.name == "postgresql")  # type: ignore[attr-defined]


def place_compute(
    tx: StoreTx, ask: Ask, strategy: str = "firstfit", *, stored: str | None = None
) -> Placement:
    """Choose a host for `ask` and reserve its room there: one statement when it fits.
    `stored`: the id of the entity, already stored in this transaction, whose host and
    cluster the same statement sets (see _placing; PostgreSQL, an ask of a zone only)."""
    conn = tx.conn  # type: ignore[attr-defined]  # the SQL store's transaction
    reserve, left = _statements(
        strategy, len(ask.tags), ask.cluster_id is not None, ask.excluded_host is not None
    )
    if stored is not None:
        assert ask.cluster_id is None and ask.excluded_host is None, "a new compute's ask"
        reserve = _placing(strategy, len(ask.tags))
    params: dict[str, Any] = {
        "ask_zone_id": ask.zone_id,
        "ask_cores": ask.cores,
        "ask_memory_mb": ask.memory_mb,
        "ask_cluster_id": ask.cluster_id,
        "ask_excluded_host": ask.excluded_host,
        **{f"tag_{i}": _tag_pattern(t) for i, t in enumerate(ask.tags)},
    }
    if strategy == "dispersed":
        params["ask_project"] = ask.project
    if stored is not None:
        params["placed_entity"] = stored
    for _ in range(ATTEMPTS):
        row = conn.execute(reserve, params).first()
        if row is not None:
            return Placement(
                zone_id=ask.zone_id,
                cluster_id=row.cluster_id,
                host_id=row.id,
                host_name=row.name,
                host_uri=row.uri,
                reserved_cores=ask.cores,
                reserved_memory_mb=ask.memory_mb,
            )
        # nothing matched: either no host has room, or another create took it meanwhile
        if not conn.execute(left, params).scalar():
            break
    if ask.excluded_host is not None:
        raise errors.NoCapacity(f"no other host of its cluster has room for {ask.describe()}")
    raise errors.NoCapacity(
        f"no host in zone {ask.zone_name} has room for {ask.describe()}; try another zone, "
        "a smaller size, or later"
    )


def release(tx: StoreTx, host_id: str, cores: int, memory_mb: int) -> None:
    """Give back what one compute reserved on a host (a move's target after a failed move, or
    the source after a move)."""
    conn = tx.conn  # type: ignore[attr-defined]
    conn.execute(
        hosts.update()
        .where(hosts.c.id == host_id)
        .values(
            used_cores=hosts.c.used_cores - cores,
            used_memory_mb=hosts.c.used_memory_mb - memory_mb,
            vms=hosts.c.vms - 1,
        )
    )


def resize(
    tx: StoreTx, entity_id: str, placement: Placement, cores: int, memory_mb: int, zone_name: str
) -> None:
    """Move a placed compute's reservation to `cores` and `memory_mb` (a guarded update of the
    difference on its host: NoCapacity when the host has no room for the growth)."""
    if placement.host_id is None:
        return
    d_cores = cores - (placement.reserved_cores or 0)
    d_mem = memory_mb - (placement.reserved_memory_mb or 0)
    if not d_cores and not d_mem:
        return
    conn = tx.conn  # type: ignore[attr-defined]
    done = conn.execute(
        hosts.update()
        .where(hosts.c.id == placement.host_id, _fits(max(d_cores, 0), max(d_mem, 0)))
        .values(
            used_cores=hosts.c.used_cores + d_cores,
            used_memory_mb=hosts.c.used_memory_mb + d_mem,
        )
    )
    if not done.rowcount:
        raise errors.NoCapacity(
            f"the host of this compute in zone {zone_name} has no room for {cores} cores and "
            f"{memory_mb} MB of memory ({max(d_cores, 0)} cores and {max(d_mem, 0)} MB more); "
            "choose a smaller size"
        )
    conn.execute(
        entities.update()
        .where(entities.c.id == entity_id)
        .values(reserved_cores=cores, reserved_memory_mb=memory_mb)
    )
    placement.reserved_cores, placement.reserved_memory_mb = cores, memory_mb


# ---------------------------------------------------------------------------------------------
# Zones offered to users
# ---------------------------------------------------------------------------------------------

#: the kinds a zone mixin applies to: what lives in a zone
ZONED_KINDS = (infra.COMPUTE.id, infra.STORAGE.id, infra.NETWORK.id)


def zone_scheme(backend_name: str) -> str:
    """The scheme of the zone mixins, in the provider's own scheme (as ooi offers OpenStack's
    availability zones): http://occi.<backend>.local/availability_zone#"""
    return f"http://occi.{backend_name}.local/availability_zone#"


def zone_mixin(scheme: str, zone_name: str) -> Mixin:
    """The mixin offering one zone: a create carrying it is placed in that zone."""
    return Mixin(
        scheme,
        zone_name,
        f"Availability zone {zone_name}",
        applies=ZONED_KINDS,
        location=f"/mixin/availability_zone/{zone_name}/",
    )


def zone_mixins(scheme: str, zone_names: Iterable[str]) -> list[Mixin]:
    """One mixin per zone whose name can be a category term."""
    return [zone_mixin(scheme, n) for n in zone_names if TERM_RE.fullmatch(n)]
