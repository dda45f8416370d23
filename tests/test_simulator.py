"""The simulator backend against SQLite files: state machines, templates, links, persistence,
configured failures and delays, and agreement between instances sharing one database."""

from __future__ import annotations

import itertools
import re
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from backends.base import (
    InvalidTransition,
    NotFoundOnPlatform,
    PlatformError,
    Unsupported,
)
from backends.common import disk_names
from backends.simulator import SimulatorBackend, platform_name
from backends.simulator.catalog import OS_TPL_SCHEME, RESOURCE_TPL_SCHEME
from backends.simulator.database import normalise_url
from backends.simulator.schema import machines
from occi import infrastructure as infra
from occi.model import Link, Resource

_ids = itertools.count()


def new_id(prefix: str = "e") -> str:
    return f"{prefix}{next(_ids):04d}-{uuid.uuid4().hex[:12]}"


def compute(**attributes) -> Resource:
    return Resource(kind=infra.COMPUTE.id, id=new_id("c"), attributes=dict(attributes))


def storage(size: float = 10.0) -> Resource:
    return Resource(kind=infra.STORAGE.id, id=new_id("s"), attributes={"occi.storage.size": size})


def network() -> Resource:
    return Resource(kind=infra.NETWORK.id, id=new_id("n"))


def nic(attributes: dict | None = None, link_id: str | None = None) -> Link:
    return Link(
        kind=infra.NETWORKINTERFACE.id, id=link_id or new_id("l"), attributes=dict(attributes or {})
    )


def disk(attributes: dict | None = None) -> Link:
    return Link(kind=infra.STORAGELINK.id, id=new_id("d"), attributes=dict(attributes or {}))


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'occi.db'}"


@pytest.fixture
def make(db_url):
    made: list[SimulatorBackend] = []

    def factory(**settings) -> SimulatorBackend:
        b = SimulatorBackend({"database_url": db_url, **settings})
        made.append(b)
        return b

    yield factory
    for b in made:
        b.close()


@pytest.fixture
def sim(make) -> SimulatorBackend:
    return make()


def state(outcome, kind: str = "compute") -> str:
    return outcome.attributes[f"occi.{kind}.state"]


def message(outcome, kind: str = "compute") -> str:
    return outcome.attributes[f"occi.{kind}.state.message"]


# ---------------------------------------------------------------------- compute state machine
def test_compute_walks_the_whole_state_machine(sim):
    c = compute()
    out = sim.create(c)
    assert state(out) == "inactive" and "created" in message(out)

    assert state(sim.action(c, "start", {})) == "active"
    out = sim.action(c, "restart", {"method": "warm"})
    assert state(out) == "active" and "warm" in message(out)
    out = sim.action(c, "suspend", {"method": "hibernate"})
    assert state(out) == "suspended" and "hibernated" in message(out)
    out = sim.action(c, "start", {})
    assert state(out) == "active" and "resumed" in message(out)
    out = sim.action(c, "suspend", {"method": "suspend"})
    assert state(out) == "suspended" and "RAM" in message(out)
    sim.action(c, "start", {})
    out = sim.action(c, "stop", {"method": "poweroff"})
    assert state(out) == "inactive" and message(out) == "powered off"
    sim.action(c, "start", {})
    out = sim.action(c, "stop", {"method": "acpioff"})
    assert "ACPI" in message(out)
    # the full type identifier is understood as well as the term
    assert state(sim.action(c, infra.START.id, {})) == "active"
    assert sim.observe(c).attributes["occi.compute.state"] == "active"


def _bring_to(sim, c, target: str) -> None:
    sim.create(c)
    if target in ("active", "suspended"):
        sim.action(c, "start", {})
    if target == "suspended":
        sim.action(c, "suspend", {})


REFUSED = [
    ("inactive", "stop", "active"),
    ("inactive", "restart", "active"),
    ("inactive", "suspend", "active"),
    ("active", "start", "inactive or suspended or error"),
    ("suspended", "stop", "active"),
    ("suspended", "restart", "active"),
    ("suspended", "suspend", "active"),
    ("suspended", "save", "active or inactive"),
]


@pytest.mark.parametrize(("current", "action", "needs"), REFUSED)
def test_compute_refuses_impossible_transitions(sim, current, action, needs):
    c = compute()
    _bring_to(sim, c, current)
    with pytest.raises(InvalidTransition) as exc:
        sim.action(c, action, {})
    assert str(exc.value) == f"compute occi-{c.id} is {current}: {action} needs it {needs}"
    assert state(sim.observe(c)) == current  # nothing changed


def test_unknown_action_is_unsupported_and_missing_machine_not_found(sim):
    c = compute()
    sim.create(c)
    with pytest.raises(Unsupported, match="cannot up a compute"):
        sim.action(c, "up", {})
    ghost = compute()
    with pytest.raises(NotFoundOnPlatform, match=f"compute occi-{ghost.id} does not exist"):
        sim.action(ghost, "start", {})
    with pytest.raises(Unsupported):
        sim.create(Resource(kind="http://example.org/kinds#thing", id=new_id()))


def test_update_compute_live_when_active_and_for_next_start_when_not(sim):
    assert {"occi.compute.cores", "occi.compute.memory"} <= sim.live_attributes
    c = compute(**{"occi.compute.cores": 2, "occi.compute.memory": 4.0})
    sim.create(c)
    out = sim.update(c, {"occi.compute.cores": 4})
    assert state(out) == "inactive" and "next start" in message(out)
    sim.action(c, "start", {})
    out = sim.update(c, {"occi.compute.memory": 8.0})
    assert state(out) == "active" and "live" in message(out)
    seen = sim.observe(c).attributes
    assert seen["occi.compute.cores"] == 4 and seen["occi.compute.memory"] == 8.0
    with pytest.raises(NotFoundOnPlatform):
        sim.update(compute(), {"occi.compute.cores": 2})


# ---------------------------------------------------------------------- save and templates
def test_save_creates_an_os_template_that_persists(sim, make):
    c = compute()
    c.title = "web server"
    _bring_to(sim, c, "active")
    out = sim.action(c, "save", {"name": "golden image", "method": "hot"})
    assert state(out) == "active"
    m = out.mixin
    assert m is not None
    assert (m.scheme, m.term, m.title) == (OS_TPL_SCHEME, "golden-image", "golden image")
    assert m.depends == (infra.OS_TPL.id,) and m.applies == (infra.COMPUTE.id,)
    assert m.location == "/mixin/os_tpl/golden-image/"
    assert "golden-image" in message(out)

    # the same name again: a distinct image; inactive machines can be saved too
    sim.action(c, "stop", {})
    again = sim.action(c, "save", {"name": "golden image"})
    assert state(again) == "inactive" and again.mixin.term == "golden-image-2"
    generated = sim.action(c, "save", {}).mixin
    assert re.fullmatch(re.escape(c.id[:8]) + r"-\d{14}", generated.term)
    assert "web server" in generated.title

    fresh = make()  # another process on the same database
    terms = {x.term for x in fresh.provider_mixins() if x.scheme == OS_TPL_SCHEME}
    assert {"golden-image", "golden-image-2", generated.term} <= terms


def test_refused_save_creates_no_image(sim):
    c = compute()
    _bring_to(sim, c, "suspended")
    with pytest.raises(InvalidTransition):
        sim.action(c, "save", {"name": "never"})
    assert "never" not in {m.term for m in sim.provider_mixins()}


def test_save_never_shadows_a_builtin_image(sim):
    c = compute()
    sim.create(c)
    assert sim.action(c, "save", {"name": "debian12"}).mixin.term == "debian12-2"


def test_provider_mixins_offer_images_and_a_resource_template(make):
    sim = make(simulator_images="centos9, alpine-3.20,bad name!")
    mixins = {m.id: m for m in sim.provider_mixins()}
    for term in ("debian12", "ubuntu2404", "cirros", "centos9", "alpine-3.20"):
        m = mixins[OS_TPL_SCHEME + term]
        assert m.depends == (infra.OS_TPL.id,) and m.applies == (infra.COMPUTE.id,)
        assert m.location == f"/mixin/os_tpl/{term}/"
    assert mixins[OS_TPL_SCHEME + "debian12"].title == "Debian 12 (bookworm)"
    assert not any("bad" in mid for mid in mixins)
    xl = mixins[RESOURCE_TPL_SCHEME + "xlarge"]
    assert xl.depends == (infra.RESOURCE_TPL.id,) and xl.applies == (infra.COMPUTE.id,)
    assert xl.attributes["occi.compute.cores"].default == 8
    assert xl.attributes["occi.compute.memory"].default == 32.0
    assert not any(m.scheme == infra.CRTP_SCHEME for m in mixins.values())


# ---------------------------------------------------------------------- storage and network
def test_storage_states_and_resizing(sim):
    s = storage(10.0)
    assert state(sim.create(s), "storage") == "offline"
    with pytest.raises(
        InvalidTransition, match=r"storage occi-\S+ is offline: offline needs it online"
    ):
        sim.action(s, "offline", {})
    assert state(sim.action(s, "online", {}), "storage") == "online"
    with pytest.raises(InvalidTransition, match="is online: online needs it offline"):
        sim.action(s, "online", {})
    out = sim.update(s, {"occi.storage.size": 20.0})
    assert "grown from 10 GB to 20 GB" in message(out, "storage")
    with pytest.raises(InvalidTransition, match="shrinking a volume is not supported"):
        sim.update(s, {"occi.storage.size": 5.0})
    assert sim.observe(s).attributes["occi.storage.size"] == 20.0
    assert state(sim.action(s, "offline", {}), "storage") == "offline"
    with pytest.raises(Unsupported):
        sim.action(s, "resize", {})


def test_network_states(sim):
    n = network()
    assert state(sim.create(n), "network") == "inactive"
    with pytest.raises(InvalidTransition, match="is inactive: down needs it active"):
        sim.action(n, "down", {})
    assert state(sim.action(n, "up", {}), "network") == "active"
    with pytest.raises(InvalidTransition, match="is active: up needs it inactive"):
        sim.action(n, "up", {})
    assert state(sim.action(n, "down", {}), "network") == "inactive"


# ---------------------------------------------------------------------- links
MAC_RE = re.compile(r"02(:[0-9a-f]{2}){5}")


def test_network_interfaces_get_distinct_deterministic_macs_and_names(sim, make, tmp_path):
    c, n = compute(), network()
    sim.create(c)
    sim.create(n)
    l1, l2 = nic(), nic()
    a1 = sim.link(l1, c, n).attributes
    a2 = sim.link(l2, c, None).attributes  # external target
    assert (a1["occi.networkinterface.interface"], a2["occi.networkinterface.interface"]) == (
        "eth0",
        "eth1",
    )
    assert MAC_RE.fullmatch(a1["occi.networkinterface.mac"])
    assert a1["occi.networkinterface.mac"] != a2["occi.networkinterface.mac"]
    assert a1["occi.networkinterface.state"] == "inactive"  # compute not running

    # the same link id on another platform database gets the same MAC
    other = SimulatorBackend({"database_url": f"sqlite:///{tmp_path / 'other.db'}"})
    try:
        c2 = Resource(kind=infra.COMPUTE.id, id=c.id)
        other.create(c2)
        again = other.link(nic(link_id=l1.id), c2, None).attributes
        assert again["occi.networkinterface.mac"] == a1["occi.networkinterface.mac"]
    finally:
        other.close()

    # linking again is a no-op returning the same attachment
    assert sim.link(l1, c, n).attributes == a1
    # a client-chosen MAC is kept; an unlinked name is free again
    sim.unlink(l1)
    sim.unlink(l1)
    a3 = sim.link(nic({"occi.networkinterface.mac": "52:54:00:aa:bb:cc"}), c, n).attributes
    assert a3["occi.networkinterface.mac"] == "52:54:00:aa:bb:cc"
    assert a3["occi.networkinterface.interface"] == "eth0"


def test_storage_links_get_device_ids_and_follow_the_compute_state(sim):
    c, s1, s2, s3 = compute(), storage(), storage(), storage()
    for r in (c, s1, s2, s3):
        sim.create(r)
    sim.action(c, "start", {})
    d1, d2 = disk(), disk({"occi.storagelink.deviceid": "vdq"})
    a1 = sim.link(d1, c, s1).attributes
    assert a1["occi.storagelink.deviceid"] == "vdb"
    assert a1["occi.storagelink.state"] == "active"
    assert sim.link(d2, c, s2).attributes["occi.storagelink.deviceid"] == "vdq"
    assert sim.link(disk(), c, s3).attributes["occi.storagelink.deviceid"] == "vdc"
    with pytest.raises(InvalidTransition, match="vdb is already in use"):
        sim.link(disk({"occi.storagelink.deviceid": "vdb"}), c, s3)

    sim.action(c, "stop", {})
    assert sim.observe(d1).attributes["occi.storagelink.state"] == "inactive"
    sim.action(c, "start", {})
    assert sim.observe(d1).attributes["occi.storagelink.state"] == "active"


def test_link_needs_both_ends_on_the_platform(sim):
    c = compute()
    with pytest.raises(NotFoundOnPlatform):
        sim.link(nic(), c, None)
    sim.create(c)
    with pytest.raises(NotFoundOnPlatform):
        sim.link(disk(), c, storage())
    with pytest.raises(Unsupported):
        sim.link(Link(kind=infra.LINK.id, id=new_id()), c, None)


def test_disk_names_continue_past_z():
    names = list(itertools.islice(disk_names(), 27))
    assert names[0] == "vdb" and names[24] == "vdz" and names[25:] == ["vdaa", "vdab"]


# ---------------------------------------------------------------------- idempotence
def test_create_and_delete_are_idempotent(sim, db_url):
    c = compute()
    sim.create(c)
    sim.action(c, "start", {})
    out = sim.create(c)  # a retry does not duplicate nor reset the machine
    assert state(out) == "active"
    engine = create_engine(sim.database_url)
    try:
        with engine.connect() as conn:
            count = (
                select(func.count())
                .select_from(machines)
                .where(machines.c.name == platform_name(c))
            )
            assert conn.execute(count).scalar_one() == 1
            l1 = nic()
            sim.link(l1, c, None)
            sim.delete(c)
            sim.delete(c)
            assert conn.execute(count).scalar_one() == 0
    finally:
        engine.dispose()
    with pytest.raises(NotFoundOnPlatform):
        sim.observe(l1)  # the compute's attachments went with it
    with pytest.raises(NotFoundOnPlatform):
        sim.action(c, "start", {})
    sim.delete(l1)  # deleting a link entity unlinks it: idempotent too


# ---------------------------------------------------------------------- settings
def test_configured_failures_change_nothing(make):
    failing = make(simulator_fail="create, start")
    c = compute()
    with pytest.raises(PlatformError, match="^simulated failure of create$"):
        failing.create(c)
    with pytest.raises(NotFoundOnPlatform):
        failing.observe(c)
    healthy = make()
    healthy.create(c)
    with pytest.raises(PlatformError, match="simulated failure of start"):
        failing.action(c, "start", {})
    assert state(healthy.observe(c)) == "inactive"
    # operations not listed still work on the failing instance
    assert failing.action(c, "save", {}).mixin is not None
    assert state(healthy.action(c, "start", {})) == "active"


def test_delay_is_honoured(make):
    slow = make(simulator_delay="0.3")
    c = compute()
    t0 = time.monotonic()
    slow.create(c)
    assert time.monotonic() - t0 >= 0.3
    t0 = time.monotonic()
    slow.action(c, "start", {})
    assert time.monotonic() - t0 >= 0.3


def test_settings_and_ping(tmp_path):
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"
    good = SimulatorBackend({"database_url": f"sqlite:///{tmp_path / 'p.db'}"})
    bad = SimulatorBackend({"database_url": f"sqlite:///{tmp_path / 'missing' / 'dir' / 'p.db'}"})
    try:
        assert good.ping() is True
        assert bad.ping() is False
    finally:
        good.close()
        bad.close()


# ---------------------------------------------------------------------- several processes
def test_two_instances_on_one_database_agree(make):
    a, b = make(), make()
    c = compute()
    a.create(c)
    b.action(c, "start", {})
    with pytest.raises(InvalidTransition, match="is active"):
        a.action(c, "start", {})
    assert state(a.observe(c)) == "active"
    a.action(c, "stop", {})
    assert state(b.observe(c)) == "inactive"


def test_concurrent_starts_exactly_one_wins(make):
    backends = [make(), make()]
    rounds = 10
    for _ in range(rounds):
        c = compute()
        backends[0].create(c)
        barrier = threading.Barrier(2)
        results: list[str] = []
        lock = threading.Lock()

        def start(backend: SimulatorBackend, c=c, barrier=barrier, results=results, lock=lock):
            barrier.wait()
            try:
                backend.action(c, "start", {})
                outcome = "won"
            except InvalidTransition:
                outcome = "refused"
            with lock:
                results.append(outcome)

        threads = [threading.Thread(target=start, args=(b,)) for b in backends]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(results) == ["refused", "won"]
        assert state(backends[1].observe(c)) == "active"


def test_platform_state_sits_beside_an_sqlite_server_database(tmp_path):
    from backends.simulator.backend import platform_url

    assert (
        platform_url({"database_url": "sqlite:////x/occi.db"}) == "sqlite:////x/occi-simulator.db"
    )
    assert platform_url({"database_url": "postgresql://u@h/db"}) == "postgresql://u@h/db"
    explicit = {"database_url": "sqlite:///a.db", "simulator_database_url": "sqlite:///b.db"}
    assert platform_url(explicit) == "sqlite:///b.db"
