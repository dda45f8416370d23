"""The audit log: one row in table `events` per write a client asked for, and its retention.

`record` writes one event with one autocommitted INSERT (never inside the transaction of the work
it records: a write that failed and rolled back is recorded too). `events` reads them back, newest
first, filtered; `purge` deletes those older than a number of days. The HTTP layer records
(occi.api.audit), the job runner purges (occi.jobs.runner), `occi-server events` reads
(occi.cli_events).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from occi import errors
from occi.store.base import Store, StoreTx
from occi.store.sql import events as events_table
from occi.store.sql import projects

#: the longest text kept in an event's `entity` and `result` (a message is for a person)
MAX_TEXT = 1000
#: the event's INSERT, built once (its columns are always the same)
#: the lease that lets one server of many purge per interval
PURGE_LEASE = "audit_purge"
#: the most events one read returns
MAX_LIMIT = 10000
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_AGO = re.compile(r"(\d{1,9}(?:\.\d{1,6})?)\s*([smhdw])")

if TYPE_CHECKING:
    from occi.context import RequestContext


@dataclass(frozen=True)
class Event:
    seq: int
    at: datetime
    user: str | None
    project: str | None
    request_id: str | None
    operation: str
    entity: str | None
    status: int
    result: str | None
    #: the project's name, when the project still exists
    project_name: str | None = None


def _clip(text: str | None) -> str | None:
    if text is None:
        return None
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _aware(value: datetime) -> datetime:
    """SQLite gives back naive datetimes: they were stored in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def record(store: Store, **fields: Any) -> None:
    """Store one event (the fields of event_values): one INSERT, atomic on its own, so it runs
    in autocommit (no BEGIN or COMMIT round trip, and on SQLite the write lock is held for
    that statement only). Raises what the store raises."""
    values = event_values(**fields)
    with store.begin(single=True) as tx:
        record_in(tx, values)


def event_values(
    *,
    operation: str,
    status: int,
    user: str | None = None,
    project: str | None = None,
    request_id: str | None = None,
    entity: str | None = None,
    result: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """One event's row."""
    return {
        "at": at or datetime.now(UTC),
        "user_name": user,
        "project_id": project,
        "request_id": request_id,
        "operation": operation[:200],
        "entity": _clip(entity),
        "status": status,
        "result": _clip(result),
    }


def record_in(tx: StoreTx, values: dict[str, Any]) -> None:
    """Store one event (event_values) in the store transaction `tx`."""
    tx.add_event(values)


def events(
    store: Store,
    *,
    project: str | None = None,
    user: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[Event]:
    """The newest `limit` events, newest first; `project` is a project's id or name."""
    q = (
        sa.select(events_table, projects.c.name.label("project_name"))
        .select_from(events_table.outerjoin(projects, projects.c.id == events_table.c.project_id))
        .order_by(events_table.c.seq.desc())
        .limit(limit)
    )
    if user is not None:
        q = q.where(events_table.c.user_name == user)
    if since is not None:
        q = q.where(events_table.c.at >= since)
    with store.begin(readonly=True) as tx:
        conn = tx.conn  # type: ignore[attr-defined]
        if project is not None:
            ids = {project}
            found = conn.execute(
                sa.select(projects.c.id).where(projects.c.name == project)
            ).scalar_one_or_none()
            if found is not None:
                ids.add(found)
            q = q.where(events_table.c.project_id.in_(sorted(ids)))
        rows = conn.execute(q).all()
    return [_event(r) for r in rows]


def parse_since(text: str) -> datetime:
    """An age (90s, 30m, 1h, 2d, 1w) or an ISO 8601 time (UTC unless it says); ValueError."""
    found = _AGO.fullmatch(text.strip().lower())
    if found:
        seconds = float(found.group(1)) * _UNITS[found.group(2)]
        return datetime.now(UTC) - timedelta(seconds=seconds)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text[:40]!r} is neither an age (30m, 1h, 2d) nor an ISO time (2026-12-01T08:00)"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def to_doc(e: Event) -> dict[str, Any]:
    """An event as the command line's --json and the admin API print it."""
    return {
        "seq": e.seq,
        "at": e.at.isoformat(),
        "user": e.user,
        "project": e.project,
        "project_name": e.project_name,
        "request_id": e.request_id,
        "operation": e.operation,
        "entity": e.entity,
        "status": e.status,
        "result": e.result,
    }


def events_for(
    ctx: RequestContext,
    store: Store,
    *,
    project: str | None = None,
    user: str | None = None,
    since: str | None = None,
    limit: str | int | None = None,
) -> list[dict[str, Any]]:
    """The audit log for an administrator (Forbidden for anyone else), filtered as `events`
    with the filters as a client sends them (BadRequest for an unreadable one)."""
    if not ctx.is_admin:
        raise errors.Forbidden("only administrators read the audit log")
    try:
        when = parse_since(since) if since else None
    except ValueError as exc:
        raise errors.BadRequest(f"since: {exc}") from None
    count = 100
    if limit is not None:
        text = str(limit)
        if not text.isdigit() or not 1 <= int(text[:6]) <= MAX_LIMIT or len(text) > 6:
            raise errors.BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}")
        count = int(text)
    for name, value in (("project", project), ("user", user)):
        if value is not None and len(value) > 255:
            raise errors.BadRequest(f"{name} is longer than 255 characters")
        if value is not None and not value.isprintable():  # NUL cannot even reach PostgreSQL
            raise errors.BadRequest(f"{name} holds a control character")
    found = events(store, project=project, user=user, since=when, limit=count)
    return [to_doc(e) for e in found]


def _event(row: Any) -> Event:
    return Event(
        seq=row.seq,
        at=_aware(row.at),
        user=row.user_name,
        project=row.project_id,
        request_id=row.request_id,
        operation=row.operation,
        entity=row.entity,
        status=row.status,
        result=row.result,
        project_name=getattr(row, "project_name", None),
    )


def purge(store: Store, older_than_days: float, now: datetime | None = None) -> int:
    """Delete the events older than this many days (nothing for 0 or less); how many went."""
    if older_than_days <= 0:
        return 0
    cutoff = (now or datetime.now(UTC)) - timedelta(days=older_than_days)
    with store.begin() as tx:
        deleted = tx.conn.execute(  # type: ignore[attr-defined]
            events_table.delete().where(events_table.c.at < cutoff)
        )
    return int(deleted.rowcount or 0)


def purge_if_due(store: Store, days: float, interval: float) -> int | None:
    """Purge when this server holds the purge lease for the next `interval` seconds (one server
    of many purges per interval); None when another holds it or retention is off."""
    if days <= 0:
        return None
    with store.begin() as tx:
        mine = tx.take_lease(PURGE_LEASE, interval * 0.9)  # type: ignore[attr-defined]
    if not mine:
        return None
    return purge(store, days)
