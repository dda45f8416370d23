"""The SQL store against SQLite and a real PostgreSQL cluster: what the service relies on."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from occi.errors import Conflict
from occi.identity import audit
from occi.model import INFRA, AttributeDef, Link, Mixin, Resource
from occi.store import Query, make_store
from occi.store.base import Job
from occi.store.sql import SqlStore, alembic_config, metadata, normalise_url, value_key

COMPUTE = INFRA + "compute"
STORAGE = INFRA + "storage"
NETWORK = INFRA + "network"
STORAGELINK = INFRA + "storagelink"
NETIF = INFRA + "networkinterface"
OS_TPL = "http://example.com/occi/os_tpl#debian12"
SMALL = "http://example.com/occi/resource_tpl#small"
USER_MIXIN = "http://example.com/my#tagged"


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    s = make_store(db_url)
    assert isinstance(s, SqlStore)
    s.upgrade()
    try:
        yield s
    finally:
        s.close()


def compute(cid: str, **attributes) -> Resource:
    return Resource(
        kind=COMPUTE,
        id=cid,
        title=f"vm {cid}",
        summary="a machine",
        mixins=[OS_TPL],
        attributes=attributes,
        location=f"/compute/{cid}",
    )


def storage(sid: str) -> Resource:
    return Resource(
        kind=STORAGE, id=sid, location=f"/storage/{sid}", attributes={"occi.storage.size": 1.0}
    )


def link(lid: str, source: str, target: str, kind: str = STORAGELINK) -> Link:
    return Link(
        kind=kind,
        id=lid,
        location=f"/link/{lid}",
        source=source,
        target=target,
        source_kind=COMPUTE,
        target_kind=STORAGE,
        attributes={"occi.storagelink.deviceid": "vdb"},
    )


def ids(entities) -> list[str]:
    return [e.id for e in entities]


# -- roundtrips --------------------------------------------------------------------------------


def test_resource_roundtrip_keeps_types_and_mixins(store):
    attributes = {
        "occi.compute.cores": 2,
        "occi.compute.memory": 4.0,
        "occi.compute.speed": 2.5,
        "occi.compute.hostname": "web1",
        "flag": True,
        "none": None,
        "tags": ["a", 1, 2.5],
        "meta": {"k": {"n": 1}},
    }
    r = compute("c1", **attributes)
    r.mixins = [OS_TPL, SMALL]
    with store.begin() as tx:
        tx.insert(r)
    with store.begin() as tx:
        got = tx.get("c1")
    assert isinstance(got, Resource)
    assert got.kind == COMPUTE
    assert got.title == "vm c1" and got.summary == "a machine"
    assert got.location == "/compute/c1"
    assert got.mixins == [OS_TPL, SMALL]
    assert got.attributes == attributes
    assert type(got.attributes["occi.compute.cores"]) is int
    assert type(got.attributes["occi.compute.memory"]) is float
    assert got.attributes["flag"] is True
    assert got.links == []


def test_link_roundtrip_and_resource_shows_outgoing_links(store):
    with store.begin() as tx:
        tx.insert(compute("c1"))
        tx.insert(storage("s1"))
        tx.insert(link("l1", "/compute/c1", "/storage/s1"))
    with store.begin() as tx:
        lk = tx.get("l1")
        c1 = tx.get("c1")
        s1 = tx.get("s1")
    assert isinstance(lk, Link)
    assert (lk.source, lk.target) == ("/compute/c1", "/storage/s1")
    assert (lk.source_kind, lk.target_kind) == (COMPUTE, STORAGE)
    assert lk.location == "/link/l1"
    assert lk.attributes == {"occi.storagelink.deviceid": "vdb"}
    assert [x.id for x in c1.links] == ["l1"]
    assert c1.links[0].target == "/storage/s1"
    assert s1.links == []  # only outgoing links


def test_get_missing_is_none(store):
    with store.begin() as tx:
        assert tx.get("nope") is None
        assert tx.get("nope", for_update=True) is None


def test_get_for_update(store):
    with store.begin() as tx:
        tx.insert(compute("c1"))
    with store.begin() as tx:
        got = tx.get("c1", for_update=True)
        assert got.id == "c1"


def test_duplicate_id_is_conflict_and_changes_nothing(store):
    with store.begin() as tx:
        tx.insert(compute("c1", a=1))
    with store.begin() as tx:
        dup = compute("c1", a=2)
        dup.location = "/compute/other"
        with pytest.raises(Conflict, match="c1"):
            tx.insert(dup)
        # the transaction stays usable after the conflict
        tx.insert(compute("c2"))
    with store.begin() as tx:
        assert tx.get("c1").attributes == {"a": 1}
        assert tx.get("c2") is not None
        assert tx.count(Query()) == 2
        assert tx.query(Query(attributes={"a": 2})) == []


def test_duplicate_location_is_conflict(store):
    with store.begin() as tx:
        tx.insert(compute("c1"))
    with pytest.raises(Conflict, match="/compute/c1"):
        with store.begin() as tx:
            other = compute("c2")
            other.location = "/compute/c1"
            tx.insert(other)
    with store.begin() as tx:
        assert tx.get("c2") is None


def test_update_replaces_fields_and_bumps_version(store):
    with store.begin() as tx:
        tx.insert(compute("c1", cores=1))
        tx.insert(storage("s1"))
        tx.insert(storage("s2"))
        tx.insert(link("l1", "/compute/c1", "/storage/s1"))

    def version(eid):
        with store.engine.connect() as conn:
            return conn.execute(
                sa.text("SELECT version FROM entities WHERE id = :i"), {"i": eid}
            ).scalar_one()

    assert version("c1") == 1
    with store.begin() as tx:
        r = tx.get("c1")
        r.title, r.summary = "renamed", "new summary"
        r.mixins = [SMALL]
        r.attributes = {"cores": 4, "memory": 2.0}
        tx.update(r)
    assert version("c1") == 2
    with store.begin() as tx:
        got = tx.get("c1")
        assert (got.title, got.summary, got.mixins) == ("renamed", "new summary", [SMALL])
        assert got.attributes == {"cores": 4, "memory": 2.0}
        assert [x.id for x in got.links] == ["l1"]  # links left as they were
        # the SQL indexes follow: old mixin and attribute values no longer match
        assert ids(tx.query(Query(mixin=OS_TPL))) == []
        assert ids(tx.query(Query(mixin=SMALL))) == ["c1"]
        assert ids(tx.query(Query(attributes={"cores": 1}))) == []
        assert ids(tx.query(Query(attributes={"cores": 4}))) == ["c1"]
    with store.begin() as tx:
        lk = tx.get("l1")
        lk.target, lk.target_kind = "/storage/s2", STORAGE
        tx.update(lk)
    with store.begin() as tx:
        assert tx.get("l1").target == "/storage/s2"
        assert ids(tx.links_touching(["s2"])) == ["l1"]
        assert ids(tx.links_touching(["s1"])) == []
    assert version("l1") == 2


# -- queries -----------------------------------------------------------------------------------


@pytest.fixture
def populated(store):
    with store.begin() as tx:
        for i in range(10):
            r = compute(f"c{i}", **{"occi.compute.cores": 2 if i % 2 else 1, "name": f"n{i}"})
            r.mixins = [OS_TPL] + ([SMALL] if i < 3 else [])
            tx.insert(r)
        for i in range(3):
            tx.insert(storage(f"s{i}"))
        tx.insert(link("l0", "/compute/c0", "/storage/s0"))
        tx.insert(link("l1", "/compute/c0", "/storage/s1"))
        tx.insert(link("l2", "/compute/c5", "/storage/s1"))
    return store


def test_query_by_kinds_in_creation_order(populated):
    with populated.begin() as tx:
        assert ids(tx.query(Query(kinds=[STORAGE]))) == ["s0", "s1", "s2"]
        assert ids(tx.query(Query(kinds=[STORAGELINK]))) == ["l0", "l1", "l2"]
        both = tx.query(Query(kinds=[STORAGE, STORAGELINK]))
        assert ids(both) == ["s0", "s1", "s2", "l0", "l1", "l2"]
        assert len(tx.query(Query())) == 16
        assert tx.query(Query(kinds=[])) == []


def test_query_includes_links_of_resources(populated):
    with populated.begin() as tx:
        page = {e.id: e for e in tx.query(Query(kinds=[COMPUTE]))}
    assert ids(page["c0"].links) == ["l0", "l1"]
    assert ids(page["c5"].links) == ["l2"]
    assert page["c1"].links == []


def test_query_by_mixin(populated):
    with populated.begin() as tx:
        assert ids(tx.query(Query(mixin=SMALL))) == ["c0", "c1", "c2"]
        assert ids(tx.query(Query(kinds=[STORAGE], mixin=OS_TPL))) == []
        assert tx.count(Query(mixin=OS_TPL)) == 10


def test_query_by_attribute_compares_json_values(populated):
    with populated.begin() as tx:
        odd = ["c1", "c3", "c5", "c7", "c9"]
        assert ids(tx.query(Query(attributes={"occi.compute.cores": 2}))) == odd
        assert ids(tx.query(Query(attributes={"occi.compute.cores": 2.0}))) == odd
        assert tx.query(Query(attributes={"occi.compute.cores": "2"})) == []
        assert ids(tx.query(Query(attributes={"occi.compute.cores": 2, "name": "n3"}))) == ["c3"]
        assert ids(tx.query(Query(attributes={"occi.storage.size": 1}))) == ["s0", "s1", "s2"]
        # the first-class core attributes filter too
        assert ids(tx.query(Query(attributes={"occi.core.title": "vm c4"}))) == ["c4"]
        assert ids(tx.query(Query(attributes={"occi.core.target": "/storage/s1"}))) == ["l1", "l2"]


def test_value_key_canonical():
    assert value_key(2) == value_key(2.0) == "2"
    assert value_key(2.5) != value_key(2)
    assert len({value_key("2"), value_key(2), value_key(True), value_key(None), value_key(1)}) == 5
    assert value_key({"b": 1.0, "a": [2.0]}) == value_key({"a": [2], "b": 1})
    long = "x" * 10_000
    assert value_key(long) == value_key(long) and len(value_key(long)) < 100
    assert value_key(long) != value_key(long + "y")


def test_query_long_attribute_value(store):
    data = "#cloud-config\n" + "x" * 20_000
    with store.begin() as tx:
        tx.insert(compute("c1", user_data=data))
        tx.insert(compute("c2", user_data=data + "!"))
    with store.begin() as tx:
        assert ids(tx.query(Query(attributes={"user_data": data}))) == ["c1"]
        assert tx.get("c1").attributes["user_data"] == data


def test_query_by_source(populated):
    with populated.begin() as tx:
        assert ids(tx.query(Query(source="c0"))) == ["l0", "l1"]
        assert ids(tx.query(Query(source="c5", kinds=[STORAGELINK]))) == ["l2"]
        assert tx.query(Query(source="c1")) == []


def test_pagination_is_stable(populated):
    with populated.begin() as tx:
        everything = ids(tx.query(Query(kinds=[COMPUTE])))
        pages = [ids(tx.query(Query(kinds=[COMPUTE], offset=o, limit=4))) for o in (0, 4, 8)]
        assert everything == [f"c{i}" for i in range(10)]
        assert pages == [everything[0:4], everything[4:8], everything[8:]]
        assert tx.query(Query(kinds=[COMPUTE], offset=20, limit=4)) == []
        assert tx.count(Query(kinds=[COMPUTE], offset=8, limit=1)) == 10
    assert ids(populated.iter_all(Query(kinds=[COMPUTE]), batch=3)) == everything


def test_count(populated):
    with populated.begin() as tx:
        assert tx.count(Query()) == 16
        assert tx.count(Query(kinds=[COMPUTE], mixin=SMALL)) == 3
        assert tx.count(Query(attributes={"occi.compute.cores": 1.0})) == 5
        assert tx.count(Query(source="c0")) == 2


# -- deletion and links --------------------------------------------------------------------------


def test_delete_cascades_links_in_both_directions(populated):
    with populated.begin() as tx:
        assert ids(tx.links_touching(["s1"])) == ["l1", "l2"]
        assert ids(tx.links_touching(["c0"])) == ["l0", "l1"]
        assert ids(tx.links_touching(["c0", "s1"])) == ["l0", "l1", "l2"]
        # deleting a target (storage s1) removes links pointing at it
        assert sorted(tx.delete(["s1"])) == ["l1", "l2"]
    with populated.begin() as tx:
        assert tx.get("s1") is None and tx.get("l1") is None and tx.get("l2") is None
        assert ids(tx.get("c0").links) == ["l0"]
        # deleting a source (compute c0) removes its outgoing links
        assert tx.delete(["c0"]) == ["l0"]
        assert tx.get("l0") is None
        assert tx.count(Query(kinds=[STORAGELINK])) == 0
        # index rows went with the entities
        assert tx.count(Query(mixin=SMALL)) == 2
        # deleting a link explicitly reports no extra links; unknown ids are ignored
        assert tx.delete(["nope"]) == []
        assert tx.delete([]) == []
    with populated.engine.connect() as conn:
        orphans = conn.execute(
            sa.text(
                "SELECT count(*) FROM entity_mixins WHERE entity_seq NOT IN (SELECT seq FROM entities)"
            )
        ).scalar_one()
        orphans += conn.execute(
            sa.text(
                "SELECT count(*) FROM entity_attributes WHERE entity_seq NOT IN (SELECT seq FROM entities)"
            )
        ).scalar_one()
    assert orphans == 0


def test_delete_a_link_alone(populated):
    with populated.begin() as tx:
        assert tx.delete(["l1"]) == []
        assert ids(tx.get("c0").links) == ["l0"]
        assert tx.get("s1") is not None


def test_link_source_must_exist(store):
    from occi.errors import BadRequest

    with store.begin() as tx:
        tx.insert(storage("s1"))
        with pytest.raises(BadRequest):
            tx.insert(link("l1", "/compute/missing", "/storage/s1"))


# -- mixins ------------------------------------------------------------------------------------


def test_associate_and_dissociate_keep_both_places_in_sync(populated):
    with populated.begin() as tx:
        tx.associate(USER_MIXIN, ["c1", "c2", "s0", "missing"])
        tx.associate(USER_MIXIN, ["c1"])  # no-op where present
    with populated.begin() as tx:
        assert ids(tx.query(Query(mixin=USER_MIXIN))) == ["c1", "c2", "s0"]
        assert tx.get("c1").mixins == [OS_TPL, SMALL, USER_MIXIN]
        assert tx.get("s0").mixins == [USER_MIXIN]
        tx.dissociate(USER_MIXIN, ["c2"])
    with populated.begin() as tx:
        assert ids(tx.query(Query(mixin=USER_MIXIN))) == ["c1", "s0"]
        assert tx.get("c2").mixins == [OS_TPL, SMALL]
        tx.dissociate(USER_MIXIN)
    with populated.begin() as tx:
        assert tx.query(Query(mixin=USER_MIXIN)) == []
        assert tx.get("c1").mixins == [OS_TPL, SMALL]
        assert tx.get("s0").mixins == []
        # other mixins untouched
        assert ids(tx.query(Query(mixin=SMALL))) == ["c0", "c1", "c2"]


def test_user_mixins_add_list_delete(populated):
    m = Mixin(
        scheme="http://example.com/my#",
        term="tagged",
        title="Tagged things",
        attributes={
            "my.tag": AttributeDef("my.tag", required=True, description="a tag", pattern="[a-z]+"),
            "my.level": AttributeDef(
                "my.level", type="integer", mutable=False, default=3, minimum=0, maximum=9
            ),
            "my.colour": AttributeDef("my.colour", type="enum", enum=("red", "blue")),
        },
        depends=(OS_TPL,),
        applies=(COMPUTE,),
        location="/tagged/",
        user_defined=True,
    )
    with populated.begin() as tx:
        assert tx.user_mixins() == []
        tx.add_user_mixin(m)
        tx.associate(m.id, ["c3", "c4"])
    with populated.begin() as tx:
        [got] = tx.user_mixins()
        assert got == m and got.user_defined
        assert (got.title, got.location, got.depends, got.applies) == (
            "Tagged things",
            "/tagged/",
            (OS_TPL,),
            (COMPUTE,),
        )
        assert dict(got.attributes) == dict(m.attributes)
        with pytest.raises(Conflict, match="defined already"):
            tx.add_user_mixin(m)
        clash = Mixin(scheme="http://other#", term="x", location="/tagged/", user_defined=True)
        with pytest.raises(Conflict, match="/tagged/"):
            tx.add_user_mixin(clash)
        assert len(tx.user_mixins()) == 1
    with populated.begin() as tx:
        assert tx.delete_user_mixin("default", m.id) is True
        assert tx.delete_user_mixin("default", m.id) is False
    with populated.begin() as tx:
        assert tx.user_mixins() == []
        assert tx.query(Query(mixin=m.id)) == []
        assert m.id not in tx.get("c3").mixins


# -- transactions ------------------------------------------------------------------------------


def test_rollback_on_exception_leaves_nothing(store):
    with pytest.raises(RuntimeError):
        with store.begin() as tx:
            tx.insert(compute("c1"))
            tx.insert(storage("s1"))
            tx.insert(link("l1", "/compute/c1", "/storage/s1"))
            tx.associate(SMALL, ["c1"])
            tx.add_user_mixin(
                Mixin(scheme="http://x#", term="y", location="/y/", user_defined=True)
            )
            raise RuntimeError("boom")
    with store.begin() as tx:
        assert tx.count(Query()) == 0
        assert tx.user_mixins() == []
    with store.engine.connect() as conn:
        for table in ("entities", "entity_mixins", "entity_attributes", "user_mixins"):
            assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one() == 0


def test_statement_count_is_constant_whatever_the_page_size(store):
    with store.begin() as tx:
        tx.insert(storage("target"))
        for i in range(100):
            r = compute(f"c{i:03}", cores=i, ram=2.0)
            r.mixins = [OS_TPL, SMALL, USER_MIXIN]
            tx.insert(r)
            for j in range(3):
                tx.insert(link(f"l{i:03}-{j}", f"/compute/c{i:03}", "/storage/target"))

    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    counts = {}
    event = sa.event
    event.listen(store.engine, "before_cursor_execute", count)
    try:
        for size in (1, 10, 100):
            statements.clear()
            with store.begin() as tx:
                page = tx.query(Query(kinds=[COMPUTE], mixin=SMALL, limit=size))
            assert len(page) == size
            assert all(len(e.links) == 3 and len(e.mixins) == 3 for e in page)
            counts[size] = len(statements)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert counts[1] == counts[10] == counts[100], counts
    assert counts[1] <= 3, statements  # BEGIN (SQLite), the page, the links


def test_bulk_statements_are_constant_too(store):
    with store.begin() as tx:
        for i in range(50):
            tx.insert(compute(f"c{i}"))
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        counts = []
        for n in (1, 50):
            chosen = [f"c{i}" for i in range(n)]
            statements.clear()
            with store.begin() as tx:
                tx.associate(USER_MIXIN, chosen)
                tx.dissociate(USER_MIXIN, chosen)
                tx.links_touching(chosen)
                tx.delete(chosen)
            counts.append(len(statements))
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)
    assert counts[0] == counts[1], counts


# -- schema and processes ----------------------------------------------------------------------


def test_upgrade_twice_is_harmless_and_schema_matches_metadata(store):
    with store.begin() as tx:
        tx.insert(compute("c1"))
    store.upgrade()
    store.upgrade()
    with store.begin() as tx:
        assert tx.get("c1") is not None
    with store.engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
            == ScriptDirectory.from_config(alembic_config()).get_current_head()
        )
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def _upgrade_in_child(url: str) -> None:
    s = make_store(url)
    s.upgrade()
    with s.begin() as tx:
        tx.count(Query())
    s.close()


def test_concurrent_upgrades_from_several_processes(db_url):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_upgrade_in_child, args=(db_url,)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    s = make_store(db_url)
    try:
        with s.begin() as tx:
            assert tx.count(Query()) == 0
    finally:
        s.close()


def _write_in_child(url: str, worker: int) -> None:
    s = make_store(url)
    for i in range(30):
        with s.begin() as tx:
            tx.insert(compute(f"w{worker}-{i}"))
            tx.associate(USER_MIXIN, [f"w{worker}-{i}", "shared"])
        with s.begin(readonly=True) as tx:
            tx.query(Query(mixin=USER_MIXIN, limit=10))
    s.close()


def test_concurrent_writers_in_several_processes(db_url):
    s = make_store(db_url)
    s.upgrade()
    with s.begin() as tx:
        tx.insert(compute("shared"))
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_in_child, args=(db_url, w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    try:
        assert [p.exitcode for p in procs] == [0, 0, 0]
        with s.begin() as tx:
            assert tx.count(Query(mixin=USER_MIXIN)) == 91
            assert tx.get("shared").mixins == [OS_TPL, USER_MIXIN]
    finally:
        s.close()


def test_two_stores_on_one_database_see_each_others_writes(db_url):
    a, b = make_store(db_url), make_store(db_url)
    try:
        a.upgrade()
        b.upgrade()
        with a.begin() as tx:
            tx.insert(compute("from-a"))
        with b.begin() as tx:
            assert tx.get("from-a") is not None
            tx.insert(compute("from-b"))
            tx.associate(SMALL, ["from-a"])
        with a.begin() as tx:
            assert ids(tx.query(Query(kinds=[COMPUTE]))) == ["from-a", "from-b"]
            assert tx.get("from-a").mixins == [OS_TPL, SMALL]
        with pytest.raises(Conflict):
            with b.begin() as tx:
                tx.insert(compute("from-a"))
    finally:
        a.close()
        b.close()


def test_ping(store):
    assert store.ping() is True


def test_ping_false_when_unreachable():
    s = make_store("postgresql://nobody@127.0.0.1:1/none")
    try:
        assert s.ping() is False
    finally:
        s.close()
    s = make_store("sqlite:////nonexistent-dir/x/occi.db")
    try:
        assert s.ping() is False
    finally:
        s.close()


def test_url_normalisation():
    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("sqlite:///x.db").drivername == "sqlite"


def test_sqlite_pragmas(sqlite_url):
    s = make_store(sqlite_url)
    try:
        with s.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        s.close()


@pytest.mark.postgres
def test_dropped_connections_fail_one_read_and_the_next_reconnects(pg_url):
    """A database restart kills pooled connections: the one-entity read (run straight on the
    driver) reports the database unavailable (the API's 503), never a driver error, and drops
    the dead connections, so the next read works without a restart of the server."""
    from occi.errors import ServiceUnavailable

    s = make_store(pg_url)
    s.upgrade()
    try:
        with s.begin() as tx:
            tx.insert(compute("c1"))
        with s.begin(readonly=True, single=True) as tx:
            assert tx.get("c1").title == "vm c1"
        with s.engine.connect() as admin:
            admin.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        with pytest.raises(ServiceUnavailable), s.begin(readonly=True, single=True) as tx:
            tx.get("c1")
        with s.begin(readonly=True, single=True) as tx:
            assert tx.get("c1").title == "vm c1"
            assert tx.get("missing") is None
    finally:
        s.close()


@pytest.mark.postgres
def test_a_page_of_a_common_kind_reads_only_its_own_rows(pg_url):
    """A page of computes stored after many storages is read through the (kind, seq) index,
    not by walking every earlier row in seq order and filtering out the other kinds: its cost
    does not grow with what else is stored (a plan, from EXPLAIN ANALYZE, not a timing)."""
    s = make_store(pg_url)
    s.upgrade()
    statements: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    try:
        # the shape of a grown cloud: 10,000 storages, then 90,000 computes (bulk, in SQL)
        with s.engine.begin() as conn:
            for kind, prefix, first, n in (
                (STORAGE, "s", 0, 10_000),
                (COMPUTE, "c", 10_000, 90_000),
            ):
                conn.execute(
                    sa.text(
                        "INSERT INTO entities (id, kind, location, attributes, mixins, version, "
                        "created_at, updated_at) SELECT :p || lpad(i::text, 6, '0'), :k, "
                        "'/x/' || :p || i, '{}', '[]', 1, now(), now() "
                        "FROM generate_series(CAST(:a AS integer), CAST(:b AS integer)) AS i"
                    ),
                    {"p": prefix, "k": kind, "a": first, "b": first + n - 1},
                )
            conn.execute(sa.text("ANALYZE entities"))
        sa.event.listen(s.engine, "before_cursor_execute", capture)
        with s.begin(readonly=True) as tx:
            page = tx.query(Query(kinds=[COMPUTE], offset=0, limit=20))
        sa.event.remove(s.engine, "before_cursor_execute", capture)
        assert [e.id for e in page] == [f"c{i:06d}" for i in range(10_000, 10_020)]
        statement, params = next(st for st in statements if "LIMIT" in st[0])
        with s.engine.connect() as conn:
            cursor = conn.connection.dbapi_connection.cursor()
            cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + statement, params)
            plan = "\n".join(r[0] for r in cursor.fetchall())
        # the page's rows straight off the index, in order: no rows of other kinds filtered
        # out, no sort of every compute to find the first twenty
        assert "Index Scan using ix_entities_kind_seq" in plan, plan
        assert "Rows Removed by Filter" not in plan and "Sort" not in plan, plan
    finally:
        s.close()


# ---------------------------------------------------------------------------- a job's record
def _running_job(store: SqlStore, entity_id: str, owner: str = "me") -> Job:
    with store.begin() as tx:
        job_id = tx.jobs.enqueue(entity_id, "action", {}, owner=owner, lease=30.0)
    return Job(job_id, entity_id, "action", {}, "running", 1, 5, owner)


def _event(operation: str) -> dict:
    return audit.event_values(operation=operation, status=200, request_id="r1", entity="/c/")


def test_record_and_finish_stores_the_entity_the_job_and_its_event_at_once(store):
    with store.begin() as tx:
        tx.insert(compute("c1", **{"occi.compute.state": "inactive"}))
        seen = tx.get("c1")
    job = _running_job(store, "c1")
    job.event = _event("action start")
    with store.begin() as tx:
        linked, finished = tx.record_and_finish(
            seen, {"occi.compute.state": "active"}, job, {"ok": 1}, platform_ref="vm-1"
        )
    assert (linked, finished) == (False, True)
    assert seen.version == 2 and seen.attributes["occi.compute.state"] == "active"
    with store.begin(readonly=True) as tx:
        stored = tx.get("c1")
        (done,) = tx.jobs.statuses([job.id]).values()
        found = tx.query(Query(attributes={"occi.compute.state": "active"}))
    assert stored.attributes["occi.compute.state"] == "active" and stored.version == 2
    assert stored.placement is not None and stored.placement.platform_ref == "vm-1"
    assert [e.id for e in found] == ["c1"]  # the index row follows
    assert (done.status, done.result) == ("done", {"ok": 1})
    (event,) = audit.events(store)
    assert (event.operation, event.request_id, event.status) == ("action start", "r1", 200)


def test_record_and_finish_changes_nothing_when_the_entity_moved_on(store):
    with store.begin() as tx:
        tx.insert(compute("c1", **{"occi.compute.state": "inactive"}))
        seen = tx.get("c1")
    with store.begin() as tx:  # another request changes it meanwhile
        other = tx.get("c1", for_update=True)
        other.title = "renamed"
        tx.update(other)
    job = _running_job(store, "c1")
    job.event = _event("action start")
    with store.begin() as tx:
        answer = tx.record_and_finish(seen, {"occi.compute.state": "active"}, job, {})
    assert answer == (None, False)
    with store.begin(readonly=True) as tx:
        assert tx.get("c1").attributes["occi.compute.state"] == "inactive"
        assert tx.jobs.statuses([job.id])[job.id].status == "running"
    assert audit.events(store) == []


def test_record_and_finish_finishes_no_job_another_server_took(store):
    with store.begin() as tx:
        tx.insert(compute("c1", **{"occi.compute.state": "inactive"}))
        seen = tx.get("c1")
    job = _running_job(store, "c1", owner="another")
    job.owner = "me"  # this server's claim lapsed; another server holds the job now
    job.event = _event("action start")
    with store.begin() as tx:
        linked, finished = tx.record_and_finish(seen, {"occi.compute.state": "active"}, job, {})
    assert linked is not None and not finished  # the caller rolls back (occi.jobs.execution)
    with store.begin(readonly=True) as tx:
        assert tx.jobs.statuses([job.id])[job.id].status == "running"
    assert audit.events(store) == []


def _alone(store: SqlStore, entity, changes: dict, job: Job) -> bool:
    with store.begin(single=True) as tx:
        return tx.record_alone(entity, changes, job, {})


def test_record_alone_stores_all_or_nothing_in_one_autocommitted_statement(store):
    """PostgreSQL: everything at once for an entity no link touches; nothing at all when links
    touch it, when it moved on, or when the job is no longer this server's (the fencing: a
    stale server's outcome never reaches the entity). SQLite: never (False)."""
    postgres = store.dialect == "postgresql"
    with store.begin() as tx:
        tx.insert(compute("c1", **{"occi.compute.state": "inactive"}))
        tx.insert(storage("s1"))
        tx.insert(compute("c2", **{"occi.compute.state": "inactive"}))
        tx.insert(link("l1", "/compute/c2", "/storage/s1"))
        seen, linked = tx.get("c1"), tx.get("s1")
    active = {"occi.compute.state": "active"}

    taken = _running_job(store, "c1", owner="another")
    taken.owner = "me"  # lapsed: another server holds it now
    assert not _alone(store, seen, active, taken)
    assert not _alone(store, linked, {"occi.storage.state": "online"}, _running_job(store, "s1"))
    mine = _running_job(store, "c1")
    mine.event = _event("action start")
    with store.begin(readonly=True) as tx:
        assert tx.get("c1").attributes["occi.compute.state"] == "inactive"
        statuses = tx.jobs.statuses([taken.id, mine.id])
    assert {j.status for j in statuses.values()} == {"running"}
    assert audit.events(store) == []

    assert _alone(store, seen, active, mine) is postgres
    if not postgres:
        return
    assert seen.version == 2 and seen.attributes["occi.compute.state"] == "active"
    with store.begin(readonly=True) as tx:
        assert tx.get("c1").attributes["occi.compute.state"] == "active"
        assert tx.jobs.statuses([mine.id])[mine.id].status == "done"
        assert [e.id for e in tx.query(Query(attributes=active))] == ["c1"]
    (event,) = audit.events(store)
    assert event.operation == "action start"
    stale = _running_job(store, "c1")
    seen.version = 1  # an older copy of the entity than the stored one
    assert not _alone(store, seen, {"occi.compute.state": "inactive"}, stale)
    with store.begin(readonly=True) as tx:
        assert tx.get("c1").attributes["occi.compute.state"] == "active"
