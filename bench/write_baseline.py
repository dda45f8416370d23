"""The bench's write baseline: what a bare falcon + SQLAlchemy Core app does for the server's
POST create and POST action, on the same database (a store made by the server's migrations),
with the server's own table definitions (occi.store.sql, imported for the tables only).

- create: one transaction inserting the rows a server create leaves behind: one `entities`
  row, its `entity_mixins` and `entity_attributes` rows, and its `jobs` row (finished), then
  201 with a Location;
- action: one transaction changing the rows a server action (restart) changes: the entity's
  attributes and version, its state attribute rows, and one new `jobs` row (finished).

The rows are copies of those the server itself stored for one create and one restart
(`templates`, written by bench/run.py), with a new uuid, sequence number and timestamps.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from typing import Any

import sqlalchemy as sa

from occi.store.sql import entities, entity_attributes, entity_mixins, jobs

#: the attributes of an entity an action on the simulator changes (what bench/run.py records)
STATE_ATTRIBUTES = ("occi.compute.state", "occi.compute.state.message")


def engine_for(url: str) -> sa.Engine:
    """An engine as a bare app would make it: psycopg 3 on PostgreSQL; on SQLite a busy timeout,
    synchronous NORMAL (the file is already in WAL mode) and BEGIN IMMEDIATE, so concurrent
    writers queue for the lock instead of failing."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(parsed.set(drivername="postgresql+psycopg"))
    engine = sa.create_engine(parsed)

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout = 30000")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Writes:
    """The database work of the write scenarios, from the recorded templates."""

    def __init__(self, url: str, templates: dict[str, Any]):
        self.engine = engine_for(url)
        self.create = templates.get("create")
        self.action = templates.get("action")

    def do_create(self) -> str:
        """Insert one entity like the server's create; its location."""
        t = self.create
        assert t is not None, "no create template recorded"
        eid = str(uuid.uuid4())
        location = t["entity"]["location"].rsplit("/", 1)[0] + "/" + eid
        now = dt.datetime.now(dt.UTC)
        stamp = time.time()
        row = dict(t["entity"], id=eid, location=location, created_at=now, updated_at=now)
        job = dict(
            t["job"],
            id=str(uuid.uuid4()),
            entity_id=eid,
            params=t["job"]["params"].replace(t["entity_id"], eid),
            created_at=stamp,
            not_before=stamp,
            updated_at=stamp,
        )
        with self.engine.begin() as conn:
            seq = conn.execute(entities.insert().values(row).returning(entities.c.seq)).scalar_one()
            if t["mixins"]:
                conn.execute(
                    entity_mixins.insert(),
                    [{"entity_seq": seq, "mixin_id": m} for m in t["mixins"]],
                )
            conn.execute(
                entity_attributes.insert(),
                [{"entity_seq": seq, "name": n, "value_key": v} for n, v in t["attributes"]],
            )
            conn.execute(jobs.insert().values(job))
        return location

    def do_action(self, entity_id: str) -> None:
        """Change one entity like the server's restart: attributes, version, state rows, a job."""
        t = self.action
        assert t is not None, "no action template recorded"
        stamp = time.time()
        job = dict(
            t["job"],
            id=str(uuid.uuid4()),
            entity_id=entity_id,
            params=t["job"]["params"].replace(t["entity_id"], entity_id),
            created_at=stamp,
            not_before=stamp,
            updated_at=stamp,
        )
        with self.engine.begin() as conn:
            seq = conn.execute(
                entities.update()
                .where(entities.c.id == entity_id)
                .values(
                    attributes=t["attributes_json"],
                    version=entities.c.version + 1,
                    updated_at=dt.datetime.now(dt.UTC),
                )
                .returning(entities.c.seq)
            ).scalar_one()
            for name, value_key in t["state_rows"]:
                conn.execute(
                    entity_attributes.update()
                    .where(entity_attributes.c.entity_seq == seq, entity_attributes.c.name == name)
                    .values(value_key=value_key)
                )
            conn.execute(jobs.insert().values(job))


def record_templates(url: str, created_location: str | None, acted_path: str) -> dict[str, Any]:
    """The rows the server stored for one create (the entity at `created_location`, its mixins,
    attributes and job) and for one action (the entity at `acted_path` after it: its
    attributes, state rows and newest job), as the write baseline copies them."""
    engine = engine_for(url)
    try:
        with engine.connect() as conn:

            def entity(location: str) -> dict[str, Any]:
                return dict(
                    conn.execute(sa.select(entities).where(entities.c.location == location))
                    .one()
                    ._mapping
                )

            def newest_job(entity_id: str) -> dict[str, Any]:
                job = dict(
                    conn.execute(
                        sa.select(jobs)
                        .where(jobs.c.entity_id == entity_id)
                        .order_by(jobs.c.seq.desc())
                        .limit(1)
                    )
                    .one()
                    ._mapping
                )
                job.pop("seq")
                return job

            if created_location is not None:
                made = entity(created_location)
                seq = made.pop("seq")
                for k in ("created_at", "updated_at"):
                    made.pop(k)
            create = (
                None
                if created_location is None
                else {
                    "entity_id": made["id"],
                    "entity": made,
                    "mixins": list(
                        conn.scalars(
                            sa.select(entity_mixins.c.mixin_id).where(
                                entity_mixins.c.entity_seq == seq
                            )
                        )
                    ),
                    "attributes": [
                        [r.name, r.value_key]
                        for r in conn.execute(
                            sa.select(
                                entity_attributes.c.name, entity_attributes.c.value_key
                            ).where(entity_attributes.c.entity_seq == seq)
                        )
                    ],
                    "job": newest_job(made["id"]),
                }
            )
            acted = entity(acted_path)
            action = {
                "entity_id": acted["id"],
                "attributes_json": acted["attributes"],
                "state_rows": [
                    [r.name, r.value_key]
                    for r in conn.execute(
                        sa.select(entity_attributes.c.name, entity_attributes.c.value_key).where(
                            entity_attributes.c.entity_seq == acted["seq"],
                            entity_attributes.c.name.in_(STATE_ATTRIBUTES),
                        )
                    )
                ],
                "job": newest_job(acted["id"]),
            }
    finally:
        engine.dispose()
    return json.loads(json.dumps({"create": create, "action": action}, default=str))
