"""The libvirt backend driving a cluster of several hosts (issue 12), on libvirt's test driver.

Two hosts are described in tests/data/hosts (small: 2 cores, 4 GiB; large: 8 cores, 16 GiB);
`test:///<absolute path>` opens one. A file host keeps its state per connection, and the
backend keeps one connection per host, so each test's fresh backend starts with empty hosts.
The backend's own libvirt_uri (test:///default) is where an entity without a placement lives.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.base import HostCapacity, InvalidTransition, NotFoundOnPlatform, Unreachable
from backends.libvirt import LibvirtBackend, platform_name
from occi import infrastructure as infra
from occi.model import Link, Placement, Resource

HOSTS = Path(__file__).resolve().parent.parent / "data" / "hosts"
SMALL = f"test://{HOSTS / 'small.xml'}"
LARGE = f"test://{HOSTS / 'large.xml'}"
DEFAULT = "test:///default"
IMAGE = "host-image.qcow2"  # in the pool of both host files


def new_id(prefix: str = "h") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def backend() -> Iterator[LibvirtBackend]:
    b = LibvirtBackend(
        {"libvirt_uri": DEFAULT, "libvirt_pool": "default-pool", "libvirt_console_dir": ""}
    )
    pool = b.volume_pool  # the default host gets the image the host files have
    if IMAGE not in pool.listVolumes():
        pool.createXML(
            f"<volume><name>{IMAGE}</name><capacity>67108864</capacity>"
            "<target><format type='qcow2'/></target></volume>",
            0,
        )
    try:
        yield b
    finally:
        b.close()


def on(uri: str | None) -> Placement | None:
    return Placement(host_uri=uri, host_name=uri.rsplit("/", 1)[-1]) if uri else None


def compute(backend: LibvirtBackend, uri: str | None, **attributes) -> Resource:
    image = next(m.id for m in backend.provider_mixins() if m.term == "host-image")
    c = Resource(
        kind=infra.COMPUTE.id,
        id=new_id("c"),
        mixins=[image],
        attributes={"occi.compute.cores": 1, "occi.compute.memory": 0.5, **attributes},
    )
    c.placement = on(uri)
    c.location = f"/compute/{c.id}"
    c.attributes.update(backend.create(c).attributes)
    return c


def disk_and_network(backend: LibvirtBackend, uri: str) -> tuple[Resource, Resource]:
    """A 1 GB storage and a network (up) created on the host at `uri`."""
    disk = Resource(kind=infra.STORAGE.id, id=new_id("s"), attributes={"occi.storage.size": 1})
    net = Resource(kind=infra.NETWORK.id, id=new_id("n"))
    for r, kind in ((disk, "storage"), (net, "network")):
        r.placement = on(uri)
        r.location = f"/{kind}/{r.id}"
        backend.create(r)
    backend.action(net, "up", {})
    return disk, net


def links_to(c: Resource, disk: Resource, net: Resource) -> tuple[Link, Link]:
    """A storagelink and a networkinterface from `c` (not attached yet)."""
    return (
        Link(kind=infra.STORAGELINK.id, id=new_id("l"), source=c.location, target=disk.location),
        Link(
            kind=infra.NETWORKINTERFACE.id, id=new_id("l"), source=c.location, target=net.location
        ),
    )


def names_on(backend: LibvirtBackend, uri: str) -> set[str]:
    return {d.name() for d in backend.connection(uri).listAllDomains(0)}


def state(backend: LibvirtBackend, entity: Resource) -> str:
    return backend.observe(entity).attributes["occi.compute.state"]


# ---------------------------------------------------------------------------- capacity
def test_capacity_of_each_host_is_read_from_libvirt(backend):
    assert backend.host_capacity(SMALL) == HostCapacity(cores=2, memory_mb=4096, cpu_mhz=2400)
    assert backend.host_capacity(LARGE) == HostCapacity(cores=8, memory_mb=16384, cpu_mhz=2400)
    # None: the backend's own host (test:///default describes 16 CPUs and 3 GiB)
    assert backend.host_capacity(None) == HostCapacity(cores=16, memory_mb=3072, cpu_mhz=1400)


def test_a_host_that_cannot_be_opened_is_unreachable_with_its_uri(backend, tmp_path):
    gone = f"test://{tmp_path / 'no-such-host.xml'}"
    with pytest.raises(Unreachable, match=f"cannot connect to libvirt host {gone}"):
        backend.host_capacity(gone)
    c = Resource(kind=infra.COMPUTE.id, id=new_id(), attributes={"occi.compute.cores": 1})
    c.placement = on(gone)
    with pytest.raises(Unreachable, match="no-such-host.xml"):
        backend.create(c)
    # the other hosts are not affected
    assert backend.host_capacity(SMALL).cores == 2


def test_one_connection_per_host_is_kept_and_closed(backend):
    small = backend.connection(SMALL)
    assert backend.connection(SMALL) is small
    assert backend.connection(LARGE) is not small
    backend.close()
    # reopened on the next use (a new connection: the file's state again)
    again = backend.connection(SMALL)
    assert again is not small
    assert backend.host_capacity(SMALL).cores == 2
    # a connection that died (closed under the backend) is opened again
    again.close()
    assert backend.connection(SMALL) is not again
    assert backend.host_capacity(SMALL).cores == 2


# ---------------------------------------------------------------------------- placement
def test_computes_live_only_on_the_host_of_their_placement(backend):
    small = compute(backend, SMALL)
    large = compute(backend, LARGE)
    anywhere = compute(backend, None)
    s, lg, d = platform_name(small), platform_name(large), platform_name(anywhere)
    assert s in names_on(backend, SMALL) and s not in names_on(backend, LARGE)
    assert lg in names_on(backend, LARGE) and lg not in names_on(backend, SMALL)
    assert d in names_on(backend, DEFAULT)
    assert d not in names_on(backend, SMALL) | names_on(backend, LARGE)
    # the root disk was cloned in the pool of the compute's own host
    small_pool = backend.connection(SMALL).storagePoolLookupByName("default-pool")
    assert f"{s}-root.qcow2" in small_pool.listVolumes()
    assert f"{lg}-root.qcow2" not in small_pool.listVolumes()
    # a compute whose placement names another host is not found there
    elsewhere = Resource(kind=small.kind, id=small.id, mixins=small.mixins)
    elsewhere.placement = on(LARGE)
    with pytest.raises(NotFoundOnPlatform, match=LARGE):
        backend.observe(elsewhere)


def test_actions_observe_update_and_delete_go_to_the_entitys_host(backend):
    small = compute(backend, SMALL)
    large = compute(backend, LARGE)
    out = backend.action(large, "start", {})
    assert out.attributes["occi.compute.state"] == "active"
    assert backend.connection(LARGE).lookupByName(platform_name(large)).isActive()
    assert state(backend, small) == "inactive"
    assert state(backend, large) == "active"
    backend.update(small, {"occi.compute.cores": 2})
    assert backend.observe(small).attributes["occi.compute.cores"] == 2
    assert backend.observe(large).attributes["occi.compute.cores"] == 1
    backend.action(large, "stop", {"method": "poweroff"})
    assert state(backend, large) == "inactive"
    backend.delete(large)
    assert platform_name(large) not in names_on(backend, LARGE)
    assert platform_name(small) in names_on(backend, SMALL)
    pool = backend.connection(LARGE).storagePoolLookupByName("default-pool")
    assert f"{platform_name(large)}-root.qcow2" not in pool.listVolumes()


def test_storage_networks_and_links_use_their_hosts(backend):
    c = compute(backend, LARGE)
    disk, net = disk_and_network(backend, LARGE)
    large_pool = backend.connection(LARGE).storagePoolLookupByName("default-pool")
    assert f"{platform_name(disk)}.qcow2" in large_pool.listVolumes()
    assert backend.connection(LARGE).networkLookupByName(platform_name(net)).isActive()
    assert platform_name(net) not in backend.connection(SMALL).listNetworks()
    assert backend.observe(net).attributes["occi.network.state"] == "active"

    # a link: on the compute's host, with or without a placement of its own
    storagelink, nic = links_to(c, disk, net)
    nic.placement = on(LARGE)
    backend.link(storagelink, c, disk)
    backend.link(nic, c, net)
    assert backend.observe(storagelink).attributes["occi.storagelink.state"] == "inactive"
    assert backend.observe(nic).attributes["occi.networkinterface.state"] == "inactive"
    backend.action(c, "start", {})
    assert backend.observe(storagelink).attributes["occi.storagelink.state"] == "active"
    backend.action(c, "stop", {"method": "poweroff"})
    backend.unlink(storagelink)
    backend.delete(nic)
    with pytest.raises(NotFoundOnPlatform):
        backend.observe(storagelink)
    with pytest.raises(NotFoundOnPlatform):
        backend.observe(nic)
    backend.delete(disk)
    assert f"{platform_name(disk)}.qcow2" not in large_pool.listVolumes()


# ---------------------------------------------------------------------------- migration
def _uuid(backend: LibvirtBackend, uri: str, entity: Resource) -> str:
    return backend.connection(uri).lookupByName(platform_name(entity)).UUIDString()


def test_a_running_compute_moves_from_small_to_large_stopped_and_started_again(backend):
    c = compute(backend, SMALL)
    backend.action(c, "start", {})
    before = _uuid(backend, SMALL, c)
    out = backend.migrate(c, LARGE, live=True)
    assert out.attributes["occi.compute.state"] == "active"
    message = out.attributes["occi.compute.state.message"]
    assert message.startswith("running; stopped, moved to another host and started again")
    assert "test:" not in message  # members never see hosts
    assert platform_name(c) not in names_on(backend, SMALL)
    assert _uuid(backend, LARGE, c) == before
    assert backend.connection(LARGE).lookupByName(platform_name(c)).isActive()
    # its root disk went with it
    root = f"{platform_name(c)}-root.qcow2"
    assert root in backend.connection(LARGE).storagePoolLookupByName("default-pool").listVolumes()
    assert (
        root not in backend.connection(SMALL).storagePoolLookupByName("default-pool").listVolumes()
    )
    # once its placement names the new host, everything goes there
    c.placement = on(LARGE)
    assert state(backend, c) == "active"
    backend.action(c, "stop", {"method": "poweroff"})
    assert state(backend, c) == "inactive"
    backend.delete(c)
    assert platform_name(c) not in names_on(backend, LARGE)


def test_a_stopped_compute_moves_and_stays_stopped(backend):
    c = compute(backend, SMALL)
    before = _uuid(backend, SMALL, c)
    out = backend.migrate(c, LARGE, live=False)
    assert out.attributes["occi.compute.state"] == "inactive"
    assert out.attributes["occi.compute.state.message"] == (
        "inactive; moved to another host while stopped"
    )
    assert platform_name(c) not in names_on(backend, SMALL)
    assert _uuid(backend, LARGE, c) == before
    assert not backend.connection(LARGE).lookupByName(platform_name(c)).isActive()
    # a retried move (placement still names the source) finds it done
    again = backend.migrate(c, LARGE, live=False)
    assert again.attributes["occi.compute.state"] == "inactive"


def test_a_compute_with_a_disk_and_a_nic_moves_with_what_it_needs(backend):
    c = compute(backend, SMALL)
    disk, net = disk_and_network(backend, SMALL)
    sl, ni = links_to(c, disk, net)
    backend.link(sl, c, disk)
    backend.link(ni, c, net)
    backend.action(c, "start", {})
    out = backend.migrate(c, LARGE, live=True)
    assert out.attributes["occi.compute.state"] == "active"
    large = backend.connection(LARGE)
    assert (
        f"{platform_name(disk)}.qcow2"
        in large.storagePoolLookupByName("default-pool").listVolumes()
    )
    assert large.networkLookupByName(platform_name(net)).isActive()
    # the links are found on the compute's new host
    c.placement = on(LARGE)
    for link in (sl, ni):
        link.placement = on(LARGE)
    assert backend.observe(sl).attributes["occi.storagelink.state"] == "active"
    assert backend.observe(ni).attributes["occi.networkinterface.state"] == "active"


def test_a_move_to_a_host_that_does_not_answer_changes_nothing(backend, tmp_path):
    c = compute(backend, SMALL)
    backend.action(c, "start", {})
    gone = f"test://{tmp_path / 'gone.xml'}"
    for live in (True, False):
        with pytest.raises(Unreachable, match="gone.xml"):
            backend.migrate(c, gone, live=live)
        assert state(backend, c) == "active"


def test_a_hibernated_compute_is_not_moved(backend):
    c = compute(backend, SMALL)
    backend.action(c, "start", {})
    backend.action(c, "suspend", {"method": "hibernate"})
    with pytest.raises(InvalidTransition, match="hibernated"):
        backend.migrate(c, LARGE, live=True)
    assert platform_name(c) in names_on(backend, SMALL)
    assert platform_name(c) not in names_on(backend, LARGE)


# ---------------------------------------------------------------------------- events
def test_events_come_from_every_host_opened_before_or_after_start(backend):
    seen: list[str] = []
    got = threading.Condition()

    def callback(entity_id: str) -> None:
        with got:
            seen.append(entity_id)
            got.notify_all()

    small = compute(backend, SMALL)  # SMALL is open before the events start
    assert backend.start_events(callback) is True
    try:
        large = compute(backend, LARGE)  # LARGE is opened after
        for c in (small, large):
            backend.action(c, "start", {})
        with got:
            assert got.wait_for(lambda: {small.id, large.id} <= set(seen), timeout=5), seen
    finally:
        backend.stop_events()
