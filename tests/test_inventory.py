"""The inventory below the fronts: the one-cluster shorthand (made, idempotent, re-synced with
the settings, out of the way once an administrator makes clusters, safe when two servers start
at once), unplaced entities put in the default zone, the secret key (a key file made once,
owner-only; a wrong key refused with a clear message), the simulator's declared hosts. On SQLite
and PostgreSQL."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from backends.simulator.backend import SimulatorBackend
from backends.simulator.hosts import HostsOptionError, parse_hosts
from occi.context import RequestContext
from occi.errors import Forbidden
from occi.inventory import shorthand
from occi.inventory.secrets import Cipher, SecretKeyError, key_path
from occi.inventory.service import InventoryService
from occi.settings import Settings, SettingsError
from occi.store import make_store
from occi.store.inventory_sql import clusters, hosts, zones
from occi.store.sql import entities

SYSTEM = RequestContext.system()
KEY = "a shared key for the tests"


def settings_for(url: str, **extra: str) -> Settings:
    return Settings.from_mapping({"database_url": url, "secret_key": KEY, **extra})


@pytest.fixture
def store(db_url):
    s = make_store(db_url)
    s.upgrade()
    yield s
    s.close()


def insert_entity(store, entity_id: str, **placement) -> None:
    """A compute row as the store keeps it, with `placement` columns (host_id, target...)."""
    with store.begin() as tx:
        tx.conn.execute(
            entities.insert().values(
                id=entity_id,
                kind="http://schemas.ogf.org/occi/infrastructure#compute",
                location=f"/compute/{entity_id}",
                attributes="{}",
                mixins="[]",
                version=1,
                created_at=sa.func.now(),
                updated_at=sa.func.now(),
                **placement,
            )
        )


def rows(store, table: sa.Table, *columns: str) -> list[tuple]:
    with store.begin(readonly=True) as tx:
        stmt = sa.select(*(table.c[c] for c in columns)).order_by(table.c.name)
        return [tuple(r) for r in tx.conn.execute(stmt).all()]


def test_the_shorthand_makes_one_zone_one_cluster_and_the_simulated_hosts(store, db_url):
    settings = settings_for(db_url, simulator_hosts="a:16:64,b:8:32")
    assert shorthand.ensure(store, settings) is True
    assert rows(store, zones, "name") == [("default",)]
    assert rows(store, clusters, "name", "backend", "origin", "cpu_overcommit") == [
        ("default", "simulator", "settings", 16.0)
    ]
    assert rows(store, hosts, "name", "uri", "cores", "memory_mb", "admin_state") == [
        ("a", "a", 16, 64 * 1024, "enabled"),
        ("b", "b", 8, 32 * 1024, "enabled"),
    ]
    before = rows(store, hosts, "id", "name", "cores")
    assert shorthand.ensure(store, settings) is True  # idempotent: the same rows
    assert rows(store, hosts, "id", "name", "cores") == before
    assert len(rows(store, clusters, "name")) == 1


def test_the_default_hosts_are_generous(store, db_url):
    shorthand.ensure(store, settings_for(db_url))
    declared = rows(store, hosts, "name", "cores", "memory_mb")
    assert [name for name, *_ in declared] == ["sim1", "sim2", "sim3"]
    assert sum(c for _, c, _ in declared) * 16 >= 10_000  # vCPUs with the default overcommit


def test_the_shorthand_follows_the_settings_at_each_start(store, db_url):
    shorthand.ensure(store, settings_for(db_url, simulator_hosts="a:16:64,b:8:32"))
    kept = dict(rows(store, hosts, "name", "id"))
    insert_entity(store, "vm1", host_id=kept["b"])  # b holds a VM, c nothing
    changed = settings_for(
        db_url,
        simulator_hosts="a:32:128,c:4:16",
        shorthand_cpu_overcommit="2",
        simulator_delay="0.5",
    )
    shorthand.ensure(store, changed)
    assert rows(store, hosts, "name", "cores", "admin_state") == [
        ("a", 32, "enabled"),
        ("b", 8, "disabled"),  # no longer declared, but it holds a VM
        ("c", 4, "enabled"),
    ]
    assert dict(rows(store, hosts, "name", "id"))["a"] == kept["a"]
    assert rows(store, clusters, "cpu_overcommit") == [(2.0,)]
    shown = InventoryService(store, changed).show_cluster(SYSTEM, "default")
    assert shown["settings"]["simulator_delay"] == "0.5"
    assert shown["settings"]["simulator_hosts"] == "a:32:128,c:4:16"


def test_an_administrators_cluster_ends_the_shorthand(store, db_url):
    settings = settings_for(db_url)
    shorthand.ensure(store, settings)
    inventory = InventoryService(store, settings)
    inventory.create_zone(SYSTEM, {"name": "z1"})
    inventory.create_cluster(SYSTEM, {"name": "c1", "zone": "z1", "backend": "simulator"})
    before = rows(store, hosts, "name", "cores")
    assert shorthand.ensure(store, settings_for(db_url, simulator_hosts="x:1:1")) is False
    assert rows(store, hosts, "name", "cores") == before


def test_entities_from_before_the_inventory_go_to_the_default_zone(store, db_url):
    insert_entity(store, "old")
    insert_entity(store, "oldlink", target="/network/n")
    shorthand.ensure(store, settings_for(db_url))
    with store.begin(readonly=True) as tx:
        placed = {
            r.id: (r.zone_id, r.cluster_id, r.host_id, r.reserved_cores)
            for r in tx.conn.execute(sa.select(entities)).all()
        }
        zone = tx.conn.execute(sa.select(zones.c.id)).scalar_one()
        cluster = tx.conn.execute(sa.select(clusters.c.id)).scalar_one()
    assert placed == {"old": (zone, cluster, None, None), "oldlink": (None, None, None, None)}


@pytest.mark.postgres
def test_two_servers_starting_at_once_make_one_inventory(pg_url):
    stores = [make_store(pg_url) for _ in range(4)]
    stores[0].upgrade()
    settings = settings_for(pg_url)
    barrier = threading.Barrier(len(stores))
    failures: list[BaseException] = []

    def start(store) -> None:
        barrier.wait()
        try:
            shorthand.ensure(store, settings)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert rows(stores[0], zones, "name") == [("default",)]
    assert rows(stores[0], clusters, "name") == [("default",)]
    assert [n for (n,) in rows(stores[0], hosts, "name")] == ["sim1", "sim2", "sim3"]
    for s in stores:
        s.close()


def test_a_wrong_secret_key_is_a_clear_error(store, db_url):
    shorthand.ensure(store, settings_for(db_url))
    other = Settings.from_mapping({"database_url": db_url, "secret_key": "another key, also long"})
    with pytest.raises(SecretKeyError) as refused:
        InventoryService(store, other).show_cluster(SYSTEM, "default")
    assert "cluster default cannot be decrypted" in refused.value.message
    assert "OCCI_SECRET_KEY" in refused.value.message
    # the shorthand holds only what each server's settings say: made again under its key
    assert shorthand.ensure(store, other) is True
    assert InventoryService(store, other).show_cluster(SYSTEM, "default")["name"] == "default"
    with pytest.raises(SecretKeyError):
        InventoryService(store, settings_for(db_url)).show_cluster(SYSTEM, "default")


def test_the_key_file_is_made_once_for_its_owner_only(tmp_path):
    settings = Settings.from_mapping({"database_url": f"sqlite:///{tmp_path}/o.db"})
    path = key_path(settings)
    assert path == tmp_path / "occi-secret-key" and not path.exists()
    token = Cipher.from_settings(settings).encrypt({"libvirt_password": "x"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_text()
    again = Cipher.from_settings(settings)  # a second start reads the same key
    assert path.read_text() == first
    assert again.decrypt(token, "cluster c") == {"libvirt_password": "x"}
    elsewhere = Settings.from_mapping(
        {"database_url": "sqlite://", "secret_key_file": str(tmp_path / "k")}
    )
    assert key_path(elsewhere) == Path(tmp_path / "k")
    with pytest.raises(SecretKeyError, match="too short"):
        Cipher("short", "the test")


def test_members_may_not_administer(store, db_url):
    inventory = InventoryService(store, settings_for(db_url))
    member = RequestContext("alice", "p", frozenset({"member"}))
    for call in (
        lambda: inventory.list_hosts(member),
        lambda: inventory.create_zone(member, {"name": "z"}),
        lambda: inventory.host_action(member, "sim1", "disable"),
    ):
        with pytest.raises(Forbidden):
            call()


def test_simulator_hosts_are_read_with_bounds():
    assert [(h.name, h.cores, h.memory_mb) for h in parse_hosts("x:2:4")] == [("x", 2, 4096)]
    for bad in ("x:2", "x:0:4", "x:2:4,x:2:4", "bad name:1:1"):
        with pytest.raises(HostsOptionError):
            parse_hosts(bad)
    backend = SimulatorBackend({"simulator_hosts": "x:2:4"})
    found = backend.host_capacity("x")
    assert found is not None and (found.cores, found.memory_mb) == (2, 4096)
    assert backend.host_capacity("y") is None


def test_shorthand_overcommit_settings_are_bounded():
    for value in ("0", "65"):
        with pytest.raises(SettingsError):
            Settings.from_mapping({"shorthand_cpu_overcommit": value})
