"""The XenServer backend beyond the contract suite, against the test xapi server (tests/xapi)
through the real XenAPI SDK: Async tasks answered as Pending and polled, a new login after
SESSION_INVALID, xapi errors as clear faults, the clean-to-hard fallback, xenstore-data
contextualisation, the entity id on every platform object, save as a template, the pool's hosts,
host maintenance, and out-of-band changes arriving through event.from."""

from __future__ import annotations

import queue
import uuid
from collections.abc import Iterator

import pytest
import XenAPI

from backends.base import (
    InvalidTransition,
    NotFoundOnPlatform,
    Outcome,
    Pending,
    Unreachable,
)
from backends.xenserver import XenServerBackend
from backends.xenserver.client import url_of_master
from backends.xenserver.config import ConfigError, XenConfig
from occi import infrastructure as infra
from occi.model import Link, Placement, Resource
from tests.live import free_port
from tests.xapi import XapiHTTPServer, start, start_member

USER, PASSWORD = "root", "xapi-test"
OS_TPL = "http://occi.xenserver.local/os_tpl#"


@pytest.fixture(scope="module")
def server() -> Iterator[XapiHTTPServer]:
    """A pool whose tasks stay pending for a moment, as a real pool's do."""
    srv, _ = start(user=USER, password=PASSWORD, task_delay=0.1)
    yield srv
    srv.shutdown()
    srv.server_close()


def make_backend(server: XapiHTTPServer, **extra: str) -> XenServerBackend:
    settings = {
        "xenserver_url": server.url,
        "xenserver_user": USER,
        "xenserver_password": PASSWORD,
        "xenserver_task_wait": "30",
        **extra,
    }
    return XenServerBackend(settings)


@pytest.fixture
def backend(server) -> Iterator[XenServerBackend]:
    b = make_backend(server)
    yield b
    b.close()


@pytest.fixture
def x(server):
    session = XenAPI.Session(server.url)
    session.xenapi.login_with_password(USER, PASSWORD, "2.21", "tests")
    yield session.xenapi
    session.xenapi.session.logout()


def compute(template: str = "Debian-Bookworm-12", **attributes) -> Resource:
    attrs = {"occi.compute.cores": 1, "occi.compute.memory": 0.5, **attributes}
    return Resource(
        kind=infra.COMPUTE.id,
        id=f"c-{uuid.uuid4().hex[:12]}",
        mixins=[OS_TPL + template],
        attributes=attrs,
    )


def done(backend: XenServerBackend, entity: Resource, out: Outcome | Pending) -> Outcome:
    """Poll a Pending to its Outcome (a bounded number of polls), kept in the entity."""
    for _ in range(100):
        if isinstance(out, Outcome):
            entity.attributes.update(out.attributes)
            if out.platform_ref:
                entity.placement = entity.placement or Placement()
                entity.placement.platform_ref = out.platform_ref
            return out
        out = backend.poll(entity, out.handle)
    raise AssertionError("the task never ended")


def vm_of(x, entity: Resource) -> str:
    (ref,) = x.VM.get_by_name_label(f"occi-{entity.id}")
    return ref


# ---------------------------------------------------------------------------- settings
def test_settings_are_checked_and_the_password_never_shown():
    config = XenConfig.from_settings(
        {"xenserver_url": "https://pool.example.org/", "xenserver_password": "s3cret"}
    )
    assert config.url == "https://pool.example.org" and config.verify_tls
    assert "s3cret" not in repr(config)
    for bad in (
        {"xenserver_url": "pool.example.org"},
        {"xenserver_url": "https://p", "xenserver_templates": "some"},
        {"xenserver_url": "https://p", "xenserver_verify_tls": "maybe"},
        {"xenserver_url": "https://p", "xenserver_resource_templates": "big:x:1"},
    ):
        with pytest.raises(ConfigError):
            XenConfig.from_settings(bad)


# ---------------------------------------------------------------------------- tasks
def test_async_tasks_answer_pending_and_are_polled_to_their_outcome(server, x):
    backend = make_backend(server, xenserver_task_wait="0", xenserver_poll_after="0.05")
    try:
        c = compute()
        first = backend.compute_create(c)
        assert isinstance(first, Pending) and "cloning" in first.message
        created = done(backend, c, first)
        assert created.attributes["occi.compute.state"] == "inactive"
        assert created.platform_ref == x.VM.get_uuid(vm_of(x, c))
        started = backend.compute_start(c)
        assert isinstance(started, Pending) and started.message == "starting"
        assert done(backend, c, started).attributes["occi.compute.state"] == "active"
        # polled again after it ended (another server after a crash): the same answer
        again = backend.poll(c, started.handle)
        assert isinstance(again, Outcome) and again.attributes["occi.compute.state"] == "active"
        stopped = done(backend, c, backend.compute_stop(c, "poweroff"))
        assert stopped.attributes["occi.compute.state.message"] == "inactive; powered off"
        assert backend.compute_delete(c) is None
        # the tasks were destroyed once read
        assert not [t for t in x.task.get_all_records().values() if t["status"] == "success"]
    finally:
        backend.close()


def test_states_refuse_with_409s_and_resizes_go_live_within_the_headroom(server, x):
    backend = make_backend(server, xenserver_max_vcpus="4", xenserver_max_memory="2")
    try:
        c = compute()
        done(backend, c, backend.compute_create(c))
        x.VM.start(vm_of(x, c), False, False)  # behind the backend's back
        with pytest.raises(InvalidTransition, match="it is active"):
            backend.compute_start(c)
        with pytest.raises(InvalidTransition, match="must be halted first"):
            backend.compute_resize(c, 8, None)  # beyond the 4 vCPUs it started with
        with pytest.raises(InvalidTransition, match="must be halted first"):
            backend.compute_resize(c, 2, 4.0)  # beyond its 2 GB: nothing is changed
        assert backend.observe(c).attributes["occi.compute.cores"] == 1
        out = backend.compute_resize(c, 2, 1.0)  # within its limits: live
        assert isinstance(out, Outcome)
        assert (out.attributes["occi.compute.cores"], out.attributes["occi.compute.memory"]) == (
            2,
            1.0,
        )
        assert out.attributes["occi.compute.state.message"] == "running; resized live"
        backend.compute_delete(c)
    finally:
        backend.close()


# ---------------------------------------------------------------------------- sessions, errors
def test_session_invalid_logs_in_again(server, backend):
    c = compute()
    done(backend, c, backend.compute_create(c))
    server.xapi.expire_sessions()  # as a restarted pool master
    assert backend.observe(c).attributes["occi.compute.state"] == "inactive"
    backend.compute_delete(c)


def test_a_url_naming_a_pool_member_leads_to_the_master(server):
    # xapi names the master by its address: the scheme (and a port given) stay the URL's
    assert url_of_master("https://member.example.org", "192.0.2.1") == "https://192.0.2.1"
    assert url_of_master("https://m:8443", "192.0.2.1") == "https://192.0.2.1:8443"
    member, _ = start_member(server)
    try:
        backend = make_backend(server, xenserver_url=member.url)
        try:
            assert len(backend.discover_hosts() or []) == 2
            assert backend.client.master_url == server.url
        finally:
            backend.close()
    finally:
        member.shutdown()
        member.server_close()


def test_objects_removed_outside_are_not_found_and_a_dead_master_unreachable(backend, x):
    c = compute()
    done(backend, c, backend.compute_create(c))
    x.VM.destroy(vm_of(x, c))
    with pytest.raises(NotFoundOnPlatform, match=f"occi-{c.id}"):
        backend.observe(c)
    assert backend.compute_delete(c) is None  # gone is done
    dead = XenServerBackend(
        {"xenserver_url": f"http://127.0.0.1:{free_port()}", "xenserver_password": "p"}
    )
    assert dead.ping() is False
    with pytest.raises(Unreachable, match="does not answer"):
        dead.observe(c)


# ---------------------------------------------------------------------------- compute
def test_a_guest_without_pv_drivers_is_powered_off_instead(backend):
    c = compute("Other-install-media")
    done(backend, c, backend.compute_create(c))
    done(backend, c, backend.compute_start(c))
    out = done(backend, c, backend.compute_stop(c, "graceful"))
    assert out.attributes["occi.compute.state"] == "inactive"
    assert "powered off instead of a clean shutdown" in out.attributes["occi.compute.state.message"]
    assert "PV drivers" in backend.observe(c).attributes["occi.compute.state.message"]
    backend.compute_delete(c)


def test_sizes_and_contextualisation_reach_the_vm(backend, x):
    long_data = "QUJD" * 2500  # beyond one xenstore value: split in parts
    c = compute(
        **{
            "occi.compute.cores": 2,
            "occi.compute.memory": 1.5,
            "occi.credentials.ssh.publickey": "ssh-ed25519 AAAAC3Nza test@x",
            "occi.compute.userdata": long_data,
            "occi.compute.hostname": "web-1",
            "occi.compute.ephemeral_storage.size": 20.0,
        }
    )
    done(backend, c, backend.compute_create(c))
    record = x.VM.get_record(vm_of(x, c))
    root = x.VBD.get_VDI(record["VBDs"][0])
    assert x.VDI.get_virtual_size(root) == str(20 << 30)  # the template's 10 GiB, grown
    assert (record["VCPUs_at_startup"], record["memory_static_max"]) == ("2", str(3 << 29))
    data = record["xenstore_data"]
    assert data["vm-data/ssh-key"] == "ssh-ed25519 AAAAC3Nza test@x"
    assert data["vm-data/hostname"] == "web-1"
    parts = int(data["vm-data/user-data/parts"])
    assert "".join(data[f"vm-data/user-data/{i}"] for i in range(parts)) == long_data
    assert record["other_config"]["occi_entity_id"] == c.id
    assert not record["is_a_template"] and len(record["VBDs"]) == 1  # provisioned
    backend.compute_delete(c)
    assert not x.VDI.get_by_name_label(f"{record['name_label']} 0")  # its root disk went too


def test_every_platform_object_carries_its_entity_id(backend, x):
    c = compute()
    done(backend, c, backend.compute_create(c))
    s = Resource(kind=infra.STORAGE.id, id=f"s-{uuid.uuid4().hex[:8]}",
                 attributes={"occi.storage.size": 2.0})  # fmt: skip
    n = Resource(kind=infra.NETWORK.id, id=f"n-{uuid.uuid4().hex[:8]}")
    backend.storage_create(s)
    backend.network_create(n)
    disk = Link(kind=infra.STORAGELINK.id, id=f"l-{uuid.uuid4().hex[:8]}",
                source=f"/compute/{c.id}", target=f"/storage/{s.id}")  # fmt: skip
    nic = Link(kind=infra.NETWORKINTERFACE.id, id=f"l-{uuid.uuid4().hex[:8]}",
               source=f"/compute/{c.id}", target=f"/network/{n.id}")  # fmt: skip
    assert backend.link_attach(disk, c, s).attributes["occi.storagelink.deviceid"] == "vdb"
    mac = backend.link_attach(nic, c, n).attributes["occi.networkinterface.mac"]
    vm = x.VM.get_record(vm_of(x, c))
    ids = {x.VBD.get_other_config(v).get("occi_entity_id") for v in vm["VBDs"]}
    assert disk.id in ids
    (vif,) = vm["VIFs"]
    assert x.VIF.get_other_config(vif)["occi_entity_id"] == nic.id
    assert x.VIF.get_MAC(vif) == mac and x.VBD.get_userdevice(vm["VBDs"][1]) == "1"
    (vdi,) = x.VDI.get_by_name_label(f"occi-{s.id}")
    assert x.VDI.get_other_config(vdi)["occi_entity_id"] == s.id
    assert x.VDI.get_virtual_size(vdi) == str(2 << 30)
    (net,) = x.network.get_by_name_label(f"occi-{n.id}")
    assert x.network.get_other_config(net)["occi_entity_id"] == n.id
    backend.compute_delete(c)
    assert x.VDI.get_virtual_size(vdi) == str(2 << 30)  # a storage's volume stays
    backend.storage_delete(s)
    backend.network_delete(n)


def test_save_makes_a_template_offered_as_os_tpl(backend, x):
    c = compute()
    done(backend, c, backend.compute_create(c))
    done(backend, c, backend.compute_start(c))
    name = f"img-{uuid.uuid4().hex[:8]}"
    out = done(backend, c, backend.compute_save(c, "hot", name))
    assert out.mixin is not None and out.mixin.term == name
    assert out.attributes["occi.compute.state"] == "active"
    (template,) = x.VM.get_by_name_label(name)
    record = x.VM.get_record(template)
    assert record["is_a_template"] and not record["is_a_snapshot"]
    assert record["other_config"]["occi_saved_from"] == c.id
    assert "occi_entity_id" not in record["other_config"]
    assert x.VM.get_snapshots(vm_of(x, c)) == []  # the snapshot it went through is gone
    assert out.mixin.id in {m.id for m in backend.provider_mixins()}
    other = compute(name)
    assert (
        done(backend, other, backend.compute_create(other)).attributes["occi.compute.state"]
        == "inactive"
    )
    backend.delete_image(out.mixin)
    assert x.VM.get_by_name_label(name) == []
    backend.compute_delete(other)
    backend.compute_delete(c)  # running: powered off first


def test_the_template_source_chooses_the_os_tpls(server, x):
    def terms(source: str) -> set[str]:
        b = make_backend(server, xenserver_templates=source)
        try:
            return {m.term for m in b.provider_mixins() if m.scheme == OS_TPL}
        finally:
            b.close()

    assert {"Debian-Bookworm-12", "Other-install-media"} <= terms("all")
    assert not {"Debian-Bookworm-12", "Other-install-media"} & terms("custom")  # shipped ones
    (ubuntu,) = x.VM.get_by_name_label("Ubuntu Noble Numbat 24.04")
    x.VM.set_tags(ubuntu, ["occi"])
    try:
        assert terms("tag:occi") == {"Ubuntu-Noble-Numbat-24.04"}
    finally:
        x.VM.set_tags(ubuntu, [])


# ---------------------------------------------------------------------------- hosts
def test_the_pools_hosts_with_their_capacity(backend, x):
    hosts = backend.discover_hosts()
    assert hosts is not None
    assert [
        (h.name, h.capacity.cores, h.capacity.memory_mb, h.capacity.cpu_mhz) for h in hosts
    ] == [
        ("xen-host-1", 16, 65536, 2600),
        ("xen-host-2", 8, 32768, 2200),
    ]
    assert {h.uri for h in hosts} == {x.host.get_uuid(r) for r in x.host.get_all()}
    assert backend.host_capacity(None) == hosts[0].capacity  # the pool master
    with pytest.raises(Unreachable):
        backend.host_capacity("no-such-host")


def test_maintenance_migrates_then_disables_the_host(backend, x):
    first, second = backend.discover_hosts() or []
    c = compute()
    c.placement = Placement(host_name=first.name, host_uri=first.uri)
    done(backend, c, backend.compute_create(c))
    done(backend, c, backend.compute_start(c))
    vm = vm_of(x, c)
    assert x.host.get_uuid(x.VM.get_resident_on(vm)) == first.uri
    out = done(backend, c, backend.compute_migrate(c, second.uri, True))
    assert out.attributes["occi.compute.state.message"].startswith("running; migrated live")
    assert x.host.get_uuid(x.VM.get_resident_on(vm)) == second.uri
    c.placement = Placement(host_name=second.name, host_uri=second.uri)
    done(backend, c, backend.compute_suspend(c, "suspend"))  # paused: moves paused
    out = done(backend, c, backend.compute_migrate(c, first.uri, True))
    assert out.attributes["occi.compute.state"] == "suspended"
    assert "moved live" in out.attributes["occi.compute.state.message"]
    assert x.host.get_uuid(x.VM.get_resident_on(vm)) == first.uri
    c.placement = Placement(host_name=first.name, host_uri=first.uri)
    done(backend, c, backend.compute_migrate(c, second.uri, True))
    c.placement = Placement(host_name=second.name, host_uri=second.uri)
    assert done(backend, c, backend.compute_start(c)).attributes["occi.compute.state"] == "active"
    backend.host_maintenance(first.uri, True)
    ref = x.host.get_by_uuid(first.uri)
    assert x.host.get_enabled(ref) is False
    backend.host_maintenance(first.uri, False)
    assert x.host.get_enabled(ref) is True
    c.placement = Placement(host_name=second.name, host_uri=second.uri)
    done(backend, c, backend.compute_stop(c, "poweroff"))
    backend.compute_delete(c)


# ---------------------------------------------------------------------------- events
def test_an_out_of_band_power_change_arrives_through_events(server, x):
    backend = make_backend(server, xenserver_event_timeout="1")
    seen: queue.Queue[str] = queue.Queue()
    try:
        c = compute()
        done(backend, c, backend.compute_create(c))
        done(backend, c, backend.compute_start(c))
        assert backend.start_events(seen.put)
        # the watcher's first event.from returns the current objects, without callbacks;
        # a change made from then on (here through the SDK, as XenCenter or xe would) arrives
        for _ in range(50):
            x.VM.add_to_other_config(vm_of(x, c), "probe", "1")
            x.VM.remove_from_other_config(vm_of(x, c), "probe")
            try:
                if seen.get(timeout=0.2) == c.id:
                    break
            except queue.Empty:
                continue
        while not seen.empty():
            seen.get_nowait()
        x.VM.hard_shutdown(vm_of(x, c))
        assert seen.get(timeout=10) == c.id
        out = backend.observe(c)
        assert out.attributes["occi.compute.state"] == "inactive"
        assert out.attributes["occi.compute.state.message"] == "inactive; halted"
        backend.compute_delete(c)
        assert seen.get(timeout=10) == c.id  # its deletion too
    finally:
        backend.close()
