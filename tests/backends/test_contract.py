"""One contract suite for every backend (backends/base.py), run against each declared contract
target: every `occi.backend_contracts` entry point (backends/contract.py), so a backend installed
from another distribution joins by declaring itself. Each target is a cluster of several hosts
of different sizes (the simulator with simulator_hosts, libvirt's test driver with two host
files). What a backend declares it cannot do (Backend.capabilities) is checked to raise
Unsupported, never skipped.

Every test uses fresh entity ids (and so fresh `occi-<id>` names): a platform may be shared by
the tests of a process.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from backends.base import (
    CAPABILITIES,
    COMPUTE_MIGRATE,
    COMPUTE_SAVE,
    CONTEXTUALISATION,
    LINK_HOTPLUG,
    LINK_OFFLINE,
    STORAGE_RESIZE,
    Backend,
    InvalidTransition,
    NotFoundOnPlatform,
    Outcome,
    Pending,
    Unsupported,
)
from backends.contract import ContractCluster, ContractHost
from occi import infrastructure as infra
from occi import plugins
from occi.model import Link, Resource

STATE = {
    "compute": "occi.compute.state",
    "storage": "occi.storage.state",
    "network": "occi.network.state",
}
#: every backend that declared a target, read when the suite is collected
TARGETS = plugins.contract_names()


def __getattr__(name: str) -> Any:
    """Names tests elsewhere import from here; they live in backends.libvirt.contract now
    (imported on use: this suite needs no libvirt to run on the other backends)."""
    if name in ("TEST_URI", "TEST_POOL", "libvirt_backend"):
        from backends.libvirt import contract

        return contract.on_test_driver if name == "libvirt_backend" else getattr(contract, name)
    raise AttributeError(name)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=TARGETS)
def cluster(request: pytest.FixtureRequest, tmp_path) -> Iterator[ContractCluster]:
    made = plugins.load_contract(request.param).make(tmp_path)
    try:
        yield made
    finally:
        made.backend.close()
        if made.cleanup is not None:
            made.cleanup()


@pytest.fixture
def backend(cluster: ContractCluster) -> Backend:
    return cluster.backend


def test_every_installed_backend_declares_a_contract_target():
    """No backend escapes the suite: each one installed (occi.backends) declared a target.
    Missing built-in ones mean a stale install: `make install-test` registers them. A target
    loads wherever its backend does (a backend without its SDK fails its tests instead)."""
    missing = set(plugins.available()) - set(TARGETS)
    assert not missing, f"no contract target for {sorted(missing)}: reinstall the package"
    for name in TARGETS:
        if plugins.probe(name).usable:
            assert plugins.load_contract(name).name == name


# ---------------------------------------------------------------------------- helpers
def os_tpl_of(backend: Backend) -> str:
    images = [m for m in backend.provider_mixins() if infra.OS_TPL.id in m.depends]
    assert images, "a backend offers at least one os_tpl image"
    return images[0].id


def compute(
    backend: Backend, *, image: bool = True, on: ContractHost | None = None, **attributes
) -> Resource:
    """A compute (not created yet), placed on host `on` when given."""
    attrs = {"occi.compute.cores": 1, "occi.compute.memory": 0.25, **attributes}
    mixins = [os_tpl_of(backend)] if image else []
    c = Resource(
        kind=infra.COMPUTE.id, id=new_id("c"), mixins=mixins, attributes=attrs, location=None
    )
    c.placement = on.placement() if on is not None else None
    return c


def seen_on(entity: Resource, host: ContractHost) -> Resource:
    """The same entity with a placement naming `host` (as the server would hand it)."""
    copy = Resource(
        kind=entity.kind,
        id=entity.id,
        mixins=list(entity.mixins),
        attributes=dict(entity.attributes),
        location=entity.location,
    )
    copy.placement = host.placement()
    return copy


def storage(size: float = 1.0) -> Resource:
    return Resource(kind=infra.STORAGE.id, id=new_id("s"), attributes={"occi.storage.size": size})


def network(address: str | None = None) -> Resource:
    if address is None:
        return Resource(kind=infra.NETWORK.id, id=new_id("n"))
    return Resource(
        kind=infra.NETWORK.id,
        id=new_id("n"),
        mixins=[infra.IPNETWORK.id],
        attributes={"occi.network.address": address},
    )


def link_between(kind: str, source: Resource, target: Resource, **attributes) -> Link:
    return Link(
        kind=kind,
        id=new_id("l"),
        attributes=dict(attributes),
        source=f"/compute/{source.id}",
        target=f"/{'storage' if kind == infra.STORAGELINK.id else 'network'}/{target.id}",
    )


def created(backend: Backend, entity: Resource) -> Resource:
    out = backend.create(entity)
    assert isinstance(out, Outcome)
    entity.attributes.update(out.attributes)
    return entity


def act(backend: Backend, entity: Resource, term: str, **params) -> Outcome:
    out = backend.action(entity, term, params)
    entity.attributes.update(out.attributes)
    return out


def settle(backend: Backend, entity: Resource, state: str, timeout: float = 10.0) -> Outcome:
    """observe() until the entity reaches `state` (a backend may finish a stop later)."""
    key = STATE[entity.kind.rsplit("#", 1)[1]]
    deadline = time.monotonic() + timeout
    while True:
        out = backend.observe(entity)
        if out.attributes[key] == state or time.monotonic() > deadline:
            assert out.attributes[key] == state, out.attributes
            entity.attributes.update(out.attributes)
            return out
        time.sleep(0.2)


# ---------------------------------------------------------------------------- discovery
def test_declared_capabilities_are_known_ones(backend):
    assert backend.capabilities <= CAPABILITIES
    assert isinstance(backend.name, str) and backend.name != "abstract"
    assert backend.ping()


def test_provider_mixins_are_templates_for_compute(backend):
    mixins = backend.provider_mixins()
    images = [m for m in mixins if infra.OS_TPL.id in m.depends]
    sizes = [m for m in mixins if infra.RESOURCE_TPL.id in m.depends]
    assert images and sizes
    for m in (*images, *sizes):
        assert m.applies == (infra.COMPUTE.id,)
        assert m.location and m.location.endswith(f"/{m.term}/")
    for m in sizes:
        assert m.attributes["occi.compute.cores"].default >= 1


# ---------------------------------------------------------------------------- compute
def test_compute_walks_its_state_machine(backend):
    c = created(backend, compute(backend))
    assert c.attributes["occi.compute.state"] == "inactive"
    assert backend.observe(c).attributes["occi.compute.state"] == "inactive"
    assert act(backend, c, "start").attributes["occi.compute.state"] == "active"
    with pytest.raises(InvalidTransition):
        backend.action(c, "start", {})
    assert (
        act(backend, c, "suspend", method="suspend").attributes["occi.compute.state"] == "suspended"
    )
    with pytest.raises(InvalidTransition):
        backend.action(c, "stop", {"method": "graceful"})
    assert act(backend, c, "start").attributes["occi.compute.state"] == "active"
    assert act(backend, c, "restart", method="cold").attributes["occi.compute.state"] == "active"
    assert act(backend, c, "restart", method="warm").attributes["occi.compute.state"] == "active"
    assert (
        act(backend, c, "suspend", method="hibernate").attributes["occi.compute.state"]
        == "suspended"
    )
    assert backend.observe(c).attributes["occi.compute.state"] == "suspended"
    assert act(backend, c, "start").attributes["occi.compute.state"] == "active"
    out = act(backend, c, "stop", method="poweroff")
    assert out.attributes["occi.compute.state"] == "inactive"
    assert backend.observe(c).attributes["occi.compute.state"] == "inactive"
    with pytest.raises(InvalidTransition):
        backend.action(c, "stop", {"method": "poweroff"})
    with pytest.raises(InvalidTransition):
        backend.action(c, "suspend", {"method": "suspend"})
    backend.delete(c)


@pytest.mark.parametrize("method", ["graceful", "acpioff"])
def test_guest_stops_end_inactive_now_or_after_a_stopping_message(backend, method):
    c = created(backend, compute(backend))
    act(backend, c, "start")
    out = act(backend, c, "stop", method=method)
    state = out.attributes["occi.compute.state"]
    message = out.attributes["occi.compute.state.message"]
    assert state in ("active", "inactive")
    if state == "active":  # the guest is asked; observe() reports the end
        assert "stopping" in message
    out = settle(backend, c, "inactive")
    assert "stop" in out.attributes["occi.compute.state.message"]
    backend.delete(c)


def test_create_is_idempotent_and_delete_too(backend):
    c = compute(backend)
    created(backend, c)
    again = backend.create(c)  # a retried job
    assert again.attributes["occi.compute.state"] == "inactive"
    backend.delete(c)
    backend.delete(c)
    with pytest.raises(NotFoundOnPlatform):
        backend.observe(c)
    with pytest.raises(NotFoundOnPlatform):
        backend.action(c, "start", {})


def test_unknown_actions_are_unsupported(backend):
    c = created(backend, compute(backend))
    with pytest.raises(Unsupported):
        backend.action(c, "up", {})
    backend.delete(c)


def test_update_compute_size_is_observed(backend):
    c = created(backend, compute(backend))
    out = backend.update(c, {"occi.compute.cores": 2, "occi.compute.memory": 0.5})
    assert out.attributes["occi.compute.state"] == "inactive"
    assert "next start" in out.attributes["occi.compute.state.message"]
    seen = backend.observe(c).attributes
    assert (seen["occi.compute.cores"], seen["occi.compute.memory"]) == (2, 0.5)
    assert {"occi.compute.cores", "occi.compute.memory"} >= backend.live_attributes
    backend.delete(c)


def test_save_makes_a_new_os_tpl_or_is_unsupported(backend):
    c = created(backend, compute(backend))
    name = new_id("img")
    if COMPUTE_SAVE not in backend.capabilities:
        with pytest.raises(Unsupported):
            backend.action(c, "save", {"name": name, "method": "hot"})
        return
    out = act(backend, c, "save", name=name, method="hot")
    assert out.mixin is not None and out.mixin.term == name
    assert infra.OS_TPL.id in out.mixin.depends
    assert out.attributes["occi.compute.state"] == "inactive"
    assert out.mixin.id in {m.id for m in backend.provider_mixins()}
    # the new image makes computes too
    other = Resource(
        kind=infra.COMPUTE.id,
        id=new_id("c"),
        mixins=[out.mixin.id],
        attributes={"occi.compute.cores": 1, "occi.compute.memory": 0.25},
    )
    assert created(backend, other).attributes["occi.compute.state"] == "inactive"
    backend.delete(other)
    backend.delete(c)


def test_contextualisation_is_honoured_or_unsupported(backend):
    c = compute(
        backend,
        **{
            "occi.credentials.ssh.publickey": "ssh-ed25519 AAAAC3Nza test@x",
            "occi.compute.userdata": "I2Nsb3VkLWNvbmZpZwo=",
        },
    )
    c.mixins += [infra.SSH_KEY.id, infra.USER_DATA.id]
    if CONTEXTUALISATION in backend.capabilities:
        assert created(backend, c).attributes["occi.compute.state"] == "inactive"
        backend.delete(c)
    else:
        with pytest.raises(Unsupported):
            backend.create(c)
        with pytest.raises(NotFoundOnPlatform):  # nothing was left behind
            backend.observe(c)


# ---------------------------------------------------------------------------- storage
def test_storage_states_and_resize(backend):
    s = created(backend, storage(1.0))
    assert s.attributes["occi.storage.state"] == "offline"
    assert act(backend, s, "online").attributes["occi.storage.state"] == "online"
    with pytest.raises(InvalidTransition):
        backend.action(s, "online", {})
    assert backend.observe(s).attributes["occi.storage.state"] == "online"
    if STORAGE_RESIZE in backend.capabilities:
        backend.update(s, {"occi.storage.size": 2.0})
        assert backend.observe(s).attributes["occi.storage.size"] == 2.0
    else:
        with pytest.raises(Unsupported):
            backend.update(s, {"occi.storage.size": 2.0})
        assert backend.observe(s).attributes["occi.storage.size"] == 1.0
    with pytest.raises(InvalidTransition):
        backend.update(s, {"occi.storage.size": 0.5})
    assert act(backend, s, "offline").attributes["occi.storage.state"] == "offline"
    backend.delete(s)
    backend.delete(s)
    with pytest.raises(NotFoundOnPlatform):
        backend.observe(s)


def kept(entity: Resource, out: Outcome | Pending) -> Outcome:
    """An operation's Outcome, its attributes stored in the entity as the server would."""
    assert isinstance(out, Outcome)
    entity.attributes.update(out.attributes)
    return out


def test_typed_compute_operations(backend):
    """The typed contract (compute_create, compute_start, ...) on every backend, whichever
    side of the contract it implements: the same postconditions as the generic calls."""
    c = compute(backend)
    out = kept(c, backend.compute_create(c))
    assert out.attributes["occi.compute.state"] == "inactive"
    assert kept(c, backend.compute_start(c)).attributes["occi.compute.state"] == "active"
    with pytest.raises(InvalidTransition):
        backend.compute_start(c)
    assert (
        kept(c, backend.compute_suspend(c, "suspend")).attributes["occi.compute.state"]
        == "suspended"
    )
    assert kept(c, backend.compute_start(c)).attributes["occi.compute.state"] == "active"
    assert kept(c, backend.compute_restart(c, "cold")).attributes["occi.compute.state"] == "active"
    assert (
        kept(c, backend.compute_stop(c, "poweroff")).attributes["occi.compute.state"] == "inactive"
    )
    with pytest.raises(InvalidTransition):
        backend.compute_stop(c, "poweroff")
    kept(c, backend.compute_resize(c, 2, 0.5))
    seen = backend.observe(c).attributes
    assert (seen["occi.compute.cores"], seen["occi.compute.memory"]) == (2, 0.5)
    assert backend.compute_delete(c) is None
    assert backend.compute_delete(c) is None  # gone is done
    with pytest.raises(NotFoundOnPlatform):
        backend.observe(c)


def test_typed_storage_network_and_link_operations(backend):
    s = storage(1.0)
    out = kept(s, backend.storage_create(s))
    assert out.attributes["occi.storage.state"] == "offline"
    assert kept(s, backend.storage_online(s)).attributes["occi.storage.state"] == "online"
    if STORAGE_RESIZE in backend.capabilities:
        kept(s, backend.storage_resize(s, 2.0))
        assert backend.observe(s).attributes["occi.storage.size"] == 2.0
    else:
        with pytest.raises(Unsupported):
            backend.storage_resize(s, 2.0)
    with pytest.raises(InvalidTransition):
        backend.storage_resize(s, 0.5)  # grows only
    assert kept(s, backend.storage_offline(s)).attributes["occi.storage.state"] == "offline"
    n = network()
    assert kept(n, backend.network_create(n)).attributes["occi.network.state"] == "inactive"
    assert kept(n, backend.network_up(n)).attributes["occi.network.state"] == "active"
    assert kept(n, backend.network_down(n)).attributes["occi.network.state"] == "inactive"
    c = created(backend, compute(backend))
    disk = link_between(infra.STORAGELINK.id, c, s)
    if LINK_OFFLINE in backend.capabilities:
        attached = backend.link_attach(disk, c, s)
        assert isinstance(attached, Outcome) and attached.attributes["occi.storagelink.deviceid"]
        assert backend.link_detach(disk) is None
        with pytest.raises(NotFoundOnPlatform):
            backend.observe(disk)
    assert backend.link_detach(disk) is None  # never attached, or detached: done
    for e in (c, s, n):
        backend.delete(e)
    assert backend.storage_delete(s) is None and backend.network_delete(n) is None
    with pytest.raises(NotFoundOnPlatform):
        backend.observe(s)


# ---------------------------------------------------------------------------- network
def test_network_up_and_down(backend):
    n = created(backend, network("10.77.0.0/24"))
    assert n.attributes["occi.network.state"] == "inactive"
    assert act(backend, n, "up").attributes["occi.network.state"] == "active"
    assert backend.observe(n).attributes["occi.network.state"] == "active"
    with pytest.raises(InvalidTransition):
        backend.action(n, "up", {})
    assert act(backend, n, "down").attributes["occi.network.state"] == "inactive"
    with pytest.raises(InvalidTransition):
        backend.action(n, "down", {})
    backend.delete(n)
    with pytest.raises(NotFoundOnPlatform):
        backend.observe(n)


# ---------------------------------------------------------------------------- links
def test_links_on_a_stopped_compute(backend):
    c = created(backend, compute(backend))
    s = created(backend, storage(1.0))
    n = created(backend, network())
    disk = link_between(infra.STORAGELINK.id, c, s)
    nic = link_between(infra.NETWORKINTERFACE.id, c, n)
    if LINK_OFFLINE not in backend.capabilities:
        with pytest.raises(Unsupported):
            backend.link(disk, c, s)
        return
    d = backend.link(disk, c, s).attributes
    assert d["occi.storagelink.deviceid"] == "vdb"
    assert d["occi.storagelink.state"] == "inactive"
    disk.attributes.update(d)
    i = backend.link(nic, c, n).attributes
    assert i["occi.networkinterface.interface"] == "eth0"
    assert len(i["occi.networkinterface.mac"]) == 17
    nic.attributes.update(i)
    assert backend.link(nic, c, n).attributes == i  # a retried job
    # a second disk gets the next device; a taken device id is refused
    s2 = created(backend, storage(1.0))
    clash = link_between(infra.STORAGELINK.id, c, s2, **{"occi.storagelink.deviceid": "vdb"})
    with pytest.raises(InvalidTransition):
        backend.link(clash, c, s2)
    assert backend.observe(disk).attributes["occi.storagelink.deviceid"] == "vdb"
    # links follow the compute's state
    act(backend, c, "start")
    assert backend.observe(disk).attributes["occi.storagelink.state"] == "active"
    assert backend.observe(nic).attributes["occi.networkinterface.state"] == "active"
    act(backend, c, "stop", method="poweroff")
    backend.unlink(disk)
    backend.unlink(disk)
    with pytest.raises(NotFoundOnPlatform):
        backend.observe(disk)
    backend.unlink(nic)
    for e in (c, s, s2, n):
        backend.delete(e)


def test_links_on_a_running_compute_hotplug_or_unsupported(backend):
    c = created(backend, compute(backend))
    s = created(backend, storage(1.0))
    act(backend, c, "start")
    disk = link_between(infra.STORAGELINK.id, c, s)
    if LINK_HOTPLUG in backend.capabilities:
        out = backend.link(disk, c, s).attributes
        assert out["occi.storagelink.state"] == "active"
        disk.attributes.update(out)
        backend.unlink(disk)
    else:
        with pytest.raises(Unsupported):
            backend.link(disk, c, s)
    act(backend, c, "stop", method="poweroff")
    backend.delete(c)
    backend.delete(s)


def test_link_kinds_other_than_the_two_are_unsupported(backend):
    c = created(backend, compute(backend))
    s = created(backend, storage(1.0))
    plain = Link(
        kind=infra.LINK.id, id=new_id("l"), source=f"/compute/{c.id}", target=f"/storage/{s.id}"
    )
    with pytest.raises(Unsupported):
        backend.link(plain, c, s)
    backend.delete(c)
    backend.delete(s)


# ---------------------------------------------------------------------------- deleting
def test_delete_and_unlink_of_what_the_platform_never_had_succeed(backend):
    """An entity whose create failed (or never ran) must stay deletable: delete and unlink
    of objects the platform never made are done, never an error."""
    c, s, n = compute(backend), storage(1.0), network("10.78.0.0/24")
    for e in (c, s, n):
        backend.delete(e)
        backend.delete(e)
    # a resource of a kind the platform has no objects for
    backend.delete(Resource(kind=infra.RESOURCE.id, id=new_id("r")))
    # links whose compute never existed, and links never attached to a compute that does
    for kind, target in ((infra.STORAGELINK.id, s), (infra.NETWORKINTERFACE.id, n)):
        backend.unlink(link_between(kind, c, target))
        backend.delete(link_between(kind, c, target))
    real = created(backend, compute(backend))
    for kind, target in ((infra.STORAGELINK.id, s), (infra.NETWORKINTERFACE.id, n)):
        backend.unlink(link_between(kind, real, target))
    backend.delete(real)
    with pytest.raises(NotFoundOnPlatform):
        backend.observe(real)


def test_deleting_storage_attached_to_a_running_compute_detaches_or_refuses(backend):
    """Never a volume pulled from under a running guest: the delete detaches it first, or
    raises InvalidTransition and leaves the volume and the attachment as they were."""
    c = created(backend, compute(backend))
    s = created(backend, storage(1.0))
    disk = link_between(infra.STORAGELINK.id, c, s)
    if LINK_OFFLINE not in backend.capabilities:
        return
    disk.attributes.update(backend.link(disk, c, s).attributes)
    act(backend, c, "start")
    try:
        backend.delete(s)
    except InvalidTransition as exc:
        assert f"occi-{c.id}" in str(exc)
        assert backend.observe(s).attributes["occi.storage.size"] == 1.0
        assert backend.observe(disk).attributes["occi.storagelink.state"] == "active"
        act(backend, c, "stop", method="poweroff")
        backend.unlink(disk)
        backend.delete(s)
    else:  # detached: the compute runs on without it
        with pytest.raises(NotFoundOnPlatform):
            backend.observe(disk)
    with pytest.raises(NotFoundOnPlatform):
        backend.observe(s)
    assert backend.observe(c).attributes["occi.compute.state"] in ("active", "inactive")
    backend.delete(c)


def test_unlink_of_a_link_never_attached_leaves_other_devices_alone(backend):
    """A link whose attachment was refused (its device id was taken) is deleted without
    touching the disk that holds that device id."""
    c = created(backend, compute(backend))
    s, s2 = created(backend, storage(1.0)), created(backend, storage(1.0))
    if LINK_OFFLINE not in backend.capabilities:
        return
    disk = link_between(infra.STORAGELINK.id, c, s)
    disk.attributes.update(backend.link(disk, c, s).attributes)
    clash = link_between(infra.STORAGELINK.id, c, s2, **{"occi.storagelink.deviceid": "vdb"})
    with pytest.raises(InvalidTransition):
        backend.link(clash, c, s2)
    backend.unlink(clash)
    backend.delete(clash)
    assert backend.observe(disk).attributes["occi.storagelink.deviceid"] == "vdb"
    with pytest.raises(NotFoundOnPlatform):
        backend.observe(clash)
    for e in (c, s, s2):
        backend.delete(e)


# ---------------------------------------------------------------------------- hosts
def test_each_host_reports_its_declared_size(cluster):
    backend, hosts = cluster.backend, cluster.hosts
    assert len(hosts) >= 2
    for host in hosts:
        capacity = backend.host_capacity(host.uri)
        assert capacity is not None, host
        assert (capacity.cores, capacity.memory_mb) == (host.cores, host.memory_mb), host
    first, second = (backend.host_capacity(h.uri) for h in hosts[:2])
    assert first is not None and second is not None
    assert (first.cores, first.memory_mb) != (second.cores, second.memory_mb)


def test_entities_placed_on_a_host_are_found_through_their_placement(cluster):
    backend = cluster.backend
    for host in cluster.hosts[:2]:
        made = [
            compute(backend, on=host),
            storage(1.0),
            network("10.79.0.0/24"),
        ]
        for entity in made[1:]:
            entity.placement = host.placement()
        for entity in made:
            created(backend, entity)
            key = STATE[entity.kind.rsplit("#", 1)[1]]
            seen = backend.observe(seen_on(entity, host)).attributes
            assert seen[key] == entity.attributes[key], (host, entity.kind)
        for entity in made:
            backend.delete(entity)
            with pytest.raises(NotFoundOnPlatform):
                backend.observe(entity)


# ---------------------------------------------------------------------------- migration
def moved(backend: Backend, c: Resource, target: ContractHost, *, live: bool) -> Outcome:
    """migrate() with the compute's placement still naming its source, as the server calls it."""
    out = backend.migrate(c, target.uri, live)
    assert isinstance(out, Outcome)
    return out


def test_migrate_is_declared_or_unsupported(cluster):
    backend = cluster.backend
    source, target = cluster.hosts[:2]
    c = created(backend, compute(backend, on=source))
    if COMPUTE_MIGRATE in backend.capabilities:
        backend.delete(c)
        return
    act(backend, c, "start")
    for live in (True, False):
        with pytest.raises(Unsupported):
            backend.migrate(c, target.uri, live)
    # nothing moved
    assert backend.observe(c).attributes["occi.compute.state"] == "active"
    act(backend, c, "stop", method="poweroff")
    backend.delete(c)


@pytest.mark.parametrize("live", [True, False])
def test_a_running_compute_runs_on_the_target_after_a_migrate(cluster, live):
    backend = cluster.backend
    if COMPUTE_MIGRATE not in backend.capabilities:
        return  # test_migrate_is_declared_or_unsupported
    source, target = cluster.hosts[:2]
    c = created(backend, compute(backend, on=source))
    act(backend, c, "start")
    out = moved(backend, c, target, live=live)
    assert out.attributes["occi.compute.state"] == "active"
    assert backend.observe(seen_on(c, target)).attributes["occi.compute.state"] == "active"
    with pytest.raises(NotFoundOnPlatform):
        backend.observe(seen_on(c, source))
    # a retried job (its placement still names the source) finds the move done
    again = moved(backend, c, target, live=live)
    assert again.attributes["occi.compute.state"] == "active"
    assert backend.observe(seen_on(c, target)).attributes["occi.compute.state"] == "active"
    c.placement = target.placement()
    act(backend, c, "stop", method="poweroff")
    backend.delete(c)
    with pytest.raises(NotFoundOnPlatform):
        backend.observe(c)


@pytest.mark.parametrize("live", [True, False])
def test_a_stopped_compute_stays_stopped_on_the_target_after_a_migrate(cluster, live):
    backend = cluster.backend
    if COMPUTE_MIGRATE not in backend.capabilities:
        return  # test_migrate_is_declared_or_unsupported
    source, target = cluster.hosts[:2]
    c = created(backend, compute(backend, on=source))
    out = moved(backend, c, target, live=live)
    assert out.attributes["occi.compute.state"] == "inactive"
    assert backend.observe(seen_on(c, target)).attributes["occi.compute.state"] == "inactive"
    with pytest.raises(NotFoundOnPlatform):
        backend.observe(seen_on(c, source))
    again = moved(backend, c, target, live=live)
    assert again.attributes["occi.compute.state"] == "inactive"
    # it starts where it is now
    c.placement = target.placement()
    assert act(backend, c, "start").attributes["occi.compute.state"] == "active"
    act(backend, c, "stop", method="poweroff")
    backend.delete(c)
