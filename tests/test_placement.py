"""Placement as a user meets it: creates fill the hosts of their zone until the next one is
refused with 503 `no_capacity` naming the zone and the size (and nothing is stored); each
strategy's order; resizes re-check the host; a delete gives the room back; zones are mixins a
create chooses (the default zone otherwise) and a link across zones is a 400; storage and
networks live in a zone and a cluster; each cluster's jobs run on its own backend. Through the
real app on SQLite and PostgreSQL, with the inventory's rows written directly
(tests/inventory_rows.py)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import sqlalchemy as sa
from falcon import testing

from backends.base import NotFoundOnPlatform
from backends.simulator import SimulatorBackend
from occi import errors
from occi.api.wsgi import build
from occi.context import RequestContext
from occi.inventory import placement
from occi.inventory.secrets import Cipher
from occi.model import AttributeDef, Mixin, Resource
from occi.settings import Settings
from occi.store.inventory_sql import hosts
from occi.store.sql import entities
from tests import inventory_rows as rows
from tests.api.conftest import INFRA, Api

ACTION = "http://schemas.ogf.org/occi/infrastructure/compute/action#"
ZONE = "http://occi.simulator.local/availability_zone#"


@pytest.fixture
def made(tmp_path):
    apis: list[Api] = []

    def make(url: str | None = None, **settings: object) -> Api:
        app, service = build(
            Settings.from_mapping(
                {"database_url": url or f"sqlite:///{tmp_path}/p.db", "auth": "none", **settings}
            ),
            upgrade=True,
        )
        apis.append(Api(testing.TestClient(app), service))
        return apis[-1]

    yield make
    for api in apis:
        if api.service.runner is not None:
            api.service.runner.stop()
        api.service.pool.close()
        api.service.store.close()
        api.service.backend.close()


def inventory(api: Api, spec: dict[str, dict[str, tuple[int, int]]], **cluster) -> dict[str, str]:
    """Zones of one cluster each, with hosts: {zone: {host: (cores, memory MB)}}. Returns
    the ids by name."""
    ids = {}
    with api.service.store.begin() as tx:
        rows.drop_shorthand(tx.conn)
        for zone, hs in spec.items():
            ids[zone] = z = rows.add_zone(tx.conn, zone)
            ids[f"c-{zone}"] = c = rows.add_cluster(tx.conn, f"c-{zone}", z, **cluster)
            for name, (cores, memory_mb) in hs.items():
                ids[name] = rows.add_host(tx.conn, name, c, cores=cores, memory_mb=memory_mb)
    rows.announce(api.service)
    return ids


def sealed(api: Api, **settings: str) -> str:
    """Cluster settings encrypted as the server stores them (its key file beside the database)."""
    url = api.service.store.engine.url.render_as_string(hide_password=False)
    return Cipher.from_settings(Settings.from_mapping({"database_url": url})).encrypt(settings)


def use(api: Api) -> dict[str, tuple[int, int, int]]:
    with api.service.store.begin() as tx:
        return rows.host_use(tx.conn)


def host_of(api: Api, response) -> str:
    entity_id = api.path_of(response).rsplit("/", 1)[-1]
    with api.service.store.begin() as tx:
        return tx.conn.execute(
            sa.select(hosts.c.name)
            .select_from(entities.join(hosts, hosts.c.id == entities.c.host_id))
            .where(entities.c.id == entity_id)
        ).scalar_one()


def compute(api: Api, cores: int, memory_gb: float, mixins=()):
    doc = {
        "kind": INFRA + "compute",
        "attributes": {"occi.compute.cores": cores, "occi.compute.memory": memory_gb},
        "mixins": list(mixins),
    }
    return api.post("/compute/", doc)


def test_creates_fill_two_hosts_of_different_sizes_then_503_and_nothing_stored(made, db_url):
    api = made(db_url)
    inventory(api, {"z1": {"h-big": (8, 8192), "h-small": (4, 2048)}})
    placed = [compute(api, 2, 2.0) for _ in range(5)]
    assert [r.status_code for r in placed] == [201] * 5
    assert sorted(host_of(api, r) for r in placed).count("h-big") == 4
    assert use(api) == {"h-big": (8, 8192, 4), "h-small": (2, 2048, 1)}
    before = api.count("/compute/")
    refused = compute(api, 2, 2.0)
    assert refused.status_code == 503, refused.text
    assert refused.headers["X-OCCI-Error-Code"] == "no_capacity"
    message = refused.json["error"]["message"]
    assert "zone z1" in message and "2 cores" in message and "2048 MB" in message
    assert "h-big" not in message  # members never see hosts
    assert api.count("/compute/") == before
    assert use(api) == {"h-big": (8, 8192, 4), "h-small": (2, 2048, 1)}


def test_overcommit_and_host_states_decide_what_fits(made):
    api = made()
    ids = inventory(api, {"z1": {"h1": (2, 1024), "h2": (2, 1024)}}, cpu_overcommit=2.0)
    with api.service.store.begin() as tx:
        tx.conn.execute(hosts.update().where(hosts.c.id == ids["h1"]).values(state="down"))
    first = compute(api, 4, 1.0)  # 4 cores on 2 cores x 2
    assert first.status_code == 201 and host_of(api, first) == "h2"
    assert compute(api, 1, 0.5).status_code == 503  # h2 full, h1 down
    with api.service.store.begin() as tx:
        tx.conn.execute(
            hosts.update().where(hosts.c.id == ids["h1"]).values(state="up", admin_state="disabled")
        )
    assert compute(api, 1, 0.5).status_code == 503  # h1 disabled
    with api.service.store.begin() as tx:
        tx.conn.execute(hosts.update().where(hosts.c.id == ids["h1"]).values(admin_state="enabled"))
    assert host_of(api, compute(api, 1, 0.5)) == "h1"


SIZES = {"h-a": (8, 4096), "h-b": (8, 8192), "h-c": (8, 6144)}


def test_firstfit_fills_hosts_in_name_order(made):
    api = made(placement_strategy="firstfit")
    inventory(api, {"z1": SIZES})
    assert [host_of(api, compute(api, 1, 2.0)) for _ in range(4)] == ["h-a", "h-a", "h-b", "h-b"]


def test_leastused_takes_the_host_with_most_free_memory(made):
    api = made(placement_strategy="leastused")
    inventory(api, {"z1": SIZES})
    got = [host_of(api, compute(api, 1, 2.0)) for _ in range(4)]
    # free memory a 4096 b 8192 c 6144 -> b; then b and c tie on memory, c has more cores
    # free -> c; then b (6144) -> then a, b, c tie on memory (4096), a has the most cores
    assert got == ["h-b", "h-c", "h-b", "h-a"]


def test_random_places_only_where_it_fits(made):
    api = made(placement_strategy="random")
    inventory(api, {"z1": {"h-a": (1, 1024), "h-b": (8, 8192)}})
    assert host_of(api, compute(api, 2, 1.0)) == "h-b"  # h-a is too small for 2 cores
    hosts_used = {host_of(api, compute(api, 1, 0.5)) for _ in range(3)}
    assert hosts_used <= {"h-a", "h-b"}
    assert sum(v[2] for v in use(api).values()) == 4


def test_dispersed_spreads_one_projects_vms_over_hosts(made):
    api = made(placement_strategy="dispersed")
    inventory(api, {"z1": SIZES})
    service = api.service

    def create(project: str) -> str:
        ctx = RequestContext.unauthenticated(project)
        spec = Resource(
            INFRA + "compute", attributes={"occi.compute.cores": 1, "occi.compute.memory": 1.0}
        )
        (made_,) = service.create(ctx, "/compute/", [spec])
        with service.store.begin() as tx:
            return tx.conn.execute(
                sa.select(hosts.c.name)
                .select_from(entities.join(hosts, hosts.c.id == entities.c.host_id))
                .where(entities.c.id == made_.id)
            ).scalar_one()

    # another project's VMs do not count: p2 starts where p1 started
    assert [create("p1") for _ in range(4)] == ["h-a", "h-b", "h-c", "h-a"]
    assert create("p2") == "h-a"
    assert create("p2") == "h-b"


def test_tags_required_by_a_template_choose_the_hosts_that_carry_them(made):
    """A template declaring `placement.tags` needs hosts (or clusters) with every tag."""
    api = made()
    with api.service.store.begin() as tx:
        z = rows.add_zone(tx.conn, "z1")
        plain = rows.add_cluster(tx.conn, "plain", z)
        fast = rows.add_cluster(tx.conn, "fast", z, tags=("ssd",))
        rows.add_host(tx.conn, "a-plain", plain, cores=8, memory_mb=8192)
        rows.add_host(tx.conn, "b-ssd", fast, cores=8, memory_mb=8192)
        rows.add_host(tx.conn, "c-ssd-gpu", fast, cores=8, memory_mb=8192, tags=("gpu",))
    rows.announce(api.service)
    tpl = Mixin(
        "http://example.com/tpl#",
        "gpu",
        attributes={
            placement.TAGS_ATTRIBUTE: AttributeDef(placement.TAGS_ATTRIBUTE, default="ssd, gpu")
        },
    )
    assert placement.required_tags([tpl]) == ("ssd", "gpu")
    assert placement.required_tags([dataclasses.replace(tpl, user_defined=True)]) == ()
    with api.service.store.begin() as tx:
        snap = api.service.pool.snapshot(tx)

        def place(tags: tuple[str, ...]) -> str | None:
            ask = placement.Ask(z, "z1", 1, 512, "default", tags)
            where = placement.place_compute(tx, ask)
            return snap.hosts[where.host_id].name if where.host_id else None

        assert place(()) == "a-plain"
        assert place(("ssd",)) == "b-ssd"
        assert place(("ssd", "gpu")) == "c-ssd-gpu"
        with pytest.raises(errors.NoCapacity, match="with tags fpga"):
            place(("fpga",))


def test_resize_rechecks_the_host_and_a_stopped_vm_keeps_its_room(made, db_url):
    api = made(db_url)
    inventory(api, {"z1": {"h1": (4, 4096)}})
    one = api.path_of(compute(api, 2, 2.0))
    api.path_of(compute(api, 2, 2.0))
    grow = api.post(one, {"kind": INFRA + "compute", "attributes": {"occi.compute.cores": 3}})
    assert grow.status_code == 503, grow.text
    assert "zone z1" in grow.json["error"]["message"]
    assert api.get(one).json["attributes"]["occi.compute.cores"] == 2
    assert use(api) == {"h1": (4, 4096, 2)}
    for action in ("start", "stop"):
        done = api.post(f"{one}?action={action}", {"action": ACTION + action})
        assert done.status_code == 200, done.text
    assert api.get(one).json["attributes"]["occi.compute.state"] == "inactive"
    assert use(api) == {"h1": (4, 4096, 2)}  # stopped, still reserved
    shrink = api.post(one, {"kind": INFRA + "compute", "attributes": {"occi.compute.memory": 1.0}})
    assert shrink.status_code == 200, shrink.text
    assert use(api) == {"h1": (4, 3072, 2)}
    assert compute(api, 1, 2.0).status_code == 503
    assert compute(api, 0, 1.0).status_code in (201, 400)  # zero cores: the model's business


def test_delete_gives_the_room_back(made, db_url):
    api = made(db_url)
    inventory(api, {"z1": {"h1": (2, 2048)}})
    first = api.path_of(compute(api, 2, 2.0))
    assert compute(api, 1, 1.0).status_code == 503
    assert api.delete(first).status_code in (200, 204)
    assert use(api) == {"h1": (0, 0, 0)}
    again = compute(api, 2, 2.0)
    assert again.status_code == 201 and host_of(api, again) == "h1"


def test_zone_mixins_choose_the_zone_and_show_on_the_entity(made):
    api = made(default_zone="z2")
    inventory(api, {"z1": {"h1": (8, 8192)}, "z2": {"h2": (8, 8192)}, "z3": {"h3": (8, 8192)}})
    offered = {m["term"] for m in api.get("/-/").json["mixins"] if m["scheme"] == ZONE}
    assert offered == {"z1", "z2", "z3"}
    chosen = compute(api, 1, 1.0, [ZONE + "z3"])
    assert chosen.status_code == 201 and host_of(api, chosen) == "h3"
    assert ZONE + "z3" in api.get(api.path_of(chosen)).json["mixins"]
    default = compute(api, 1, 1.0)
    assert host_of(api, default) == "h2"  # the default_zone setting
    assert ZONE + "z2" in api.get(api.path_of(default)).json["mixins"]
    # the zone's collection lists what lives there
    listed = api.get("/mixin/availability_zone/z3/").json
    assert [r["id"] for r in listed.get("resources", [])] == [api.path_of(chosen).split("/")[-1]]
    # an entity does not move to another zone by an update
    moved = api.post(api.path_of(chosen), {"kind": INFRA + "compute", "mixins": [ZONE + "z1"]})
    assert moved.status_code == 400, moved.text
    two = compute(api, 1, 1.0, [ZONE + "z1", ZONE + "z2"])
    assert two.status_code == 400


def test_without_a_default_zone_setting_the_first_zone_by_name(made):
    api = made()
    inventory(api, {"zb": {"hb": (8, 8192)}, "za": {"ha": (8, 8192)}})
    assert host_of(api, compute(api, 1, 1.0)) == "ha"


def test_storage_and_network_live_in_a_zone_and_a_link_across_zones_is_400(made, db_url):
    api = made(db_url)
    ids = inventory(api, {"z1": {"h1": (8, 8192)}, "z2": {"h2": (8, 8192)}})
    vm = api.path_of(compute(api, 1, 1.0, [ZONE + "z1"]))
    net_here = api.create("network", mixins=[ZONE + "z1"])
    net_there = api.create("network", mixins=[ZONE + "z2"])
    disk = api.create("storage", {"occi.storage.size": 1.0}, mixins=[ZONE + "z2"])
    with api.service.store.begin() as tx:
        placed = {
            r.id: (r.zone_id, r.cluster_id, r.host_id)
            for r in tx.conn.execute(
                sa.select(
                    entities.c.id, entities.c.zone_id, entities.c.cluster_id, entities.c.host_id
                )
            )
        }
    for r, zone in ((net_there, "z2"), (disk, "z2"), (net_here, "z1")):
        assert placed[api.path_of(r).split("/")[-1]] == (ids[zone], ids[f"c-{zone}"], None)
    ok = api.post(
        "/link/networkinterface/",
        {"kind": INFRA + "networkinterface", "source": vm, "target": api.path_of(net_here)},
    )
    assert ok.status_code == 201, ok.text
    for target in (net_there, disk):
        kind = "networkinterface" if target is net_there else "storagelink"
        across = api.post(
            f"/link/{kind}/",
            {"kind": INFRA + kind, "source": vm, "target": api.path_of(target)},
        )
        assert across.status_code == 400, across.text
        assert across.headers["X-OCCI-Error-Code"] == "cross_zone_link"
        message = across.json["error"]["message"]
        assert "zone z1" in message and "zone z2" in message


def test_a_fresh_server_places_in_its_shorthand_and_without_an_inventory_not_at_all(made):
    api = made()
    first = compute(api, 2, 4.0)
    assert first.status_code == 201, first.text
    assert ZONE + "default" in api.get(api.path_of(first)).json["mixins"]
    assert host_of(api, first).startswith("sim")
    inventory(api, {})  # the shorthand dropped, nothing else: a create runs where it can
    r = compute(api, 64, 512.0)
    assert r.status_code == 201
    assert not any(m.startswith(ZONE) for m in api.get(api.path_of(r)).json.get("mixins", []))


def test_jobs_run_on_the_backend_of_the_entitys_cluster(made, tmp_path):
    """An `admin` cluster gets a backend of its own, built from its row's settings: its VMs
    exist on that platform, not on the process's."""
    api = made()
    own = f"sqlite:///{tmp_path}/other-platform.db"
    with api.service.store.begin() as tx:
        rows.drop_shorthand(tx.conn)
        z = rows.add_zone(tx.conn, "z1")
        c = rows.add_cluster(
            tx.conn, "c-other", z, origin="admin", settings=sealed(api, simulator_database_url=own)
        )
        rows.add_host(tx.conn, "h1", c, cores=8, memory_mb=8192)
    rows.announce(api.service)
    r = compute(api, 1, 1.0)
    assert r.status_code == 201, r.text
    entity = api.service.store.get_one(api.path_of(r).rsplit("/", 1)[-1], fresh=True)
    assert entity is not None and entity.placement is not None
    other = SimulatorBackend({"simulator_database_url": own})
    try:
        seen = other.observe(entity)  # there: NotFoundOnPlatform otherwise
        assert seen.attributes["occi.compute.cores"] == 1
    finally:
        other.close()
    with pytest.raises(NotFoundOnPlatform):
        api.service.backend.observe(entity)
    assert api.service.pool.backend_for(entity) is not api.service.backend
    assert entity.placement.host_name == "h1"
    assert json.dumps(api.get(api.path_of(r)).json).find("h1") == -1  # never rendered


def test_a_placed_create_costs_one_statement_more_than_an_unplaced_one(tmp_path):
    """The host is chosen and its room reserved by ONE statement; the placement rides in the
    INSERT the create makes anyway, and the host's name comes from the inventory map."""
    settings = Settings.from_mapping(
        {"database_url": f"sqlite:///{tmp_path}/n.db", "auth": "none", "log_level": "WARNING"}
    )
    app, service = build(settings, upgrade=True, run_jobs=False)
    api = Api(testing.TestClient(app), service)
    seen: list[str] = []

    def on_execute(conn, cursor, statement, *args) -> None:
        seen.append(" ".join(statement.split())[:60])

    def counted() -> list[str]:
        api.get("/-/")  # the registry (and the inventory map) rebuilt before counting
        seen.clear()
        # with an image, so both write index rows of mixins (the placed one its zone's too)
        assert (
            compute(api, 1, 1.0, ["http://occi.simulator.local/os_tpl#debian12"]).status_code == 201
        )
        return list(seen)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", on_execute)
    try:
        inventory(api, {})  # the shorthand dropped: no zone, nothing placed
        api.create("network")
        counted()  # the first job of a process registers it, the simulator's first machine
        unplaced = counted()
        inventory(api, {"z1": {"h1": (64, 65536)}})
        counted()
        placed = counted()
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", on_execute)
        service.store.close()
        service.backend.close()
    extra = [s for s in placed if s.startswith("UPDATE hosts")]
    assert len(extra) == 1, placed
    assert len(placed) == len(unplaced) + 1, "\n".join(["unplaced:", *unplaced, "placed:", *placed])


def test_a_zone_collection_lists_but_does_not_move_entities(made):
    api = made()
    inventory(api, {"z1": {"h1": (8, 8192)}, "z2": {"h2": (8, 8192)}})
    vm = api.path_of(compute(api, 1, 1.0, [ZONE + "z1"]))
    for method in ("post", "put", "delete"):
        r = getattr(api, method)("/mixin/availability_zone/z2/", {"locations": [vm]})
        assert r.status_code == 400, (method, r.text)
        assert "zone" in r.json["error"]["message"]
    assert ZONE + "z1" in api.get(vm).json["mixins"]
    assert ZONE + "z2" not in api.get(vm).json["mixins"]


def test_a_clusters_backend_is_built_once_and_again_when_its_row_changes(made, tmp_path):
    from occi.store.inventory_sql import clusters

    api = made()
    pool = api.service.pool
    with api.service.store.begin() as tx:
        z = rows.add_zone(tx.conn, "z1")
        mine = rows.add_cluster(tx.conn, "c-own", z)  # origin settings: the app's backend
        other = rows.add_cluster(
            tx.conn,
            "c-other",
            z,
            origin="admin",
            settings=sealed(api, simulator_database_url=f"sqlite:///{tmp_path}/one.db"),
        )
    rows.announce(api.service)
    assert pool.cluster_backend(mine) is api.service.backend
    first = pool.cluster_backend(other)
    assert first is not api.service.backend and pool.cluster_backend(other) is first
    with api.service.store.begin() as tx:
        tx.conn.execute(
            clusters.update()
            .where(clusters.c.id == other)
            .values(settings=sealed(api, simulator_database_url=f"sqlite:///{tmp_path}/2.db"))
        )
    rows.announce(api.service)
    api.get("/-/")  # the registry is rebuilt, and the inventory map read again
    second = pool.cluster_backend(other)
    assert second is not first
    assert pool.cluster_backend(other) is second
