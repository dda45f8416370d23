"""Bench data: a store of N entities, fast. A few entities go through the real service (so the
simulator backend knows them and actions work), the rest are bulk rows copied from them.

Touches the store's tables directly (occi.store.sql) for the bulk part; used only by bench/.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from falcon import testing

from occi.api.wsgi import build
from occi.settings import Settings
from occi.store.sql import entities, entity_attributes, entity_mixins, value_key

INFRA = "http://schemas.ogf.org/occi/infrastructure#"
ACTION = "http://schemas.ogf.org/occi/infrastructure/compute/action#"
TEMPLATE = "http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#"
OS_TPL = "http://occi.simulator.local/os_tpl#"
JSON = "application/occi+json"
#: computes made active through the service, for the action scenario: one per wrk connection
#: (BENCH_CONNECTIONS, 16), since two restarts of one compute at once are ordered by design
#: (an entity's jobs run one after the other) and would measure that wait, not the write path
ACTIVE_COMPUTES = 16
CHUNK = 5000


@dataclass
class Dataset:
    """What the scenarios need to know about the populated store."""

    database_url: str
    total: int
    storages: int
    computes: int
    target_compute: str  # path of a compute with 2 mixins and 1 link
    active_computes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _service_entities(database_url: str) -> tuple[str, list[str], dict[str, Any]]:
    """Create, through the real app: a network, a compute with templates and a network
    interface, and started computes. Returns the target path, the active paths and the
    stored rows to copy."""
    # the data is made without authentication; bench.run makes the token its requests carry
    settings = Settings.from_mapping(
        {"database_url": database_url, "log_level": "WARNING", "auth": "none"}
    )
    app, service = build(settings, upgrade=True, run_jobs=False)
    client = testing.TestClient(app)
    hdr = {"Content-Type": JSON, "Accept": JSON}

    def post(path: str, doc: Any) -> str:
        r = client.simulate_post(path, body=json.dumps(doc), headers=hdr)
        if r.status_code not in (200, 201):
            raise RuntimeError(f"POST {path} failed: {r.status} {r.text}")
        return r.headers.get("location", "")

    def path_of(url: str) -> str:
        return "/" + url.split("://", 1)[-1].split("/", 1)[1]

    try:
        net = path_of(post("/network/", {"kind": INFRA + "network", "attributes": {}}))
        target = path_of(
            post(
                "/compute/",
                {
                    "kind": INFRA + "compute",
                    "mixins": [TEMPLATE + "medium", OS_TPL + "debian12"],
                    "attributes": {"occi.compute.hostname": "bench-target"},
                    "links": [{"kind": INFRA + "networkinterface", "target": {"location": net}}],
                },
            )
        )
        active = []
        for i in range(ACTIVE_COMPUTES):
            p = path_of(
                post(
                    "/compute/",
                    {
                        "kind": INFRA + "compute",
                        "mixins": [TEMPLATE + "small", OS_TPL + "debian12"],
                        "attributes": {"occi.compute.hostname": f"bench-active-{i}"},
                    },
                )
            )
            post(p + "?action=start", {"action": ACTION + "start"})
            active.append(p)
        post("/storage/", {"kind": INFRA + "storage", "attributes": {"occi.storage.size": 10}})
        with service.store.engine.connect() as conn:
            rows = {
                r.kind: dict(r._mapping)
                for r in conn.execute(
                    sa.select(entities)
                    .where(entities.c.source_id.is_(None))
                    .order_by(entities.c.seq)
                )
            }
    finally:
        service.store.close()
        service.backend.close()
    return target, active, rows


def populate(database_url: str, total: int, storages: int) -> Dataset:
    """A store of `total` entities of which `storages` are storage resources; the rest are
    computes (2 mixins each), plus one network and one network interface link."""
    t0 = time.monotonic()
    target, active, templates = _service_entities(database_url)
    compute_tpl = templates[INFRA + "compute"]
    storage_tpl = templates[INFRA + "storage"]
    engine = sa.create_engine(_driver(database_url))
    with engine.begin() as conn:
        have = conn.execute(sa.select(sa.func.count()).select_from(entities)).scalar_one()
        have_storage = conn.execute(
            sa.select(sa.func.count())
            .select_from(entities)
            .where(entities.c.kind == INFRA + "storage")
        ).scalar_one()
        seq = conn.execute(sa.select(sa.func.max(entities.c.seq))).scalar_one() or 0
        n_storage = max(0, storages - have_storage)
        n_compute = max(0, total - have - n_storage)
        plan = [(storage_tpl, n_storage), (compute_tpl, n_compute)]
        for tpl, count in plan:
            attrs = json.loads(tpl["attributes"])
            mixins = json.loads(tpl["mixins"])
            keys = [(n, value_key(v)) for n, v in attrs.items()]
            done = 0
            while done < count:
                n = min(CHUNK, count - done)
                rows, mrows, arows = [], [], []
                for _ in range(n):
                    seq += 1
                    eid = str(uuid.uuid4())
                    row = dict(tpl)
                    row.update(
                        seq=seq, id=eid, location=tpl["location"].rsplit("/", 1)[0] + "/" + eid
                    )
                    rows.append(row)
                    mrows.extend({"entity_seq": seq, "mixin_id": m} for m in mixins)
                    arows.extend({"entity_seq": seq, "name": k, "value_key": v} for k, v in keys)
                conn.execute(entities.insert(), rows)
                if mrows:
                    conn.execute(entity_mixins.insert(), mrows)
                conn.execute(entity_attributes.insert(), arows)
                done += n
        if conn.dialect.name == "postgresql":
            conn.execute(
                sa.text(
                    "SELECT setval(pg_get_serial_sequence('entities', 'seq'), (SELECT max(seq) FROM entities))"
                )
            )
            conn.execute(sa.text("ANALYZE"))  # autovacuum would do it on a live database
        # no ANALYZE on SQLite: a user's database has no statistics either (and with them,
        # SQLite misjudges the mostly-NULL source_id index: see the README's Performance notes)
        final = conn.execute(sa.select(sa.func.count()).select_from(entities)).scalar_one()
        n_st = conn.execute(
            sa.select(sa.func.count())
            .select_from(entities)
            .where(entities.c.kind == INFRA + "storage")
        ).scalar_one()
        n_co = conn.execute(
            sa.select(sa.func.count())
            .select_from(entities)
            .where(entities.c.kind == INFRA + "compute")
        ).scalar_one()
    engine.dispose()
    return Dataset(database_url, final, n_st, n_co, target, active, time.monotonic() - t0)


def _driver(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description="populate an OCCI store for benchmarks")
    p.add_argument("database_url")
    p.add_argument("--total", type=int, default=1000)
    p.add_argument("--storages", type=int, default=100)
    a = p.parse_args()
    print(json.dumps(populate(a.database_url, a.total, a.storages).as_dict(), indent=2))
