"""Host maintenance moves the computes of a host to the other hosts of its cluster (issue 12
item 7): on the simulator (three hosts, built with the admin service; running and stopped
computes), on libvirt's test driver (two hosts of different sizes, the domains found on the
target afterwards), when the other hosts have no room (error-in-maintenance naming what stayed,
and it keeps working), through the HTTP admin API of real gunicorn servers, and the 0007 -> 0008
upgrade of a database."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from falcon import testing

from occi.api.wsgi import build
from occi.context import RequestContext
from occi.inventory.service import InventoryService
from occi.settings import Settings
from occi.store.inventory_sql import hosts
from tests import inventory_rows as rows
from tests.api.conftest import INFRA, Api

HOSTS = Path(__file__).parent / "data" / "hosts"
SYSTEM = RequestContext.system()
ACTION = "http://schemas.ogf.org/occi/infrastructure/compute/action#"


class Cloud:
    """The real app (requests run their own jobs) and the admin service wired as a server
    wires it."""

    def __init__(self, settings: Settings):
        app, service = build(settings, upgrade=True, run_jobs=False)
        self.api = Api(testing.TestClient(app), service)
        self.service = service
        self.admin = InventoryService(service.store, settings)
        service.pool.settings_of = self.admin.cluster_settings
        self.admin.on_change = service.pool.invalidate
        self.admin.settle = lambda ids, timeout: service._runner().settle(ids, timeout)
        with service.store.begin() as tx:
            rows.drop_shorthand(tx.conn)
        rows.announce(service)

    def close(self) -> None:
        if self.service.runner is not None:
            self.service.runner.stop()
        self.service.pool.close()
        self.service.store.close()
        self.service.backend.close()

    def compute(self, cores: int = 1, memory: float = 1.0) -> str:
        doc = {
            "kind": INFRA + "compute",
            "attributes": {"occi.compute.cores": cores, "occi.compute.memory": memory},
        }
        r = self.api.post("/compute/", doc)
        assert r.status_code == 201, r.text
        return self.api.path_of(r)

    def act(self, location: str, action: str) -> None:
        r = self.api.post(f"{location}?action={action}", {"action": ACTION + action})
        assert r.status_code == 200, r.text

    def entity(self, location: str):
        found = self.service.store.get_one(location.rsplit("/", 1)[-1], fresh=True)
        assert found is not None
        return found

    def host_of(self, location: str) -> str:
        placement = self.entity(location).placement
        assert placement is not None and placement.host_id is not None
        return {h["id"]: h["name"] for h in self.admin.list_hosts(SYSTEM)}[placement.host_id]

    def attributes(self, location: str) -> dict:
        return dict(self.entity(location).attributes)

    def hosts(self) -> dict[str, dict]:
        return {h["name"]: h for h in self.admin.list_hosts(SYSTEM)}


def _settings(tmp_path, **extra) -> Settings:
    return Settings.from_mapping(
        {
            "database_url": f"sqlite:///{tmp_path}/m.db",
            "auth": "none",
            "secret_key": "a key for the maintenance tests",
            **extra,
        }
    )


@pytest.fixture
def sim(tmp_path):
    cloud = Cloud(_settings(tmp_path))
    cloud.admin.create_zone(SYSTEM, {"name": "z1"})
    cloud.admin.create_cluster(SYSTEM, {"name": "c1", "zone": "z1", "backend": "simulator"})
    for name, cores in (("h1", 8), ("h2", 4), ("h3", 4)):
        cloud.admin.create_host(
            SYSTEM, {"name": name, "cluster": "c1", "cores": cores, "memory_gb": 16}
        )
    yield cloud
    cloud.close()


def _use(doc: dict) -> tuple[int, int, int]:
    return doc["used_cores"], doc["used_memory_mb"], doc["vms"]


def test_maintenance_moves_running_and_stopped_computes_to_the_other_hosts(sim):
    placed = [sim.compute(cores=2) for _ in range(3)]  # firstfit: all on h1
    assert {sim.host_of(c) for c in placed} == {"h1"}
    for c in placed[:2]:  # two run, one stays stopped
        sim.act(c, "start")
    assert sim.attributes(placed[2])["occi.compute.state"] == "inactive"

    doc = sim.admin.host_action(SYSTEM, "h1", "maintenance")
    assert doc["admin_state"] == "maintenance", doc
    assert (doc["vms"], doc["used_cores"]) == (0, 0)

    where = {c: sim.host_of(c) for c in placed}
    assert set(where.values()) <= {"h2", "h3"} and len(set(where.values())) == 2, where
    states = [sim.attributes(c)["occi.compute.state"] for c in placed]
    assert states == ["active", "active", "inactive"]
    messages = [sim.attributes(c)["occi.compute.state.message"] for c in placed]
    assert "migrated live" in messages[0] and "stopped" in messages[2], messages
    use = {name: _use(h) for name, h in sim.hosts().items()}
    assert use["h1"] == (0, 0, 0)
    assert sum(u[0] for u in use.values()) == 6 and sum(u[2] for u in use.values()) == 3

    # the moved computes work where they are now; the stopped one starts on its new host
    sim.act(placed[2], "start")
    sim.act(placed[0], "stop")
    # and the simulated platform keeps hosts apart: the old placement finds nothing
    from backends.base import NotFoundOnPlatform

    moved = sim.entity(placed[1])
    b = sim.service.pool.backend_for(moved)
    assert b.observe(moved).attributes
    assert moved.placement is not None
    moved.placement.host_name = "h1"
    with pytest.raises(NotFoundOnPlatform):
        b.observe(moved)

    # new creates avoid the host in maintenance, until it is enabled again
    assert sim.host_of(sim.compute()) != "h1"
    with pytest.raises(Exception, match="cancel-maintenance first"):
        sim.admin.host_action(SYSTEM, "h1", "enable")
    assert sim.admin.host_action(SYSTEM, "h1", "cancel-maintenance")["admin_state"] == "enabled"
    assert sim.host_of(sim.compute()) == "h1"

    # deleting a moved compute gives back what it holds on its new host
    before = sim.hosts()[where[placed[1]]]
    assert sim.api.delete(placed[1]).status_code == 200
    after = sim.hosts()[where[placed[1]]]
    assert after["used_cores"] == before["used_cores"] - 2
    assert after["vms"] == before["vms"] - 1


def test_an_observation_through_the_host_a_compute_just_left_is_dropped(sim):
    """An event or reconcile pass that read the compute before its move was recorded observes
    it through the old host (NotFoundOnPlatform there): that stale observation must not put
    the moved compute in error."""
    c = sim.compute()
    sim.act(c, "start")
    before = sim.entity(c)  # read while it is still on h1
    assert sim.host_of(c) == "h1" and before.placement is not None
    sim.admin.host_action(SYSTEM, "h1", "maintenance")
    assert sim.host_of(c) != "h1"
    assert sim.service.reconciler._reconcile_batch([before]) == 0
    attributes = sim.attributes(c)
    assert attributes["occi.compute.state"] == "active", attributes
    # read afresh, through its new host, it is observed as usual
    assert sim.service.reconciler._reconcile_batch([sim.entity(c)]) == 0
    assert sim.attributes(c)["occi.compute.state"] == "active"


def test_a_host_without_computes_is_in_maintenance_at_once(sim):
    doc = sim.admin.host_action(SYSTEM, "h3", "maintenance")
    assert doc["admin_state"] == "maintenance"
    assert doc["state_message"]


def test_no_room_elsewhere_is_error_in_maintenance_naming_what_stayed(sim):
    big = [sim.compute(cores=4, memory=4) for _ in range(3)]  # h1 (8 cores) holds two
    assert [sim.host_of(c) for c in big] == ["h1", "h1", "h2"]
    sim.admin.host_action(SYSTEM, "h3", "disable")  # only h2 could take them: it is full
    doc = sim.admin.host_action(SYSTEM, "h1", "maintenance")
    assert doc["admin_state"] == "error-in-maintenance", doc
    for c in big[:2]:
        assert c in doc["state_message"]
    assert "room" in doc["state_message"]
    assert doc["vms"] == 2 and doc["used_cores"] == 8
    # they stayed on h1 and keep working there
    for c in big[:2]:
        assert sim.host_of(c) == "h1"
        sim.act(c, "start")
    # once there is room, maintenance again moves them
    sim.admin.host_action(SYSTEM, "h3", "enable")
    doc = sim.admin.host_action(SYSTEM, "h1", "maintenance")
    assert doc["admin_state"] == "error-in-maintenance"  # h3 (4 cores) takes only one
    assert sum(sim.host_of(c) == "h3" for c in big[:2]) == 1
    assert "room" in doc["state_message"]


def test_the_command_line_exit_code_says_whether_the_host_is_empty(
    sim, tmp_path, monkeypatch, capsys
):
    """A script must not take a host down with VMs still on it: `hosts maintenance` exits 0
    once the host is empty, 4 when some VMs could not move (naming them), 3 while they are
    still moving."""
    from occi.cli import main

    def maintenance(host: str) -> int:
        return main(["hosts", "maintenance", host, "--database-url", f"sqlite:///{tmp_path}/m.db"])

    big = [sim.compute(cores=4, memory=4) for _ in range(3)]  # h1 holds two, h2 one
    monkeypatch.setenv("OCCI_SECRET_KEY", "a key for the maintenance tests")
    assert maintenance("h3") == 0  # nothing on it
    assert capsys.readouterr() == ("host h3: admin state maintenance\n", "")
    assert maintenance("h1") == 4  # h2 is full, h3 in maintenance
    out, err = capsys.readouterr()
    assert out == "host h1: admin state error-in-maintenance\n"
    assert big[0] in err and big[1] in err and "room" in err
    for host in ("h1", "h3"):
        sim.admin.host_action(SYSTEM, host, "cancel-maintenance")
    monkeypatch.setenv("OCCI_JOB_WAIT", "0")  # no wait: the moves are only queued
    assert maintenance("h1") == 3
    assert capsys.readouterr().out == "host h1: admin state prepare-for-maintenance\n"


@pytest.fixture
def unwaited(tmp_path):
    """Two simulated hosts, and an admin API that does not wait for the moves (job_wait 0)."""
    cloud = Cloud(_settings(tmp_path, job_wait=0))
    cloud.admin.create_zone(SYSTEM, {"name": "z1"})
    cloud.admin.create_cluster(SYSTEM, {"name": "c1", "zone": "z1", "backend": "simulator"})
    for name in ("h1", "h2"):
        cloud.admin.create_host(SYSTEM, {"name": name, "cluster": "c1", "cores": 4, "memory_gb": 8})
    yield cloud
    cloud.close()


def test_without_waiting_the_host_prepares_and_the_jobs_finish_it(unwaited):
    cloud = unwaited
    c = cloud.compute()
    doc = cloud.admin.host_action(SYSTEM, "h1", "maintenance")
    assert doc["admin_state"] == "prepare-for-maintenance"
    with pytest.raises(Exception, match="its computes are moving away"):
        cloud.admin.host_action(SYSTEM, "h1", "maintenance")
    # no placement on a host preparing for maintenance
    assert cloud.host_of(cloud.compute()) == "h2"
    runner = cloud.service._runner()
    while runner.run_next():
        pass
    assert cloud.hosts()["h1"]["admin_state"] == "maintenance"
    assert cloud.host_of(c) == "h2"


def test_cancel_before_the_moves_start_leaves_the_computes_where_they_are(unwaited):
    cloud = unwaited
    c = cloud.compute()
    assert cloud.admin.host_action(SYSTEM, "h1", "maintenance")["vms"] == 1
    assert cloud.admin.host_action(SYSTEM, "h1", "cancel-maintenance")["admin_state"] == "enabled"
    runner = cloud.service._runner()
    while runner.run_next():
        pass
    assert cloud.host_of(c) == "h1"
    assert cloud.hosts()["h1"]["admin_state"] == "enabled"
    assert _use(cloud.hosts()["h2"]) == (0, 0, 0)


# ------------------------------------------------------------------ the simulator's hosts
def _on(entity, host: str | None):
    from occi.model import Placement

    entity.placement = Placement(host_name=host)
    return entity


def test_the_simulator_keeps_hosts_apart_and_moves_computes(tmp_path):
    from backends.base import NotFoundOnPlatform
    from backends.simulator import SimulatorBackend
    from occi import infrastructure as infra
    from occi.model import Resource

    b = SimulatorBackend({"database_url": f"sqlite:///{tmp_path}/sim.db"})
    try:
        vm = _on(Resource(kind=infra.COMPUTE.id, id="vm-1", attributes={}), "h1")
        b.create(vm)
        b.action(vm, ACTION + "start", {})
        with pytest.raises(NotFoundOnPlatform):
            b.observe(_on(vm, "h2"))
        with pytest.raises(NotFoundOnPlatform):
            b.action(vm, ACTION + "stop", {})
        b.delete(vm)  # not on h2: nothing deleted there
        assert b.observe(_on(vm, None)).attributes["occi.compute.state"] == "active"  # any host

        out = b.migrate(_on(vm, "h1"), "h2", live=True)
        assert out.attributes["occi.compute.state"] == "active"
        assert "migrated live" in out.attributes["occi.compute.state.message"]
        with pytest.raises(NotFoundOnPlatform):
            b.observe(vm)  # still placed on h1: gone from there
        assert b.migrate(vm, "h2", live=True).attributes["occi.compute.state"] == "active"  # again
        b.action(_on(vm, "h2"), ACTION + "stop", {})
        out = b.migrate(vm, "h3", live=True)
        assert out.attributes["occi.compute.state"] == "inactive"
        assert "stopped" in out.attributes["occi.compute.state.message"]
        b.delete(_on(vm, "h3"))
        with pytest.raises(NotFoundOnPlatform):
            b.observe(_on(vm, None))
    finally:
        b.close()


# ------------------------------------------------------------------ libvirt's test driver
def test_libvirt_maintenance_moves_the_domains_to_the_other_host(tmp_path):
    uri = {name: f"test://{HOSTS / f'{name}.xml'}" for name in ("large", "small")}
    cloud = Cloud(
        _settings(
            tmp_path,
            backend="libvirt",
            libvirt_uri=uri["large"],
            libvirt_pool="default-pool",
            libvirt_console_dir="",
        )
    )
    try:
        backend = cloud.service.backend
        sizes = {name: backend.host_capacity(u) for name, u in uri.items()}
        assert sizes["large"].memory_mb > sizes["small"].memory_mb
        with cloud.service.store.begin() as tx:
            zone = rows.add_zone(tx.conn, "z1")
            cluster = rows.add_cluster(tx.conn, "c1", zone, backend="libvirt")
            for name, size in sizes.items():
                rows.add_host(
                    tx.conn,
                    name,
                    cluster,
                    cores=size.cores,
                    memory_mb=size.memory_mb,
                    uri=uri[name],
                )
        rows.announce(cloud.service)
        placed = [cloud.compute(memory=0.5) for _ in range(2)]
        assert {cloud.host_of(c) for c in placed} == {"large"}
        for c in placed:  # one runs, one is stopped
            if cloud.attributes(c)["occi.compute.state"] != "inactive":
                cloud.act(c, "stop")
        cloud.act(placed[0], "start")

        doc = cloud.admin.host_action(SYSTEM, "large", "maintenance")
        assert doc["admin_state"] == "maintenance", doc
        assert {cloud.host_of(c) for c in placed} == {"small"}
        assert [cloud.attributes(c)["occi.compute.state"] for c in placed] == [
            "active",
            "inactive",
        ]
        small = cloud.hosts()["small"]
        assert (small["vms"], small["used_memory_mb"]) == (2, 1024)
        # libvirt has the domains on the small host now, and not on the large one
        for c in placed:
            entity = cloud.entity(c)
            b = cloud.service.pool.backend_for(entity)
            assert entity.placement is not None and entity.placement.host_uri == uri["small"]
            assert b.observe(entity).attributes
            entity.placement.host_name, entity.placement.host_uri = "large", uri["large"]
            from backends.base import NotFoundOnPlatform

            with pytest.raises(NotFoundOnPlatform):
                b.observe(entity)
        cloud.act(placed[1], "start")
    finally:
        cloud.close()


# ------------------------------------------------------------------ migration
def test_upgrade_from_0007_allows_prepare_for_maintenance(db_url):
    from alembic import command

    from occi.store import make_store
    from occi.store.sql import alembic_config

    s = make_store(db_url)
    try:
        with s.engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0007")
            zone = rows.add_zone(conn, "z1")
            cluster = rows.add_cluster(conn, "c1", zone)
            rows.add_host(conn, "h1", cluster, cores=4, memory_mb=4096, admin_state="maintenance")
        s.upgrade()
        with s.engine.begin() as conn:
            conn.execute(hosts.update().values(admin_state="prepare-for-maintenance"))
            assert conn.execute(sa.select(hosts.c.admin_state)).scalar_one() == (
                "prepare-for-maintenance"
            )
        with pytest.raises(sa.exc.IntegrityError), s.engine.begin() as conn:
            conn.execute(hosts.update().values(admin_state="asleep"))
    finally:
        s.close()


# ------------------------------------------------------------------ real servers, real HTTP
KEY = "a key for the maintenance tests"


def _users(url: str) -> None:
    """An administrator (root) and a member of the default project (alice), with passwords."""
    from occi.identity.passwords import hash_password
    from occi.identity.store import IdentityTx
    from occi.store import make_store

    s = make_store(url)
    try:
        s.upgrade()
        with s.begin() as tx:
            ids = IdentityTx(tx)
            for name, project, role in (("alice", "default", "member"), ("root", None, "admin")):
                ids.create_user(name, password_hash=hash_password(f"{name}-password"))
                ids.grant(name, project, role)
    finally:
        s.close()


def _cloud_from_the_command_line(url: str, monkeypatch, hosts_cores: dict[str, int]) -> None:
    from occi.cli import main

    monkeypatch.setenv("OCCI_SECRET_KEY", KEY)
    monkeypatch.delenv("OCCI_CONFIG", raising=False)
    cli = lambda *argv: main([*argv, "--database-url", url])  # noqa: E731
    assert cli("zones", "create", "z1") == 0
    assert cli("clusters", "create", "c1", "--zone", "z1", "--backend", "simulator") == 0
    for name, cores in hosts_cores.items():
        assert cli("hosts", "create", name, "--cluster", "c1", "--cores", str(cores),
                   "--memory-gb", "16") == 0  # fmt: skip
    # the one-cluster shorthand's zone comes first by name otherwise: computes name z1
    assert cli("hosts", "list") == 0


class Http:
    def __init__(self, url: str):
        import requests

        self.url = url
        self.requests = requests

    def admin(self, method: str, path: str) -> dict:
        r = self.requests.request(
            method,
            f"{self.url}/-/admin{path}",
            auth=("root", "root-password"),
            headers={"Accept": "application/json"},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        return r.json()

    def compute(self, cores: int, start: bool) -> str:
        doc = {
            "kind": INFRA + "compute",
            "mixins": ["http://occi.simulator.local/availability_zone#z1"],
            "attributes": {"occi.compute.cores": cores, "occi.compute.memory": 1.0},
        }
        r = self.requests.post(
            f"{self.url}/compute/",
            json=doc,
            auth=("alice", "alice-password"),
            headers={"Content-Type": "application/occi+json", "Accept": "application/occi+json"},
            timeout=60,
        )
        assert r.status_code == 201, r.text
        location = r.headers["Location"].split(self.url, 1)[-1]
        if start:
            r = self.requests.post(
                f"{self.url}{location}?action=start",
                json={"action": ACTION + "start"},
                auth=("alice", "alice-password"),
                headers={"Content-Type": "application/occi+json"},
                timeout=60,
            )
            assert r.status_code == 200, r.text
        return location

    def compute_state(self, location: str) -> str:
        r = self.requests.get(
            f"{self.url}{location}",
            auth=("alice", "alice-password"),
            headers={"Accept": "application/occi+json"},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        return str(r.json()["attributes"]["occi.compute.state"])


def _live(tmp_path, url: str, **settings):
    from tests.live import LiveServer

    return LiveServer(
        tmp_path, database_url=url, auth="basic", secret_key=KEY, log_level="WARNING", **settings
    )


def test_maintenance_through_the_admin_api_of_a_real_server(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/occi.db"
    _users(url)
    _cloud_from_the_command_line(url, monkeypatch, {"h1": 8, "h2": 4, "h3": 4})
    server = _live(tmp_path, url)
    try:
        http = Http(server.url)
        placed = [http.compute(2, start=i < 2) for i in range(3)]
        assert http.admin("GET", "/hosts/h1")["vms"] == 3
        doc = http.admin("POST", "/hosts/h1/maintenance")
        assert doc["admin_state"] == "maintenance", doc
        assert doc["vms"] == 0
        others = http.admin("GET", "/hosts")["hosts"]
        assert sum(h["vms"] for h in others) == 3
        assert [http.compute_state(c) for c in placed] == ["active", "active", "inactive"]
        # new computes avoid h1 until its maintenance is cancelled
        http.compute(1, start=False)
        assert http.admin("GET", "/hosts/h1")["vms"] == 0
        assert http.admin("POST", "/hosts/h1/cancel-maintenance")["admin_state"] == "enabled"

        # the command line's maintenance runs the moves itself while the server runs too
        from occi.cli import main

        h2 = http.admin("GET", "/hosts/h2")
        assert h2["vms"] >= 1
        assert main(["hosts", "maintenance", "h2", "--database-url", url]) == 0
        h2 = http.admin("GET", "/hosts/h2")
        assert (h2["admin_state"], h2["vms"]) == ("maintenance", 0)
        assert sorted(http.compute_state(c) for c in placed) == ["active", "active", "inactive"]
    finally:
        server.stop()


def test_two_servers_on_postgresql_share_the_moves(tmp_path, pg_url, monkeypatch):
    import time

    _users(pg_url)
    _cloud_from_the_command_line(pg_url, monkeypatch, {"h1": 16, "h2": 8, "h3": 8})
    a = _live(tmp_path, pg_url, job_wait=0)
    b = _live(tmp_path, pg_url, job_wait=0)
    try:
        placed = [Http(a.url).compute(1, start=i % 2 == 0) for i in range(8)]
        doc = Http(b.url).admin("POST", "/hosts/h1/maintenance")
        assert doc["admin_state"] in ("prepare-for-maintenance", "maintenance"), doc
        deadline = time.monotonic() + 60
        while doc["admin_state"] == "prepare-for-maintenance" and time.monotonic() < deadline:
            time.sleep(0.2)
            doc = Http(a.url).admin("GET", "/hosts/h1")
        assert (doc["admin_state"], doc["vms"], doc["used_cores"]) == ("maintenance", 0, 0)
        hosts_now = {h["name"]: h for h in Http(b.url).admin("GET", "/hosts")["hosts"]}
        assert hosts_now["h2"]["vms"] + hosts_now["h3"]["vms"] == 8
        assert hosts_now["h2"]["used_cores"] + hosts_now["h3"]["used_cores"] == 8
        states = [Http(b.url).compute_state(c) for c in placed]
        assert states == ["active", "inactive"] * 4
    finally:
        a.stop()
        b.stop()
