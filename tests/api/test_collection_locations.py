"""Collections in renderings that print only locations (text/plain, text/occi, text/uri-list)
are read as locations alone: the same locations, in the same order, with the same filters,
pages and project scoping as the entities a document rendering lists. Real app, real store
(SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from falcon import testing

from occi import infrastructure as infra
from occi.api.wsgi import build
from occi.context import DEFAULT_PROJECT, RequestContext
from occi.identity.store import IdentityTx
from occi.model import CategoryRef, Link, Resource
from occi.service import Filter, Page
from occi.settings import Settings
from occi.store.base import Query
from occi.store.sql import SqlTx

USER = "http://example.com/occi/tiers#"
BASE = "http://falconframework.org"
LOCATION_RENDERINGS = ("text/plain", "text/occi", "text/uri-list")


class Collections:
    """The app (anonymous requests work in the default project), entities in the default
    project and in another one, `other`, whose entities must never be listed."""

    def __init__(self, app, service):
        self.client = testing.TestClient(app)
        self.service = service
        with service.store.begin() as tx:
            assert isinstance(tx, SqlTx)
            other = IdentityTx(tx).create_project("other").id
        self.mine = RequestContext("me", DEFAULT_PROJECT, frozenset({"member"}))
        self.theirs = RequestContext("them", other, frozenset({"member"}))
        tier = CategoryRef(USER, "tier", "mixin", location="/tier/", applies=[infra.COMPUTE.id])
        for ctx in (self.mine, self.theirs):
            service.add_user_mixins(ctx, [tier])
        self.foreign: set[str] = set()
        for ctx in (self.theirs, self.mine, self.theirs):  # interleaved in creation order
            made = self.fill(ctx)
            if ctx is self.theirs:
                self.foreign.update(made)

    def fill(self, ctx: RequestContext) -> list[str]:
        """Computes (some in the tier mixin, some titled 'web'), storages, and links."""
        s, made = self.service, []
        net = s.create(ctx, "/network/", [Resource(infra.NETWORK.id, title="n")])[0]
        for i in range(7):
            mixins = [USER + "tier"] if i % 2 else []
            title = "web" if i % 3 == 0 else f"c{i}"
            (c,) = s.create(ctx, "/compute/", [Resource(infra.COMPUTE.id, None, title, mixins)])
            made.append(c.location)
            if i < 3:
                link = Link(
                    infra.NETWORKINTERFACE.id,
                    source=c.location,
                    target=net.location,
                )
                made.append(s.create(ctx, "/link/networkinterface/", [link])[0].location)
        for _ in range(2):
            made.append(
                s.create(
                    ctx,
                    "/storage/",
                    [Resource(infra.STORAGE.id, attributes={"occi.storage.size": 1.0})],
                )[0].location
            )
        made.append(net.location)
        return made

    def expected(self, path: str, flt: Filter, page: Page) -> list[str]:
        """What the entity listing (the documents' path) gives, as locations."""
        found, _ = self.service.list_collection(self.mine, path, flt, page)
        return [e.location for e in found]

    def listed(self, accept: str, path: str, query: str = "", headers=None) -> list[str]:
        h = {"Accept": accept, **(headers or {})}
        r = self.client.simulate_get(path, query_string=query, headers=h)
        assert r.status_code == 200, r.text
        if accept == "text/occi":
            assert r.text.strip() in ("", "OK")
            raw = r.headers.get("x-occi-location", "")
            urls = [u.strip() for u in raw.split(",") if u.strip()]
        elif accept == "text/uri-list":
            urls = [line for line in r.text.splitlines() if line and not line.startswith("#")]
        else:
            prefix = "X-OCCI-Location: "
            lines = r.text.splitlines()
            assert all(line.startswith(prefix) for line in lines), r.text
            urls = [line[len(prefix) :] for line in lines]
        assert all(u.startswith(BASE + "/") for u in urls), urls
        return [u[len(BASE) :] for u in urls]


@pytest.fixture
def coll(db_url):
    settings = Settings.from_mapping({"database_url": db_url, "auth": "none"})
    app, service = build(settings, upgrade=True, run_jobs=False)
    try:
        yield Collections(app, service)
    finally:
        service.store.close()
        service.backend.close()


CASES = [
    # (path, query string, headers, the same as a Filter, the same as a Page)
    ("/compute/", "", None, Filter(), Page()),
    ("/", "", None, Filter(), Page()),
    ("/storage/", "", None, Filter(), Page()),
    ("/link/networkinterface/", "", None, Filter(), Page()),
    ("/tier/", "", None, Filter(), Page()),
    ("/compute/", "page=1&number=3", None, Filter(), Page(3, 1)),
    ("/compute/", "page=2&number=3", None, Filter(), Page(3, 2)),
    ("/compute/", "page=3&number=3", None, Filter(), Page(3, 3)),
    ("/compute/", "page=9&number=3", None, Filter(), Page(3, 9)),
    ("/", "page=2&number=5", None, Filter(), Page(5, 2)),
    ("/tier/", "page=2&number=2", None, Filter(), Page(2, 2)),
    ("/compute/", "category=tier", None, Filter(categories=["tier"]), Page()),
    (
        "/compute/",
        "attribute=occi.core.title&value=web",
        None,
        Filter(attributes={"occi.core.title": "web"}),
        Page(),
    ),
    (
        "/",
        "page=1&number=2",
        {"Category": f'tier; scheme="{USER}"; class="mixin"'},
        Filter(categories=[USER + "tier"]),
        Page(2, 1),
    ),
]


@pytest.mark.parametrize("accept", LOCATION_RENDERINGS)
def test_location_renderings_list_what_the_entity_listing_lists(coll, accept):
    """Same locations, same order, same filters and pages; the other project's never."""
    for path, query, headers, flt, page in CASES:
        expected = coll.expected(path, flt, page)
        got = coll.listed(accept, path, query, headers)
        assert got == expected, (path, query)
        assert not set(got) & coll.foreign, (path, query)
    whole = coll.listed(accept, "/")
    assert len(whole) == 7 + 3 + 2 + 1  # this project's own, all of them


def test_json_lists_the_same_locations(coll):
    """The documents' path (entities) and the locations' path agree on a page."""
    r = coll.client.simulate_get(
        "/compute/", query_string="page=2&number=3", headers={"Accept": "application/occi+json"}
    )
    assert r.status_code == 200, r.text
    locations = [res["location"][len(BASE) :] for res in r.json["resources"]]
    assert locations == coll.listed("text/plain", "/compute/", "page=2&number=3")


def test_too_large_a_page_is_refused_in_every_rendering(coll):
    for accept in (*LOCATION_RENDERINGS, "application/occi+json"):
        r = coll.client.simulate_get(
            "/compute/", query_string="page=1&number=100000", headers={"Accept": accept}
        )
        assert r.status_code == 413, (accept, r.text)


def test_store_locations_match_the_query(coll):
    """SqlTx.locations: query()'s locations, whatever the criteria."""
    tier = USER + "tier"
    compute = [infra.COMPUTE.id]
    queries = [
        Query(project=DEFAULT_PROJECT),
        Query(project=coll.theirs.project),
        Query(),
        Query(kinds=compute, project=DEFAULT_PROJECT, offset=2, limit=3),
        Query(kinds=compute, limit=4),
        Query(kinds=compute, offset=5, limit=100),
        Query(kinds=[infra.COMPUTE.id, infra.STORAGE.id], limit=4),
        Query(mixin=tier, project=DEFAULT_PROJECT),
        Query(mixin=tier, offset=1, limit=2),
        Query(kinds=compute, attributes={"occi.core.title": "web"}),
    ]
    with coll.service.store.begin(readonly=True) as tx:
        for q in queries:
            assert tx.locations(q) == [e.location for e in tx.query(q)], q
