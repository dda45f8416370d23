"""The read cache (occi.store.cache): one-entity reads answered from memory, and never kept
past a change, whoever makes it, on PostgreSQL (told by NOTIFY) and on SQLite (told by
`PRAGMA data_version`). Two SqlStore objects on one database stand for two server processes
(each has its own cache). Deadlines only bound a wait for a notification; nothing asserts a
duration."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from falcon import testing

from occi.store import make_store
from occi.store.sql import LISTENER_NAME, SqlStore
from tests.test_store import compute


def eventually(check: Callable[[], bool], what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within} s: {what}")
        time.sleep(0.02)


def title_of(store: SqlStore, entity_id: str, **kw) -> str | None:
    entity = store.get_one(entity_id, **kw)
    return None if entity is None else entity.title


def cached(store: SqlStore, entity_id: str) -> bool:
    """Read once so the rows are kept, then see that a second read is a hit."""
    cache = store.entity_cache
    assert cache is not None
    store.get_one(entity_id)
    hits = cache.hits
    store.get_one(entity_id)
    return cache.hits == hits + 1


@pytest.fixture
def stores(db_url: str) -> Iterator[tuple[SqlStore, SqlStore]]:
    yield from two_stores(db_url)


@pytest.fixture
def pg_stores(pg_url: str) -> Iterator[tuple[SqlStore, SqlStore]]:
    yield from two_stores(pg_url)


def two_stores(url: str) -> Iterator[tuple[SqlStore, SqlStore]]:
    a, b = make_store(url), make_store(url)
    assert isinstance(a, SqlStore) and isinstance(b, SqlStore)
    a.upgrade()
    with a.begin() as tx:
        tx.insert(compute("c1"))
    for s in (a, b):
        s.get_one("c1")  # starts the listener
        eventually(lambda s=s: s.entity_cache.enabled, "the cache switches on")
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def retitle(store: SqlStore, entity_id: str, title: str) -> None:
    with store.begin() as tx:
        entity = tx.get(entity_id, for_update=True)
        entity.title = title
        tx.update(entity)


def test_repeated_reads_are_served_from_memory_and_equal_the_database(stores):
    a, _ = stores
    assert cached(a, "c1")
    from_memory, from_db = a.get_one("c1"), a.get_one("c1", fresh=True)
    assert (from_memory.title, from_memory.version, from_memory.mixins) == (
        from_db.title,
        from_db.version,
        from_db.mixins,
    )
    # each read builds its own objects: a caller changing one cannot change the next
    from_memory.title = "scribbled"
    assert title_of(a, "c1") == "vm c1"
    assert a.get_one("missing") is None


def test_a_process_reads_its_own_write_at_once(stores):
    a, _ = stores
    assert cached(a, "c1")
    retitle(a, "c1", "renamed here")
    assert title_of(a, "c1") == "renamed here"  # no waiting: dropped at commit


def test_a_write_by_another_server_reaches_the_cache(stores):
    a, b = stores
    assert cached(a, "c1")
    retitle(b, "c1", "renamed by b")
    eventually(lambda: title_of(a, "c1") == "renamed by b", "A sees B's write")
    with b.begin() as tx:
        tx.delete(["c1"])
    eventually(lambda: a.get_one("c1") is None, "A sees B's delete")


def test_a_link_added_elsewhere_shows_on_its_source(stores):
    from tests.test_store import link, storage

    a, b = stores
    assert cached(a, "c1")
    with b.begin() as tx:
        tx.insert(storage("s1"))
        tx.insert(link("l1", "/compute/c1", "/storage/s1"))
    eventually(lambda: [ln.id for ln in a.get_one("c1").links] == ["l1"], "A sees the link")


def test_a_change_made_outside_the_server_reaches_the_cache(stores, db_url):
    """An administrator's UPDATE in psql (the table's trigger announces it too) or in the
    sqlite3 shell (SQLite counts every connection's commits)."""
    a, _ = stores
    assert cached(a, "c1")
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE entities SET title = 'by hand' WHERE id = 'c1'"))
    finally:
        engine.dispose()
    eventually(lambda: title_of(a, "c1") == "by hand", "A sees the manual UPDATE")


@pytest.fixture
def sqlite_stores(sqlite_url: str) -> Iterator[tuple[SqlStore, SqlStore]]:
    yield from two_stores(sqlite_url)


def test_on_sqlite_the_next_read_after_any_commit_reads_the_database(sqlite_stores, sqlite_url):
    """SQLite has no notification to wait for: the read after a commit by another process
    (another store, a bare sqlite3 connection) is itself fresh, nothing in between."""
    import sqlite3

    a, b = sqlite_stores
    assert cached(a, "c1")
    retitle(b, "c1", "renamed by b")
    assert title_of(a, "c1") == "renamed by b"
    assert cached(a, "c1")
    bare = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    try:
        with bare:
            bare.execute("UPDATE entities SET title = 'by hand' WHERE id = 'c1'")
    finally:
        bare.close()
    assert title_of(a, "c1") == "by hand"
    # a commit that touches another entity drops the whole cache as well: a miss
    assert cached(a, "c1")
    misses = a.entity_cache.misses
    with b.begin() as tx:
        tx.insert(compute("c2"))
    a.get_one("c1")
    assert a.entity_cache.misses == misses + 1


def test_no_read_cache_on_an_in_memory_sqlite_database():
    s = make_store("sqlite://")
    try:
        assert s.entity_cache is None
    finally:
        s.close()


@pytest.mark.postgres
def test_while_the_listener_is_down_nothing_is_served_from_memory(pg_stores, pg_url):
    a, b = pg_stores
    assert cached(a, "c1")
    engine = sa.create_engine(pg_url)
    try:
        with engine.begin() as conn:  # every LISTEN connection dropped, as by a network cut
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = :name"
                ),
                {"name": LISTENER_NAME},
            )
        eventually(lambda: not a.entity_cache.enabled, "A's cache switches off")
        retitle(b, "c1", "while A was deaf")
        # off, or back on and emptied: either way the read is fresh
        assert title_of(a, "c1") == "while A was deaf"
        eventually(lambda: a.entity_cache.enabled, "A's listener reconnects")
        assert title_of(a, "c1") == "while A was deaf"
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_no_cache_on_a_database_that_does_not_announce_changes(pg_url):
    """A schema without the trigger (as before migration 0004): the cache must stay off.
    The trigger alone is dropped: the store's tables are those of the newest schema."""
    s = make_store(pg_url)
    s.upgrade()
    with s.engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER occi_entities_changed ON entities"))
    with s.begin() as tx:
        tx.insert(compute("c1"))
    try:
        s.get_one("c1")
        eventually(lambda: s._listening, "the listener connects")
        assert not s.entity_cache.enabled
        assert not cached(s, "c1")
    finally:
        s.close()


def test_cache_control_no_cache_reads_the_database(db_url, tmp_path):
    """Over HTTP: a row held in memory that the database no longer has (as in the instant
    before a notification arrives) is what a plain GET may see; `Cache-Control: no-cache`,
    `Pragma: no-cache` and conditional GETs read the database."""
    import dataclasses

    from occi.api.wsgi import build
    from occi.settings import Settings

    settings = dataclasses.replace(Settings.load(environ={}), database_url=db_url, auth="none")
    app, service = build(settings, upgrade=True, run_jobs=False)
    store = service.store
    client = testing.TestClient(app)
    try:
        made = client.simulate_post(
            "/compute/",
            headers={"Content-Type": "text/plain", "Accept": "text/plain"},
            body='Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; '
            'class="kind"\nX-OCCI-Attribute: occi.core.title="real"\n',
        )
        assert made.status_code == 201, made.text
        path = "/compute/" + made.headers["Location"].rsplit("/compute/", 1)[1]
        entity_id = path.rsplit("/", 1)[1]
        eventually(lambda: store.entity_cache.enabled, "the cache switches on")
        # plant a stale copy: the rows as they are, with another title. A change announced
        # before (the create's own, heard late on PostgreSQL; its commit on SQLite) drops it
        # again: planted anew until a plain GET answers from it
        fresh_rows = _rows(store, entity_id)
        title_at = [c.name for c in _columns()].index("title")
        stale = [r[:title_at] + ("stale",) + r[title_at + 1 :] for r in fresh_rows]
        plain = {"Accept": "text/plain"}

        def planted() -> bool:
            store.entity_cache.put(entity_id, stale, store.entity_cache.generation)
            return 'occi.core.title="stale"' in client.simulate_get(path, headers=plain).text

        eventually(planted, "a plain GET answers from the copy in memory")
        for extra in (
            {"Cache-Control": "no-cache"},
            {"Cache-Control": "max-age=0"},
            {"Pragma": "no-cache"},
            {"If-None-Match": '"nothing-like-it"'},
        ):
            got = client.simulate_get(path, headers={**plain, **extra})
            assert got.status_code == 200 and 'occi.core.title="real"' in got.text, extra
    finally:
        store.close()


def _columns():
    from occi.store.sql import _ENTITY_COLUMNS

    return _ENTITY_COLUMNS


def _rows(store: SqlStore, entity_id: str):
    from occi.store.sql import _GET_DRIVER

    with store.begin(readonly=True, single=True) as tx:
        return _GET_DRIVER.rows(tx.conn, {"entity_id": entity_id})
