"""Authorization and project scoping, at the service: what each role may do, and that one
project's entities, links, jobs, user mixins and saved images are invisible to another (another
project's entity answers exactly as a missing one). Real store (SQLite and PostgreSQL) and the
simulator backend."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from occi import errors
from occi import infrastructure as infra
from occi.api.wsgi import build
from occi.context import RequestContext
from occi.identity.store import IdentityTx
from occi.model import ActionInvocation, CategoryRef, Entity, Link, Resource
from occi.service import Filter, Page, Service
from occi.settings import Settings
from occi.store.base import Query
from occi.store.sql import SqlTx, jobs

USER = "http://example.com/occi/tiers#"
#: the zone every compute is placed in (the embedded one-cluster shorthand's)
ZONE = "http://occi.simulator.local/availability_zone#default"


class World:
    """A service with two projects, alpha and beta, and a context of each role."""

    def __init__(self, service: Service):
        self.service = service
        with service.store.begin() as tx:
            assert isinstance(tx, SqlTx)
            ids = IdentityTx(tx)
            self.alpha = ids.create_project("alpha").id
            self.beta = ids.create_project("beta").id
        self.a = RequestContext("alice", self.alpha, frozenset({"member"}), project_name="alpha")
        self.b = RequestContext("bob", self.beta, frozenset({"member"}), project_name="beta")
        self.reader = RequestContext(
            "rita", self.alpha, frozenset({"reader"}), project_name="alpha"
        )
        self.admin_b = RequestContext("root", self.beta, frozenset({"admin"}), project_name="beta")

    def compute(self, ctx: RequestContext, title: str = "same", entity_id: str | None = None):
        (made,) = self.service.create(
            ctx, "/compute/", [Resource(infra.COMPUTE.id, entity_id, title)]
        )
        return made

    def network(self, ctx: RequestContext):
        (made,) = self.service.create(ctx, "/network/", [Resource(infra.NETWORK.id, title="n")])
        return made

    def ids(self, ctx: RequestContext, path: str = "/compute/", **page) -> set[str | None]:
        found, _ = self.service.list_collection(ctx, path, Filter(), Page(**page))
        return {e.id for e in found}

    def define(self, ctx: RequestContext, term: str, location: str) -> None:
        self.service.add_user_mixins(
            ctx, [CategoryRef(USER, term, "mixin", location=location, applies=[infra.COMPUTE.id])]
        )


@pytest.fixture
def world(db_url):
    settings = Settings.from_mapping({"database_url": db_url, "auth": "none"})
    _, service = build(settings, upgrade=True, run_jobs=False)
    try:
        yield World(service)
    finally:
        service.store.close()


def message(exc: pytest.ExceptionInfo, entity_id: str) -> str:
    """The error's message with the entity id written generically (to compare shapes)."""
    return str(exc.value).replace(entity_id, "<id>")


# -- reads are scoped ----------------------------------------------------------------------------


def test_a_member_sees_only_its_projects_entities(world):
    s = world.service
    mine, theirs = world.compute(world.a), world.compute(world.b)
    assert s.get(world.a, infra.COMPUTE, mine.id).project == world.alpha
    with pytest.raises(errors.NotFound) as foreign:
        s.get(world.a, infra.COMPUTE, theirs.id)
    with pytest.raises(errors.NotFound) as missing:
        s.get(world.a, infra.COMPUTE, "no-such-compute")
    assert message(foreign, theirs.id) == message(missing, "no-such-compute")
    with pytest.raises(errors.NotFound):  # from the database, not only from a cache
        s.get(world.a, infra.COMPUTE, theirs.id, fresh=True)

    assert world.ids(world.a) == {mine.id}  # the whole collection (a stream)
    assert world.ids(world.a, number=10) == {mine.id}  # a page
    assert world.ids(world.a, "/") == {mine.id}  # the root: every kind
    assert world.ids(world.b) == {theirs.id}
    by_title = Filter(attributes={"occi.core.title": "same"})
    found, _ = s.list_collection(world.a, "/compute/", by_title, Page(number=5))
    assert [e.id for e in found] == [mine.id]
    with s.store.begin(readonly=True) as tx:
        assert tx.count(Query(project=world.alpha)) == 1
        assert tx.count(Query(project=world.beta)) == 1
        assert tx.count(Query()) == 2  # the system sees every project
    assert world.ids(RequestContext.system()) == {mine.id, theirs.id}


def test_another_projects_entity_is_not_found_for_every_write(world):
    s = world.service
    theirs = world.compute(world.b, title="theirs")
    before = s.get(world.b, infra.COMPUTE, theirs.id)

    def both(call) -> None:
        """`call(id)` fails alike for beta's entity and for a missing one."""
        with pytest.raises(errors.OcciError) as foreign:
            call(theirs.id)
        with pytest.raises(errors.OcciError) as missing:
            call("no-such-compute")
        assert type(foreign.value) is type(missing.value)
        assert foreign.value.status in (400, 404)
        assert message(foreign, theirs.id) == message(missing, "no-such-compute")

    a = world.a
    both(lambda i: s.update(a, infra.COMPUTE, i, Resource("", attributes={"occi.core.title": "x"})))
    both(lambda i: s.delete(a, infra.COMPUTE, i))
    both(lambda i: s.act(a, infra.COMPUTE, i, "start", ActionInvocation(None)))
    world.define(a, "tier", "/tier/")
    both(lambda i: s.associate(a, "/tier/", [f"/compute/{i}"]))
    both(lambda i: s.dissociate(a, "/tier/", [f"/compute/{i}"]))
    after = s.get(world.b, infra.COMPUTE, theirs.id, fresh=True)
    assert (after.version, after.title, after.mixins) == (before.version, "theirs", before.mixins)
    assert after.attributes["occi.compute.state"] == "inactive"


def test_put_onto_another_projects_id_is_not_found_and_changes_nothing(world):
    s = world.service
    theirs = world.compute(world.b, title="theirs")
    with pytest.raises(errors.NotFound, match=f"nothing exists at /compute/{theirs.id}"):
        s.put(world.a, infra.COMPUTE, theirs.id, Resource(infra.COMPUTE.id, title="mine now"))
    after = s.get(world.b, infra.COMPUTE, theirs.id, fresh=True)
    assert (after.title, after.version, after.project) == ("theirs", theirs.version, world.beta)
    assert world.ids(world.a) == set()
    # PUT of a free id creates it in the caller's project
    made, created = s.put(world.a, infra.COMPUTE, "alpha-1", Resource(infra.COMPUTE.id, title="t"))
    assert created and made.project == world.alpha


def test_an_id_taken_in_another_project_is_taken_without_naming_its_owner(world):
    world.compute(world.b, entity_id="shared-name")
    with pytest.raises(errors.IdTaken) as taken:
        world.compute(world.a, entity_id="shared-name")
    assert "beta" not in str(taken.value) and world.beta not in str(taken.value)
    assert world.ids(world.a) == set()


# -- roles ----------------------------------------------------------------------------------------


def test_a_reader_reads_and_every_write_is_forbidden(world):
    s = world.service
    mine = world.compute(world.a)
    world.define(world.a, "tier", "/tier/")
    r = world.reader
    assert s.get(r, infra.COMPUTE, mine.id).id == mine.id
    assert world.ids(r) == {mine.id}
    assert world.ids(r, "/tier/") == set()
    assert USER + "tier" in {c.id for c in s.categories(r).mixins}
    assert s.category_refs(r, ["tier"])[0].id == USER + "tier"

    compute = Resource(infra.COMPUTE.id, title="t")
    writes = {
        "create": lambda: s.create(r, "/compute/", [compute]),
        "put": lambda: s.put(r, infra.COMPUTE, "new-one", compute),
        "update": lambda: s.update(r, infra.COMPUTE, mine.id, Resource("", title="x")),
        "delete": lambda: s.delete(r, infra.COMPUTE, mine.id),
        "act": lambda: s.act(r, infra.COMPUTE, mine.id, "start", ActionInvocation(None)),
        "act on a collection": lambda: s.act_on_collection(
            r, "/compute/", "start", ActionInvocation(None), Filter()
        ),
        "delete a collection": lambda: s.delete_collection(r, "/compute/", Filter()),
        "associate": lambda: s.associate(r, "/tier/", [mine.location]),
        "dissociate": lambda: s.dissociate(r, "/tier/", None),
        "define a mixin": lambda: world.define(r, "other", "/other/"),
        "remove a mixin": lambda: s.remove_user_mixins(r, [CategoryRef(USER, "tier")]),
    }
    for what, write in writes.items():
        with pytest.raises(errors.Forbidden) as refused:
            write()
        assert "the role reader in project alpha may only read" in str(refused.value), what
        assert refused.value.code == "read_only_role"
    after = s.get(world.a, infra.COMPUTE, mine.id, fresh=True)
    assert after.version == mine.version and after.attributes["occi.compute.state"] == "inactive"
    assert world.ids(world.a) == {mine.id}


def test_no_role_on_the_project_may_not_even_read(world):
    nobody = RequestContext("eve", world.alpha, frozenset(), project_name="alpha")
    with pytest.raises(errors.Forbidden, match="no role in project alpha") as refused:
        world.ids(nobody)
    assert refused.value.code == "no_role"


def test_an_admin_works_in_the_project_of_its_context(world):
    s = world.service
    in_alpha = world.compute(world.a)
    made = world.compute(world.admin_b, title="by the admin")
    assert made.project == world.beta
    assert world.ids(world.b) == {made.id}
    assert world.ids(world.admin_b) == {made.id}
    with pytest.raises(errors.NotFound):
        s.get(world.admin_b, infra.COMPUTE, in_alpha.id)
    s.act(world.admin_b, infra.COMPUTE, made.id, "start", ActionInvocation(None))
    assert s.get(world.b, infra.COMPUTE, made.id).attributes["occi.compute.state"] == "active"
    s.delete(world.admin_b, infra.COMPUTE, made.id)
    assert world.ids(world.b) == set()


# -- collections -----------------------------------------------------------------------------------


def test_collection_action_and_delete_touch_only_the_callers_project(world):
    s = world.service
    mine = [world.compute(world.a) for _ in range(2)]
    theirs = [world.compute(world.b) for _ in range(2)]
    started = s.act_on_collection(world.a, "/compute/", "start", ActionInvocation(None), Filter())
    assert {e.id for e in started} == {e.id for e in mine}
    for e in theirs:
        assert s.get(world.b, infra.COMPUTE, e.id).attributes["occi.compute.state"] == "inactive"
    assert s.delete_collection(world.a, "/compute/", Filter()) == 2
    assert world.ids(world.a) == set()
    assert world.ids(world.b) == {e.id for e in theirs}
    with s.store.begin(readonly=True) as tx:
        projects = {p for (p,) in tx.conn.execute(sa.select(jobs.c.project_id).distinct())}
    assert projects == {world.alpha, world.beta}  # every job carries its entity's project


# -- user mixins -----------------------------------------------------------------------------------


def test_two_projects_define_the_same_mixin_id_and_location_independently(world):
    s = world.service
    world.define(world.a, "tier", "/tier/")
    world.define(world.b, "tier", "/tier/")
    world.define(world.b, "only-beta", "/only-beta/")
    with pytest.raises(errors.Conflict):  # still unique within one project
        world.define(world.a, "tier", "/tier-again/")
    mine, theirs = world.compute(world.a), world.compute(world.b)
    s.associate(world.a, "/tier/", [mine.location])
    assert world.ids(world.a, "/tier/") == {mine.id}
    assert world.ids(world.b, "/tier/") == set()  # beta's own /tier/ collection
    found, _ = s.list_collection(world.b, "/compute/", Filter(categories=[USER + "tier"]), Page())
    assert list(found) == []

    assert USER + "only-beta" not in {c.id for c in s.categories(world.a).mixins}
    with pytest.raises(errors.NotFound):
        s.categories(world.a, [CategoryRef(USER, "only-beta")])
    with pytest.raises(errors.NotFound):
        world.ids(world.a, "/only-beta/")
    with pytest.raises(errors.BadRequest, match="not defined"):  # not a mixin alpha has
        s.update(world.a, infra.COMPUTE, mine.id, Resource("", mixins=[USER + "only-beta"]))

    # beta removing its tier leaves alpha's, and alpha's association
    s.remove_user_mixins(world.b, [CategoryRef(USER, "tier")])
    assert USER + "tier" in {c.id for c in s.categories(world.a).mixins}
    assert USER + "tier" not in {c.id for c in s.categories(world.b).mixins}
    assert world.ids(world.a, "/tier/") == {mine.id}
    assert s.get(world.a, infra.COMPUTE, mine.id).mixins == [ZONE, USER + "tier"]
    s.dissociate(world.a, "/tier/", None)
    assert world.ids(world.a, "/tier/") == set()
    assert theirs.id in world.ids(world.b)


def test_dissociating_everything_stays_in_the_project(world):
    s = world.service
    world.define(world.a, "tier", "/tier/")
    world.define(world.b, "tier", "/tier/")
    mine, theirs = world.compute(world.a), world.compute(world.b)
    s.associate(world.a, "/tier/", [mine.location])
    s.associate(world.b, "/tier/", [theirs.location])
    s.associate(world.a, "/tier/", [mine.location], replace_all=True)
    s.dissociate(world.a, "/tier/", None)
    assert world.ids(world.b, "/tier/") == {theirs.id}
    s.remove_user_mixins(world.a, [CategoryRef(USER, "tier")])
    assert s.get(world.b, infra.COMPUTE, theirs.id).mixins == [ZONE, USER + "tier"]


def test_a_saved_image_belongs_to_the_project_that_saved_it(world):
    s = world.service
    mine = world.compute(world.a)
    image = s.act(
        world.a, infra.COMPUTE, mine.id, "save", ActionInvocation(None, {"name": "golden"})
    )
    assert image.id in {c.id for c in s.categories(world.a).mixins}
    assert image.id not in {c.id for c in s.categories(world.b).mixins}
    with pytest.raises(errors.NotFound):
        s.remove_user_mixins(world.b, [CategoryRef(image.scheme, image.term)])
    with pytest.raises(errors.BadRequest):  # beta cannot start a compute from it
        s.create(world.b, "/compute/", [Resource(infra.COMPUTE.id, mixins=[image.id])])
    with s.store.begin(readonly=True) as tx:
        assert [m.id for m in tx.user_mixins(world.alpha)] == [image.id]
        assert tx.user_mixins(world.beta) == []
    # nor take its name: the platform finds templates by their scheme and term
    with pytest.raises(errors.BadRequest, match="the provider's"):
        s.add_user_mixins(world.b, [CategoryRef(image.scheme, image.term, location="/golden/")])
    s.remove_user_mixins(world.a, [CategoryRef(image.scheme, image.term)])
    assert image.id not in {c.id for c in s.categories(world.a).mixins}


# -- links -------------------------------------------------------------------------------------------


def test_a_link_never_joins_two_projects(world):
    s = world.service
    mine, their_net = world.compute(world.a), world.network(world.b)
    my_net = world.network(world.a)

    def link(source: Entity, target: str) -> Link:
        return Link(infra.NETWORKINTERFACE.id, source=source.location, target=target)

    with pytest.raises(errors.BadRequest) as foreign:
        s.create(world.a, "/link/networkinterface/", [link(mine, their_net.location)])
    with pytest.raises(errors.BadRequest) as missing:
        s.create(world.a, "/link/networkinterface/", [link(mine, "/network/no-such")])
    assert message(foreign, their_net.location) == message(missing, "/network/no-such")
    # nor from another project's source
    with pytest.raises(errors.BadRequest, match="is not a resource here"):
        s.create(world.b, "/link/networkinterface/", [link(mine, their_net.location)])
    # nor inline, when creating a resource
    inline = Resource(infra.COMPUTE.id, links=[Link("", target=their_net.location)])
    with pytest.raises(errors.BadRequest):
        s.create(world.a, "/compute/", [inline])
    assert world.ids(world.a) == {mine.id}
    # within the project: fine, and the link is the project's
    (nic,) = s.create(world.a, "/link/networkinterface/", [link(mine, my_net.location)])
    assert s.get(world.a, infra.NETWORKINTERFACE, nic.id).project == world.alpha
    with pytest.raises(errors.NotFound):
        s.get(world.b, infra.NETWORKINTERFACE, nic.id)
    # a link cannot be moved onto another project's resource either
    moved = Link("", source=mine.location, target=their_net.location)
    with pytest.raises(errors.BadRequest, match="is not a resource here"):
        s.update(world.a, infra.NETWORKINTERFACE, nic.id, moved)
