"""One contract suite for every backend (backends/base.py): the simulator and libvirt on its
test driver (`test:///default`). What a backend declares it cannot do (Backend.capabilities) is
checked to raise Unsupported, never skipped.

The test driver's state is shared by every connection in this process, so every test uses
fresh entity ids (and so fresh `occi-<id>` names).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from backends.base import (
    CAPABILITIES,
    COMPUTE_SAVE,
    CONTEXTUALISATION,
    LINK_HOTPLUG,
    LINK_OFFLINE,
    STORAGE_RESIZE,
    Backend,
    InvalidTransition,
    NotFoundOnPlatform,
    Outcome,
    Unsupported,
)
from occi import infrastructure as infra
from occi.model import Link, Resource

TEST_URI = "test:///default"
TEST_POOL = "default-pool"  # the test driver's own pool
CONTRACT_IMAGE = "contract-image.qcow2"
STATE = {
    "compute": "occi.compute.state",
    "storage": "occi.storage.state",
    "network": "occi.network.state",
}


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def libvirt_backend() -> Backend:
    from backends.libvirt import LibvirtBackend

    b = LibvirtBackend(
        {"libvirt_uri": TEST_URI, "libvirt_pool": TEST_POOL, "libvirt_console_dir": ""}
    )
    pool = b.volume_pool
    if CONTRACT_IMAGE not in pool.listVolumes():
        pool.createXML(
            f"<volume><name>{CONTRACT_IMAGE}</name><capacity>67108864</capacity>"
            "<target><format type='qcow2'/></target></volume>",
            0,
        )
    return b


@pytest.fixture(params=["simulator", "libvirt"])
def backend(request: pytest.FixtureRequest, tmp_path) -> Iterator[Backend]:
    if request.param == "simulator":
        from backends.simulator import SimulatorBackend

        b: Backend = SimulatorBackend({"database_url": f"sqlite:///{tmp_path / 'occi.db'}"})
    else:
        b = libvirt_backend()
    try:
        yield b
    finally:
        b.close()


# ---------------------------------------------------------------------------- helpers
def os_tpl_of(backend: Backend) -> str:
    images = [m for m in backend.provider_mixins() if infra.OS_TPL.id in m.depends]
    assert images, "a backend offers at least one os_tpl image"
    return images[0].id


def compute(backend: Backend, *, image: bool = True, **attributes) -> Resource:
    attrs = {"occi.compute.cores": 1, "occi.compute.memory": 0.25, **attributes}
    mixins = [os_tpl_of(backend)] if image else []
    return Resource(
        kind=infra.COMPUTE.id, id=new_id("c"), mixins=mixins, attributes=attrs, location=None
    )


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


def test_libvirt_delete_succeeds_when_the_volume_pool_is_missing():
    """libvirt with a pool that does not exist: nothing was made, so everything deletes."""
    from backends.libvirt import LibvirtBackend

    pool = f"occi-missing-{uuid.uuid4().hex[:8]}"
    b = LibvirtBackend({"libvirt_uri": TEST_URI, "libvirt_pool": pool, "libvirt_console_dir": ""})
    try:
        c = compute(b, image=False)
        with pytest.raises(NotFoundOnPlatform, match=pool):
            b.create(c)  # the create fails: the entity goes to error
        for e in (c, storage(1.0), network()):
            b.delete(e)
        with pytest.raises(NotFoundOnPlatform):
            b.observe(c)
    finally:
        b.close()


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
