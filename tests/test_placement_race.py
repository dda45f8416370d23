"""The concurrent-placement race: creates sent at once through two real servers (gunicorn) on
one PostgreSQL database, against hosts with room for N computes. Exactly N are placed, every
other create is refused with 503 `no_capacity`, and each host's use is the sum of what the
entities placed on it reserved: no host is overbooked. (The guard that keeps it so is the
condition the reserving UPDATE re-checks after waiting for another transaction's lock; without
it this test fails.)"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa

from occi.store import make_store
from occi.store.inventory_sql import hosts
from occi.store.sql import entities
from tests import inventory_rows as rows
from tests.api.conftest import INFRA, JSON
from tests.live import LiveServer

#: (cores, memory MB) of each host; every create asks 1 core and 1 GB: room for 5 + 2
HOSTS = {"h-one": (5, 8192), "h-two": (2, 2048)}
ROOM = 7
CREATES = 24


def race(urls: list[str], n: int) -> list[requests.Response]:
    body = json.dumps(
        {
            "kind": INFRA + "compute",
            "attributes": {"occi.compute.cores": 1, "occi.compute.memory": 1.0},
        }
    )
    headers = {"Content-Type": JSON, "Accept": JSON}
    start = threading.Barrier(n)

    def create(i: int) -> requests.Response:
        with requests.Session() as s:
            url = urls[i % len(urls)]
            s.get(url + "/-/", timeout=60)  # connected, registry and inventory map read
            start.wait(timeout=60)
            return s.post(url + "/compute/", data=body, headers=headers, timeout=120)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(create, range(n)))


@pytest.mark.postgres
def test_racing_creates_on_two_servers_never_overbook_a_host(tmp_path, pg_url):
    store = make_store(pg_url)
    try:
        store.upgrade()
        with store.begin() as tx:
            zone = rows.add_zone(tx.conn, "z1")
            cluster = rows.add_cluster(tx.conn, "c1", zone)
            for name, (cores, memory_mb) in HOSTS.items():
                rows.add_host(tx.conn, name, cluster, cores=cores, memory_mb=memory_mb)
        servers = [
            LiveServer(tmp_path, database_url=pg_url, threads=8, job_wait=0, default_zone="z1")
            for _ in range(2)
        ]
        try:
            answers = race([s.url for s in servers], CREATES)
        finally:
            for s in servers:
                s.stop()
        statuses = sorted(r.status_code for r in answers)
        assert statuses == [201] * ROOM + [503] * (CREATES - ROOM), [
            r.text for r in answers if r.status_code not in (201, 503)
        ]
        for r in answers:
            if r.status_code == 503:
                assert r.json()["error"]["error_code"] == "no_capacity"
        with store.begin() as tx:
            use = {
                r.id: (r.used_cores, r.used_memory_mb, r.vms, r.cores, r.memory_mb)
                for r in tx.conn.execute(sa.select(hosts))
            }
            reserved = {
                r.host_id: (r.cores, r.memory, r.vms)
                for r in tx.conn.execute(
                    sa.select(
                        entities.c.host_id,
                        sa.func.sum(entities.c.reserved_cores).label("cores"),
                        sa.func.sum(entities.c.reserved_memory_mb).label("memory"),
                        sa.func.count().label("vms"),
                    )
                    .where(entities.c.host_id.is_not(None))
                    .group_by(entities.c.host_id)
                )
            }
            stored = tx.conn.execute(sa.select(sa.func.count()).select_from(entities)).scalar()
        assert stored == ROOM
        for host_id, (cores, memory, vms, capacity, memory_mb) in use.items():
            assert (cores, memory, vms) == reserved.get(host_id, (0, 0, 0))
            assert cores <= capacity and memory <= memory_mb
    finally:
        store.close()
