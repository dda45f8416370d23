"""The vSphere backend over HTTP: a real `occi-server` (gunicorn) configured by the one-cluster
shorthand alone (OCCI_BACKEND=vsphere, OCCI_VSPHERE_*), against VMware's simulator (tests/vcsim)
as a vCenter (VPX) and as a standalone ESXi host (ESX). What the API says is checked against
what vSphere holds, read through pyvmomi; a change made directly in vSphere reaches the API
through the backend's property-collector events.

The VPX server answers every vSphere task as pending work (OCCI_VSPHERE_TASK_WAIT=0), so each
create, power change, resize, save and delete goes through Backend.poll.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from pyVim.connect import Disconnect
from pyVmomi import vim

from backends.vsphere import devices
from backends.vsphere.core import instance_uuid
from tests import vcsim
from tests.live import LiveServer, free_port

INFRA = "http://schemas.ogf.org/occi/infrastructure#"
OS_TPL = "http://occi.vsphere.local/os_tpl#"
JSON = "application/occi+json"


class Client:
    """The OCCI JSON API of a live server, as a member (authentication is off)."""

    def __init__(self, url: str):
        self.url = url

    def request(self, method: str, path: str, body: Any = None, **params: str) -> Any:
        r = requests.request(
            method,
            self.url + path,
            json=body,
            params=params or None,
            headers={"Accept": JSON, "Content-Type": JSON},
            timeout=60,
        )
        return r

    def create(self, kind: str, expect: int = 201, **doc: Any) -> str:
        r = self.request("POST", f"/{kind}/", {"kind": INFRA + kind, **doc})
        assert r.status_code == expect, r.text
        return r.headers["Location"].split(self.url, 1)[-1]

    def link(self, kind: str, source: str, target: str, **attributes: Any) -> str:
        body = {
            "kind": INFRA + kind,
            "source": {"location": source},
            "target": {"location": target},
            "attributes": attributes,
        }
        r = self.request("POST", f"/link/{kind}/", body)
        assert r.status_code == 201, r.text
        return r.headers["Location"].split(self.url, 1)[-1]

    def get(self, path: str) -> dict[str, Any]:
        r = self.request("GET", path)
        assert r.status_code == 200, r.text
        return r.json()

    def attrs(self, path: str) -> dict[str, Any]:
        return self.get(path)["attributes"]

    def act(self, path: str, term: str, **attributes: Any) -> dict[str, Any]:
        kind = path.strip("/").split("/")[0]
        body = {"action": f"{INFRA[:-1]}/{kind}/action#{term}", "attributes": attributes}
        r = self.request("POST", path, body, action=term)
        assert r.status_code == 200, r.text
        return self.attrs(path)

    def update(self, path: str, **attributes: Any) -> dict[str, Any]:
        r = self.request("POST", path, {"attributes": attributes})
        assert r.status_code == 200, r.text
        return self.attrs(path)

    def delete(self, path: str) -> None:
        r = self.request("DELETE", path)
        assert r.status_code in (200, 204), r.text

    def os_tpls(self) -> set[str]:
        doc = self.get("/-/")
        return {m["term"] for m in doc["mixins"] if m["scheme"] == OS_TPL}

    def wait_for(self, path: str, key: str, value: Any, timeout: float = 20) -> dict[str, Any]:
        """The entity's attributes once `key` has `value` (what a background change brings)."""
        deadline = time.monotonic() + timeout
        while True:
            a = self.attrs(path)
            if a.get(key) == value or time.monotonic() > deadline:
                assert a.get(key) == value, a
                return a
            time.sleep(0.2)


class Platform:
    """What vSphere holds, read through pyvmomi."""

    def __init__(self, sim: vcsim.Vcsim):
        self.si = sim.connect()
        self.content = self.si.RetrieveContent()

    def vm(self, location: str) -> Any:
        eid = location.rstrip("/").rsplit("/", 1)[-1]
        return self.content.searchIndex.FindByUuid(
            uuid=instance_uuid(eid), vmSearch=True, instanceUuid=True
        )

    def network(self, name: str) -> Any:
        view = self.content.viewManager.CreateContainerView(
            self.content.rootFolder, [vim.Network], True
        )
        try:
            return next(n for n in view.view if n.name == name)
        finally:
            view.Destroy()

    def networks(self) -> set[str]:
        view = self.content.viewManager.CreateContainerView(
            self.content.rootFolder, [vim.Network], True
        )
        try:
            return {n.name for n in view.view}
        finally:
            view.Destroy()

    def close(self) -> None:
        Disconnect(self.si)


def entity_id(location: str) -> str:
    return location.rstrip("/").rsplit("/", 1)[-1]


@pytest.fixture(scope="module")
def vpx() -> vcsim.Vcsim:
    return vcsim.shared("vpx")


@pytest.fixture(scope="module")
def vpx_server(vpx, tmp_path_factory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("vsphere-vpx")
    server = LiveServer(
        tmp,
        env=vpx.env(vsphere_task_wait="0", vsphere_event_wait="1"),
        reconcile_interval=3600,  # changes made in vSphere arrive through events only
    )
    yield server
    server.stop()
    assert "vcsim-secret" not in server.log_path.read_text()  # the password is never logged


@pytest.fixture
def platform(vpx) -> Iterator[Platform]:
    p = Platform(vpx)
    yield p
    p.close()


def test_lifecycle_over_http_on_a_vcenter(vpx_server, platform):
    api = Client(vpx_server.url)
    assert vcsim.TEMPLATE in api.os_tpls()
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJq occi@test"
    compute = api.create(
        "compute",
        mixins=[OS_TPL + vcsim.TEMPLATE, INFRA[:-1] + "/credentials#ssh_key"],
        attributes={
            "occi.compute.cores": 1,
            "occi.compute.memory": 0.5,
            "occi.credentials.ssh.publickey": key,
        },
    )
    assert api.attrs(compute)["occi.compute.state"] == "inactive"
    vm = platform.vm(compute)
    assert vm is not None and vm.name == f"occi-{entity_id(compute)}"
    assert (vm.config.hardware.numCPU, vm.config.hardware.memoryMB) == (1, 512)
    extra = devices.extra_dict(vm.config.extraConfig)
    assert extra[devices.ENTITY_KEY] == entity_id(compute)
    assert extra["guestinfo.userdata.encoding"] == "base64"
    assert key in base64.b64decode(extra["guestinfo.userdata"]).decode()
    assert key in base64.b64decode(extra["guestinfo.metadata"]).decode()

    api.update(compute, **{"occi.compute.hostname": "web-2"})  # cloud-init reads it at boot
    metadata = devices.extra_dict(vm.config.extraConfig)["guestinfo.metadata"]
    assert '"local-hostname": "web-2"' in base64.b64decode(metadata).decode()

    storage = api.create("storage", attributes={"occi.storage.size": 1})
    network = api.create("network", attributes={"occi.network.vlan": 42})
    r = api.request("POST", network, {"attributes": {"occi.network.vlan": 43}})
    assert r.status_code == 501, r.text  # a port group's VLAN is set when it is made
    assert f"occi-{entity_id(network)}" in platform.networks()
    disk = api.link("storagelink", compute, storage)
    nic = api.link("networkinterface", compute, network)
    assert api.attrs(disk)["occi.storagelink.deviceid"] == "vdb"
    mac = api.attrs(nic)["occi.networkinterface.mac"]
    assert mac.startswith("00:50:56:")
    assert mac in {d.macAddress for d in vm.config.hardware.device if hasattr(d, "macAddress")}
    files = [
        d.backing.fileName
        for d in vm.config.hardware.device
        if isinstance(d, vim.vm.device.VirtualDisk)
    ]
    assert f"[LocalDS_0] occi/occi-{entity_id(storage)}.vmdk" in files

    grown = api.update(storage, **{"occi.storage.size": 2})  # attached: grown through its VM
    assert grown["occi.storage.size"] == 2
    disk_device = next(
        d
        for d in vm.config.hardware.device
        if isinstance(d, vim.vm.device.VirtualDisk) and "] occi/" in d.backing.fileName
    )
    assert disk_device.capacityInKB == 2 * 1024 * 1024
    assert api.act(storage, "online")["occi.storage.state"] == "online"
    group = platform.network(f"occi-{entity_id(network)}")
    assert group.config.defaultPortConfig.blocked.value  # a distributed port group, blocked
    assert group.config.defaultPortConfig.vlan.vlanId == 42
    assert api.act(network, "up")["occi.network.state"] == "active"
    assert not group.config.defaultPortConfig.blocked.value
    assert api.act(compute, "start")["occi.compute.state"] == "active"
    assert vm.runtime.powerState == "poweredOn"
    assert api.attrs(disk)["occi.storagelink.state"] == "active"
    resized = api.update(compute, **{"occi.compute.cores": 2, "occi.compute.memory": 1.0})
    assert (resized["occi.compute.cores"], resized["occi.compute.memory"]) == (2, 1.0), resized[
        "occi.compute.state.message"
    ]
    assert (vm.config.hardware.numCPU, vm.config.hardware.memoryMB) == (2, 1024)

    assert api.act(compute, "suspend")["occi.compute.state"] == "suspended"
    assert vm.runtime.powerState == "suspended"
    assert api.act(compute, "start")["occi.compute.state"] == "active"
    api.act(compute, "save", name="golden-vsphere")
    assert "golden-vsphere" in api.os_tpls()
    stopped = api.act(compute, "stop", method="graceful")
    assert stopped["occi.compute.state"] == "inactive"
    assert vm.runtime.powerState == "poweredOff"

    api.delete(disk)
    assert api.request("GET", disk).status_code == 404
    api.delete(compute)
    assert platform.vm(compute) is None
    api.delete(storage)
    api.delete(network)
    assert f"occi-{entity_id(network)}" not in platform.networks()


def test_a_power_change_made_in_vsphere_reaches_the_api_through_events(vpx_server, platform):
    api = Client(vpx_server.url)
    compute = api.create(
        "compute", attributes={"occi.compute.cores": 1, "occi.compute.memory": 0.25}
    )
    assert api.act(compute, "start")["occi.compute.state"] == "active"
    vm = platform.vm(compute)
    vm.PowerOffVM_Task()  # an administrator in vCenter
    a = api.wait_for(compute, "occi.compute.state", "inactive")
    assert a["occi.compute.state.message"] == "inactive"
    api.delete(compute)


def hosts_of(server: LiveServer) -> dict[str, tuple[str, int, int]]:
    """name -> (uri, cores, memory MiB) of the hosts the server's shorthand made."""
    import sqlalchemy as sa

    from occi.store.inventory_sql import hosts

    engine = sa.create_engine(f"sqlite:///{server.log_path.parent}/occi.db")
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(hosts.c.name, hosts.c.uri, hosts.c.cores, hosts.c.memory_mb)
            )
            return {r.name: (r.uri, r.cores, r.memory_mb) for r in rows}
    finally:
        engine.dispose()


def test_the_shorthand_takes_the_clusters_hosts_from_vcenter(vpx_server):
    found = hosts_of(vpx_server)
    assert sorted(found) == ["DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2"]
    assert {(c, m) for _, c, m in found.values()} == {(8, 16384), (2, 4095)}
    assert all(uri.startswith("host-") for uri, _, _ in found.values())


def test_lifecycle_basics_on_a_standalone_esxi(tmp_path):
    esx = vcsim.shared("esx")
    server = LiveServer(tmp_path, env=esx.env())
    platform = Platform(esx)
    try:
        (name, (uri, cores, memory)), *more = hosts_of(server).items()
        assert not more and (cores, memory) == (2, 4095)
        api = Client(server.url)
        assert vcsim.TEMPLATE in api.os_tpls()
        compute = api.create(
            "compute",
            mixins=[OS_TPL + vcsim.TEMPLATE],
            attributes={"occi.compute.cores": 2, "occi.compute.memory": 1.0},
        )
        network = api.create("network")
        assert f"occi-{entity_id(network)}" in platform.networks()  # a standard port group
        storage = api.create("storage", attributes={"occi.storage.size": 2})
        nic = api.link("networkinterface", compute, network)
        disk = api.link("storagelink", compute, storage)
        vm = platform.vm(compute)
        assert vm.runtime.host._moId == uri
        assert api.attrs(nic)["occi.networkinterface.interface"] == "eth0"
        assert api.act(compute, "start")["occi.compute.state"] == "active"
        assert vm.runtime.powerState == "poweredOn"
        assert api.act(compute, "restart", method="warm")["occi.compute.state"] == "active"
        stopped = api.act(compute, "stop", method="poweroff")
        assert (stopped["occi.compute.state"], stopped["occi.compute.state.message"]) == (
            "inactive",
            "powered off",
        )
        for path in (disk, nic, compute, storage, network):
            api.delete(path)
        assert platform.vm(compute) is None
        assert f"occi-{entity_id(network)}" not in platform.networks()
    finally:
        platform.close()
        server.stop()


# ---------------------------------------------------------------------------- the backend alone
@pytest.fixture
def backend(vpx) -> Iterator[Any]:
    from backends.vsphere import VsphereBackend

    b = VsphereBackend(vpx.settings(vsphere_task_wait="0"))
    yield b
    b.close()


def _compute(**attributes: Any) -> Any:
    import uuid

    from occi.model import Resource

    return Resource(
        kind=INFRA + "compute",
        id=str(uuid.uuid4()),
        attributes={"occi.compute.cores": 1, "occi.compute.memory": 0.25, **attributes},
    )


def _finished(b: Any, entity: Any, out: Any) -> Any:
    """An operation's outcome, polling its task as the server would."""
    from backends.base import Pending

    while isinstance(out, Pending):
        out = b.poll(entity, out.handle)
    return out


def test_a_failed_vsphere_task_raises_with_vcenters_fault(backend, platform):
    import json

    from backends.base import InvalidTransition, Pending, PlatformError

    c = _compute()
    _finished(backend, c, backend.compute_create(c))
    started = backend.compute_start(c)
    assert isinstance(started, Pending) and json.loads(started.handle)["op"] == "power"
    _finished(backend, c, started)
    vm = platform.vm(f"/compute/{c.id}")
    again = vm.PowerOnVM_Task()  # fails in vCenter: it runs already
    with pytest.raises(InvalidTransition, match="InvalidPowerState"):
        backend.poll(c, json.dumps({"op": "power", "t": again._moId}))
    with pytest.raises(PlatformError, match="not a vSphere task handle"):
        backend.poll(c, "nonsense")
    backend.compute_stop(c, "poweroff")
    assert backend.compute_delete(c) is not None or platform.vm(f"/compute/{c.id}") is None


def test_a_lost_session_logs_in_again(backend, platform):
    c = _compute()
    _finished(backend, c, backend.compute_create(c))
    si = backend.session.si
    cookie = si._stub.cookie
    si.content.sessionManager.Logout()  # vCenter ends the session (expiry, a restart)
    assert backend.observe(c).attributes["occi.compute.state"] == "inactive"
    assert backend.session.si._stub.cookie != cookie  # logged in again
    _finished(backend, c, backend.compute_delete(c))
    assert platform.vm(f"/compute/{c.id}") is None


def test_a_vcenter_that_does_not_answer_is_unreachable(vpx):
    from backends.base import Unreachable
    from backends.vsphere import VsphereBackend

    b = VsphereBackend(vpx.settings(vsphere_url=f"https://127.0.0.1:{free_port()}/sdk"))
    try:
        assert not b.ping()
        with pytest.raises(Unreachable, match="cannot reach vSphere"):
            b.observe(_compute())
        with pytest.raises(Unreachable):
            b.host_capacity("host-42")
    finally:
        b.close()


def test_a_saved_template_is_an_os_tpl_until_its_image_is_deleted(backend):
    c = _compute()
    _finished(backend, c, backend.compute_create(c))
    out = _finished(backend, c, backend.compute_save(c, "hot", "to-be-deleted"))
    assert out.mixin is not None and out.mixin.term == "to-be-deleted"
    assert "saved as os_tpl to-be-deleted" in out.attributes["occi.compute.state.message"]
    assert out.mixin.id in {m.id for m in backend.provider_mixins()}
    backend.delete_image(out.mixin)
    backend.delete_image(out.mixin)  # gone already: done
    assert out.mixin.id not in {m.id for m in backend.provider_mixins()}
    _finished(backend, c, backend.compute_delete(c))


def test_a_vcenter_restart_is_survived_by_the_session_and_the_events():
    """vCenter goes away and comes back (a new simulator on the same port): the backend logs
    in again on its next call, and the event thread watches again by itself."""
    from backends.vsphere import VsphereBackend

    first = vcsim.start("vpx")
    b = VsphereBackend(first.settings(vsphere_event_wait="1"))
    seen: list[str] = []
    try:
        b.start_events(seen.append)
        assert b._events is not None and b._events.ready.wait(10)
        c = _compute()
        _finished(b, c, b.compute_create(c))
        first.stop()
        second = vcsim.start("vpx", port=first.port)  # an empty vCenter at the same address
        try:
            c = _compute()
            _finished(b, c, b.compute_create(c))  # a new session
            assert b._events.ready.wait(15)  # watching the new vCenter
            vm = Platform(second)
            try:
                vm.vm(f"/compute/{c.id}").PowerOnVM_Task()
                deadline = time.monotonic() + 10
                while c.id not in seen and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert c.id in seen
            finally:
                vm.close()
        finally:
            second.stop()
    finally:
        b.close()
        first.stop()
