"""A page of a collection in JSON is read with its links at once (SqlTx.stored_page) and each
entity's rendering is kept while its stored rows and the registry stay the same
(Reads.render_page); a whole collection is streamed the same way (Reads.render_stream). What a client gets must be what the entity listing renders, byte for
byte: with the same filters, pages and project scoping, and after every kind of change to an
entity, its links, its mixins or the categories. Real app, real store (SQLite and
PostgreSQL)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import rendering
from occi import infrastructure as infra
from occi.model import CategoryRef, Entity, Link, Resource
from occi.service import Filter, Page
from occi.store import make_store
from occi.store.base import Query
from occi.store.sql import SqlStore
from rendering.base import Context, header_safe
from tests.api import test_collection_locations as locations_tests
from tests.api.test_collection_locations import BASE, CASES, USER, Collections
from tests.test_entity_cache import eventually
from tests.test_store import compute

JSON = "application/occi+json"
_JSON = rendering.require(JSON)

#: the paged cases of the locations' tests, and the others asked as a page of 4
PAGED = [
    (path, query, headers, flt, page)
    if page.number is not None
    else (path, "&".join(q for q in ("page=1&number=4", query) if q), headers, flt, Page(4, 1))
    for path, query, headers, flt, page in CASES
]


#: the real app with entities in two projects (the locations' tests' fixture)
coll = locations_tests.coll


def expected(coll: Collections, path: str, flt: Filter, page: Page) -> bytes:
    """The page as the entity listing renders it (the path of a whole collection)."""
    found, _ = coll.service.list_collection(coll.mine, path, flt, page)
    body = _JSON.render_entities(found, Context(BASE)).body
    return body if isinstance(body, bytes) else b"".join(body)


def got(coll: Collections, path: str, query: str, headers=None) -> bytes:
    r = coll.client.simulate_get(
        path, query_string=query, headers={"Accept": JSON, **(headers or {})}
    )
    assert r.status_code == 200, r.text
    return r.content


def test_json_pages_are_the_entity_listing_byte_for_byte(coll):
    """Every filter and page, asked twice (the second from the kept renderings): the bytes
    the entity listing renders; never an entity of the other project."""
    foreign = {BASE + loc for loc in coll.foreign}
    for path, query, headers, flt, page in PAGED:
        want = expected(coll, path, flt, page)
        for _ in range(2):
            body = got(coll, path, query, headers)
            assert body == want, (path, query)
            assert not any(f.encode() in body for f in foreign), (path, query)


def test_kept_renderings_follow_every_change(coll):
    """Each change to an entity on a page shows on the next GET of the page."""
    s, ctx = coll.service, coll.mine

    def check(what: str) -> None:
        for path, query, page in (
            ("/compute/", "page=1&number=4", Page(4, 1)),
            ("/", "page=1&number=30", Page(30, 1)),
            ("/tier/", "page=1&number=10", Page(10, 1)),
            ("/compute/", "", Page()),
            ("/", "", Page()),
            ("/tier/", "", Page()),
        ):
            assert got(coll, path, query) == expected(coll, path, Filter(), page), (what, path)

    check("before")
    first, _ = s.list_collection(ctx, "/compute/", Filter(), Page(4, 1))
    computes = [e for e in first if isinstance(e, Resource)]
    target = computes[0]
    assert target.id is not None
    s.update(ctx, infra.COMPUTE.id, target.id, Resource(infra.COMPUTE.id, title="renamed"))
    check("title changed")
    s.update(
        ctx,
        infra.COMPUTE.id,
        target.id,
        Resource(infra.COMPUTE.id, attributes={"occi.compute.cores": 3}),
    )
    check("attribute changed")
    s.associate(ctx, "/tier/", [computes[1].location or ""])
    check("mixin associated")
    net = s.create(ctx, "/network/", [Resource(infra.NETWORK.id, title="n2")])[0]
    link = Link(infra.NETWORKINTERFACE.id, source=target.location, target=net.location)
    made = s.create(ctx, "/link/networkinterface/", [link])[0]
    check("link added")
    assert made.id is not None
    s.delete(ctx, infra.NETWORKINTERFACE.id, made.id)
    check("link deleted")
    assert computes[2].id is not None
    s.delete(ctx, infra.COMPUTE.id, computes[2].id)
    check("entity deleted")
    s.add_user_mixins(ctx, [CategoryRef(USER, "extra", "mixin", location="/extra/")])
    check("categories changed")


def test_a_page_kept_by_the_read_cache_is_given_whole_until_a_change(coll, monkeypatch):
    """A page of one kind the store's read cache holds comes back as the same StoredPage,
    which carries what was rendered of it: the next GET looks at none of its entities (no
    fingerprint taken), and gives the same bytes; after a change the page is read and its
    entities looked at again, and the answer shows the change."""
    store = coll.service.store
    if store.entity_cache is not None:
        eventually(lambda: store.entity_cache.enabled, "the cache switches on")
    looked: list[object] = []
    real = store.fingerprint
    monkeypatch.setattr(store, "fingerprint", lambda rows: looked.append(rows) or real(rows))
    want = expected(coll, "/compute/", Filter(), Page(4, 1))

    def looked_at() -> int:
        looked.clear()
        assert got(coll, "/compute/", "page=1&number=4") == want
        return len(looked)

    eventually(lambda: looked_at() == 0, "a GET that looks at no entity")
    assert looked_at() == 0
    assert got(coll, "/compute/", "page=1&number=4", {"Cache-Control": "no-cache"}) == want
    first, _ = coll.service.list_collection(coll.mine, "/compute/", Filter(), Page(4, 1))
    target = next(iter(first))
    assert target.id is not None
    coll.service.update(
        coll.mine, infra.COMPUTE.id, target.id, Resource(infra.COMPUTE.id, title="changed")
    )
    want = expected(coll, "/compute/", Filter(), Page(4, 1))
    assert b'"changed"' in want
    assert looked_at() == 4


def test_a_registry_read_again_unchanged_is_the_same_object(coll, monkeypatch):
    """The registry is read again from the backend's templates and the user mixins every
    registry_ttl; found the same, it is the same object, so what pages and collections kept of
    their entities (valid for one registry object) stays valid. A template that changed on the
    platform makes a new registry that shows the change."""
    import dataclasses

    s = coll.service
    monkeypatch.setattr(s, "registry_ttl", 0.0)

    def read_again():
        s._registry_checked = float("-inf")
        return s.registry(project=coll.mine.project)

    first = read_again()
    assert read_again() is first
    provider = s.backend.provider_mixins()
    renamed = [dataclasses.replace(provider[0], title="renamed on the platform"), *provider[1:]]
    monkeypatch.setattr(s.backend, "provider_mixins", lambda: renamed)
    again = read_again()
    assert again is not first
    assert again.mixins[provider[0].id].title == "renamed on the platform"
    assert read_again() is again


def test_whole_json_collections_are_the_entity_listing_byte_for_byte(coll):
    """Every filter without a page, asked twice (the second from the kept renderings) and
    once with no-cache (rendered from the entities, not kept): the same bytes, never an
    entity of the other project; links-first collections included."""
    foreign = {BASE + loc for loc in coll.foreign}
    whole = [c for c in CASES if c[4].number is None]
    assert any(path.startswith("/link") for path, *_ in whole)
    for path, query, headers, flt, page in whole:
        want = expected(coll, path, flt, page)
        for extra in ({}, {}, {"Cache-Control": "no-cache"}):
            body = got(coll, path, query, {**(headers or {}), **extra})
            assert body == want, (path, query, extra)
            assert not any(f.encode() in body for f in foreign), (path, query)


def test_stored_page_is_the_query(coll):
    """SqlTx.stored_page made entities: query()'s, whatever the criteria; equal rows for
    equal entities."""
    tier = USER + "tier"
    compute = [infra.COMPUTE.id]
    queries = [
        Query(kinds=compute, project=coll.mine.project, offset=2, limit=3),
        Query(kinds=compute, limit=4),
        Query(kinds=compute, offset=5, limit=100),
        Query(kinds=[infra.COMPUTE.id, infra.STORAGE.id], limit=4),
        Query(kinds=[infra.NETWORKINTERFACE.id], limit=10),
        Query(mixin=tier, project=coll.mine.project, limit=10),
        Query(mixin=tier, offset=1, limit=2),
        Query(kinds=compute, attributes={"occi.core.title": "web"}, limit=10),
        Query(project=coll.mine.project, limit=100),
    ]
    store = coll.service.store
    with store.begin(readonly=True) as tx:
        for q in queries:
            stored = tx.stored_page(q)
            again = tx.stored_page(q)
            made: list[Entity] = [store.entity_of(s.rows) for s in stored]
            assert made == tx.query(q), q
            assert [(s.id, s.is_link) for s in stored] == [(e.id, e.is_link) for e in made]
            assert [s.rows for s in stored] == [s.rows for s in again]


@pytest.fixture
def statements():
    seen: list[str] = []

    def on_execute(conn, cursor, statement, *_):
        seen.append(" ".join(statement.split()))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", on_execute)


def test_a_json_page_reads_its_entities_and_links_at_once(coll, statements):
    """The same statements for every page, whatever it holds (links, mixins) and whether its
    entities were rendered before: on PostgreSQL ONE on the entities table (the page joined
    with its links), on SQLite two (the page, then its resources' links)."""
    pg = coll.service.store.dialect == "postgresql"
    for path, query in (("/compute/", "page=1&number=40"), ("/", "page=1&number=5")):
        for again in (False, True):
            statements.clear()
            got(coll, path, query)
            reads = [s for s in statements if "FROM entities" in s]
            if again and coll.service.store.entity_cache is not None and not reads:
                continue  # a page of one kind answered from the read cache (occi.store.cache)
            assert len(reads) == (1 if pg else 2), (path, reads)
            if pg:
                assert "LEFT OUTER JOIN entities AS l" in reads[0]
            else:
                assert "json_each" in reads[1]


def test_locations_render_as_each_alone_would():
    """The page-at-once renderings of locations (text/plain, text/uri-list) write what one
    location at a time writes: absolute URLs kept, others below the base URL, control
    characters made spaces in text/plain."""
    ctx = Context(BASE)
    plain, uris = rendering.require("text/plain"), rendering.require("text/uri-list")
    for locations in (
        [],
        ["/compute/a", "/compute/b"],
        ["/compute/a", "http://elsewhere.example/x/y"],
        ["/compute/a\nX-Injected: 1", "/compute/b\x7f"],
    ):
        urls = [ctx.url(loc) for loc in locations]
        assert ctx.urls(locations) == urls
        lines = "".join(f"X-OCCI-Location: {header_safe(u)}\n" for u in urls)
        assert plain.render_locations(locations, ctx).body == lines.encode()
        if "\n" not in "".join(locations):
            assert (
                uris.render_locations(locations, ctx).body
                == "".join(u + "\r\n" for u in urls).encode()
            )


def test_pages_kept_in_the_read_cache_follow_other_servers_writes(db_url):
    """A page of one kind (its locations, its entities with their links) is kept in the read
    cache: a second read is a hit, and a write by another server (another store on the same
    database) reaches it, as it reaches a one-entity read."""
    a, b = make_store(db_url), make_store(db_url)
    assert isinstance(a, SqlStore) and isinstance(b, SqlStore)
    try:
        a.upgrade()
        with a.begin() as tx:
            tx.insert(compute("c1"))
        q = Query(kinds=[infra.COMPUTE.id], limit=10)
        cache = a.entity_cache
        assert cache is not None
        a.locations(q)
        eventually(lambda: cache.enabled, "the cache switches on")
        for read in (a.locations, a.stored_page):
            read(q)
            hits = cache.hits
            read(q)
            assert cache.hits == hits + 1, read
            read(q, fresh=True)  # Cache-Control: no-cache
            assert cache.hits == hits + 1, read
        with b.begin() as tx:
            tx.insert(compute("c2"))
        eventually(lambda: a.locations(q) == ["/compute/c1", "/compute/c2"], "c2 listed")
        with b.begin() as tx:
            entity = tx.get("c1", for_update=True)
            assert entity is not None
            entity.title = "renamed"
            tx.update(entity)
        eventually(lambda: a.entity_of(a.stored_page(q)[0].rows).title == "renamed", "c1 renamed")
    finally:
        a.close()
        b.close()
